// ChangeSpool when its directory cannot hold the batch (issue 5 item 12): a
// spool directory that is missing, is a file, or fills up mid-batch (emulated
// with RLIMIT_FSIZE, which makes write() fail with EFBIG once SIGXFSZ is
// ignored) does not fail the batch: every change stays readable, held in
// memory, and spill_error() says why so that the agent can log it.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>
#include <fstream>
#include <string>

#include "common/change_spool.h"
#include "tests/test_support.h"

namespace sluice {
namespace {

Change Big(int i) {
  Change c;
  c.table = static_cast<uint32_t>(i % 3);
  c.seq = i;
  c.values.push_back(Value::Integer(i));
  c.values.push_back(Value::Text(std::string(10000, static_cast<char>('a' + i % 26))));
  return c;
}

// Appends n changes, then reads them back twice and checks each one.
void ExpectAllReadable(ChangeSpool* spool, int n) {
  for (int i = 0; i < n; ++i) {
    Status st = spool->Append(Big(i));
    ASSERT_TRUE(st.ok()) << "append " << i << ": " << st.ToString();
  }
  for (int pass = 0; pass < 2; ++pass) {
    ASSERT_TRUE(spool->Rewind().ok());
    Change got;
    for (int i = 0; i < n; ++i) {
      Result<bool> more = spool->Next(&got);
      ASSERT_TRUE(more.ok()) << more.status().ToString();
      ASSERT_TRUE(*more) << "change " << i << " missing";
      ASSERT_EQ(got.seq, i);
      ASSERT_EQ(got.values.at(1).bytes, Big(i).values.at(1).bytes);
    }
    Result<bool> end = spool->Next(&got);
    ASSERT_TRUE(end.ok());
    EXPECT_FALSE(*end);
  }
}

TEST(ChangeSpoolFallback, DirectoryThatIsAFileKeepsTheBatchInMemory) {
  testing::TempDir dir;
  std::string file = dir.file("not-a-dir");
  std::ofstream(file) << "x";
  ChangeSpool spool(64 << 10, file);
  ExpectAllReadable(&spool, 200);  // 2 MB against a 64 KiB memory limit
  EXPECT_FALSE(spool.spilled());
  EXPECT_NE(spool.spill_error().find(file), std::string::npos) << spool.spill_error();
}

TEST(ChangeSpoolFallback, MissingDirectoryKeepsTheBatchInMemory) {
  testing::TempDir dir;
  ChangeSpool spool(64 << 10, dir.file("missing"));
  ExpectAllReadable(&spool, 50);
  EXPECT_NE(spool.spill_error().find("missing"), std::string::npos) << spool.spill_error();
}

TEST(ChangeSpoolFallback, FullDirectoryMidBatchMovesTheSpilledPartBackToMemory) {
  testing::TempDir dir;
  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = 1 << 20;  // files of this process stop at 1 MiB
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  ChangeSpool spool(64 << 10, dir.path().string());
  ExpectAllReadable(&spool, 300);  // 3 MB: the spill file fills after about 1 MB
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_FALSE(spool.spilled());
  EXPECT_NE(spool.spill_error().find("File too large"), std::string::npos) << spool.spill_error();
}

TEST(ChangeSpoolFallback, UsableDirectorySpillsWithoutError) {
  testing::TempDir dir;
  ChangeSpool spool(64 << 10, dir.path().string());
  ExpectAllReadable(&spool, 50);
  EXPECT_TRUE(spool.spilled());
  EXPECT_EQ(spool.spill_error(), "");
}

}  // namespace
}  // namespace sluice
