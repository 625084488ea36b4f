// ConflictPolicy: lookup, the JSON form sent in `sluice.apply`, parsing of the
// config's JSON (simdjson DOM, every key checked) and validation against shapes.
#include "sink/conflict_policy.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <optional>

#include "common/json_text.h"
#include "sink/type_mapping.h"

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

namespace {

using simdjson::dom::element;
using simdjson::dom::object;

constexpr std::array<std::string_view, 5> kStrategies = {"source_wins", "target_wins",
                                                         "newest_wins", "merge", "manual"};
constexpr std::array<std::string_view, 3> kFallbacks = {"source_wins", "target_wins",
                                                        "newest_wins"};
constexpr std::array<std::string_view, 5> kRules = {"source_wins", "target_wins", "newest_wins",
                                                    "append", "union"};
// The seed's settings that promised behaviour sluice does not have.
constexpr std::array<std::string_view, 4> kSeedOnly = {"resolution_log", "notification",
                                                       "advanced_options", "notify"};

template <size_t N>
bool OneOf(const std::array<std::string_view, N>& set, std::string_view v) {
  return std::find(set.begin(), set.end(), v) != set.end();
}

template <size_t N>
std::string List(const std::array<std::string_view, N>& set) {
  std::string out;
  for (std::string_view v : set) out += (out.empty() ? "" : ", ") + std::string(v);
  return out;
}

Status Error(const std::string& path, const std::string& what) {
  return Status::InvalidArgument("conflicts: " + path + (path.empty() ? "" : ": ") + what);
}

bool IsDocumentation(std::string_view key) { return key == "description" || key == "_metadata"; }

// An unknown key: the seed's unsupported settings get a message of their own.
Status UnknownKey(const std::string& path, std::string_view key) {
  if (OneOf(kSeedOnly, key)) {
    return Error(path,
                 "not supported by sluice (a setting of the seed system); every conflict goes "
                 "to sync_metadata.conflict_log: remove the key");
  }
  return Error(path, "unknown key");
}

Status GetString(element e, const std::string& path, std::string* out) {
  std::string_view v;
  if (e.get_string().get(v) != simdjson::SUCCESS) return Error(path, "must be a string");
  if (v.empty()) return Error(path, "must not be empty");
  *out = std::string(v);
  return Status::Ok();
}

template <size_t N>
Status GetChoice(element e, const std::string& path, const char* what,
                 const std::array<std::string_view, N>& set, std::string* out) {
  SLUICE_RETURN_IF_ERROR(GetString(e, path, out));
  if (!OneOf(set, *out)) {
    return Error(path, fmt::format("unknown {} \"{}\" (one of {})", what, *out, List(set)));
  }
  return Status::Ok();
}

Status GetObject(element e, const std::string& path, object* out) {
  if (e.get_object().get(*out) != simdjson::SUCCESS) {
    return path.empty() ? Error("", "must be a JSON object") : Error(path, "must be an object");
  }
  return Status::Ok();
}

// What a table entry wrote; unset fields are filled from the defaults after.
struct TableEntry {
  std::optional<std::string> strategy, compare_field, fallback;
  std::optional<std::map<std::string, std::string>> rules;
};

Status ParseTable(element e, const std::string& path, TableEntry* t) {
  object obj;
  SLUICE_RETURN_IF_ERROR(GetObject(e, path, &obj));
  for (auto field : obj) {
    std::string key = path + "." + std::string(field.key);
    std::string v;
    if (field.key == "strategy") {
      SLUICE_RETURN_IF_ERROR(GetChoice(field.value, key, "strategy", kStrategies, &v));
      t->strategy = v;
    } else if (field.key == "compare_field") {
      SLUICE_RETURN_IF_ERROR(GetString(field.value, key, &v));
      t->compare_field = v;
    } else if (field.key == "fallback_strategy") {
      SLUICE_RETURN_IF_ERROR(GetChoice(field.value, key, "fallback strategy", kFallbacks, &v));
      t->fallback = v;
    } else if (field.key == "merge_rules") {
      object rules;
      SLUICE_RETURN_IF_ERROR(GetObject(field.value, key, &rules));
      t->rules.emplace();
      for (auto rule : rules) {
        std::string rkey = key + "." + std::string(rule.key);
        SLUICE_RETURN_IF_ERROR(GetChoice(rule.value, rkey, "rule", kRules, &v));
        (*t->rules)[std::string(rule.key)] = v;
      }
    } else if (!IsDocumentation(field.key)) {
      return UnknownKey(key, field.key);
    }
  }
  return Status::Ok();
}

// The policy object itself (inside the wrapper, or bare).
Status ParseBody(object obj, ConflictPolicy* out) {
  std::string default_strategy = "source_wins", default_compare;
  std::map<std::string, TableEntry> entries;
  for (auto field : obj) {
    std::string key(field.key);
    if (key == "default_strategy") {
      SLUICE_RETURN_IF_ERROR(
          GetChoice(field.value, key, "strategy", kStrategies, &default_strategy));
    } else if (key == "default_compare_field") {
      SLUICE_RETURN_IF_ERROR(GetString(field.value, key, &default_compare));
    } else if (key == "table_strategies") {
      object tables;
      SLUICE_RETURN_IF_ERROR(GetObject(field.value, key, &tables));
      for (auto table : tables) {
        std::string name(table.key);
        SLUICE_RETURN_IF_ERROR(ParseTable(table.value, key + "." + name, &entries[name]));
      }
    } else if (!IsDocumentation(key)) {
      return UnknownKey(key, key);
    }
  }
  // The defaults carry merge's fallback too when default_strategy is merge.
  std::string fallback = OneOf(kFallbacks, default_strategy) ? default_strategy : "source_wins";
  out->defaults = {default_strategy, default_compare, fallback, {}};
  out->tables.clear();
  for (auto& [name, e] : entries) {
    TableConflictPolicy& t = out->tables[name];
    t.strategy = e.strategy.value_or("source_wins");
    t.compare_field = e.compare_field.value_or(default_compare);
    t.fallback = e.fallback.value_or(fallback);
    if (e.rules.has_value()) {
      if (t.strategy != "merge") {
        return Error("table_strategies." + name + ".merge_rules",
                     "only under strategy merge (the table's strategy is " + t.strategy + ")");
      }
      t.rules = std::move(*e.rules);
    }
  }
  return Status::Ok();
}

}  // namespace

Result<ConflictPolicy> ParseConflictPolicy(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  element root;
  auto err = parser.parse(padded).get(root);
  if (err != simdjson::SUCCESS) {
    return Error("", std::string("not valid JSON: ") + simdjson::error_message(err));
  }
  object obj;
  SLUICE_RETURN_IF_ERROR(GetObject(root, "", &obj));
  ConflictPolicy policy;
  element wrapped;
  if (obj.at_key("conflict_resolution").get(wrapped) == simdjson::SUCCESS) {
    for (auto field : obj) {
      if (field.key == "conflict_resolution" || IsDocumentation(field.key)) continue;
      return Error(std::string(field.key),
                   "unknown key (beside \"conflict_resolution\" only \"_metadata\" and "
                   "\"description\")");
    }
    SLUICE_RETURN_IF_ERROR(GetObject(wrapped, "conflict_resolution", &obj));
  }
  SLUICE_RETURN_IF_ERROR(ParseBody(obj, &policy));
  return policy;
}

namespace {

using ColumnTypes = std::map<std::string, std::map<std::string, std::string>>;

// The PostgreSQL type the mirror of `c` gets: the override, else the mapping.
std::string MirrorType(const TableShape& t, const ColumnShape& c, const ColumnTypes& overrides) {
  auto table = overrides.find(t.name);
  if (table != overrides.end()) {
    auto col = table->second.find(c.name);
    if (col != table->second.end()) return col->second;
  }
  return MapColumnType(c);
}

const ColumnShape* FindColumn(const TableShape& t, const std::string& name) {
  for (const ColumnShape& c : t.columns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

// Where `p` uses newest_wins ("" = nowhere): what needs the compare field.
std::string NewestUse(const TableConflictPolicy& p) {
  if (p.strategy == "newest_wins") return "newest_wins";
  if (p.strategy != "merge") return "";
  if (p.fallback == "newest_wins") return "fallback_strategy newest_wins";
  for (const auto& [column, rule] : p.rules) {
    if (rule == "newest_wins") return "merge rule newest_wins on \"" + column + "\"";
  }
  return "";
}

// The compare field of `p` on table `t`, when newest_wins needs it or it was
// written for the table (`path` names where it came from).
void CheckCompareField(const TableShape& t, const TableConflictPolicy& p, bool explicit_field,
                       const std::string& path, const std::string& hint,
                       const ColumnTypes& overrides, std::vector<std::string>* problems) {
  std::string use = NewestUse(p);
  bool newest = !use.empty();
  if (!newest && !explicit_field) return;
  if (p.compare_field.empty()) {
    problems->push_back(path + ": " + use +
                        " needs a compare field (compare_field, or default_compare_field)");
    return;
  }
  const ColumnShape* c = FindColumn(t, p.compare_field);
  if (c == nullptr) {
    std::string why = newest ? " (" + use + " needs a compare field" + hint + ")" : "";
    problems->push_back(
        fmt::format("{}: table \"{}\" has no column \"{}\"{}", path, t.name, p.compare_field, why));
    return;
  }
  std::string type = MirrorType(t, *c, overrides);
  TargetKind kind = KindOfPgType(type);
  if (kind == TargetKind::kBoolean || kind == TargetKind::kJsonb || kind == TargetKind::kBytea) {
    problems->push_back(fmt::format(
        "{}: \"{}\" is mirrored as {}; a compare field must hold numbers, text or dates", path,
        c->name, type));
  }
}

void CheckRules(const TableShape& t, const TableConflictPolicy& p, const std::string& path,
                const ColumnTypes& overrides, std::vector<std::string>* problems) {
  for (const auto& [column, rule] : p.rules) {
    std::string rpath = path + ".merge_rules." + column;
    const ColumnShape* c = FindColumn(t, column);
    if (c == nullptr) {
      problems->push_back(
          fmt::format("{}: table \"{}\" has no column \"{}\"", rpath, t.name, column));
      continue;
    }
    if (c->key_position > 0) {
      problems->push_back(fmt::format(
          "{}: \"{}\" is a key column of table \"{}\" (the row identity is never merged)", rpath,
          column, t.name));
      continue;
    }
    if (rule != "append" && rule != "union") continue;
    std::string type = MirrorType(t, *c, overrides);
    if (KindOfPgType(type) != TargetKind::kJsonb) {
      problems->push_back(fmt::format(
          "{}: rule {} needs a json or jsonb mirror column, but {}.{} is mirrored as {} "
          "(declared \"{}\"); declare it JSON in SQLite or set tables.{}.columns.{}: \"jsonb\"",
          rpath, rule, t.name, column, type, c->declared_type, t.name, column));
    }
  }
}

}  // namespace

Status ValidateConflictPolicy(const ConflictPolicy& policy, const std::vector<TableShape>& shapes,
                              const ColumnTypes& column_types) {
  std::map<std::string, const TableShape*> by_name;
  for (const TableShape& t : shapes) by_name[t.name] = &t;
  std::vector<std::string> problems;
  for (const auto& [name, p] : policy.tables) {
    std::string path = "table_strategies." + name;
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      std::string tracked;
      for (const auto& [n, shape] : by_name) tracked += (tracked.empty() ? "" : ", ") + n;
      problems.push_back(fmt::format("{}: no tracked table \"{}\" (tracked: {})", path, name,
                                     tracked.empty() ? "none" : tracked));
      continue;
    }
    bool explicit_field = p.compare_field != policy.defaults.compare_field;
    CheckCompareField(*it->second, p, explicit_field, path + ".compare_field", "", column_types,
                      &problems);
    CheckRules(*it->second, p, path, column_types, &problems);
  }
  // The defaults hold for every tracked table not listed.
  for (const auto& [name, shape] : by_name) {
    if (policy.tables.count(name) != 0) continue;
    CheckCompareField(*shape, policy.defaults, false, "default_compare_field",
                      "; give the table its own entry in table_strategies", column_types,
                      &problems);
  }
  if (problems.empty()) return Status::Ok();
  std::string msg;
  for (size_t i = 0; i < problems.size(); ++i) {
    // The defaults' problem without a table in it is the same for every table.
    if (std::find(problems.begin(), problems.begin() + i, problems[i]) != problems.begin() + i) {
      continue;
    }
    msg += (msg.empty() ? "" : "; ") + problems[i];
  }
  return Status::InvalidArgument("conflicts: " + msg);
}

}  // namespace sluice
