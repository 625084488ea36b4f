// Seeded randomness and words (see synthetic_text.h).
#include "bench/synthetic_text.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "bench/py_json.h"

namespace sluice::bench {

namespace {

uint64_t SplitMix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// Mostly the words of a technical chat; the non-ASCII ones are frequent enough
// that every chat of a few hundred bytes has some.
constexpr std::array<std::string_view, 96> kWords = {
    "the",    "model",   "answer",    "context",  "token",   "vector",   "search",       "prompt",
    "reply",  "user",    "chat",      "function", "result",  "with",     "and",          "for",
    "this",   "that",    "query",     "document", "summary", "table",    "python",       "error",
    "fix",    "deploy",  "server",    "request",  "latency", "cache",    "stream",       "json",
    "schema", "index",   "batch",     "commit",   "journal", "sqlite",   "postgres",     "agent",
    "sync",   "mirror",  "row",       "column",   "key",     "value",    "update",       "insert",
    "delete", "message", "channel",   "thread",   "file",    "upload",   "please",       "thanks",
    "could",  "would",   "should",    "because",  "maybe",   "today",    "is",           "a",
    "of",     "to",      "in",        "it",       "you",     "we",       "can",          "not",
    "here",   "example", "step",      "first",    "then",    "finally",  "use",          "run",
    "Grüße",  "Straße",  "übermäßig", "Änderung", "café",    "naïve",    "データベース", "数据库",
    "同步",   "日本語",  "😀",         "🚀",        "👍",       "“quoted”", "\"x\"",        "C:\\tmp",
};
static_assert(!kWords.back().empty(), "kWords has fewer words than its size");
constexpr size_t kAsciiWords = 80;  // kWords[0..80) are plain ASCII letters

struct EscapedWords {
  std::vector<std::string> escaped;
  EscapedWords() {
    for (std::string_view w : kWords) {
      std::string e;
      AppendPyJsonEscaped(&e, w);
      escaped.push_back(std::move(e));
    }
  }
};

const EscapedWords& Escaped() {
  static const EscapedWords words;
  return words;
}

// A word index: plain ASCII 11 times in 12.
size_t PickWord(Rng& r) {
  uint64_t x = r.Next();
  if (x % 12 != 0) return (x >> 8) % kAsciiWords;
  return kAsciiWords + (x >> 8) % (kWords.size() - kAsciiWords);
}

}  // namespace

Rng::Rng(uint64_t seed) {
  uint64_t x = seed;
  for (uint64_t& s : s_) s = SplitMix64(x);
}

Rng::Rng(uint64_t seed, uint64_t stream, uint64_t index) {
  uint64_t x = seed;
  uint64_t a = SplitMix64(x) ^ (stream * 0xd6e8feb86659fd93ULL);
  uint64_t b = SplitMix64(a) ^ (index * 0x9e3779b97f4a7c15ULL);
  for (uint64_t& s : s_) s = SplitMix64(b);
}

uint64_t Rng::Next() {
  uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

uint64_t Rng::Below(uint64_t n) {
  // Lemire's multiply-shift; the bias (n / 2^64) does not matter here.
  return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
}

int64_t Rng::Between(int64_t lo, int64_t hi) {
  return lo + static_cast<int64_t>(Below(static_cast<uint64_t>(hi - lo) + 1));
}

double Rng::Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

double Rng::LogNormal(double median, double sigma, double lo, double hi) {
  double p = std::max(Unit(), 1e-12);
  return std::clamp(median * std::exp(sigma * NormalQuantile(p)), lo, hi);
}

double NormalQuantile(double p) {
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,  -2.759285104469687e+02,
                             1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  const double low = 0.02425;
  if (p < low) {
    double q = std::sqrt(-2 * std::log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - low) return -NormalQuantile(1 - p);
  double q = p - 0.5;
  double r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

std::string HexDigits(Rng& r, size_t n) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n);
  uint64_t x = 0;
  for (size_t i = 0; i < n; ++i) {
    if (i % 16 == 0) x = r.Next();
    out.push_back(kHex[x & 0xf]);
    x >>= 4;
  }
  return out;
}

std::string Uuid(Rng& r) {
  std::string h = HexDigits(r, 32);
  h[12] = '4';
  h[16] = "89ab"[r.Below(4)];
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
}

void Words::AppendText(Rng& r, size_t bytes, std::string* out) {
  size_t end = out->size() + bytes;
  bool first = true;
  while (out->size() < end) {
    if (!first) *out += r.Below(40) == 0 ? "\n\n" : r.Below(9) == 0 ? ". " : " ";
    first = false;
    *out += kWords[PickWord(r)];
  }
}

std::string Words::Text(Rng& r, size_t bytes) {
  std::string out;
  AppendText(r, bytes, &out);
  return out;
}

void Words::AppendEscapedText(Rng& r, size_t bytes, std::string* out) {
  const EscapedWords& words = Escaped();
  // ASCII words of 1 to 7 letters, for the last few bytes.
  static const std::string_view kBySize[] = {"a",     "is",     "the",    "with",
                                             "model", "answer", "context"};
  const size_t end = out->size() + bytes;
  // Any word while the longest escaped word and a separator still fit; then
  // ASCII words that fit, so the text ends exactly at `end`.
  const size_t kRoom = 48;
  bool first = true;
  while (out->size() + kRoom < end) {
    if (!first) *out += r.Below(40) == 0 ? "\\n\\n" : r.Below(9) == 0 ? ". " : " ";
    first = false;
    *out += words.escaped[PickWord(r)];
  }
  while (out->size() + (first ? 1 : 2) <= end) {
    if (!first) out->push_back(' ');
    first = false;
    size_t room = end - out->size();
    std::string_view w = kWords[r.Below(kAsciiWords)];
    if (w.size() > room) w = kBySize[std::min<size_t>(room, std::size(kBySize)) - 1];
    *out += w;
  }
  if (out->size() < end) out->push_back('.');
}

std::string Words::Title(Rng& r) {
  std::string t;
  int n = static_cast<int>(r.Between(2, 6));
  for (int i = 0; i < n; ++i) {
    if (i > 0) t += ' ';
    t += kWords[PickWord(r)];
  }
  if (t[0] >= 'a' && t[0] <= 'z') t[0] = static_cast<char>(t[0] - 'a' + 'A');
  return t;
}

}  // namespace sluice::bench
