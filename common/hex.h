// Hexadecimal text of bytes and back: the one encoder behind key text (upper
// case, as SQLite's hex()), bytea and JSON escapes (lower case) and the tests.
// Pure functions, no allocation beyond the result.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sluice {

enum class HexCase { kLower, kUpper };

// Appends two hex digits per byte of `bytes` to *out.
void AppendHex(std::string* out, std::string_view bytes, HexCase hex_case = HexCase::kLower);
std::string Hex(std::string_view bytes, HexCase hex_case = HexCase::kLower);

// The value of one hex digit (either case), or -1.
int HexDigit(char c);
// Bytes of an even-length run of hex digits (either case); nullopt otherwise.
std::optional<std::string> Unhex(std::string_view hex);

}  // namespace sluice
