// SQL quoting shared by capture/ (SQLite) and sink/ (PostgreSQL): both follow
// the standard — identifiers in double quotes, literals in single quotes, the
// quote character doubled inside. Pure; any thread.
#pragma once

#include <string>
#include <string_view>

namespace sluice {

std::string QuoteIdent(std::string_view name);    // "na""me"
std::string QuoteLiteral(std::string_view text);  // 'it''s'

}  // namespace sluice
