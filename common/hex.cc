// Hexadecimal encoding and decoding (see hex.h).
#include "common/hex.h"

namespace sluice {

void AppendHex(std::string* out, std::string_view bytes, HexCase hex_case) {
  const char* digits = hex_case == HexCase::kUpper ? "0123456789ABCDEF" : "0123456789abcdef";
  out->reserve(out->size() + bytes.size() * 2);
  for (unsigned char c : bytes) {
    out->push_back(digits[c >> 4]);
    out->push_back(digits[c & 15]);
  }
}

std::string Hex(std::string_view bytes, HexCase hex_case) {
  std::string out;
  AppendHex(&out, bytes, hex_case);
  return out;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> Unhex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = HexDigit(hex[i]);
    int lo = HexDigit(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>((hi << 4) | lo));
  }
  return out;
}

}  // namespace sluice
