// COPY text format escaping (see copy_text.h).
#include "common/copy_text.h"

namespace sluice {

void AppendCopyField(std::string* out, std::string_view text) {
  for (char ch : text) {
    switch (ch) {
      case '\\':
        *out += "\\\\";
        break;
      case '\t':
        *out += "\\t";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      default:
        *out += ch;
    }
  }
}

}  // namespace sluice
