// The benchmark's output: JSON values built in insertion order (every figure
// with its conditions goes to --json), and the statistics the figures use.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "bench/basics.h"
#include "common/json_text.h"

namespace sluice::bench {

// A JSON value kept as already-serialised text; objects keep insertion order.
class Json {
 public:
  Json() : text_("null") {}
  static Json Raw(std::string t) {
    Json j;
    j.text_ = std::move(t);
    return j;
  }
  static Json Num(double v) {
    if (!std::isfinite(v)) return Json();
    return Raw(Fmt("%.6g", v));
  }
  static Json Int(int64_t v) { return Raw(std::to_string(v)); }
  static Json Bool(bool v) { return Raw(v ? "true" : "false"); }
  static Json Str(const std::string& s) { return Raw(sluice::JsonString(s)); }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

class JsonObject {
 public:
  JsonObject& Set(const std::string& key, Json v) {
    for (auto& kv : fields_) {
      if (kv.first == key) {
        kv.second = std::move(v);
        return *this;
      }
    }
    fields_.emplace_back(key, std::move(v));
    return *this;
  }
  JsonObject& Set(const std::string& key, const JsonObject& o) { return Set(key, o.ToJson()); }
  Json ToJson(int indent = 0) const {
    std::string pad(static_cast<size_t>(indent + 2), ' ');
    std::string out = "{";
    bool first = true;
    for (const auto& kv : fields_) {
      out += first ? "\n" : ",\n";
      first = false;
      // Nested values carry their own line breaks (strings escape theirs): indent them.
      std::string value;
      for (char c : kv.second.text()) {
        value.push_back(c);
        if (c == '\n') value += pad;
      }
      out += pad + Json::Str(kv.first).text() + ": " + value;
    }
    out += first ? "}" : "\n" + std::string(static_cast<size_t>(indent), ' ') + "}";
    return Json::Raw(out);
  }

 private:
  std::vector<std::pair<std::string, Json>> fields_;
};

Json JsonArray(const std::vector<Json>& items);

double Percentile(const std::vector<double>& sorted, double p);

double Median(std::vector<double> v);

}  // namespace sluice::bench
