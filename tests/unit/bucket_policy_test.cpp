#include "actors/speakers/core/bucket_policy.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace sbm::speakers {
namespace {

quality_window window_of(std::uint32_t capacity, const std::vector<double>& samples) {
  quality_window window(capacity);
  for (double s : samples) window.push(s);
  return window;
}

quality_window full_window_with_mean(double mean, std::uint32_t capacity = 50) {
  return window_of(capacity, std::vector<double>(capacity, mean));
}

// ---------------------------------------------------------------- names

TEST(BucketNames, RoundTripEveryBucket) {
  for (bucket b : all_buckets) {
    const std::optional<bucket> parsed = parse_bucket(to_string(b));
    ASSERT_TRUE(parsed.has_value()) << to_string(b);
    EXPECT_EQ(*parsed, b);
  }
  EXPECT_EQ(to_string(bucket::no_touch), "no_touch");
  EXPECT_EQ(to_string(bucket::low_touch), "low_touch");
  EXPECT_EQ(to_string(bucket::medium_touch), "medium_touch");
  EXPECT_EQ(to_string(bucket::high_touch), "high_touch");
}

TEST(BucketNames, ParseAcceptsOnlyExactLowercaseNames) {
  EXPECT_FALSE(parse_bucket("No_Touch"));
  EXPECT_FALSE(parse_bucket("NO_TOUCH"));
  EXPECT_FALSE(parse_bucket(" no_touch"));
  EXPECT_FALSE(parse_bucket("no_touch "));
  EXPECT_FALSE(parse_bucket("no-touch"));
  EXPECT_FALSE(parse_bucket(""));
  EXPECT_FALSE(parse_bucket("touch"));
}

TEST(BucketNames, AllBucketsAreOrderedBestFirst) {
  ASSERT_EQ(all_buckets.size(), 4u);
  EXPECT_EQ(all_buckets[0], bucket::no_touch);
  EXPECT_EQ(all_buckets[3], bucket::high_touch);
  EXPECT_EQ(to_string(static_cast<bucket>(9)), "unknown");
}

// ---------------------------------------------------------------- band_of

TEST(BandOf, MaximaAreInclusive) {
  const bucket_bands bands;
  EXPECT_EQ(band_of(bands, 0.0), bucket::no_touch);
  EXPECT_EQ(band_of(bands, 2.0), bucket::no_touch);
  EXPECT_EQ(band_of(bands, 2.01), bucket::low_touch);
  EXPECT_EQ(band_of(bands, 5.0), bucket::low_touch);
  EXPECT_EQ(band_of(bands, 5.01), bucket::medium_touch);
  EXPECT_EQ(band_of(bands, 10.0), bucket::medium_touch);
  EXPECT_EQ(band_of(bands, 10.01), bucket::high_touch);
  EXPECT_EQ(band_of(bands, 250.0), bucket::high_touch);
}

TEST(BandOf, NanIsWorst) {
  EXPECT_EQ(band_of(bucket_bands{}, std::numeric_limits<double>::quiet_NaN()), bucket::high_touch);
}

TEST(BandOf, FollowsConfiguredBands) {
  const bucket_bands bands{1.0, 3.0, 4.0};
  EXPECT_EQ(band_of(bands, 1.5), bucket::low_touch);
  EXPECT_EQ(band_of(bands, 3.5), bucket::medium_touch);
  EXPECT_EQ(band_of(bands, 4.5), bucket::high_touch);
}

TEST(BandMax, HighTouchHasNone) {
  const bucket_bands bands;
  EXPECT_EQ(band_max(bands, bucket::no_touch), 2.0);
  EXPECT_EQ(band_max(bands, bucket::low_touch), 5.0);
  EXPECT_EQ(band_max(bands, bucket::medium_touch), 10.0);
  EXPECT_FALSE(band_max(bands, bucket::high_touch).has_value());
}

// ---------------------------------------------------------------- validate

TEST(BucketPolicyValidate, DefaultsAreValid) { EXPECT_EQ(validate(bucket_policy_config{}), std::nullopt); }

TEST(BucketPolicyValidate, RejectsBandsThatDoNotStrictlyIncrease) {
  bucket_policy_config equal;
  equal.bands = {2.0, 2.0, 10.0};
  EXPECT_TRUE(validate(equal).has_value());

  bucket_policy_config decreasing;
  decreasing.bands = {2.0, 11.0, 10.0};
  const auto error = validate(decreasing);
  ASSERT_TRUE(error.has_value());
  EXPECT_NE(error->find("increase"), std::string::npos) << *error;
}

TEST(BucketPolicyValidate, RejectsNegativeOrNonFiniteBands) {
  bucket_policy_config negative;
  negative.bands = {-1.0, 5.0, 10.0};
  EXPECT_TRUE(validate(negative).has_value());

  bucket_policy_config infinite;
  infinite.bands.medium_touch_max = std::numeric_limits<double>::infinity();
  EXPECT_TRUE(validate(infinite).has_value());

  bucket_policy_config nan;
  nan.bands.low_touch_max = std::numeric_limits<double>::quiet_NaN();
  EXPECT_TRUE(validate(nan).has_value());
}

TEST(BucketPolicyValidate, RejectsWindowSizeZeroOrHuge) {
  bucket_policy_config zero;
  zero.window_size = 0;
  EXPECT_TRUE(validate(zero).has_value());

  bucket_policy_config huge;
  huge.window_size = max_window_size + 1;
  EXPECT_TRUE(validate(huge).has_value());

  bucket_policy_config largest;
  largest.window_size = max_window_size;
  EXPECT_FALSE(validate(largest).has_value());

  bucket_policy_config one;
  one.window_size = 1;
  EXPECT_FALSE(validate(one).has_value());
}

TEST(BucketPolicyValidate, MarginMustBeNonNegativeFiniteAndLeaveNoTouchReachable) {
  bucket_policy_config negative;
  negative.promotion_margin = -0.1;
  EXPECT_TRUE(validate(negative).has_value());

  bucket_policy_config nan;
  nan.promotion_margin = std::numeric_limits<double>::quiet_NaN();
  EXPECT_TRUE(validate(nan).has_value());

  bucket_policy_config zero;
  zero.promotion_margin = 0.0;
  EXPECT_FALSE(validate(zero).has_value());

  bucket_policy_config exactly_no_touch_max;  // only a perfect window promotes to no_touch: harsh, legal
  exactly_no_touch_max.promotion_margin = 2.0;
  EXPECT_FALSE(validate(exactly_no_touch_max).has_value());

  bucket_policy_config unreachable;
  unreachable.promotion_margin = 2.5;
  const auto error = validate(unreachable);
  ASSERT_TRUE(error.has_value());
  EXPECT_NE(error->find("no_touch"), std::string::npos) << *error;
}

TEST(BucketPolicyValidate, RejectsInitialBucketOutsideTheEnum) {
  bucket_policy_config config;
  config.initial_bucket = static_cast<bucket>(7);
  EXPECT_TRUE(validate(config).has_value());
}

// ---------------------------------------------------------------- quality_window

TEST(QualityWindow, CapacityZeroThrows) { EXPECT_THROW(quality_window(0), std::invalid_argument); }

TEST(QualityWindow, StartsEmptyWithMeanZero) {
  const quality_window window(5);
  EXPECT_EQ(window.size(), 0u);
  EXPECT_EQ(window.capacity(), 5u);
  EXPECT_FALSE(window.full());
  EXPECT_TRUE(window.empty());
  EXPECT_EQ(window.mean(), 0.0);
  EXPECT_TRUE(window.samples().empty());
}

TEST(QualityWindow, DefaultCapacityIsFifty) { EXPECT_EQ(quality_window().capacity(), 50u); }

TEST(QualityWindow, KeepsSamplesOldestFirstUntilFull) {
  quality_window window(4);
  window.push(1.0);
  window.push(2.0);
  window.push(6.0);
  EXPECT_EQ(window.size(), 3u);
  EXPECT_FALSE(window.full());
  EXPECT_EQ(window.samples(), (std::vector<double>{1.0, 2.0, 6.0}));
  EXPECT_DOUBLE_EQ(window.mean(), 3.0);
  window.push(3.0);
  EXPECT_TRUE(window.full());
  EXPECT_DOUBLE_EQ(window.mean(), 3.0);
}

TEST(QualityWindow, WrapsAroundDroppingTheOldest) {
  quality_window window(3);
  for (double s : {1.0, 2.0, 3.0, 4.0, 5.0}) window.push(s);
  EXPECT_EQ(window.size(), 3u);
  EXPECT_TRUE(window.full());
  EXPECT_EQ(window.samples(), (std::vector<double>{3.0, 4.0, 5.0}));
  EXPECT_DOUBLE_EQ(window.mean(), 4.0);

  // Several full turns of the ring, ending mid-ring.
  for (int i = 0; i < 7; ++i) window.push(10.0 + i);
  EXPECT_EQ(window.samples(), (std::vector<double>{14.0, 15.0, 16.0}));
  EXPECT_DOUBLE_EQ(window.mean(), 15.0);
}

TEST(QualityWindow, CapacityOneHoldsOnlyTheNewest) {
  quality_window window(1);
  window.push(7.0);
  window.push(3.0);
  EXPECT_TRUE(window.full());
  EXPECT_EQ(window.samples(), std::vector<double>{3.0});
  EXPECT_DOUBLE_EQ(window.mean(), 3.0);
}

TEST(QualityWindow, RejectsInvalidSamplesAndStaysUnchanged) {
  quality_window window(3);
  window.push(1.0);
  EXPECT_THROW(window.push(std::numeric_limits<double>::quiet_NaN()), std::invalid_argument);
  EXPECT_THROW(window.push(-0.5), std::invalid_argument);
  EXPECT_THROW(window.push(std::numeric_limits<double>::infinity()), std::invalid_argument);
  EXPECT_THROW(window.push(1e300), std::invalid_argument);  // would be infinity as float
  EXPECT_EQ(window.samples(), std::vector<double>{1.0});
  window.push(0.0);  // zero is a perfect job, not an error
  EXPECT_EQ(window.size(), 2u);
}

TEST(QualityWindow, ClearKeepsCapacity) {
  quality_window window(2);
  window.push(4.0);
  window.push(5.0);
  window.push(6.0);
  window.clear();
  EXPECT_EQ(window.size(), 0u);
  EXPECT_EQ(window.capacity(), 2u);
  EXPECT_EQ(window.mean(), 0.0);
  window.push(8.0);
  EXPECT_EQ(window.samples(), std::vector<double>{8.0});
}

TEST(QualityWindow, CopiesAreIndependent) {
  quality_window original(3);
  original.push(1.0);
  original.push(2.0);
  quality_window copy = original;
  copy.push(9.0);
  EXPECT_EQ(original.samples(), (std::vector<double>{1.0, 2.0}));
  EXPECT_EQ(copy.samples(), (std::vector<double>{1.0, 2.0, 9.0}));

  quality_window assigned(1);
  assigned = copy;
  EXPECT_EQ(assigned.capacity(), 3u);
  EXPECT_EQ(assigned.samples(), copy.samples());

  const quality_window empty_copy = quality_window(4);
  EXPECT_TRUE(quality_window(empty_copy).empty());
}

TEST(QualityWindow, StaysCompact) {
  // A million resident speakers each hold one: keep the object itself small.
  EXPECT_LE(sizeof(quality_window), 24u);
}

// What the window held before it learnt to keep hundredths in 16 bits: every sample as float.
struct float_ring {
  std::uint32_t capacity;
  std::vector<float> newest_last;
  void push(double x) {
    newest_last.push_back(static_cast<float>(x));
    if (newest_last.size() > capacity) newest_last.erase(newest_last.begin());
  }
  std::vector<double> samples() const { return {newest_last.begin(), newest_last.end()}; }
  double mean() const {
    double sum = 0.0;
    for (float f : newest_last) sum += f;
    return newest_last.empty() ? 0.0 : sum / newest_last.size();
  }
};

TEST(QualityWindow, TwoDecimalRatesTakeTwoBytesAndReadBackAsFloatsWould) {
  quality_window window(50);
  float_ring ring{50, {}};
  EXPECT_EQ(window.heap_bytes(), 0u);
  // Rates as QA types them, 0 to 655.35 with up to two decimals, around the ring twice.
  for (int i = 0; i < 100; ++i) {
    const double rate = (i * 7919 % 65536) / 100.0;
    window.push(rate);
    ring.push(rate);
  }
  window.push(655.35);
  ring.push(655.35);
  EXPECT_EQ(window.heap_bytes(), 100u);
  EXPECT_EQ(window.samples(), ring.samples());
  EXPECT_EQ(window.mean(), ring.mean());
}

TEST(QualityWindow, ARateWithMoreDecimalsWidensToFloatsKeepingTheRing) {
  for (const double odd : {100.0 / 27.0, 655.36, 1e6, 0.001, 2.345}) {
    quality_window window(4);
    float_ring ring{4, {}};
    for (double s : {1.5, 2.25, 3.0, 4.75, 5.5}) {  // wrapped: the oldest slot is not slot 0
      window.push(s);
      ring.push(s);
    }
    ASSERT_EQ(window.heap_bytes(), 8u);
    window.push(odd);
    ring.push(odd);
    EXPECT_EQ(window.heap_bytes(), 16u) << odd;
    EXPECT_EQ(window.samples(), ring.samples()) << odd;
    EXPECT_EQ(window.mean(), ring.mean()) << odd;
    window.push(6.25);  // floats from now on, until the window is rebuilt
    ring.push(6.25);
    EXPECT_EQ(window.samples(), ring.samples()) << odd;
    const quality_window copy = window;
    EXPECT_EQ(copy.samples(), ring.samples()) << odd;
    window.clear();
    window.push(1.0);
    EXPECT_EQ(window.heap_bytes(), 8u) << "a cleared window starts narrow again";
  }
}

TEST(QualityWindow, FromSamplesRoundTripsExactly) {
  quality_window window(4);
  // Values float cannot hold exactly, and a wrapped ring, to catch ordering and precision slips.
  for (double s : {1.1, 2.2, 3.3, 4.4, 5.5, 6.6}) window.push(s);
  const std::vector<double> saved = window.samples();
  const quality_window restored = quality_window::from_samples(window.capacity(), saved);
  EXPECT_EQ(restored.capacity(), 4u);
  EXPECT_EQ(restored.samples(), saved);
  EXPECT_EQ(restored.mean(), window.mean());
  EXPECT_TRUE(restored.full());
}

TEST(QualityWindow, FromSamplesWithSmallerCapacityKeepsTheNewest) {
  const quality_window window =
      quality_window::from_samples(3, std::vector<double>{1.0, 2.0, 3.0, 4.0, 5.0});
  EXPECT_EQ(window.capacity(), 3u);
  EXPECT_EQ(window.samples(), (std::vector<double>{3.0, 4.0, 5.0}));
  EXPECT_TRUE(window.full());
}

TEST(QualityWindow, FromSamplesWithLargerCapacityKeepsAllAndIsPartial) {
  quality_window window = quality_window::from_samples(10, std::vector<double>{1.0, 2.0, 3.0});
  EXPECT_EQ(window.samples(), (std::vector<double>{1.0, 2.0, 3.0}));
  EXPECT_FALSE(window.full());
  window.push(4.0);
  EXPECT_EQ(window.samples().back(), 4.0);
}

TEST(QualityWindow, FromSamplesRejectsBadInput) {
  EXPECT_THROW(quality_window::from_samples(0, {}), std::invalid_argument);
  EXPECT_THROW(quality_window::from_samples(3, {1.0, -2.0}), std::invalid_argument);
  // Even a bad sample that truncation would drop: stored data that is corrupt should be noticed.
  EXPECT_THROW(quality_window::from_samples(1, {std::numeric_limits<double>::quiet_NaN(), 1.0}),
               std::invalid_argument);
}

// ---------------------------------------------------------------- evaluate

TEST(BucketEvaluate, PinnedNeverChanges) {
  const bucket_policy_config config;
  const bucket_decision kept_bad = evaluate(config, bucket::no_touch, full_window_with_mean(30.0), true);
  EXPECT_EQ(kept_bad.next, bucket::no_touch);
  EXPECT_FALSE(kept_bad.changed);
  EXPECT_NE(kept_bad.reason.find("pinned"), std::string::npos) << kept_bad.reason;

  const bucket_decision kept_good = evaluate(config, bucket::high_touch, full_window_with_mean(0.0), true);
  EXPECT_EQ(kept_good.next, bucket::high_touch);
  EXPECT_FALSE(kept_good.changed);
  EXPECT_NE(kept_good.reason.find("pinned"), std::string::npos) << kept_good.reason;
}

TEST(BucketEvaluate, EmptyWindowChangesNothing) {
  const bucket_decision d = evaluate(bucket_policy_config{}, bucket::medium_touch, quality_window(50), false);
  EXPECT_EQ(d.next, bucket::medium_touch);
  EXPECT_FALSE(d.changed);
  EXPECT_FALSE(d.reason.empty());
}

TEST(BucketEvaluate, MeanExactlyAtBandMaxDoesNotDemote) {
  const bucket_policy_config config;
  for (auto [current, max] : {std::pair{bucket::no_touch, 2.0}, std::pair{bucket::low_touch, 5.0},
                              std::pair{bucket::medium_touch, 10.0}}) {
    const bucket_decision d = evaluate(config, current, window_of(50, {max}), false);
    EXPECT_EQ(d.next, current) << to_string(current);
    EXPECT_FALSE(d.changed) << to_string(current);
  }
}

TEST(BucketEvaluate, MeanJustAboveBandMaxDemotesImmediatelyWithPartialWindow) {
  const bucket_policy_config config;
  const bucket_decision d = evaluate(config, bucket::no_touch, window_of(50, {2.01}), false);
  EXPECT_EQ(d.next, bucket::low_touch);
  EXPECT_TRUE(d.changed);
  EXPECT_EQ(d.reason, "demoted: window mean 2.01 > no_touch max 2.00");
}

TEST(BucketEvaluate, DemotionReasonNamesMeanAndMax) {
  const bucket_decision d =
      evaluate(bucket_policy_config{}, bucket::low_touch, window_of(50, {7.4, 7.4}), false);
  EXPECT_EQ(d.next, bucket::medium_touch);
  EXPECT_TRUE(d.changed);
  EXPECT_EQ(d.reason, "demoted: window mean 7.40 > low_touch max 5.00");
}

TEST(BucketEvaluate, DemotionGoesStraightToTheBandOfTheMean) {
  const bucket_decision d = evaluate(bucket_policy_config{}, bucket::no_touch, window_of(50, {12.0}), false);
  EXPECT_EQ(d.next, bucket::high_touch);
  EXPECT_TRUE(d.changed);
}

TEST(BucketEvaluate, HighTouchIsNeverDemoted) {
  const bucket_decision d =
      evaluate(bucket_policy_config{}, bucket::high_touch, full_window_with_mean(80.0), false);
  EXPECT_EQ(d.next, bucket::high_touch);
  EXPECT_FALSE(d.changed);
}

TEST(BucketEvaluate, PromotionOnlyWithAFullWindow) {
  const bucket_policy_config config;
  quality_window window(config.window_size);
  for (std::uint32_t i = 0; i + 1 < config.window_size; ++i) window.push(0.0);
  const bucket_decision partial = evaluate(config, bucket::high_touch, window, false);
  EXPECT_EQ(partial.next, bucket::high_touch);
  EXPECT_FALSE(partial.changed);

  window.push(0.0);
  ASSERT_TRUE(window.full());
  const bucket_decision full = evaluate(config, bucket::high_touch, window, false);
  EXPECT_EQ(full.next, bucket::no_touch);
  EXPECT_TRUE(full.changed);
}

TEST(BucketEvaluate, PromotionReasonNamesWindowMeanMaxAndMargin) {
  const bucket_decision d =
      evaluate(bucket_policy_config{}, bucket::low_touch, full_window_with_mean(1.2), false);
  EXPECT_EQ(d.next, bucket::no_touch);
  EXPECT_EQ(d.reason, "promoted: full window of 50, mean 1.20 <= no_touch max 2.00 - margin 0.50");
}

TEST(BucketEvaluate, PromotionExactlyAtMaxMinusMargin) {
  const bucket_policy_config config;
  struct boundary {
    bucket from, to;
    double limit;
  };
  for (const boundary& b : {boundary{bucket::low_touch, bucket::no_touch, 1.5},
                            boundary{bucket::medium_touch, bucket::low_touch, 4.5},
                            boundary{bucket::high_touch, bucket::medium_touch, 9.5}}) {
    const bucket_decision at = evaluate(config, b.from, full_window_with_mean(b.limit), false);
    EXPECT_EQ(at.next, b.to) << "mean " << b.limit;
    EXPECT_TRUE(at.changed) << "mean " << b.limit;

    const bucket_decision above = evaluate(config, b.from, full_window_with_mean(b.limit + 0.01), false);
    EXPECT_EQ(above.next, b.from) << "mean " << b.limit + 0.01;
    EXPECT_FALSE(above.changed) << "mean " << b.limit + 0.01;
  }
}

TEST(BucketEvaluate, MarginHoldsBackASpeakerInsideTheBetterBand) {
  // Mean 1.8 is inside no_touch, but not by the margin: a low_touch speaker stays, and a no_touch
  // speaker with the same mean is not demoted either (that is the hysteresis).
  const bucket_policy_config config;
  const bucket_decision low = evaluate(config, bucket::low_touch, full_window_with_mean(1.8), false);
  EXPECT_EQ(low.next, bucket::low_touch);
  EXPECT_FALSE(low.changed);
  const bucket_decision no = evaluate(config, bucket::no_touch, full_window_with_mean(1.8), false);
  EXPECT_EQ(no.next, bucket::no_touch);
  EXPECT_FALSE(no.changed);
}

TEST(BucketEvaluate, PromotionSkipsSeveralBandsToTheBestQualifying) {
  const bucket_policy_config config;
  EXPECT_EQ(evaluate(config, bucket::high_touch, full_window_with_mean(4.0), false).next,
            bucket::low_touch);
  EXPECT_EQ(evaluate(config, bucket::high_touch, full_window_with_mean(1.0), false).next,
            bucket::no_touch);
  EXPECT_EQ(evaluate(config, bucket::medium_touch, full_window_with_mean(1.0), false).next,
            bucket::no_touch);
  // Inside low_touch's margin but not no_touch's: stops at low_touch.
  EXPECT_EQ(evaluate(config, bucket::high_touch, full_window_with_mean(1.9), false).next,
            bucket::low_touch);
}

TEST(BucketEvaluate, ZeroMarginPromotesAtTheBandMaxItself) {
  bucket_policy_config config;
  config.promotion_margin = 0.0;
  EXPECT_EQ(evaluate(config, bucket::low_touch, full_window_with_mean(2.0), false).next,
            bucket::no_touch);
  EXPECT_EQ(evaluate(config, bucket::low_touch, full_window_with_mean(2.01), false).next,
            bucket::low_touch);
}

TEST(BucketEvaluate, FloatStorageDoesNotMoveTheBoundary) {
  // 2.3 - 0.1 is 2.1999999999999997 as a double, and 2.2 stored as float reads back as 2.2000000477:
  // a speaker whose every job scored 2.2 must still count as exactly on the limit.
  bucket_policy_config config;
  config.bands = {2.3, 5.0, 10.0};
  config.promotion_margin = 0.1;
  const bucket_decision d = evaluate(config, bucket::low_touch, full_window_with_mean(2.2), false);
  EXPECT_EQ(d.next, bucket::no_touch);

  config.bands = {2.2, 5.0, 10.0};
  const bucket_decision stay = evaluate(config, bucket::no_touch, window_of(50, {2.2}), false);
  EXPECT_EQ(stay.next, bucket::no_touch);
  EXPECT_FALSE(stay.changed);
}

TEST(BucketEvaluate, UsesConfiguredBandsAndWindow) {
  bucket_policy_config config;
  config.bands = {1.0, 3.0, 6.0};
  config.window_size = 3;
  config.promotion_margin = 0.25;
  const quality_window window = window_of(3, {0.5, 0.75, 1.0});  // mean 0.75 = 1.0 - 0.25
  const bucket_decision d = evaluate(config, bucket::high_touch, window, false);
  EXPECT_EQ(d.next, bucket::no_touch);
  EXPECT_EQ(d.reason, "promoted: full window of 3, mean 0.75 <= no_touch max 1.00 - margin 0.25");
}

TEST(BucketEvaluate, InvalidConfigOrBucketThrows) {
  bucket_policy_config config;
  config.bands = {5.0, 2.0, 10.0};
  EXPECT_THROW(evaluate(config, bucket::low_touch, window_of(50, {1.0}), false),
               std::invalid_argument);
  EXPECT_THROW(evaluate(bucket_policy_config{}, static_cast<bucket>(4), window_of(50, {1.0}), false),
               std::invalid_argument);
}

TEST(BucketEvaluate, ASpeakerHoveringAtTheLimitDoesNotFlap) {
  // Drive a speaker job by job as the actor would: push, evaluate, apply.
  bucket_policy_config config;
  config.window_size = 4;
  quality_window window(config.window_size);
  bucket current = bucket::low_touch;
  std::vector<bucket> history;
  int changes = 0;
  for (double rate : {1.5, 1.5, 1.5, 1.5,     // full window at the promotion limit: promoted
                      1.9, 2.0, 2.0, 2.0,     // drifts up to the band max: stays no_touch
                      2.4,                    // mean 2.1: demoted
                      1.6, 1.6, 1.6, 1.6}) {  // back inside no_touch but not by the margin: stays
    window.push(rate);
    const bucket_decision d = evaluate(config, current, window, false);
    if (d.changed) ++changes;
    current = d.next;
    history.push_back(current);
  }
  const std::vector<bucket> expected{
      bucket::low_touch, bucket::low_touch, bucket::low_touch, bucket::no_touch,
      bucket::no_touch,  bucket::no_touch,  bucket::no_touch,  bucket::no_touch,
      bucket::low_touch, bucket::low_touch, bucket::low_touch, bucket::low_touch,
      bucket::low_touch};
  EXPECT_EQ(history, expected);
  EXPECT_EQ(changes, 2);
}

}  // namespace
}  // namespace sbm::speakers
