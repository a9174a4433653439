#include "actors/speakers/core/bucket_policy.hpp"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "runtime/domain/vocabulary.hpp"

namespace sbm::speakers {

namespace {

constexpr std::size_t rank(bucket b) { return static_cast<std::size_t>(b); }

bool is_bucket(bucket b) { return rank(b) < all_buckets.size(); }

// Float-stored samples make a mean drift by ~1e-7 relative; without this slack a speaker sitting
// exactly on a limit could be demoted or refused promotion by rounding alone.
bool at_or_below(double value, double limit) {
  return value <= limit + limit_tolerance * std::max(1.0, std::fabs(limit));
}

void check_sample(double value) {
  if (std::isnan(value) || value < 0.0 ||
      value > static_cast<double>(std::numeric_limits<float>::max())) {
    throw std::invalid_argument("quality sample must be a finite, non-negative rate, got " +
                                std::to_string(value));
  }
}

std::string format(const char* pattern, ...) __attribute__((format(printf, 1, 2)));

std::string format(const char* pattern, ...) {
  char buffer[256];
  va_list args;
  va_start(args, pattern);
  const int written = std::vsnprintf(buffer, sizeof buffer, pattern, args);
  va_end(args);
  if (written < 0) return {};
  return std::string(buffer, std::min<std::size_t>(static_cast<std::size_t>(written),
                                                    sizeof buffer - 1));
}

}  // namespace

static_assert(domain::bucket_names.size() == all_buckets.size(),
              "one name per bucket, in the enum's order");

std::string_view to_string(bucket b) {
  const auto i = static_cast<std::size_t>(b);
  return i < domain::bucket_names.size() ? domain::bucket_names[i] : std::string_view{"unknown"};
}

std::optional<bucket> parse_bucket(std::string_view name) {
  for (bucket b : all_buckets) {
    if (to_string(b) == name) return b;
  }
  return std::nullopt;
}

std::optional<std::string> validate(const bucket_policy_config& config) {
  const bucket_bands& bands = config.bands;
  if (!std::isfinite(bands.no_touch_max) || !std::isfinite(bands.low_touch_max) ||
      !std::isfinite(bands.medium_touch_max)) {
    return std::string("bucket band maxima must be finite numbers");
  }
  if (bands.no_touch_max < 0.0) {
    return format("no_touch max %.2f is negative", bands.no_touch_max);
  }
  if (!(bands.no_touch_max < bands.low_touch_max && bands.low_touch_max < bands.medium_touch_max)) {
    return format("bucket band maxima must strictly increase: no_touch %.2f < low_touch %.2f < "
                  "medium_touch %.2f",
                  bands.no_touch_max, bands.low_touch_max, bands.medium_touch_max);
  }
  if (config.window_size == 0) return std::string("window_size must be at least 1");
  if (config.window_size > max_window_size) {
    return format("window_size %u exceeds the maximum %u", config.window_size, max_window_size);
  }
  if (!std::isfinite(config.promotion_margin) || config.promotion_margin < 0.0) {
    return std::string("promotion_margin must be a finite number >= 0");
  }
  if (bands.no_touch_max - config.promotion_margin < 0.0) {
    return format("promotion_margin %.2f exceeds no_touch max %.2f: no speaker could ever be "
                  "promoted to no_touch",
                  config.promotion_margin, bands.no_touch_max);
  }
  if (!is_bucket(config.initial_bucket)) return std::string("initial_bucket is not a bucket");
  return std::nullopt;
}

std::optional<double> band_max(const bucket_bands& bands, bucket b) {
  switch (b) {
    case bucket::no_touch: return bands.no_touch_max;
    case bucket::low_touch: return bands.low_touch_max;
    case bucket::medium_touch: return bands.medium_touch_max;
    case bucket::high_touch: break;
  }
  return std::nullopt;
}

bucket band_of(const bucket_bands& bands, double errors_per_100_words) {
  for (bucket b : all_buckets) {
    const std::optional<double> max = band_max(bands, b);
    if (!max || at_or_below(errors_per_100_words, *max)) return b;
  }
  return bucket::high_touch;
}

quality_window::quality_window(std::uint32_t capacity) : capacity_(capacity) {
  if (capacity == 0) throw std::invalid_argument("quality_window capacity must be at least 1");
}

namespace {

constexpr double hundredths_max = std::numeric_limits<std::uint16_t>::max();

float from_hundredths(std::uint16_t h) { return static_cast<float>(h / 100.0); }

// The hundredths a sample is held as in a narrow window, or -1 when it needs a float: only when
// reading the hundredths back gives the very float the sample is stored as.
long hundredths_of(double value) {
  const double scaled = std::round(value * 100.0);
  if (!(scaled <= hundredths_max)) return -1;
  const auto h = static_cast<std::uint16_t>(scaled);
  return from_hundredths(h) == static_cast<float>(value) ? static_cast<long>(h) : -1;
}

std::size_t slot_bytes(bool narrow) { return narrow ? sizeof(std::uint16_t) : sizeof(float); }

}  // namespace

quality_window::quality_window(const quality_window& other)
    : capacity_(other.capacity_), size_(other.size_), next_(other.next_), narrow_(other.narrow_) {
  if (other.slots_) {
    const std::size_t bytes = std::size_t{capacity_} * slot_bytes(narrow_);
    slots_.reset(new unsigned char[bytes]);
    std::memcpy(slots_.get(), other.slots_.get(), bytes);
  }
}

quality_window& quality_window::operator=(const quality_window& other) {
  if (this != &other) *this = quality_window(other);
  return *this;
}

float quality_window::at(std::uint32_t slot) const {
  if (narrow_) {
    std::uint16_t h;
    std::memcpy(&h, slots_.get() + std::size_t{slot} * sizeof h, sizeof h);
    return from_hundredths(h);
  }
  float f;
  std::memcpy(&f, slots_.get() + std::size_t{slot} * sizeof f, sizeof f);
  return f;
}

void quality_window::widen() {
  std::unique_ptr<unsigned char[]> wide(new unsigned char[std::size_t{capacity_} * sizeof(float)]());
  if (slots_) {
    // Every slot, not only the filled ones: the ring's positions must stay where they are.
    for (std::uint32_t i = 0; i < capacity_; ++i) {
      const float f = at(i);
      std::memcpy(wide.get() + std::size_t{i} * sizeof f, &f, sizeof f);
    }
  }
  slots_ = std::move(wide);
  narrow_ = false;
}

void quality_window::push(double errors_per_100_words) {
  check_sample(errors_per_100_words);
  const long h = narrow_ ? hundredths_of(errors_per_100_words) : -1;
  if (narrow_ && h < 0) widen();
  if (!slots_) slots_.reset(new unsigned char[std::size_t{capacity_} * slot_bytes(narrow_)]());
  if (narrow_) {
    const auto v = static_cast<std::uint16_t>(h);
    std::memcpy(slots_.get() + std::size_t{next_} * sizeof v, &v, sizeof v);
  } else {
    const auto v = static_cast<float>(errors_per_100_words);
    std::memcpy(slots_.get() + std::size_t{next_} * sizeof v, &v, sizeof v);
  }
  next_ = next_ + 1 == capacity_ ? 0 : next_ + 1;
  if (size_ < capacity_) ++size_;
}

double quality_window::mean() const {
  if (size_ == 0) return 0.0;
  double sum = 0.0;  // recomputed, not kept running, so wrap-around never accumulates drift
  for (std::uint32_t i = 0; i < size_; ++i) sum += at(i);
  return sum / size_;
}

std::size_t quality_window::heap_bytes() const {
  return slots_ ? std::size_t{capacity_} * slot_bytes(narrow_) : 0;
}

std::vector<double> quality_window::samples() const {
  std::vector<double> out;
  out.reserve(size_);
  // Until the window fills, next_ == size_ and the oldest sample is slot 0.
  const std::uint32_t oldest = full() ? next_ : 0;
  for (std::uint32_t i = 0; i < size_; ++i) {
    out.push_back(at((oldest + i) % capacity_));
  }
  return out;
}

quality_window quality_window::from_samples(std::uint32_t capacity,
                                            const std::vector<double>& oldest_first) {
  quality_window window(capacity);
  for (double sample : oldest_first) check_sample(sample);
  const std::size_t skip = oldest_first.size() > capacity ? oldest_first.size() - capacity : 0;
  for (std::size_t i = skip; i < oldest_first.size(); ++i) window.push(oldest_first[i]);
  return window;
}

void quality_window::clear() {
  slots_.reset();
  size_ = 0;
  next_ = 0;
  narrow_ = true;
}

bucket_decision evaluate(const bucket_policy_config& config, bucket current,
                         const quality_window& window, bool pinned) {
  if (std::optional<std::string> error = validate(config)) {
    throw std::invalid_argument("invalid bucket policy config: " + *error);
  }
  if (!is_bucket(current)) throw std::invalid_argument("current bucket is not a bucket");

  const std::string_view current_name = to_string(current);
  if (pinned) {
    return {current, false, format("pinned: held at %.*s by a QA lead",
                                   static_cast<int>(current_name.size()), current_name.data())};
  }
  if (window.empty()) return {current, false, "no change: no quality samples yet"};

  const double mean = window.mean();
  if (const std::optional<double> max = band_max(config.bands, current);
      max && !at_or_below(mean, *max)) {
    return {band_of(config.bands, mean), true,
            format("demoted: window mean %.2f > %.*s max %.2f", mean,
                   static_cast<int>(current_name.size()), current_name.data(), *max)};
  }

  if (!window.full()) {
    return {current, false,
            format("no change: window mean %.2f, partial window %u/%u too short to promote", mean,
                   window.size(), window.capacity())};
  }
  for (bucket better : all_buckets) {
    if (rank(better) >= rank(current)) break;
    const double max = *band_max(config.bands, better);
    if (at_or_below(mean, max - config.promotion_margin)) {
      const std::string_view name = to_string(better);
      return {better, true,
              format("promoted: full window of %u, mean %.2f <= %.*s max %.2f - margin %.2f",
                     window.capacity(), mean, static_cast<int>(name.size()), name.data(), max,
                     config.promotion_margin)};
    }
  }
  return {current, false,
          format("no change: full window of %u, mean %.2f keeps %.*s", window.capacity(), mean,
                 static_cast<int>(current_name.size()), current_name.data())};
}

}  // namespace sbm::speakers
