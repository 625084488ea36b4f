// JSON text written exactly as Open WebUI's Python writes it: json.dumps with
// its defaults (separators ", " and ": ", ensure_ascii=True, so every
// non-ASCII character is \uXXXX in lowercase hex and an astral one a surrogate
// pair; None is null; floats as repr()). Used by the Open WebUI database
// generator so that the bytes sluice reads are the bytes the app would store.
// Pure; any thread. A PyJson borrows its output string for its lifetime.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::bench {

// Appends `utf8` (which must be valid UTF-8) as json.dumps writes a str: in
// quotes, ASCII only.
void AppendPyJsonString(std::string* out, std::string_view utf8);

// The body of that literal without the quotes (what AppendPyJsonString puts
// between them).
void AppendPyJsonEscaped(std::string* out, std::string_view utf8);

// repr(float): the shortest text that reads back as `v`, fixed notation for
// exponents -4..15 ("0.0001", "1.0", "45.12"), else "1e-05" / "1.5e+16";
// NaN and Infinity as json.dumps spells them.
std::string PyFloatRepr(double v);

// Appends one JSON document, value by value, with Python's separators.
// Nesting is checked only by the caller's symmetry.
class PyJson {
 public:
  explicit PyJson(std::string* out) : out_(out) {}
  PyJson(const PyJson&) = delete;
  PyJson& operator=(const PyJson&) = delete;

  PyJson& BeginObject();
  PyJson& EndObject();
  PyJson& BeginArray();
  PyJson& EndArray();
  PyJson& Key(std::string_view utf8);
  PyJson& Str(std::string_view utf8);
  // A string whose body is already escaped (ASCII, as AppendPyJsonEscaped makes it).
  PyJson& EscapedStr(std::string_view body);
  PyJson& Int(int64_t v);
  PyJson& Float(double v);
  PyJson& Bool(bool v);
  PyJson& Null();
  // A complete JSON value written by another PyJson.
  PyJson& RawValue(std::string_view json);

  // Shorthands for a key and its value.
  PyJson& Field(std::string_view key, std::string_view utf8) { return Key(key).Str(utf8); }
  PyJson& Field(std::string_view key, const char* utf8) { return Key(key).Str(utf8); }
  PyJson& Field(std::string_view key, int64_t v) { return Key(key).Int(v); }
  PyJson& Field(std::string_view key, int v) { return Key(key).Int(v); }
  PyJson& Field(std::string_view key, bool v) { return Key(key).Bool(v); }

 private:
  void BeforeValue();  // ", " unless first in its container or right after a key

  std::string* out_;
  std::vector<bool> first_;  // one per open container: nothing written in it yet
  bool after_key_ = false;
};

}  // namespace sluice::bench
