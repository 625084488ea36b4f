// COPY's text format: a value as one field of a COPY ... FROM STDIN line.
// Shared by sink/ (a full read into an empty mirror) and bench/ (its COPY
// baseline). Pure.
#pragma once

#include <string>
#include <string_view>

namespace sluice {

// Appends `text` with backslash, tab, newline and carriage return escaped as
// COPY reads them back (\\, \t, \n, \r); every other byte as it is. The text
// must hold no NUL (PostgreSQL's text cannot).
void AppendCopyField(std::string* out, std::string_view text);

}  // namespace sluice
