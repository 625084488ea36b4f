// Exposition: a strict reader of the Prometheus text format 0.0.4, for tests
// only. It reads back what Metrics::Serialize() wrote: every line must be a
// `# HELP`, a `# TYPE` or a sample `name{label="value",...} number`; label
// values are unescaped (\\, \", \n and nothing else) and must be valid UTF-8.
// Anything else is an error naming the line, so a test that parses a scrape
// also checks that it is well formed.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sluice::testing {

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct Exposition {
  std::map<std::string, std::string> types;  // family name -> counter, gauge, histogram...
  std::map<std::string, std::string> helps;  // family name -> help text
  std::vector<Sample> samples;

  // Samples of `name` whose labels include every pair of `labels`.
  std::vector<Sample> Find(std::string_view name,
                           const std::map<std::string, std::string>& labels = {}) const;
  // The value of the one sample matching; NaN unless exactly one matches.
  double Value(std::string_view name, const std::map<std::string, std::string>& labels = {}) const;
};

Result<Exposition> ParseExposition(std::string_view text);

}  // namespace sluice::testing
