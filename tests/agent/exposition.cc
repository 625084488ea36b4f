// Exposition (tests/agent/exposition.h): a strict line-by-line reader of the
// Prometheus text format 0.0.4.
#include "tests/agent/exposition.h"

#include <simdjson.h>

#include <cmath>
#include <cstdlib>
#include <limits>

namespace sluice::testing {
namespace {

bool IsNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }

bool ValidUtf8(std::string_view s) { return simdjson::validate_utf8(s.data(), s.size()); }

Status LineError(size_t line_no, std::string_view line, std::string_view why) {
  return Status::InvalidArgument("line " + std::to_string(line_no) + " (" + std::string(line) +
                                 "): " + std::string(why));
}

// Reads a metric or label name at `pos`; empty when there is none.
std::string ReadName(std::string_view line, size_t& pos) {
  size_t start = pos;
  if (pos < line.size() && IsNameStart(line[pos])) {
    ++pos;
    while (pos < line.size() && IsNameChar(line[pos])) ++pos;
  }
  return std::string(line.substr(start, pos - start));
}

Status ParseSample(std::string_view line, size_t line_no, Sample& out) {
  size_t pos = 0;
  out.name = ReadName(line, pos);
  if (out.name.empty()) return LineError(line_no, line, "no metric name");
  if (pos < line.size() && line[pos] == '{') {
    ++pos;
    while (pos < line.size() && line[pos] != '}') {
      std::string label = ReadName(line, pos);
      if (label.empty()) return LineError(line_no, line, "no label name");
      if (pos + 1 >= line.size() || line[pos] != '=' || line[pos + 1] != '"') {
        return LineError(line_no, line, "label without =\"");
      }
      pos += 2;
      std::string value;
      for (;;) {
        if (pos >= line.size()) return LineError(line_no, line, "unterminated label value");
        char c = line[pos++];
        if (c == '"') break;
        if (c != '\\') {
          value.push_back(c);
          continue;
        }
        if (pos >= line.size()) return LineError(line_no, line, "dangling backslash");
        char e = line[pos++];
        if (e == '\\') {
          value.push_back('\\');
        } else if (e == '"') {
          value.push_back('"');
        } else if (e == 'n') {
          value.push_back('\n');
        } else {
          return LineError(line_no, line, "unknown escape");
        }
      }
      if (!ValidUtf8(value)) return LineError(line_no, line, "label value is not UTF-8");
      if (!out.labels.emplace(label, value).second) {
        return LineError(line_no, line, "duplicate label " + label);
      }
      if (pos < line.size() && line[pos] == ',') ++pos;
    }
    if (pos >= line.size()) return LineError(line_no, line, "unterminated label set");
    ++pos;  // '}'
  }
  if (pos >= line.size() || line[pos] != ' ') return LineError(line_no, line, "no value");
  std::string number(line.substr(pos + 1));
  if (number == "+Inf") {
    out.value = std::numeric_limits<double>::infinity();
  } else if (number == "-Inf") {
    out.value = -std::numeric_limits<double>::infinity();
  } else if (number == "Nan" || number == "NaN") {
    out.value = std::numeric_limits<double>::quiet_NaN();
  } else {
    char* end = nullptr;
    out.value = std::strtod(number.c_str(), &end);
    if (number.empty() || end != number.c_str() + number.size()) {
      return LineError(line_no, line, "bad value (timestamps are not expected)");
    }
  }
  return Status::Ok();
}

}  // namespace

std::vector<Sample> Exposition::Find(std::string_view name,
                                     const std::map<std::string, std::string>& labels) const {
  std::vector<Sample> found;
  for (const Sample& s : samples) {
    if (s.name != name) continue;
    bool all = true;
    for (const auto& [k, v] : labels) {
      auto it = s.labels.find(k);
      if (it == s.labels.end() || it->second != v) all = false;
    }
    if (all) found.push_back(s);
  }
  return found;
}

double Exposition::Value(std::string_view name,
                         const std::map<std::string, std::string>& labels) const {
  std::vector<Sample> found = Find(name, labels);
  return found.size() == 1 ? found[0].value : std::numeric_limits<double>::quiet_NaN();
}

Result<Exposition> ParseExposition(std::string_view text) {
  Exposition out;
  if (!text.empty() && text.back() != '\n') {
    return Status::InvalidArgument("the exposition does not end with a newline");
  }
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    ++line_no;
    if (line.empty()) continue;
    if (!ValidUtf8(line)) return LineError(line_no, line, "not UTF-8");
    if (line[0] == '#') {
      bool help = line.rfind("# HELP ", 0) == 0;
      bool type = line.rfind("# TYPE ", 0) == 0;
      if (!help && !type) continue;  // a plain comment
      size_t pos = 7;
      std::string name = ReadName(line, pos);
      if (name.empty()) return LineError(line_no, line, "no family name");
      std::string rest(pos < line.size() ? line.substr(pos + 1) : std::string_view());
      auto& map = help ? out.helps : out.types;
      if (!map.emplace(name, rest).second) return LineError(line_no, line, "repeated");
      continue;
    }
    Sample s;
    if (Status st = ParseSample(line, line_no, s); !st.ok()) return st;
    out.samples.push_back(std::move(s));
  }
  return out;
}

}  // namespace sluice::testing
