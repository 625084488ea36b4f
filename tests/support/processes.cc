// Child processes and file helpers for tests and benchmarks (see processes.h).
#include "tests/support/processes.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace sluice::testing {

namespace {

std::string TempFileName(const std::string& tag) {
  std::string tmpl =
      (std::filesystem::temp_directory_path() / ("sluice-cmd-" + tag + "-XXXXXX")).string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  int fd = ::mkstemp(buf.data());
  if (fd < 0) throw std::runtime_error(std::string("mkstemp: ") + std::strerror(errno));
  ::close(fd);
  return std::string(buf.data());
}

std::vector<char*> Argv(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  return args;
}

}  // namespace

bool WaitUntil(const std::function<bool()>& pred, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (Clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(milliseconds(20));
  }
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("write " + path + ": " + std::strerror(errno));
  out << content;
  if (!out.flush()) throw std::runtime_error("write " + path + ": " + std::strerror(errno));
}

std::string TailLines(const std::string& text, size_t lines) {
  size_t count = 0;
  size_t p = text.size();
  while (p > 0) {
    --p;
    if (text[p] == '\n' && ++count > lines) return "...\n" + text.substr(p + 1);
  }
  return text;
}

int ExitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string CommandResult::Describe() const {
  std::ostringstream s;
  s << "exit " << exit_code << (timed_out ? " (timed out)" : "") << " after " << seconds
    << " s\n--- stdout ---\n"
    << TailLines(out, 60) << "\n--- stderr ---\n"
    << TailLines(err, 60);
  return s.str();
}

CommandResult RunCommand(const std::vector<std::string>& argv, milliseconds timeout) {
  CommandResult r;
  std::string out_path = TempFileName("out");
  std::string err_path = TempFileName("err");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_TRUNC, 0600);
  std::vector<char*> args = Argv(argv);
  pid_t pid = -1;
  auto start = Clock::now();
  int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    ::unlink(out_path.c_str());
    ::unlink(err_path.c_str());
    throw std::runtime_error("posix_spawn " + argv[0] + ": " + std::strerror(rc));
  }
  auto deadline = start + timeout;
  int status = 0;
  for (;;) {
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) {
      r.exit_code = ExitCode(status);
      break;
    }
    if (Clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      r.timed_out = true;
      r.exit_code = -1;
      break;
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  r.out = ReadFile(out_path);
  r.err = ReadFile(err_path);
  ::unlink(out_path.c_str());
  ::unlink(err_path.c_str());
  return r;
}

ChildProcess::ChildProcess(std::vector<std::string> argv, std::string log_path, std::string name)
    : argv_(std::move(argv)), log_path_(std::move(log_path)), name_(std::move(name)) {}

ChildProcess::~ChildProcess() { KillHard(); }

void ChildProcess::Mark(const std::string& what) {
  std::ofstream log(log_path_, std::ios::app);
  log << "===== e2e: " << what << " =====\n";
}

void ChildProcess::Start() {
  if (pid_ > 0 && Running()) throw std::runtime_error(name_ + " already running");
  ++starts_;
  Mark("start #" + std::to_string(starts_) + " of " + name_);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<char*> args = Argv(argv_);
  int rc = posix_spawnp(&pid_, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    pid_ = -1;
    throw std::runtime_error("posix_spawn " + argv_[0] + ": " + std::strerror(rc));
  }
  last_exit_.reset();
}

bool ChildProcess::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t w = ::waitpid(pid_, &status, WNOHANG);
  if (w == pid_) {
    last_exit_ = ExitCode(status);
    Mark(name_ + " exited with " + std::to_string(*last_exit_));
    pid_ = -1;
    return false;
  }
  return true;
}

void ChildProcess::Signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

std::optional<int> ChildProcess::WaitExit(milliseconds timeout) {
  if (!WaitUntil([&] { return !Running(); }, timeout)) return std::nullopt;
  return last_exit_;
}

void ChildProcess::KillHard() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  last_exit_ = ExitCode(status);
  Mark(name_ + " killed (SIGKILL), status " + std::to_string(*last_exit_));
  pid_ = -1;
}

int ChildProcess::Stop(milliseconds grace) {
  if (pid_ <= 0) return last_exit_.value_or(-1);
  Signal(SIGTERM);
  if (std::optional<int> code = WaitExit(grace)) return *code;
  KillHard();
  return *last_exit_;
}

AgentProcess::AgentProcess(std::string binary, std::string config_path, std::string log_path)
    : ChildProcess({std::move(binary), "run", "--config", std::move(config_path)},
                   std::move(log_path), "sluice run") {}

}  // namespace sluice::testing
