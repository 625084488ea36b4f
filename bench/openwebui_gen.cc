// sluice_openwebui_gen: writes a realistic Open WebUI database (see
// openwebui_data.h) and reports what it wrote: rows per table, the chat JSON
// size distribution, the file size and the time taken.
#include <sqlite3.h>
#include <sys/utsname.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "bench/basics.h"
#include "bench/bench_paths.h"
#include "bench/openwebui_data.h"
#include "bench/report.h"
#include "tests/support/processes.h"

namespace sluice::bench {
namespace {

void Usage() {
  std::printf(
      "usage: sluice_openwebui_gen --out FILE [options]\n"
      "  --scale X      row counts times X; 1.0 is the full ~315 MB database (default 1)\n"
      "  --seed N       PRNG seed; the same seed and scale give the same rows (default 1)\n"
      "  --schema FILE  Open WebUI schema SQL (default: the fixture in the source tree)\n"
      "  --json FILE    also write the conditions and results as JSON to FILE\n");
}

std::string Mb(int64_t bytes) { return Fmt("%.1f MB", static_cast<double>(bytes) / 1e6); }

int Main(int argc, char** argv) {
  std::string out, json_out, schema = SLUICE_BENCH_SCHEMA_SQL;
  GenOptions o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--out") {
      out = value();
    } else if (a == "--scale") {
      o.scale = std::strtod(value().c_str(), nullptr);
    } else if (a == "--seed") {
      o.seed = std::strtoull(value().c_str(), nullptr, 10);
    } else if (a == "--schema") {
      schema = value();
    } else if (a == "--json") {
      json_out = value();
    } else if (a == "--help" || a == "-h") {
      Usage();
      return 0;
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      Usage();
      return 2;
    }
  }
  if (out.empty()) {
    Usage();
    return 2;
  }
  o.schema_sql = ReadWholeFile(schema);
  std::printf("conditions: out=%s scale=%g seed=%llu schema=%s sqlite=%s\n", out.c_str(), o.scale,
              static_cast<unsigned long long>(o.seed), schema.c_str(), sqlite3_libversion());
  auto t0 = Clock::now();
  Result<GenReport> r = GenerateOpenWebUiDb(out, o);
  double elapsed = Seconds(Clock::now() - t0);
  if (!r.ok()) {
    std::fprintf(stderr, "sluice_openwebui_gen: %s\n", r.status().ToString().c_str());
    return 1;
  }
  const GenReport& g = r.value();
  JsonObject rows;
  int nonempty = 0;
  for (const auto& [table, n] : g.rows) {
    std::printf("  %-18s %8lld rows\n", table.c_str(), static_cast<long long>(n));
    rows.Set(table, Json::Int(n));
    nonempty += n > 0 ? 1 : 0;
  }
  std::printf("tables with rows: %d of %zu\n", nonempty, g.rows.size());
  std::printf("chat JSON: %s in all; median %lld, p95 %lld, max %lld bytes\n",
              Mb(g.chat_json_bytes).c_str(), static_cast<long long>(g.chat_json_median),
              static_cast<long long>(g.chat_json_p95), static_cast<long long>(g.chat_json_max));
  std::printf("file: %s (%lld bytes); %.2f s\n", Mb(g.file_bytes).c_str(),
              static_cast<long long>(g.file_bytes), elapsed);
  if (!json_out.empty()) {
    struct utsname u;
    uname(&u);
    JsonObject conditions, results, root;
    conditions.Set("out", Json::Str(out)).Set("scale", Json::Num(o.scale));
    conditions.Set("seed", Json::Raw(std::to_string(o.seed))).Set("schema", Json::Str(schema));
    conditions.Set("sqlite_version", Json::Str(sqlite3_libversion()));
    conditions.Set("kernel", Json::Str(std::string(u.sysname) + " " + u.release));
    results.Set("rows", rows).Set("tables_with_rows", Json::Int(nonempty));
    results.Set("chat_json_bytes", Json::Int(g.chat_json_bytes));
    results.Set("chat_json_median_bytes", Json::Int(g.chat_json_median));
    results.Set("chat_json_p95_bytes", Json::Int(g.chat_json_p95));
    results.Set("chat_json_max_bytes", Json::Int(g.chat_json_max));
    results.Set("file_bytes", Json::Int(g.file_bytes)).Set("elapsed_seconds", Json::Num(elapsed));
    root.Set("tool", Json::Str("sluice_openwebui_gen")).Set("conditions", conditions);
    root.Set("results", results);
    sluice::testing::WriteFile(json_out, root.ToJson().text() + "\n");
  }
  return 0;
}

}  // namespace
}  // namespace sluice::bench

int main(int argc, char** argv) {
  try {
    return sluice::bench::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluice_openwebui_gen: %s\n", e.what());
    return 1;
  }
}
