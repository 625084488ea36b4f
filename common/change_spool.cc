// ChangeSpool: records are encoded as
//   u8 kind (bit 7: updates_existing) | u32 table | i64 seq | u32 count | count x (u8 kind |
//   payload)
// payload: i64 (integer), f64 bits (real), u32 length + bytes (text, blob).
// Native byte order: the spool never leaves the process that wrote it.
// The spill file is written with write(2) in chunks of whole records, so that
// when the directory cannot take more (missing, full, over a size limit) the
// file holds exactly the records counted in file_bytes_: those move back to
// memory and the batch goes on, with spill_error_ saying why.
#include "common/change_spool.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace sluice {
namespace {

constexpr uint8_t kUpdatesExistingBit = 0x80;

template <typename T>
void Put(std::string* out, T v) {
  char raw[sizeof(T)];
  std::memcpy(raw, &v, sizeof(T));
  out->append(raw, sizeof(T));
}

void Encode(const Change& c, std::string* out) {
  Put<uint8_t>(out, static_cast<uint8_t>(static_cast<uint8_t>(c.kind) |
                                         (c.updates_existing ? kUpdatesExistingBit : 0)));
  Put<uint32_t>(out, c.table);
  Put<int64_t>(out, c.seq);
  Put<uint32_t>(out, static_cast<uint32_t>(c.values.size()));
  for (const Value& v : c.values) {
    Put<uint8_t>(out, static_cast<uint8_t>(v.kind));
    switch (v.kind) {
      case Value::Kind::kNull:
        break;
      case Value::Kind::kInteger:
        Put<int64_t>(out, v.integer);
        break;
      case Value::Kind::kReal:
        Put<double>(out, v.real);
        break;
      case Value::Kind::kText:
      case Value::Kind::kBlob:
        Put<uint32_t>(out, static_cast<uint32_t>(v.bytes.size()));
        out->append(v.bytes);
        break;
    }
  }
}

// Reads bytes from either the in-memory buffer or the spill file.
class Source {
 public:
  Source(const std::string* buffer, size_t* offset, std::FILE* file)
      : buffer_(buffer), offset_(offset), file_(file) {}

  bool Read(void* dst, size_t n) {
    if (file_ != nullptr) return n == 0 || std::fread(dst, 1, n, file_) == n;
    if (buffer_->size() - *offset_ < n) return false;
    std::memcpy(dst, buffer_->data() + *offset_, n);
    *offset_ += n;
    return true;
  }
  template <typename T>
  bool Get(T* v) {
    return Read(v, sizeof(T));
  }

 private:
  const std::string* buffer_;
  size_t* offset_;
  std::FILE* file_;
};

}  // namespace

ChangeSpool::ChangeSpool(size_t memory_limit_bytes, std::string temp_dir)
    : memory_limit_(memory_limit_bytes), temp_dir_(std::move(temp_dir)) {}

ChangeSpool::~ChangeSpool() { Reset(); }

ChangeSpool::ChangeSpool(ChangeSpool&& other) noexcept { *this = std::move(other); }

ChangeSpool& ChangeSpool::operator=(ChangeSpool&& other) noexcept {
  if (this == &other) return *this;
  Reset();
  memory_limit_ = other.memory_limit_;
  temp_dir_ = std::move(other.temp_dir_);
  buffer_ = std::move(other.buffer_);
  file_ = other.file_;
  fd_ = other.fd_;
  file_bytes_ = other.file_bytes_;
  spill_dir_ = std::move(other.spill_dir_);
  spill_error_ = std::move(other.spill_error_);
  read_offset_ = other.read_offset_;
  count_ = other.count_;
  bytes_ = other.bytes_;
  per_table_ = std::move(other.per_table_);
  other.per_table_.clear();
  reading_ = other.reading_;
  other.file_ = nullptr;
  other.fd_ = -1;
  other.file_bytes_ = 0;
  other.spill_error_.clear();
  other.count_ = 0;
  other.bytes_ = 0;
  other.read_offset_ = 0;
  other.reading_ = false;
  other.buffer_.clear();
  return *this;
}

void ChangeSpool::Reset() {
  if (file_ != nullptr) {
    std::fclose(file_);  // closes fd_
  } else if (fd_ >= 0) {
    ::close(fd_);
  }
  file_ = nullptr;
  fd_ = -1;
  file_bytes_ = 0;
  buffer_.clear();
  count_ = 0;
  bytes_ = 0;
  per_table_.clear();
  read_offset_ = 0;
  reading_ = false;
}

namespace {

constexpr size_t kWriteChunk = 256u << 10;  // records are written to the file in chunks this big

std::string SpoolDir(const std::string& configured) {
  if (!configured.empty()) return configured;
  const char* t = std::getenv("TMPDIR");
  return (t != nullptr && *t != '\0') ? t : "/tmp";
}

}  // namespace

Status ChangeSpool::CheckDir(const std::string& configured) {
  std::string dir = SpoolDir(configured);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    return Status::InvalidArgument(dir + ": " + std::strerror(errno));
  }
  if (!S_ISDIR(st.st_mode)) return Status::InvalidArgument(dir + " is not a directory");
  std::string templ = dir + "/sluice-spool-check-XXXXXX";
  int fd = ::mkstemp(templ.data());
  if (fd < 0) {
    return Status::InvalidArgument("cannot create a file in " + dir + ": " + std::strerror(errno));
  }
  ::close(fd);
  ::unlink(templ.c_str());
  return Status::Ok();
}

Status ChangeSpool::Spill() {
  std::string dir = SpoolDir(temp_dir_);
  std::string templ = dir + "/sluice-spool-XXXXXX";
  int fd = ::mkstemp(templ.data());
  if (fd < 0) {
    KeepInMemory("cannot create a spool file in " + dir + ": " + std::strerror(errno));
    return Status::Ok();
  }
  ::unlink(templ.c_str());  // private: gone as soon as it is closed, even after kill -9
  fd_ = fd;
  file_bytes_ = 0;
  spill_dir_ = dir;
  return Flush();
}

Status ChangeSpool::Flush() {
  size_t done = 0;
  while (done < buffer_.size()) {
    ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string why = n < 0 ? std::strerror(errno) : "no space";
      return MoveBackToMemory("the spool file in " + spill_dir_ + " cannot grow past " +
                              std::to_string(file_bytes_ + done) + " bytes: " + why);
    }
    done += static_cast<size_t>(n);
  }
  file_bytes_ += buffer_.size();
  buffer_.clear();
  return Status::Ok();
}

Status ChangeSpool::MoveBackToMemory(std::string why) {
  // The file holds file_bytes_ of whole records (and maybe part of a chunk
  // that failed, ignored): read them back in front of what is in memory.
  std::string all(file_bytes_, '\0');
  size_t done = 0;
  while (done < file_bytes_) {
    ssize_t n = ::pread(fd_, all.data() + done, file_bytes_ - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return Status::Internal("read back the spool file in " + spill_dir_ + ": " +
                              (n < 0 ? std::strerror(errno) : "short file"));
    }
    done += static_cast<size_t>(n);
  }
  all += buffer_;
  buffer_ = std::move(all);
  ::close(fd_);
  fd_ = -1;
  file_bytes_ = 0;
  KeepInMemory(std::move(why));
  return Status::Ok();
}

void ChangeSpool::KeepInMemory(std::string why) {
  spill_error_ = std::move(why) + "; this batch is held in memory";
  memory_limit_ = std::numeric_limits<size_t>::max();
}

Status ChangeSpool::Append(const Change& change) {
  if (reading_) return Status::Internal("ChangeSpool::Append after reading started");
  size_t before = buffer_.size();
  Encode(change, &buffer_);
  bytes_ += buffer_.size() - before;
  ++count_;
  if (change.table >= per_table_.size()) per_table_.resize(change.table + 1);
  per_table_[change.table]++;
  if (fd_ < 0 && buffer_.size() > memory_limit_) return Spill();
  if (fd_ >= 0 && buffer_.size() >= kWriteChunk) return Flush();
  return Status::Ok();
}

Status ChangeSpool::Rewind() {
  if (!reading_ && fd_ >= 0) SLUICE_RETURN_IF_ERROR(Flush());
  reading_ = true;
  read_offset_ = 0;
  if (fd_ >= 0) {
    if (file_ == nullptr) {
      file_ = ::fdopen(fd_, "rb");
      if (file_ == nullptr) {
        return Status::Internal(std::string("read spool file: ") + std::strerror(errno));
      }
    }
    if (std::fseek(file_, 0, SEEK_SET) != 0) {
      return Status::Internal(std::string("rewind spool file: ") + std::strerror(errno));
    }
  }
  return Status::Ok();
}

Result<bool> ChangeSpool::Next(Change* out) {
  if (!reading_) {
    SLUICE_RETURN_IF_ERROR(Rewind());
  }
  Source src(&buffer_, &read_offset_, file_);
  uint8_t kind = 0;
  if (!src.Get(&kind)) return false;  // clean end
  uint32_t count = 0;
  if (!src.Get(&out->table) || !src.Get(&out->seq) || !src.Get(&count)) {
    return Status::Corruption("spool record truncated");
  }
  out->kind = static_cast<Change::Kind>(kind & ~kUpdatesExistingBit);
  out->updates_existing = (kind & kUpdatesExistingBit) != 0;
  out->values.clear();
  out->values.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    uint8_t vk = 0;
    if (!src.Get(&vk)) return Status::Corruption("spool value truncated");
    Value v;
    v.kind = static_cast<Value::Kind>(vk);
    bool ok = true;
    switch (v.kind) {
      case Value::Kind::kNull:
        break;
      case Value::Kind::kInteger:
        ok = src.Get(&v.integer);
        break;
      case Value::Kind::kReal:
        ok = src.Get(&v.real);
        break;
      case Value::Kind::kText:
      case Value::Kind::kBlob: {
        uint32_t len = 0;
        ok = src.Get(&len);
        if (ok) {
          v.bytes.resize(len);
          ok = src.Read(v.bytes.data(), len);
        }
        break;
      }
      default:
        return Status::Corruption("spool value of unknown kind");
    }
    if (!ok) return Status::Corruption("spool value truncated");
    out->values.push_back(std::move(v));
  }
  return true;
}

}  // namespace sluice
