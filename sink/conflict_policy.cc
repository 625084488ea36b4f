// ConflictPolicy: lookup and the JSON form sent in `sluice.apply`.
#include "sink/conflict_policy.h"

#include "common/json_text.h"

namespace sluice {

const TableConflictPolicy& ConflictPolicy::For(const std::string& table) const {
  auto it = tables.find(table);
  return it != tables.end() ? it->second : defaults;
}

std::string PolicyJson(const TableConflictPolicy& policy) {
  std::string out = "{\"strategy\":";
  AppendJsonString(&out, policy.strategy);
  if (!policy.compare_field.empty()) {
    out += ",\"compare_field\":";
    AppendJsonString(&out, policy.compare_field);
  }
  if (!policy.fallback.empty()) {
    out += ",\"fallback\":";
    AppendJsonString(&out, policy.fallback);
  }
  if (!policy.rules.empty()) {
    out += ",\"rules\":{";
    bool first = true;
    for (const auto& [column, rule] : policy.rules) {
      if (!first) out += ",";
      first = false;
      AppendJsonString(&out, column);
      out += ":";
      AppendJsonString(&out, rule);
    }
    out += "}";
  }
  out += "}";
  return out;
}

}  // namespace sluice
