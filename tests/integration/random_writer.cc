// RandomWriter (see random_writer.h): transactions of inserts, updates,
// deletes and key changes on message, tag and prompt.
#include "tests/integration/random_writer.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "common/json_text.h"
#include "tests/support/processes.h"

namespace sluice::e2e {

using testing::SqlValue;

RandomWriter::RandomWriter(std::string db_path, Options options)
    : db_path_(std::move(db_path)), options_(std::move(options)), rng_(options_.seed) {}

RandomWriter::~RandomWriter() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void RandomWriter::LoadKeys() {
  Sqlite db(db_path_);
  message_ids_.clear();
  tag_keys_.clear();
  prompt_ids_.clear();
  for (const std::string& t : options_.tables) {
    if (t == "message") {
      for (auto& r : db.Query("SELECT id FROM message")) message_ids_.push_back(r[0].bytes);
    } else if (t == "tag") {
      for (auto& r : db.Query("SELECT id, user_id FROM tag"))
        tag_keys_.emplace_back(r[0].bytes, r[1].bytes);
    } else if (t == "prompt") {
      for (auto& r : db.Query("SELECT id FROM prompt")) prompt_ids_.push_back(r[0].i);
    }
  }
}

void RandomWriter::Start() {
  thread_ = std::thread([this] { Run(); });
}

void RandomWriter::Stop() {
  stop_ = true;
  Join();
}

void RandomWriter::Join() {
  if (thread_.joinable()) thread_.join();
}

std::vector<std::string> RandomWriter::errors() {
  std::lock_guard<std::mutex> lock(mu_);
  return errors_;
}

std::vector<std::vector<std::pair<std::string, std::string>>> RandomWriter::DeletedKeys(
    const std::string& table) {
  std::lock_guard<std::mutex> lock(mu_);
  return deleted_[table];
}

void RandomWriter::Run() {
  try {
    Sqlite db(db_path_);
    for (;;) {
      int64_t n = changes_.load();
      if (options_.run_until_stopped) {
        if (stop_ && n >= options_.min_changes) break;
      } else if (n >= options_.min_changes || stop_) {
        break;
      }
      if (!OneTransaction(db)) {
        std::lock_guard<std::mutex> lock(mu_);
        if (errors_.size() > 20) break;
      }
      if (options_.pause_us > 0)
        std::this_thread::sleep_for(std::chrono::microseconds(options_.pause_us));
    }
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lock(mu_);
    errors_.push_back(std::string("writer: ") + e.what());
  }
}

namespace {

const char* kTexts[] = {
    "hello",
    "héllo wörld ✓",
    "quote ' and \" and \\",
    "emoji 😀 and 中文",
    "line\nbreak\ttab",
    "",
    "a much longer message that goes on and on, as chat messages do, with ; and -- in it",
};

}  // namespace

bool RandomWriter::OneTransaction(Sqlite& db) {
  std::uniform_int_distribution<int> rows_dist(1, options_.max_txn_rows);
  std::uniform_int_distribution<int> op_dist(0, 99);
  std::uniform_int_distribution<size_t> table_dist(0, options_.tables.size() - 1);
  int n = rows_dist(rng_);
  std::map<std::string, std::vector<std::vector<std::pair<std::string, std::string>>>>
      pending_deleted;
  auto text = [&](int64_t salt) {
    return std::string(kTexts[static_cast<size_t>(salt) % (sizeof kTexts / sizeof kTexts[0])]) +
           " #" + std::to_string(salt);
  };
  auto json = [&](int64_t salt) {
    return "{\"n\": " + std::to_string(salt) + ", \"s\": " + JsonString(text(salt)) +
           ", \"a\": [1, 2.5, null, true, {\"k\": \"v\"}], \"z\": -0.125}";
  };
  auto pick = [&](size_t size) { return std::uniform_int_distribution<size_t>(0, size - 1)(rng_); };
  std::string err;
  int rc = db.TryExec("BEGIN", &err);
  bool ok = rc == SQLITE_OK;
  for (int i = 0; ok && i < n; ++i) {
    const std::string& table = options_.tables[table_dist(rng_)];
    int op = op_dist(rng_);
    int64_t c = options_.key_base + ++counter_;
    int64_t ns = 1730000000000000000LL + c * 1000 + 7;
    if (table == "message") {
      if (message_ids_.empty() || op < 40) {
        std::string id = "msg-" + std::to_string(c);
        rc = db.TryRun(
            "INSERT INTO message (id, user_id, channel_id, content, data, meta, created_at, "
            "updated_at, parent_id) VALUES (?, ?, ?, ?, ?, '{}', ?, ?, ?)",
            {SqlValue::Text(id), SqlValue::Text("user-" + std::to_string(c % 7)),
             SqlValue::Text("chan-1"), SqlValue::Text(text(c)), SqlValue::Text(json(c)),
             SqlValue::Int(ns), SqlValue::Int(ns),
             message_ids_.empty() ? SqlValue::Null()
                                  : SqlValue::Text(message_ids_[pick(message_ids_.size())])},
            &err);
        if (rc == SQLITE_OK) message_ids_.push_back(id);
      } else {
        size_t at = pick(message_ids_.size());
        std::string id = message_ids_[at];
        if (op < 70) {
          rc = db.TryRun("UPDATE message SET content = ?, data = ?, updated_at = ? WHERE id = ?",
                         {SqlValue::Text(text(c)), SqlValue::Text(json(c)), SqlValue::Int(ns),
                          SqlValue::Text(id)},
                         &err);
        } else if (op < 85) {
          rc = db.TryRun("DELETE FROM message WHERE id = ?", {SqlValue::Text(id)}, &err);
          if (rc == SQLITE_OK) {
            pending_deleted["message"].push_back({{"id", id}});
            message_ids_[at] = message_ids_.back();
            message_ids_.pop_back();
          }
        } else {
          std::string nid = "msg-" + std::to_string(c) + "-moved";
          rc = db.TryRun("UPDATE message SET id = ? WHERE id = ?",
                         {SqlValue::Text(nid), SqlValue::Text(id)}, &err);
          if (rc == SQLITE_OK) {
            pending_deleted["message"].push_back({{"id", id}});
            message_ids_[at] = nid;
          }
        }
      }
    } else if (table == "tag") {
      if (tag_keys_.empty() || op < 40) {
        std::pair<std::string, std::string> k{"tag-" + std::to_string(c),
                                              "user-" + std::to_string(c % 5)};
        rc = db.TryRun("INSERT INTO tag (id, name, user_id, meta) VALUES (?, ?, ?, ?)",
                       {SqlValue::Text(k.first), SqlValue::Text(text(c)), SqlValue::Text(k.second),
                        c % 3 == 0 ? SqlValue::Null() : SqlValue::Text(json(c))},
                       &err);
        if (rc == SQLITE_OK) tag_keys_.push_back(k);
      } else {
        size_t at = pick(tag_keys_.size());
        auto k = tag_keys_[at];
        if (op < 70) {
          rc = db.TryRun("UPDATE tag SET name = ?, meta = ? WHERE id = ? AND user_id = ?",
                         {SqlValue::Text(text(c)), SqlValue::Text(json(c)), SqlValue::Text(k.first),
                          SqlValue::Text(k.second)},
                         &err);
        } else if (op < 85) {
          rc = db.TryRun("DELETE FROM tag WHERE id = ? AND user_id = ?",
                         {SqlValue::Text(k.first), SqlValue::Text(k.second)}, &err);
          if (rc == SQLITE_OK) {
            pending_deleted["tag"].push_back({{"id", k.first}, {"user_id", k.second}});
            tag_keys_[at] = tag_keys_.back();
            tag_keys_.pop_back();
          }
        } else {
          std::string nuser = "user-moved-" + std::to_string(c);
          rc = db.TryRun("UPDATE tag SET user_id = ? WHERE id = ? AND user_id = ?",
                         {SqlValue::Text(nuser), SqlValue::Text(k.first), SqlValue::Text(k.second)},
                         &err);
          if (rc == SQLITE_OK) {
            pending_deleted["tag"].push_back({{"id", k.first}, {"user_id", k.second}});
            tag_keys_[at].second = nuser;
          }
        }
      }
    } else if (table == "prompt") {
      if (prompt_ids_.empty() || op < 40) {
        int64_t id = 1000000 + c;
        rc = db.TryRun(
            "INSERT INTO prompt (id, command, user_id, title, content, timestamp, access_control) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            {SqlValue::Int(id), SqlValue::Text("/cmd-" + std::to_string(c)),
             SqlValue::Text("user-1"), SqlValue::Text(text(c)), SqlValue::Text(text(c + 1)),
             SqlValue::Int(1730000000 + c),
             c % 2 == 0 ? SqlValue::Null() : SqlValue::Text(json(c))},
            &err);
        if (rc == SQLITE_OK) prompt_ids_.push_back(id);
      } else {
        size_t at = pick(prompt_ids_.size());
        int64_t id = prompt_ids_[at];
        if (op < 70) {
          rc = db.TryRun("UPDATE prompt SET title = ?, content = ?, timestamp = ? WHERE id = ?",
                         {SqlValue::Text(text(c)), SqlValue::Text(text(c + 2)),
                          SqlValue::Int(1730000000 + c), SqlValue::Int(id)},
                         &err);
        } else if (op < 85) {
          rc = db.TryRun("DELETE FROM prompt WHERE id = ?", {SqlValue::Int(id)}, &err);
          if (rc == SQLITE_OK) {
            pending_deleted["prompt"].push_back({{"id", std::to_string(id)}});
            prompt_ids_[at] = prompt_ids_.back();
            prompt_ids_.pop_back();
          }
        } else {
          int64_t nid = 1000000 + c;
          rc = db.TryRun("UPDATE prompt SET id = ? WHERE id = ?",
                         {SqlValue::Int(nid), SqlValue::Int(id)}, &err);
          if (rc == SQLITE_OK) {
            pending_deleted["prompt"].push_back({{"id", std::to_string(id)}});
            prompt_ids_[at] = nid;
          }
        }
      }
    }
    ok = rc == SQLITE_OK;
  }
  if (ok) {
    rc = db.TryExec("COMMIT", &err);
    ok = rc == SQLITE_OK;
  }
  if (!ok) {
    if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) ++busy_errors_;
    {
      std::lock_guard<std::mutex> lock(mu_);
      errors_.push_back("app write failed (rc " + std::to_string(rc) + "): " + err);
    }
    db.TryExec("ROLLBACK");
    LoadKeys();  // the rolled-back statements changed the in-memory keys
    return false;
  }
  changes_ += n;
  ++transactions_;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [t, keys] : pending_deleted) {
    auto& all = deleted_[t];
    all.insert(all.end(), keys.begin(), keys.end());
  }
  return true;
}

}  // namespace sluice::e2e
