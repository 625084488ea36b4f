// Seeded randomness and text for the Open WebUI database generator: a small
// PRNG (xoshiro256**, seeded through splitmix64) whose streams depend only on
// (seed, stream, index), UUID-shaped ids, and pseudo-random words, some of
// them German, Chinese, Japanese or emoji, so that JSON written from them has
// \u escapes and surrogate pairs. Nothing here reads a clock or the
// environment: the same arguments give the same bytes. Pure; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::bench {

class Rng {
 public:
  explicit Rng(uint64_t seed);
  // An independent stream for row `index` of table `stream`: rows do not shift
  // when another table's count (or the scale) changes.
  Rng(uint64_t seed, uint64_t stream, uint64_t index);

  uint64_t Next();
  uint64_t Below(uint64_t n);               // [0, n); n > 0
  int64_t Between(int64_t lo, int64_t hi);  // [lo, hi]
  double Unit();                            // [0, 1), 53 bits
  bool Chance(double p) { return Unit() < p; }
  // exp(N(log(median), sigma)) clipped to [lo, hi].
  double LogNormal(double median, double sigma, double lo, double hi);

 private:
  uint64_t s_[4];
};

// The inverse of the standard normal CDF (Acklam's rational approximation,
// relative error below 1.2e-9); p in (0, 1).
double NormalQuantile(double p);

// "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx", lowercase, as Python's str(uuid4()).
std::string Uuid(Rng& r);

// `n` lowercase hex digits.
std::string HexDigits(Rng& r, size_t n);

// Words of a chat: mostly English, about one in twelve not ASCII, now and
// then a quote, a backslash or a line break.
class Words {
 public:
  // Appends about `bytes` bytes of UTF-8 words separated by spaces (the last
  // word may overshoot a little); for TEXT columns.
  static void AppendText(Rng& r, size_t bytes, std::string* out);
  static std::string Text(Rng& r, size_t bytes);
  // Appends exactly `bytes` bytes of a JSON string body as ensure_ascii
  // writes it (no escape sequence cut), for the large JSON values.
  static void AppendEscapedText(Rng& r, size_t bytes, std::string* out);
  // A title: 2 to 6 words, the first capitalised.
  static std::string Title(Rng& r);
};

}  // namespace sluice::bench
