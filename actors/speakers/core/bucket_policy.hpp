#pragma once

// The one place the quality-bucket rules live: which band a quality rate falls in, and when a
// speaker moves between buckets. Pure: no CAF, no I/O. The speaker actor owns a quality_window,
// pushes one sample per verified job, and calls evaluate() afterwards; pins are the actor's business,
// the policy only needs to know whether one is in force.
//
// Boundary semantics (defaults: bands 2.0 / 5.0 / 10.0, margin 0.5):
//   * A band's max is inclusive: band_of(2.0) is no_touch, band_of(2.01) is low_touch.
//   * Demotion is strict: a no_touch speaker whose window mean is exactly 2.0 stays; above 2.0 it
//     moves at once (even with a partial window) to band_of(mean), possibly several bands down.
//   * Promotion is inclusive of the margin: with a full window, a mean of exactly 2.0 - 0.5 = 1.5
//     promotes to no_touch; 1.51 does not. The best qualifying band wins, so one evaluation may
//     skip several bands.
//   * Samples are stored as float to keep a million windows small, so a mean can differ from the
//     double a caller had in mind by ~1e-7 relative. Every comparison against a limit therefore
//     treats values within limit_tolerance (relative, at least absolute 1e-6) of the limit as equal
//     to it; no meaningful rate difference is that small.

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sbm::speakers {

enum class bucket : std::uint8_t { no_touch, low_touch, medium_touch, high_touch };  // best first

inline constexpr std::array<bucket, 4> all_buckets{bucket::no_touch, bucket::low_touch,
                                                   bucket::medium_touch, bucket::high_touch};

// "unknown" for a value outside the enum (e.g. a corrupt cast), so logging never crashes.
std::string_view to_string(bucket);
// Exact lowercase names only ("no_touch", ...); anything else, including "No_Touch", is nullopt.
std::optional<bucket> parse_bucket(std::string_view);

// Maximum residual errors per 100 words of each band, inclusive; high_touch has no max.
struct bucket_bands {
  double no_touch_max = 2.0, low_touch_max = 5.0, medium_touch_max = 10.0;
};

struct bucket_policy_config {
  bucket_bands bands;
  std::uint32_t window_size = 50;
  double promotion_margin = 0.5;  // a promotion to band B needs window mean <= B's max - margin
  bucket initial_bucket = bucket::high_touch;
};

// Relative slack used when comparing a rate with a limit (see the boundary notes above).
inline constexpr double limit_tolerance = 1e-6;

// Upper bound for window_size: a million resident speakers each hold window_size floats.
inline constexpr std::uint32_t max_window_size = 10'000;

// nullopt when usable, else what is wrong: bands not finite, negative or not strictly increasing,
// window_size 0 or above max_window_size, margin negative or not finite, a margin so large that
// no_touch could never be reached by promotion (no_touch_max - margin < 0), initial_bucket not a
// bucket.
std::optional<std::string> validate(const bucket_policy_config&);

// The band a rate falls in (inclusive maxima). NaN is treated as worst: high_touch.
bucket band_of(const bucket_bands&, double errors_per_100_words);

// Inclusive max of a bucket's band; nullopt for high_touch, which has none.
std::optional<double> band_max(const bucket_bands&, bucket);

// Fixed-capacity ring of the most recent quality samples, oldest dropped first. Compact on purpose
// (24 bytes plus 2 or 4 bytes per slot): the slots are allocated on the first push, so a speaker
// with no verified jobs yet costs no heap at all. A sample is held as float; while every sample of
// the window is a whole number of hundredths up to 655.35 whose float is exactly what that decimal
// gives (rates typed with two decimals), the slots hold the hundredths in 16 bits instead, and the
// first sample that is not widens the window to floats. Both forms read back the same floats, so
// means, samples and bucket decisions do not depend on the form.
class quality_window {
 public:
  // Throws std::invalid_argument when capacity is 0.
  explicit quality_window(std::uint32_t capacity = 50);
  quality_window(const quality_window&);
  quality_window& operator=(const quality_window&);
  quality_window(quality_window&&) noexcept = default;
  quality_window& operator=(quality_window&&) noexcept = default;
  ~quality_window() = default;

  // Drops the oldest sample when full. Throws std::invalid_argument for NaN, infinity, negative
  // values and values too large for float storage; the window is unchanged then.
  void push(double errors_per_100_words);

  std::uint32_t size() const { return size_; }
  std::uint32_t capacity() const { return capacity_; }
  bool full() const { return size_ == capacity_; }
  bool empty() const { return size_ == 0; }

  double mean() const;  // 0 when empty

  // Heap the slots take: 0 before the first push, then capacity * 2 (hundredths) or * 4 (floats).
  std::size_t heap_bytes() const;

  // Oldest first (for persistence and the REST summary). Exact: from_samples(capacity(), samples())
  // rebuilds an identical window.
  std::vector<double> samples() const;

  // Rebuilds a window, e.g. after loading or when the configured window size changed: when
  // oldest_first holds more than capacity samples only the newest capacity are kept. Throws
  // std::invalid_argument for capacity 0 or a sample push() would reject.
  static quality_window from_samples(std::uint32_t capacity, const std::vector<double>& oldest_first);

  void clear();  // drops the samples (and their heap), keeps the capacity

 private:
  float at(std::uint32_t slot) const;
  void widen();  // hundredths -> floats, the same values

  // capacity_ slots of std::uint16_t hundredths (narrow_) or of float.
  std::unique_ptr<unsigned char[]> slots_;
  std::uint32_t capacity_;
  std::uint32_t size_ = 0;
  std::uint32_t next_ = 0;  // slot the next push writes; the oldest sample once the window is full
  bool narrow_ = true;
};

struct bucket_decision {
  bucket next;
  bool changed;
  std::string reason;  // human readable, e.g. "demoted: window mean 7.40 > low_touch max 5.00"
};

// Decides the bucket after the window changed. Rules, in order:
//   pinned                -> no change (reason says pinned);
//   empty window          -> no change;
//   mean > current's max  -> demoted to band_of(mean), partial window or not;
//   full window           -> promoted to the best band B better than current with
//                            mean <= B's max - margin, if any;
//   otherwise             -> no change.
// "Full" is window.full(): the actor sizes the window from config.window_size (from_samples when it
// changes). Throws std::invalid_argument when validate(config) reports an error.
bucket_decision evaluate(const bucket_policy_config&, bucket current, const quality_window&,
                         bool pinned);

}  // namespace sbm::speakers
