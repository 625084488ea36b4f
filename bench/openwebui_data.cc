// The Open WebUI database generator (see openwebui_data.h). Each table has
// its own PRNG stream per row; tables that point at others (chats at users,
// feedback at chats) draw the referenced row from the already generated ids.
#include "bench/openwebui_data.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <stdexcept>
#include <string_view>

#include "bench/py_json.h"
#include "bench/synthetic_text.h"
#include "tests/support/sql_clients.h"

namespace sluice::bench {

namespace {

namespace fs = std::filesystem;
using sluice::testing::QuoteIdent;
using sluice::testing::Sqlite;
using sluice::testing::SqliteStatement;

// The instance's life: users join from October 2023, chats run to November 2025.
constexpr int64_t kStart = 1704067200;  // 2024-01-01 00:00:00 UTC
constexpr int64_t kEnd = 1761955200;    // 2025-11-01 00:00:00 UTC
constexpr int64_t kDay = 86400;
constexpr int64_t kNs = 1000000000;

constexpr double kChatMedian = 23000;
constexpr double kChatP95 = 220000;
constexpr double kChatMin = 2000;
constexpr double kChatMax = 400000;
constexpr double kZ95 = 1.6448536269514722;

// One PRNG stream per table (and per use inside a table).
enum Stream : uint64_t {
  kUserRows = 1,
  kChatSizes,
  kChatRows,
  kChatJson,
  kTagRows,
  kChatIdTagRows,
  kFolderRows,
  kMemoryRows,
  kModelRows,
  kPromptRows,
  kToolRows,
  kFunctionRows,
  kKnowledgeRows,
  kFileRows,
  kFeedbackRows,
  kGroupRows,
  kChannelRows,
  kMemberRows,
  kMessageRows,
  kReactionRows,
  kNoteRows,
  kDocumentRows,
  kOauthRows,
  kConfigRows,
};

struct Model {
  const char* id;
  const char* name;
};
constexpr std::array<Model, 5> kModels = {{{"gpt-4o", "GPT-4o"},
                                           {"llama3.1:8b", "llama3.1:8b"},
                                           {"claude-3-5-sonnet-latest", "Claude 3.5 Sonnet"},
                                           {"mistral-large-latest", "Mistral Large"},
                                           {"qwen2.5:14b", "qwen2.5:14b"}}};

constexpr std::array<std::string_view, 12> kFirstNames = {"Anna",    "Jürgen", "Zoë",   "李伟",
                                                          "Søren",   "Chloé",  "Mateo", "Priya",
                                                          "Olumide", "佐藤",   "Ines",  "Tom"};
constexpr std::array<std::string_view, 10> kLastNames = {"Müller",  "Schmidt",  "Nguyen", "García",
                                                         "O'Brien", "Kowalski", "Smith",  "王",
                                                         "Yılmaz",  "Berg"};

// Tag names and the ids Open WebUI derives from them (name.replace(" ", "_").lower()).
constexpr std::array<std::pair<std::string_view, std::string_view>, 20> kTags = {{
    {"Work", "work"},
    {"personal", "personal"},
    {"Python", "python"},
    {"research", "research"},
    {"Travel", "travel"},
    {"recipes", "recipes"},
    {"SQL", "sql"},
    {"writing", "writing"},
    {"math", "math"},
    {"urgent", "urgent"},
    {"ideas", "ideas"},
    {"Grüße", "grüße"},
    {"日本語", "日本語"},
    {"health", "health"},
    {"finance", "finance"},
    {"music", "music"},
    {"Code Review", "code_review"},
    {"homework", "homework"},
    {"translation", "translation"},
    {"email", "email"},
}};

constexpr std::array<std::string_view, 4> kReactions = {"thumbsup", "heart", "joy", "eyes"};

std::string Base64ish(Rng& r, size_t n) {
  static const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.push_back(kB64[r.Below(64)]);
  return out;
}

// One INSERT prepared once, its parameters bound in column order.
class Inserter {
 public:
  Inserter(Sqlite& db, const std::string& table, const std::vector<std::string>& columns)
      : stmt_(db.handle(), Sql(table, columns)) {}

  Inserter& Text(std::string_view s) {
    sqlite3_bind_text64(stmt_.handle(), ++col_, s.data(), s.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    return *this;
  }
  Inserter& Int(int64_t v) {
    stmt_.BindInt(++col_, v);
    return *this;
  }
  Inserter& Null() {
    stmt_.BindNull(++col_);
    return *this;
  }
  Inserter& TextOrNull(bool present, std::string_view s) { return present ? Text(s) : Null(); }
  void Insert() {
    stmt_.Run();
    col_ = 0;
  }

 private:
  static std::string Sql(const std::string& table, const std::vector<std::string>& columns) {
    std::string names, marks;
    for (const std::string& c : columns) {
      names += (names.empty() ? "" : ", ") + QuoteIdent(c);
      marks += marks.empty() ? "?" : ", ?";
    }
    return "INSERT INTO " + QuoteIdent(table) + " (" + names + ") VALUES (" + marks + ")";
  }

  SqliteStatement stmt_;
  int col_ = 0;
};

// A JSON document built by `fill`, as one string.
template <typename F>
std::string JsonOf(F fill) {
  std::string out;
  PyJson j(&out);
  fill(j);
  return out;
}

// access_control as the app stores it: SQLAlchemy's JSON type writes an explicit
// None as the text 'null'; private items have {"read": ..., "write": ...}.
std::string AccessControl(Rng& r, const std::vector<std::string>& user_ids) {
  if (r.Chance(0.6)) return "null";
  return JsonOf([&](PyJson& j) {
    j.BeginObject();
    for (const char* mode : {"read", "write"}) {
      j.Key(mode).BeginObject().Key("group_ids").BeginArray().EndArray();
      j.Key("user_ids").BeginArray();
      if (r.Chance(0.5)) j.Str(user_ids[r.Below(user_ids.size())]);
      j.EndArray().EndObject();
    }
    j.EndObject();
  });
}

struct UserInfo {
  std::string id;
  int64_t created_at;
};

struct ChatSpec {
  uint64_t index;
  std::string id;
  size_t user;
  std::string title;
  int64_t created_at;
  int64_t updated_at;
  int64_t target_bytes;
  const Model* model;
};

struct BuiltChat {
  std::string json;
  std::string last_assistant_id;
  int64_t messages = 0;
};

struct ChatMessage {
  std::string id;
  bool assistant;
  int64_t timestamp;
  int64_t weight;  // share of the chat's text
  int64_t prompt_eval_count, eval_count, total_duration_ns;
  double response_tps, prompt_tps;
};

class Generator {
 public:
  Generator(Sqlite& db, const GenOptions& o) : db_(db), o_(o) {}

  void Run() {
    InTransaction("user", [&] { Users(); });
    InTransaction("model", [&] { Models(); });
    InTransaction("folder", [&] { Folders(); });
    InTransaction("tag", [&] { Tags(); });
    InTransaction("chat", [&] { Chats(); });
    InTransaction("chatidtag", [&] { ChatIdTags(); });
    InTransaction("feedback", [&] { Feedback(); });
    InTransaction("file", [&] { Files(); });
    InTransaction("knowledge", [&] { Knowledge(); });
    InTransaction("memory", [&] { Memories(); });
    InTransaction("prompt", [&] { Prompts(); });
    InTransaction("tool", [&] { ToolsAndFunctions(); });
    InTransaction("group", [&] { Groups(); });
    InTransaction("channel", [&] { Channels(); });
    InTransaction("note", [&] { Notes(); });
    InTransaction("config", [&] { Config(); });
    InTransaction("document", [&] { Documents(); });
    InTransaction("oauth_session", [&] { OauthSessions(); });
  }

  const std::vector<int64_t>& chat_sizes() const { return chat_sizes_; }

 private:
  template <typename F>
  void InTransaction(const char* what, F fill) {
    try {
      db_.Exec("BEGIN");
      fill();
      db_.Exec("COMMIT");
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string("fill ") + what + ": " + e.what());
    }
  }

  int64_t Count(int64_t full) const { return ScaledCount(full, o_.scale); }
  Rng RowRng(Stream s, uint64_t i) const { return Rng(o_.seed, s, i); }
  const std::string& AnyUser(Rng& r) const { return users_[r.Below(users_.size())].id; }
  // Seconds in [from, kEnd): when something was made by a user who joined at `from`.
  static int64_t After(Rng& r, int64_t from) { return r.Between(std::max(from, kStart), kEnd - 1); }
  static int64_t Later(Rng& r, int64_t t, int64_t max_delay) {
    return std::min(kEnd, t + r.Between(0, max_delay));
  }

  void Users() {
    Inserter user(db_, "user",
                  {"id", "name", "email", "role", "profile_image_url", "api_key", "created_at",
                   "updated_at", "last_active_at", "settings", "info", "oauth_sub", "username",
                   "bio", "gender", "date_of_birth"});
    Inserter auth(db_, "auth", {"id", "email", "password", "active"});
    int64_t n = Count(200);
    for (int64_t i = 0; i < n; ++i) {
      Rng r = RowRng(kUserRows, static_cast<uint64_t>(i));
      std::string id = Uuid(r);
      // One draw per statement: the order in which a call's arguments (or the
      // operands of +) are evaluated is unspecified, and it would change the bytes.
      std::string name(kFirstNames[r.Below(kFirstNames.size())]);
      name += " ";
      name += kLastNames[r.Below(kLastNames.size())];
      std::string email = "user" + std::to_string(i) + "." + HexDigits(r, 6) + "@example.org";
      int64_t created = kStart - 90 * kDay + r.Between(0, 300 * kDay);
      int64_t updated = Later(r, created, 200 * kDay);
      std::string image = r.Chance(0.85)
                              ? "/user.png"
                              : "data:image/png;base64," + Base64ish(r, r.Between(2000, 8000));
      bool has_settings = r.Chance(0.6);
      std::string settings = JsonOf([&](PyJson& j) {
        const Model& m = kModels[r.Below(kModels.size())];
        j.BeginObject().Key("ui").BeginObject().Field("version", "0.6.34");
        j.Key("models").BeginArray().Str(m.id).EndArray();
        j.Field("chatBubble", r.Chance(0.8)).Field("notificationEnabled", r.Chance(0.3));
        j.Field("system", "").Field("memory", r.Chance(0.5)).EndObject().EndObject();
      });
      user.Text(id).Text(name).Text(email).Text(i == 0           ? "admin"
                                                : r.Chance(0.05) ? "pending"
                                                                 : "user");
      bool has_key = r.Chance(0.1);
      user.Text(image).TextOrNull(has_key, has_key ? "sk-" + HexDigits(r, 32) : "");
      user.Int(created).Int(updated).Int(Later(r, updated, 30 * kDay));
      user.TextOrNull(has_settings, settings)
          .TextOrNull(r.Chance(0.05), "{\"location\": \"Z\\u00fcrich\"}");
      bool oauth = r.Chance(0.2);
      user.TextOrNull(oauth, oauth ? "oidc@" + HexDigits(r, 24) : "");
      user.Null().Null().Null().Null().Insert();
      // bcrypt's "$2b$12$" + 22 characters of salt + 31 of hash.
      auth.Text(id).Text(email).Text("$2b$12$" + Base64ish(r, 53)).Int(1).Insert();
      users_.push_back({id, created});
    }
  }

  void Models() {
    Inserter model(db_, "model",
                   {"id", "user_id", "base_model_id", "name", "meta", "params", "created_at",
                    "updated_at", "access_control", "is_active"});
    int64_t n = Count(24);
    for (int64_t i = 0; i < n; ++i) {
      Rng r = RowRng(kModelRows, static_cast<uint64_t>(i));
      const Model& base = kModels[r.Below(kModels.size())];
      std::string name = Words::Title(r);
      std::string meta = JsonOf([&](PyJson& j) {
        j.BeginObject().Field("profile_image_url", "/static/favicon.png");
        j.Field("description", Words::Text(r, r.Between(20, 200)));
        j.Key("capabilities").BeginObject().Field("vision", r.Chance(0.5)).Field("citations", true);
        j.EndObject()
            .Key("suggestion_prompts")
            .Null()
            .Key("tags")
            .BeginArray()
            .EndArray()
            .EndObject();
      });
      std::string params = JsonOf([&](PyJson& j) {
        j.BeginObject().Field("system", Words::Text(r, r.Between(50, 1500)));
        j.Key("temperature").Float(static_cast<double>(r.Between(0, 20)) / 10);
        j.Key("top_p").Float(static_cast<double>(r.Between(50, 100)) / 100).EndObject();
      });
      int64_t created = After(r, kStart);
      model.Text("custom-model-" + std::to_string(i)).Text(AnyUser(r)).Text(base.id).Text(name);
      model.Text(meta).Text(params).Int(created).Int(Later(r, created, 60 * kDay));
      model.Text(AccessControl(r, UserIds())).Int(r.Chance(0.9) ? 1 : 0).Insert();
    }
  }

  void Folders() {
    Inserter folder(db_, "folder",
                    {"id", "parent_id", "user_id", "name", "items", "meta", "is_expanded",
                     "created_at", "updated_at", "data"});
    folders_.resize(users_.size());
    int64_t n = Count(120);
    for (int64_t i = 0; i < n; ++i) {
      Rng r = RowRng(kFolderRows, static_cast<uint64_t>(i));
      size_t u = r.Below(users_.size());
      std::vector<std::string>& mine = folders_[u];
      std::string id = Uuid(r);
      bool nested = !mine.empty() && r.Chance(0.3);
      std::string parent = nested ? mine[r.Below(mine.size())] : "";
      int64_t created = After(r, users_[u].created_at);
      folder.Text(id).TextOrNull(nested, parent).Text(users_[u].id).Text(Words::Title(r));
      folder.Null()
          .Null()
          .Int(r.Chance(0.5) ? 1 : 0)
          .Int(created)
          .Int(Later(r, created, 90 * kDay));
      if (r.Chance(0.2)) {
        folder.Text(JsonOf([&](PyJson& j) {
          j.BeginObject().Field("system_prompt", Words::Text(r, 200)).EndObject();
        }));
      } else {
        folder.Null();
      }
      folder.Insert();
      mine.push_back(id);
    }
  }

  void Tags() {
    Inserter tag(db_, "tag", {"id", "name", "user_id", "meta"});
    // Row i: name i % 20 for user (i / 20 + name * 7) % users: no (id, user_id) twice.
    int64_t n = std::min<int64_t>(Count(180), static_cast<int64_t>(kTags.size() * users_.size()));
    for (int64_t i = 0; i < n; ++i) {
      Rng r = RowRng(kTagRows, static_cast<uint64_t>(i));
      size_t name = static_cast<size_t>(i) % kTags.size();
      size_t u = (static_cast<size_t>(i) / kTags.size() + name * 7) % users_.size();
      tag.Text(kTags[name].second).Text(kTags[name].first).Text(users_[u].id);
      tag.TextOrNull(r.Chance(0.5), "{}").Insert();
    }
  }

  // A chat's messages and its JSON at exactly c.target_bytes (or one byte less
  // when the text left over is odd: each message's text is written twice).
  BuiltChat BuildChat(const ChatSpec& c) const {
    Rng r = RowRng(kChatJson, c.index);
    // About 1.3 KB of structure per pair: at most one pair per 2.5 KB keeps the text's share
    // positive.
    int64_t most = std::clamp<int64_t>(c.target_bytes / 2500, 1, 40);
    int64_t pairs = std::clamp<int64_t>(c.target_bytes / 9000 + r.Between(0, 2), 1, most);
    std::vector<ChatMessage> msgs;
    int64_t t = c.created_at;
    for (int64_t k = 0; k < 2 * pairs; ++k) {
      ChatMessage m;
      m.id = Uuid(r);
      m.assistant = k % 2 == 1;
      t += m.assistant ? r.Between(2, 90) : r.Between(5, 900);
      m.timestamp = t;
      m.weight = m.assistant ? r.Between(6, 30) : r.Between(1, 4);
      m.prompt_eval_count = r.Between(20, 4000);
      m.eval_count = r.Between(50, 2000);
      m.total_duration_ns = r.Between(500000000, 60000000000);
      m.response_tps = static_cast<double>(r.Between(800, 9000)) / 100;
      m.prompt_tps = static_cast<double>(r.Between(10000, 500000)) / 100;
      msgs.push_back(std::move(m));
    }
    int64_t ms = c.created_at * 1000 + r.Between(0, 999);
    std::vector<std::string> text(msgs.size());
    int64_t skeleton = static_cast<int64_t>(ChatJson(c, msgs, text, ms).size());
    int64_t budget = std::max<int64_t>(0, c.target_bytes - skeleton) / 2;
    int64_t weights = 0;
    for (const ChatMessage& m : msgs) weights += m.weight;
    int64_t left = budget;
    for (size_t k = 0; k < msgs.size(); ++k) {
      int64_t len = k + 1 == msgs.size() ? left : budget * msgs[k].weight / weights;
      Words::AppendEscapedText(r, static_cast<size_t>(len), &text[k]);
      left -= len;
    }
    BuiltChat out;
    out.json = ChatJson(c, msgs, text, ms);
    out.last_assistant_id = msgs.back().id;
    out.messages = static_cast<int64_t>(msgs.size());
    return out;
  }

  // Open WebUI's chat JSON: the message tree under history, the same messages
  // as a list. Its "id" is "" as the web client sends it for a new chat.
  static std::string ChatJson(const ChatSpec& c, const std::vector<ChatMessage>& msgs,
                              const std::vector<std::string>& text, int64_t ms) {
    std::string out;
    out.reserve(static_cast<size_t>(c.target_bytes) + 64);
    PyJson j(&out);
    j.BeginObject().Field("id", "").Field("title", c.title);
    j.Key("models").BeginArray().Str(c.model->id).EndArray();
    j.Key("params").BeginObject().EndObject();
    j.Key("history").BeginObject().Key("messages").BeginObject();
    for (size_t k = 0; k < msgs.size(); ++k) {
      j.Key(msgs[k].id);
      Message(j, c, msgs, text, k);
    }
    j.EndObject().Field("currentId", msgs.back().id).EndObject();
    j.Key("messages").BeginArray();
    for (size_t k = 0; k < msgs.size(); ++k) Message(j, c, msgs, text, k);
    j.EndArray();
    j.Key("tags").BeginArray().EndArray().Field("timestamp", ms);
    j.Key("files").BeginArray().EndArray().EndObject();
    return out;
  }

  static void Message(PyJson& j, const ChatSpec& c, const std::vector<ChatMessage>& msgs,
                      const std::vector<std::string>& text, size_t k) {
    const ChatMessage& m = msgs[k];
    auto parent = [&] {
      if (k == 0) {
        j.Key("parentId").Null();
      } else {
        j.Field("parentId", msgs[k - 1].id);
      }
    };
    auto children = [&] {
      j.Key("childrenIds").BeginArray();
      if (k + 1 < msgs.size()) j.Str(msgs[k + 1].id);
      j.EndArray();
    };
    j.BeginObject();
    if (!m.assistant) {
      j.Field("id", m.id);
      parent();
      children();
      j.Field("role", "user").Key("content").EscapedStr(text[k]).Field("timestamp", m.timestamp);
      j.Key("models").BeginArray().Str(c.model->id).EndArray();
    } else {
      parent();
      j.Field("id", m.id);
      children();
      j.Field("role", "assistant").Key("content").EscapedStr(text[k]);
      j.Field("model", c.model->id).Field("modelName", c.model->name).Field("modelIdx", 0);
      j.Key("userContext").Null().Field("timestamp", m.timestamp).Field("done", true);
      j.Key("usage").BeginObject();
      j.Key("response_token/s").Float(m.response_tps).Key("prompt_token/s").Float(m.prompt_tps);
      j.Field("total_duration", m.total_duration_ns)
          .Field("prompt_eval_count", m.prompt_eval_count);
      j.Field("eval_count", m.eval_count);
      int64_t s = m.total_duration_ns / kNs;
      j.Field("approximate_total",
              "0h" + std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s");
      j.EndObject();
    }
    j.EndObject();
  }

  void Chats() {
    Inserter chat(db_, "chat",
                  {"id", "user_id", "title", "share_id", "archived", "created_at", "updated_at",
                   "chat", "pinned", "meta", "folder_id"});
    int64_t n = Count(5156);
    std::vector<int64_t> sizes = ChatJsonSizes(o_.seed, static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      Rng r = RowRng(kChatRows, static_cast<uint64_t>(i));
      ChatSpec c;
      c.index = static_cast<uint64_t>(i);
      c.id = Uuid(r);
      // A few users hold most chats.
      double u = r.Unit();
      c.user = static_cast<size_t>(u * u * static_cast<double>(users_.size()));
      c.title = Words::Title(r);
      c.created_at = After(r, users_[c.user].created_at);
      c.updated_at = Later(r, c.created_at, 30 * kDay);
      c.target_bytes = sizes[static_cast<size_t>(i)];
      c.model = &kModels[r.Below(kModels.size())];
      BuiltChat built = BuildChat(c);
      chat_sizes_.push_back(static_cast<int64_t>(built.json.size()));
      const std::vector<std::string>& folders = folders_[c.user];
      bool in_folder = !folders.empty() && r.Chance(0.2);
      std::string meta = "{}";
      if (r.Chance(0.25)) {
        meta = JsonOf([&](PyJson& j) {
          j.BeginObject().Key("tags").BeginArray().Str(kTags[r.Below(kTags.size())].second);
          if (r.Chance(0.3)) j.Str(kTags[r.Below(kTags.size())].second);
          j.EndArray().EndObject();
        });
      }
      bool shared = r.Chance(0.03);
      chat.Text(c.id)
          .Text(users_[c.user].id)
          .Text(c.title)
          .TextOrNull(shared, shared ? Uuid(r) : "");
      chat.Int(r.Chance(0.05) ? 1 : 0).Int(c.created_at).Int(c.updated_at).Text(built.json);
      // pinned is NULL on rows from before its migration.
      if (r.Chance(0.4)) {
        chat.Null();
      } else {
        chat.Int(r.Chance(0.05) ? 1 : 0);
      }
      chat.Text(meta).TextOrNull(in_folder, in_folder ? folders[r.Below(folders.size())] : "");
      chat.Insert();
      chats_.push_back(std::move(c));
    }
  }

  void ChatIdTags() {
    Inserter t(db_, "chatidtag", {"id", "tag_name", "chat_id", "user_id", "timestamp"});
    int64_t n = Count(300);
    for (int64_t i = 0; i < n; ++i) {
      Rng r = RowRng(kChatIdTagRows, static_cast<uint64_t>(i));
      const ChatSpec& c = chats_[r.Below(chats_.size())];
      t.Text(Uuid(r)).Text(kTags[r.Below(kTags.size())].first).Text(c.id);
      t.Text(users_[c.user].id).Int(c.created_at).Insert();
    }
  }

  // A rating of one answer, with a snapshot of the whole chat as it was.
  void Feedback() {
    Inserter f(db_, "feedback",
               {"id", "user_id", "version", "type", "data", "meta", "snapshot", "created_at",
                "updated_at"});
    int64_t n = Count(430);
    for (int64_t i = 0; i < n; ++i) {
      Rng r = RowRng(kFeedbackRows, static_cast<uint64_t>(i));
      const ChatSpec& c = chats_[r.Below(chats_.size())];
      BuiltChat built = BuildChat(c);
      int64_t rating = r.Chance(0.7) ? 1 : -1;
      std::string data = JsonOf([&](PyJson& j) {
        j.BeginObject().Field("rating", rating).Field("model_id", c.model->id);
        j.Key("sibling_model_ids").Null();
        j.Field("reason", rating > 0 ? "Accurate information" : "Didn't fully follow instructions");
        j.Field("comment", r.Chance(0.3) ? Words::Text(r, r.Between(10, 300)) : "");
        j.Key("tags").BeginArray().EndArray();
        j.Key("details").BeginObject().Field("rating", r.Between(1, 10)).EndObject().EndObject();
      });
      std::string meta = JsonOf([&](PyJson& j) {
        j.BeginObject().Field("arena", false).Field("chat_id", c.id);
        j.Field("message_id", built.last_assistant_id).Key("tags").BeginArray().EndArray();
        j.Field("model_id", c.model->id).Field("message_index", built.messages - 1);
        j.Key("base_models").BeginObject().EndObject().EndObject();
      });
      std::string snapshot = JsonOf([&](PyJson& j) {
        j.BeginObject().Key("chat").BeginObject().Field("id", c.id);
        j.Field("user_id", users_[c.user].id).Field("title", c.title);
        j.Key("chat").RawValue(built.json).Field("updated_at", c.updated_at);
        j.Field("created_at", c.created_at).Key("share_id").Null().Field("archived", false);
        j.Field("pinned", false).Key("meta").BeginObject().EndObject().Key("folder_id").Null();
        j.EndObject().EndObject();
      });
      int64_t created = Later(r, c.updated_at, 3 * kDay);
      f.Text(Uuid(r)).Text(users_[c.user].id).Int(0).Text("rating").Text(data).Text(meta);
      f.Text(snapshot).Int(created).Int(created).Insert();
    }
  }

  // Uploads with their extracted text (several KB, now and then 100 KB).
  void Files() {
    Inserter f(db_, "file",
               {"id", "user_id", "filename", "meta", "created_at", "hash", "data", "updated_at",
                "path", "access_control"});
    static const std::array<std::pair<const char*, const char*>, 4> kKinds = {{
        {"pdf", "application/pdf"},
        {"txt", "text/plain"},
        {"md", "text/markdown"},
        {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    }};
    int64_t n = Count(1250);
    for (int64_t i = 0; i < n; ++i) {
      Rng r = RowRng(kFileRows, static_cast<uint64_t>(i));
      std::string id = Uuid(r);
      const auto& kind = kKinds[r.Below(kKinds.size())];
      std::string filename = Words::Title(r) + "." + kind.first;
      size_t user = r.Below(users_.size());
      auto text_bytes = static_cast<size_t>(r.LogNormal(6000, 1.0, 300, 120000));
      std::string meta = JsonOf([&](PyJson& j) {
        j.BeginObject().Field("name", filename).Field("content_type", kind.second);
        j.Field("size", static_cast<int64_t>(text_bytes) * r.Between(2, 40));
        j.Key("data").BeginObject().EndObject().Field("collection_name", "file-" + id).EndObject();
      });
      std::string text;
      Words::AppendEscapedText(r, text_bytes, &text);
      std::string data = "{\"content\": \"" + text + "\"}";
      int64_t created = After(r, users_[user].created_at);
      f.Text(id).Text(users_[user].id).Text(filename).Text(meta).Int(created);
      f.Text(HexDigits(r, 64)).Text(data).Int(created);
      f.Text("/app/backend/data/uploads/" + id + "_" + filename).Text(AccessControl(r, UserIds()));
      f.Insert();
      file_ids_.push_back(id);
    }
  }

  void Knowledge() {
    Inserter k(db_, "knowledge",
               {"id", "user_id", "name", "description", "data", "meta", "created_at", "updated_at",
                "access_control"});
    int64_t n = Count(15);
    for (int64_t i = 0; i < n; ++i) {
      Rng r = RowRng(kKnowledgeRows, static_cast<uint64_t>(i));
      std::string data = JsonOf([&](PyJson& j) {
        j.BeginObject().Key("file_ids").BeginArray();
        for (int64_t f = r.Between(0, 12); f > 0; --f) j.Str(file_ids_[r.Below(file_ids_.size())]);
        j.EndArray().EndObject();
      });
      int64_t created = After(r, kStart);
      k.Text(Uuid(r)).Text(AnyUser(r)).Text(Words::Title(r)).Text(Words::Text(r, 120));
      k.Text(data).Null().Int(created).Int(Later(r, created, 60 * kDay));
      k.Text(AccessControl(r, UserIds())).Insert();
    }
  }

  void Memories() {
    Inserter m(db_, "memory", {"id", "user_id", "content", "updated_at", "created_at"});
    int64_t n = Count(250);
    for (int64_t i = 0; i < n; ++i) {
      Rng r = RowRng(kMemoryRows, static_cast<uint64_t>(i));
      int64_t created = After(r, kStart);
      m.Text(Uuid(r)).Text(AnyUser(r)).Text(Words::Text(r, r.Between(20, 400)));
      m.Int(Later(r, created, 10 * kDay)).Int(created).Insert();
    }
  }

  void Prompts() {
    Inserter p(db_, "prompt",
               {"id", "command", "user_id", "title", "content", "timestamp", "access_control"});
    int64_t n = Count(30);
    for (int64_t i = 0; i < n; ++i) {
      Rng r = RowRng(kPromptRows, static_cast<uint64_t>(i));
      p.Int(i + 1).Text("/prompt-" + std::to_string(i)).Text(AnyUser(r)).Text(Words::Title(r));
      p.Text(Words::Text(r, r.Between(50, 2000))).Int(After(r, kStart));
      p.Text(AccessControl(r, UserIds())).Insert();
    }
  }

  static std::string PythonSource(Rng& r, const std::string& name) {
    std::string s = "\"\"\"\ntitle: " + name + "\nversion: 0.1." + std::to_string(r.Below(9)) +
                    "\n\"\"\"\n\nclass Tools:\n    def __init__(self):\n        pass\n";
    for (int64_t k = r.Between(1, 5); k > 0; --k) {
      s += "\n    def step_" + std::to_string(k) + "(self, query: str) -> str:\n        # ";
      Words::AppendText(r, static_cast<size_t>(r.Between(40, 400)), &s);
      s += "\n        return query\n";
    }
    return s;
  }

  void ToolsAndFunctions() {
    Inserter tool(db_, "tool",
                  {"id", "user_id", "name", "content", "specs", "meta", "created_at", "updated_at",
                   "valves", "access_control"});
    int64_t n = Count(8);
    for (int64_t i = 0; i < n; ++i) {
      Rng r = RowRng(kToolRows, static_cast<uint64_t>(i));
      std::string id = "tool_" + std::to_string(i);
      std::string specs = JsonOf([&](PyJson& j) {
        j.BeginArray()
            .BeginObject()
            .Field("name", "step_1")
            .Field("description", Words::Text(r, 60));
        j.Key("parameters").BeginObject().Field("type", "object").Key("properties").BeginObject();
        j.Key("query").BeginObject().Field("type", "string").Field("description", "query");
        j.EndObject().EndObject().Key("required").BeginArray().Str("query").EndArray();
        j.EndObject().EndObject().EndArray();
      });
      std::string meta = JsonOf([&](PyJson& j) {
        j.BeginObject().Field("description", Words::Text(r, 80)).Key("manifest").BeginObject();
        j.Field("title", id).EndObject().EndObject();
      });
      int64_t created = After(r, kStart);
      tool.Text(id).Text(AnyUser(r)).Text(Words::Title(r)).Text(PythonSource(r, id)).Text(specs);
      tool.Text(meta).Int(created).Int(Later(r, created, 30 * kDay));
      tool.TextOrNull(r.Chance(0.5), "{}").Text(AccessControl(r, UserIds())).Insert();
    }
    Inserter fn(db_, "function",
                {"id", "user_id", "name", "type", "content", "meta", "created_at", "updated_at",
                 "valves", "is_active", "is_global"});
    n = Count(6);
    for (int64_t i = 0; i < n; ++i) {
      Rng r = RowRng(kFunctionRows, static_cast<uint64_t>(i));
      std::string id = "function_" + std::to_string(i);
      static const char* kTypes[] = {"filter", "pipe", "action"};
      std::string meta = JsonOf([&](PyJson& j) {
        j.BeginObject().Field("description", Words::Text(r, 80)).Key("manifest").BeginObject();
        j.EndObject().EndObject();
      });
      int64_t created = After(r, kStart);
      fn.Text(id).Text(users_[0].id).Text(Words::Title(r)).Text(kTypes[r.Below(3)]);
      fn.Text(PythonSource(r, id)).Text(meta).Int(created).Int(Later(r, created, 30 * kDay));
      fn.TextOrNull(r.Chance(0.5), "{\"priority\": 0}").Int(r.Chance(0.7) ? 1 : 0);
      fn.Int(r.Chance(0.3) ? 1 : 0).Insert();
    }
  }

  void Groups() {
    Inserter g(db_, "group",
               {"id", "user_id", "name", "description", "data", "meta", "permissions", "user_ids",
                "created_at", "updated_at"});
    int64_t n = Count(6);
    for (int64_t i = 0; i < n; ++i) {
      Rng r = RowRng(kGroupRows, static_cast<uint64_t>(i));
      std::string permissions = JsonOf([&](PyJson& j) {
        j.BeginObject().Key("workspace").BeginObject().Field("models", r.Chance(0.5));
        j.Field("knowledge", r.Chance(0.5)).Field("prompts", r.Chance(0.5)).Field("tools", false);
        j.EndObject().Key("chat").BeginObject().Field("file_upload", true).Field("delete", true);
        j.Field("edit", true).Field("temporary", r.Chance(0.5)).EndObject().EndObject();
      });
      std::string members = JsonOf([&](PyJson& j) {
        j.BeginArray();
        for (int64_t k = r.Between(1, 40); k > 0; --k) j.Str(AnyUser(r));
        j.EndArray();
      });
      int64_t created = After(r, kStart);
      g.Text(Uuid(r)).Text(users_[0].id).Text(Words::Title(r)).Text(Words::Text(r, 60));
      g.Null().Null().Text(permissions).Text(members).Int(created);
      g.Int(Later(r, created, 30 * kDay)).Insert();
    }
  }

  // Channels, their members, messages and reactions: times in nanoseconds.
  void Channels() {
    Inserter ch(db_, "channel",
                {"id", "user_id", "name", "description", "data", "meta", "access_control",
                 "created_at", "updated_at", "type"});
    std::vector<std::string> channels;
    int64_t n = Count(6);
    for (int64_t i = 0; i < n; ++i) {
      Rng r = RowRng(kChannelRows, static_cast<uint64_t>(i));
      std::string id = Uuid(r);
      int64_t created = kStart * kNs + r.Between(0, 30 * kDay * kNs);
      ch.Text(id).Text(users_[0].id).Text("channel-" + std::to_string(i)).Text(Words::Text(r, 40));
      ch.Null().Null().Text(AccessControl(r, UserIds())).Int(created).Int(created).Null().Insert();
      channels.push_back(id);
    }
    Inserter member(db_, "channel_member", {"id", "channel_id", "user_id", "created_at"});
    n = Count(90);
    for (int64_t i = 0; i < n; ++i) {
      Rng r = RowRng(kMemberRows, static_cast<uint64_t>(i));
      member.Text(Uuid(r)).Text(channels[r.Below(channels.size())]).Text(AnyUser(r));
      int64_t joined = After(r, kStart) * kNs;
      member.Int(joined + r.Between(0, kNs - 1)).Insert();
    }
    Inserter msg(db_, "message",
                 {"id", "user_id", "channel_id", "content", "data", "meta", "created_at",
                  "updated_at", "parent_id"});
    std::vector<std::pair<std::string, int64_t>> messages;  // id, created_at
    n = Count(4000);
    for (int64_t i = 0; i < n; ++i) {
      Rng r = RowRng(kMessageRows, static_cast<uint64_t>(i));
      std::string id = Uuid(r);
      // Spread evenly over the instance's life, so created_at grows with the row.
      int64_t created = (kStart + (kEnd - kStart - kDay) / n * i) * kNs + r.Between(0, 3600 * kNs);
      bool reply = !messages.empty() && r.Chance(0.1);
      msg.Text(id).Text(AnyUser(r)).Text(channels[r.Below(channels.size())]);
      msg.Text(Words::Text(r, static_cast<size_t>(r.LogNormal(120, 1.0, 2, 4000))));
      msg.TextOrNull(r.Chance(0.2), "{\"files\": []}").TextOrNull(r.Chance(0.2), "{}");
      msg.Int(created).Int(r.Chance(0.1) ? created + r.Between(0, 600 * kNs) : created);
      msg.TextOrNull(reply, reply ? messages[r.Below(messages.size())].first : "").Insert();
      messages.emplace_back(id, created);
    }
    Inserter reaction(db_, "message_reaction",
                      {"id", "user_id", "message_id", "name", "created_at"});
    n = messages.empty() ? 0 : Count(600);
    for (int64_t i = 0; i < n; ++i) {
      Rng r = RowRng(kReactionRows, static_cast<uint64_t>(i));
      const auto& m = messages[r.Below(messages.size())];
      reaction.Text(Uuid(r))
          .Text(AnyUser(r))
          .Text(m.first)
          .Text(kReactions[r.Below(kReactions.size())]);
      reaction.Int(m.second + r.Between(0, kDay * kNs)).Insert();
    }
  }

  void Notes() {
    Inserter note(
        db_, "note",
        {"id", "user_id", "title", "data", "meta", "access_control", "created_at", "updated_at"});
    int64_t n = Count(80);
    for (int64_t i = 0; i < n; ++i) {
      Rng r = RowRng(kNoteRows, static_cast<uint64_t>(i));
      std::string md = Words::Text(r, r.Between(100, 6000));
      std::string data = JsonOf([&](PyJson& j) {
        j.BeginObject().Key("content").BeginObject().Key("json").Null();
        j.Field("html", "<p>" + md + "</p>").Field("md", md).EndObject().EndObject();
      });
      int64_t created = After(r, kStart) * kNs;
      created += r.Between(0, kNs - 1);
      note.Text(Uuid(r)).Text(AnyUser(r)).Text(Words::Title(r)).Text(data).Null();
      note.Text(AccessControl(r, UserIds())).Int(created).Int(created + r.Between(0, kDay * kNs));
      note.Insert();
    }
  }

  // The one config row; updated_at NULL as the ORM inserts it, created_at CURRENT_TIMESTAMP text.
  void Config() {
    Rng r = RowRng(kConfigRows, 0);
    std::string data = JsonOf([&](PyJson& j) {
      j.BeginObject().Field("version", 0).Key("ui").BeginObject().Field("default_locale", "");
      j.Key("prompt_suggestions").BeginArray();
      for (int k = 0; k < 6; ++k) {
        j.BeginObject().Key("title").BeginArray().Str(Words::Title(r)).Str(Words::Title(r));
        j.EndArray().Field("content", Words::Text(r, 80)).EndObject();
      }
      j.EndArray().Field("enable_signup", false).Field("default_user_role", "pending").EndObject();
      j.Key("ollama").BeginObject().Field("enable", true).Key("base_urls").BeginArray();
      j.Str("http://ollama:11434").EndArray().EndObject();
      j.Key("rag").BeginObject().Field("chunk_size", 1000).Field("chunk_overlap", 100);
      j.Key("relevance_threshold").Float(0.0).Key("hybrid_bm25_weight").Float(0.5);
      j.Field("template", Words::Text(r, 600)).EndObject().EndObject();
    });
    Inserter c(db_, "config", {"id", "data", "version", "created_at", "updated_at"});
    if (Count(1) > 0) c.Int(1).Text(data).Int(0).Text("2024-01-01 09:00:00").Null().Insert();
  }

  // The legacy table, as an instance upgraded from 2024 still has it.
  void Documents() {
    Inserter d(
        db_, "document",
        {"id", "collection_name", "name", "title", "filename", "content", "user_id", "timestamp"});
    int64_t n = Count(12);
    for (int64_t i = 0; i < n; ++i) {
      Rng r = RowRng(kDocumentRows, static_cast<uint64_t>(i));
      std::string name = "doc-" + std::to_string(i) + ".pdf";
      d.Int(i + 1).Text(HexDigits(r, 63)).Text(name).Text(Words::Title(r)).Text(name);
      d.Text("{\"tags\": []}")
          .Text(users_[0].id)
          .Int(r.Between(kStart - 90 * kDay, kStart))
          .Insert();
    }
  }

  void OauthSessions() {
    Inserter s(db_, "oauth_session",
               {"id", "user_id", "provider", "token", "expires_at", "created_at", "updated_at"});
    int64_t n = Count(25);
    for (int64_t i = 0; i < n; ++i) {
      Rng r = RowRng(kOauthRows, static_cast<uint64_t>(i));
      int64_t created = After(r, kStart);
      s.Text(Uuid(r)).Text(AnyUser(r)).Text(r.Chance(0.5) ? "google" : "microsoft");
      s.Text("gAAAAA" + Base64ish(r, 400)).Int(created + 3600).Int(created).Int(created).Insert();
    }
  }

  const std::vector<std::string>& UserIds() {
    if (user_ids_.size() != users_.size()) {
      user_ids_.clear();
      for (const UserInfo& u : users_) user_ids_.push_back(u.id);
    }
    return user_ids_;
  }

  Sqlite& db_;
  const GenOptions& o_;
  std::vector<UserInfo> users_;
  std::vector<std::string> user_ids_;
  std::vector<std::vector<std::string>> folders_;  // per user
  std::vector<ChatSpec> chats_;
  std::vector<std::string> file_ids_;
  std::vector<int64_t> chat_sizes_;  // length of each chat's JSON, in row order
};

int64_t Percentile(std::vector<int64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

void RemoveDb(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) fs::remove(path + suffix);
}

}  // namespace

int64_t ScaledCount(int64_t full, double scale) {
  if (full <= 0) return 0;
  return std::max<int64_t>(1, std::llround(static_cast<double>(full) * scale));
}

std::vector<int64_t> ChatJsonSizes(uint64_t seed, size_t n) {
  Rng r(seed, kChatSizes, 0);
  std::vector<size_t> stratum(n);
  std::iota(stratum.begin(), stratum.end(), 0);
  for (size_t i = n; i > 1; --i) std::swap(stratum[i - 1], stratum[r.Below(i)]);
  const double sigma = std::log(kChatP95 / kChatMedian) / kZ95;
  std::vector<int64_t> sizes;
  sizes.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    double p = (static_cast<double>(stratum[i]) + r.Unit()) / static_cast<double>(n);
    double z = NormalQuantile(std::clamp(p, 1e-12, 1 - 1e-12));
    sizes.push_back(
        std::llround(std::clamp(kChatMedian * std::exp(sigma * z), kChatMin, kChatMax)));
  }
  return sizes;
}

Result<GenReport> GenerateOpenWebUiDb(const std::string& path, const GenOptions& options) {
  if (!(options.scale > 0 && options.scale <= 100)) {
    return Status::InvalidArgument("scale must be in (0, 100], not " +
                                   std::to_string(options.scale));
  }
  if (options.schema_sql.empty()) return Status::InvalidArgument("no schema SQL");
  const std::string partial = path + ".partial";
  GenReport report;
  try {
    RemoveDb(path);
    RemoveDb(partial);
    {
      Sqlite db(partial);
      // No journal while filling: a failed run leaves only the .partial file behind.
      db.Exec("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-65536");
      db.Exec(options.schema_sql);
      Generator gen(db, options);
      gen.Run();
      db.ScalarText("PRAGMA journal_mode=WAL");
      std::vector<int64_t> sizes = gen.chat_sizes();
      for (int64_t s : sizes) report.chat_json_bytes += s;
      report.chat_json_median = Percentile(sizes, 0.5);
      report.chat_json_p95 = Percentile(sizes, 0.95);
      report.chat_json_max = Percentile(sizes, 1.0);
      for (const auto& row :
           db.Query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid")) {
        const std::string& table = row[0].bytes;
        report.rows.emplace_back(table, db.ScalarInt("SELECT count(*) FROM " + QuoteIdent(table)));
      }
    }
    fs::rename(partial, path);
    report.file_bytes = static_cast<int64_t>(fs::file_size(path));
  } catch (const std::exception& e) {
    return Status::Internal("generate " + path + ": " + e.what());
  }
  return report;
}

}  // namespace sluice::bench
