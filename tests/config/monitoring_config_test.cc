// The shipped monitoring config cannot drift from the code: every PromQL
// expression of config/grafana/sluice-dashboard.json (panel targets and
// variable queries) names only metrics that a fresh Metrics exports
// (histogram series through their _bucket/_sum/_count) and parses as PromQL,
// the dashboard has the panels the README promises, and every sluice_* name
// in config/prometheus/sluice-alerts.yml is exported. Files come from
// $SLUICE_CONFIG_DIR, promtool from $PROMTOOL (both set by meson).
#include <gtest/gtest.h>
#include <simdjson.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "agent/metrics.h"
#include "common/json_text.h"
#include "tests/agent/exposition.h"
#include "tests/support/processes.h"
#include "tests/test_support.h"

namespace sluice {
namespace {

// The metric names a PromQL expression refers to: identifiers outside label
// matchers, strings, ranges and by/on/... lists that are not calls, keywords
// or numbers. Grafana's $variables are skipped.
std::set<std::string> MetricNames(std::string_view expr) {
  static const std::set<std::string> kKeywords = {
      "by",    "without", "on",       "ignoring",    "group_left", "group_right", "and",
      "or",    "unless",  "bool",     "offset",      "inf",        "nan",         "sum",
      "min",   "max",     "avg",      "count",       "stddev",     "stdvar",      "topk",
      "group", "bottomk", "quantile", "count_values"};  // aggregations may precede `by`
  static const std::set<std::string> kListKeywords = {"by",       "without",    "on",
                                                      "ignoring", "group_left", "group_right"};
  std::set<std::string> names;
  size_t i = 0;
  auto skip_until = [&](char close) {
    while (i < expr.size() && expr[i] != close) {
      if (expr[i] == '"' || expr[i] == '\'') {
        char q = expr[i++];
        while (i < expr.size() && expr[i] != q) i += expr[i] == '\\' ? 2 : 1;
      }
      ++i;
    }
    ++i;
  };
  while (i < expr.size()) {
    char c = expr[i];
    if (c == '"' || c == '\'' || c == '`') {
      ++i;
      while (i < expr.size() && expr[i] != c) i += expr[i] == '\\' ? 2 : 1;
      ++i;
    } else if (c == '{') {
      ++i;
      skip_until('}');
    } else if (c == '[') {
      ++i;
      skip_until(']');
    } else if (c == '$') {
      ++i;
      if (i < expr.size() && expr[i] == '{') {
        skip_until('}');
      } else {
        while (i < expr.size() &&
               (std::isalnum(static_cast<unsigned char>(expr[i])) || expr[i] == '_')) {
          ++i;
        }
      }
    } else if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') {
      while (i < expr.size() &&
             (std::isalnum(static_cast<unsigned char>(expr[i])) || expr[i] == '.')) {
        ++i;
      }
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':') {
      size_t start = i;
      while (i < expr.size() && (std::isalnum(static_cast<unsigned char>(expr[i])) ||
                                 expr[i] == '_' || expr[i] == ':')) {
        ++i;
      }
      std::string word(expr.substr(start, i - start));
      size_t j = i;
      while (j < expr.size() && expr[j] == ' ') ++j;
      bool call = j < expr.size() && expr[j] == '(';
      if (kListKeywords.count(word) && call) {
        i = j + 1;
        skip_until(')');  // a list of label names
      } else if (!call && !kKeywords.count(word)) {
        names.insert(word);
      }
    } else {
      ++i;
    }
  }
  return names;
}

// What Metrics exports, as a query may name it.
std::set<std::string> ExportedNames() {
  Metrics m("v", "n", "d");
  Result<testing::Exposition> e = testing::ParseExposition(m.Serialize());
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  std::set<std::string> names;
  if (!e.ok()) return names;
  for (const auto& [name, type] : e->types) {
    names.insert(name);
    if (type == "histogram") {
      for (const char* suffix : {"_bucket", "_sum", "_count"}) names.insert(name + suffix);
    }
  }
  return names;
}

struct Query {
  std::string where;  // panel title or variable name
  std::string expr;
};

void CollectPanels(simdjson::dom::array panels, std::vector<Query>& queries,
                   std::vector<std::string>& titles) {
  for (simdjson::dom::element panel : panels) {
    std::string_view title;
    if (panel["title"].get(title) == simdjson::SUCCESS) titles.emplace_back(title);
    simdjson::dom::array nested;
    if (panel["panels"].get(nested) == simdjson::SUCCESS) CollectPanels(nested, queries, titles);
    simdjson::dom::array targets;
    if (panel["targets"].get(targets) != simdjson::SUCCESS) continue;
    for (simdjson::dom::element target : targets) {
      std::string_view expr;
      if (target["expr"].get(expr) == simdjson::SUCCESS) {
        queries.push_back({std::string(title), std::string(expr)});
      }
    }
  }
}

TEST(DashboardQueries, MetricNamesAreFoundInExpressions) {
  EXPECT_EQ(MetricNames("histogram_quantile(0.95, sum by (le, instance) "
                        "(rate(sluice_apply_duration_seconds_bucket{job=\"sluice\","
                        "deployment=~\"$deployment\"}[$__rate_interval])))"),
            (std::set<std::string>{"sluice_apply_duration_seconds_bucket"}));
  EXPECT_EQ(MetricNames("sluice_lag_seconds > 10 and on (job, instance) sluice_leader == 1"),
            (std::set<std::string>{"sluice_lag_seconds", "sluice_leader"}));
  EXPECT_EQ(MetricNames("sum(up{job='sluice'}) or vector(0) * 1e3"), (std::set<std::string>{"up"}));
  EXPECT_EQ(MetricNames("topk(5, sluice_nope_total offset 5m)"),
            (std::set<std::string>{"sluice_nope_total"}));
}

struct Dashboard {
  int64_t schema_version = 0;
  bool datasource_variable = false;  // a variable of type datasource, query prometheus
  std::vector<Query> queries;        // panel targets and query variables
};

// Loads the dashboard; a failure is reported through gtest.
void LoadDashboard(Dashboard* out) {
  const char* dir = std::getenv("SLUICE_CONFIG_DIR");
  ASSERT_NE(dir, nullptr) << "SLUICE_CONFIG_DIR is not set";
  std::string path = std::string(dir) + "/grafana/sluice-dashboard.json";
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  auto error = parser.load(path).get(doc);
  ASSERT_EQ(error, simdjson::SUCCESS) << path << ": " << simdjson::error_message(error);
  ASSERT_EQ(doc["schemaVersion"].get(out->schema_version), simdjson::SUCCESS);

  std::vector<std::string> titles;
  simdjson::dom::array panels;
  ASSERT_EQ(doc["panels"].get(panels), simdjson::SUCCESS);
  CollectPanels(panels, out->queries, titles);

  simdjson::dom::array variables;
  ASSERT_EQ(doc["templating"]["list"].get(variables), simdjson::SUCCESS);
  for (simdjson::dom::element v : variables) {
    std::string_view type, name, query;
    if (v["type"].get(type) != simdjson::SUCCESS || v["name"].get(name) != simdjson::SUCCESS) {
      continue;
    }
    if (type == "datasource" && v["query"].get(query) == simdjson::SUCCESS &&
        query == "prometheus") {
      out->datasource_variable = true;
    }
    std::string_view q;
    if (type == "query" && (v["query"]["query"].get(q) == simdjson::SUCCESS ||
                            v["query"].get(q) == simdjson::SUCCESS)) {
      // label_values(<series selector>, <label>): the selector is PromQL, the label is not.
      std::string expr(q);
      if (expr.rfind("label_values(", 0) == 0 && expr.rfind(',') != std::string::npos) {
        expr = expr.substr(13, expr.rfind(',') - 13);
      }
      out->queries.push_back({"variable " + std::string(name), expr});
    }
  }
}

TEST(Dashboard, EveryQueryNamesOnlyExportedMetrics) {
  Dashboard d;
  LoadDashboard(&d);
  if (HasFatalFailure()) return;
  EXPECT_GE(d.schema_version, 36);
  EXPECT_TRUE(d.datasource_variable) << "no Prometheus datasource variable";
  const std::vector<Query>& queries = d.queries;

  std::set<std::string> exported = ExportedNames();
  ASSERT_FALSE(exported.empty());
  std::set<std::string> used;
  for (const Query& q : queries) {
    std::set<std::string> names = MetricNames(q.expr);
    EXPECT_FALSE(names.empty()) << q.where << ": no metric in " << q.expr;
    for (const std::string& n : names) {
      EXPECT_TRUE(exported.count(n))
          << q.where << ": " << n << " is not exported by Metrics (" << q.expr << ")";
      used.insert(n);
    }
  }
  // The panels the README promises, each fed by its metric.
  for (const char* m :
       {"sluice_lag_seconds", "sluice_journal_backlog_rows", "sluice_rows_applied_total",
        "sluice_leader", "sluice_lease_epoch", "sluice_apply_duration_seconds_bucket",
        "sluice_lease_renewals_total", "sluice_lease_renewal_failures_total",
        "sluice_rows_parked_total", "sluice_conflicts_total", "sluice_conflicts_pending"}) {
    EXPECT_TRUE(used.count(m)) << "no panel shows " << m;
  }
  int quantiles = 0;
  for (const Query& q : queries) {
    if (q.expr.find("histogram_quantile(") != std::string::npos &&
        q.expr.find("sluice_apply_duration_seconds_bucket") != std::string::npos) {
      ++quantiles;
    }
  }
  EXPECT_GE(quantiles, 3) << "apply latency p50/p95/p99";
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

// Grafana's variables replaced by values Prometheus accepts.
std::string Expand(std::string expr) {
  for (auto [var, value] : {std::pair{"$__rate_interval", "1m"},
                            {"$__interval", "1m"},
                            {"$__range", "1h"},
                            {"$deployment", ".*"}}) {
    for (size_t at; (at = expr.find(var)) != std::string::npos;)
      expr.replace(at, strlen(var), value);
  }
  return expr;
}

// promtool parses every query as PromQL: each becomes a recording rule.
TEST(Dashboard, EveryQueryIsValidPromQL) {
  const char* promtool = std::getenv("PROMTOOL");
  ASSERT_NE(promtool, nullptr) << "PROMTOOL is not set";
  Dashboard d;
  LoadDashboard(&d);
  if (HasFatalFailure()) return;
  ASSERT_FALSE(d.queries.empty());
  std::string rules = R"({"groups":[{"name":"dashboard","rules":[)";
  for (size_t i = 0; i < d.queries.size(); ++i) {
    if (i > 0) rules += ",";
    rules += R"({"record":"dashboard:query)" + std::to_string(i) + R"(","expr":)" +
             JsonString(Expand(d.queries[i].expr)) + "}";
  }
  rules += "]}]}\n";
  testing::TempDir dir;
  std::string file = dir.file("dashboard-rules.yml");
  testing::WriteFile(file, rules);
  testing::CommandResult r = testing::RunCommand({promtool, "check", "rules", file});
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

TEST(AlertRules, NameOnlyExportedMetrics) {
  const char* dir = std::getenv("SLUICE_CONFIG_DIR");
  ASSERT_NE(dir, nullptr) << "SLUICE_CONFIG_DIR is not set";
  std::string rules = testing::ReadFile(std::string(dir) + "/prometheus/sluice-alerts.yml");
  ASSERT_FALSE(rules.empty());
  std::set<std::string> exported = ExportedNames();
  std::set<std::string> named;
  for (size_t at = 0; (at = rules.find("sluice_", at)) != std::string::npos;) {
    size_t end = at;
    while (end < rules.size() &&
           (std::isalnum(static_cast<unsigned char>(rules[end])) || rules[end] == '_')) {
      ++end;
    }
    named.insert(rules.substr(at, end - at));
    at = end;
  }
  for (const std::string& n : named) EXPECT_TRUE(exported.count(n)) << n << " is not exported";
  for (const char* m : {"sluice_leader", "sluice_lag_seconds", "sluice_journal_backlog_rows",
                        "sluice_lease_renewal_failures_total", "sluice_rows_parked_total",
                        "sluice_conflicts_pending"}) {
    EXPECT_TRUE(named.count(m)) << "no rule uses " << m;
  }
}

}  // namespace
}  // namespace sluice
