// ChangeSpool: records are encoded as
//   u8 kind | u32 table | i64 seq | u32 count | count x (u8 kind | payload)
// payload: i64 (integer), f64 bits (real), u32 length + bytes (text, blob).
// Native byte order: the spool never leaves the process that wrote it.
#include "common/change_spool.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace sluice {
namespace {

template <typename T>
void Put(std::string* out, T v) {
  char raw[sizeof(T)];
  std::memcpy(raw, &v, sizeof(T));
  out->append(raw, sizeof(T));
}

void Encode(const Change& c, std::string* out) {
  Put<uint8_t>(out, static_cast<uint8_t>(c.kind));
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
  read_offset_ = other.read_offset_;
  count_ = other.count_;
  bytes_ = other.bytes_;
  reading_ = other.reading_;
  other.file_ = nullptr;
  other.count_ = 0;
  other.bytes_ = 0;
  other.read_offset_ = 0;
  other.reading_ = false;
  other.buffer_.clear();
  return *this;
}

void ChangeSpool::Reset() {
  if (file_ != nullptr) std::fclose(file_);
  file_ = nullptr;
  buffer_.clear();
  count_ = 0;
  bytes_ = 0;
  read_offset_ = 0;
  reading_ = false;
}

Status ChangeSpool::Spill() {
  std::string dir = temp_dir_;
  if (dir.empty()) {
    const char* t = std::getenv("TMPDIR");
    dir = (t != nullptr && *t != '\0') ? t : "/tmp";
  }
  std::string templ = dir + "/sluice-spool-XXXXXX";
  int fd = ::mkstemp(templ.data());
  if (fd < 0) {
    return Status::Internal("create spool file in " + dir + ": " + std::strerror(errno));
  }
  ::unlink(templ.c_str());  // private: gone as soon as it is closed, even after kill -9
  file_ = ::fdopen(fd, "w+b");
  if (file_ == nullptr) {
    ::close(fd);
    return Status::Internal(std::string("open spool file: ") + std::strerror(errno));
  }
  if (std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size()) {
    return Status::Internal(std::string("write spool file (disk full?): ") + std::strerror(errno));
  }
  buffer_.clear();
  buffer_.shrink_to_fit();
  return Status::Ok();
}

Status ChangeSpool::Append(const Change& change) {
  if (reading_) return Status::Internal("ChangeSpool::Append after reading started");
  size_t before = buffer_.size();
  Encode(change, &buffer_);
  bytes_ += buffer_.size() - before;
  ++count_;
  if (file_ == nullptr && buffer_.size() > memory_limit_) return Spill();
  if (file_ != nullptr) {
    if (std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size()) {
      return Status::Internal(std::string("write spool file (disk full?): ") +
                              std::strerror(errno));
    }
    buffer_.clear();
  }
  return Status::Ok();
}

Status ChangeSpool::Rewind() {
  reading_ = true;
  read_offset_ = 0;
  if (file_ != nullptr) {
    if (std::fflush(file_) != 0 || std::fseek(file_, 0, SEEK_SET) != 0) {
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
  out->kind = static_cast<Change::Kind>(kind);
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
