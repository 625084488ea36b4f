// JSON string literals for text sluice writes itself (rows sent to PostgreSQL,
// conflict_log images, configs in tests and the bench). Pure; any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sluice {

// Appends `utf8` as a JSON string literal (quotes included). Bytes must be
// valid UTF-8; control characters and NUL are escaped.
void AppendJsonString(std::string* out, std::string_view utf8);

// The same, as a new string.
std::string JsonString(std::string_view utf8);

// For text from outside (error messages, peer input) that may hold any bytes: every
// byte that does not belong to a well-formed UTF-8 sequence (stray continuation, overlong
// form, surrogate, above U+10FFFF, cut short) becomes U+FFFD, then as AppendJsonString.
void AppendJsonStringLossy(std::string* out, std::string_view bytes);

// A JSON array of string literals: ["a","b"].
std::string JsonStringArray(const std::vector<std::string>& items);

}  // namespace sluice
