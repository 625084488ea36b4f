// Helpers shared by tests: temp directories and the PostgreSQL test server.
// Integration tests get their server from SLUICE_TEST_PG (a libpq conninfo);
// without it they skip locally and FAIL under CI=true, so CI cannot go green
// without having run them.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

namespace sluice::testing {

// A fresh directory under $TMPDIR, removed when the object dies.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    std::filesystem::path base = std::filesystem::temp_directory_path();
    path_ = base / ("sluice-test-" + std::to_string(rd()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Returns the test server's conninfo, or "" after marking the test skipped
// (locally) or failed (CI=true). Call as:
//   std::string pg = PgConninfoOrSkip(); if (pg.empty()) return;
inline std::string PgConninfoOrSkip() {
  const char* v = std::getenv("SLUICE_TEST_PG");
  if (v != nullptr && *v != '\0') return v;
  const char* ci = std::getenv("CI");
  if (ci != nullptr && std::string(ci) == "true") {
    ADD_FAILURE() << "SLUICE_TEST_PG is not set under CI=true: run tests through scripts/test.sh";
  } else {
    [] {
      GTEST_SKIP() << "SLUICE_TEST_PG not set (scripts/test.sh sets it inside pg_virtualenv)";
    }();
  }
  return "";
}

// A name unique to this test run, usable as a deployment / schema name.
inline std::string UniqueName(const std::string& prefix) {
  std::random_device rd;
  return prefix + "_" + std::to_string(rd() % 1000000000u);
}

}  // namespace sluice::testing
