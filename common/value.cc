// Value equality and kind names.
#include "common/value.h"

#include <cstring>

namespace sluice {

bool operator==(const Value& a, const Value& b) {
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Value::Kind::kNull:
      return true;
    case Value::Kind::kInteger:
      return a.integer == b.integer;
    case Value::Kind::kReal:
      return std::memcmp(&a.real, &b.real, sizeof a.real) == 0;
    case Value::Kind::kText:
    case Value::Kind::kBlob:
      return a.bytes == b.bytes;
  }
  return false;
}

const char* KindName(Value::Kind k) {
  switch (k) {
    case Value::Kind::kNull:
      return "null";
    case Value::Kind::kInteger:
      return "integer";
    case Value::Kind::kReal:
      return "real";
    case Value::Kind::kText:
      return "text";
    case Value::Kind::kBlob:
      return "blob";
  }
  return "?";
}

}  // namespace sluice
