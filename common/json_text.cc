// JSON string escaping.
#include "common/json_text.h"

#include "common/hex.h"

namespace sluice {

void AppendJsonString(std::string* out, std::string_view utf8) {
  out->push_back('"');
  // Append runs of bytes that need no escape in one go: this is the hot loop
  // of a large catch-up (chat JSON, message content).
  size_t run = 0;
  for (size_t i = 0; i < utf8.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(utf8[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(utf8.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      default:
        *out += "\\u00";
        AppendHex(out, utf8.substr(i, 1));
    }
  }
  out->append(utf8.data() + run, utf8.size() - run);
  out->push_back('"');
}

std::string JsonString(std::string_view utf8) {
  std::string out;
  out.reserve(utf8.size() + 2);
  AppendJsonString(&out, utf8);
  return out;
}

std::string JsonStringArray(const std::vector<std::string>& items) {
  std::string out = "[";
  for (const std::string& item : items) {
    if (out.size() > 1) out += ",";
    AppendJsonString(&out, item);
  }
  return out + "]";
}

}  // namespace sluice
