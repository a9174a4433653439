#include "gateway/timestamps.hpp"

#include <gtest/gtest.h>

using sbm::gateway::format_timestamp_ms;
using sbm::gateway::parse_timestamp_ms;

TEST(Timestamps, ParsesUtcAndOffsets) {
  EXPECT_EQ(parse_timestamp_ms("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_timestamp_ms("2026-11-24T10:15:00Z"), 1795515300000);
  EXPECT_EQ(parse_timestamp_ms("2026-11-24T11:15:00+01:00"), 1795515300000);
  EXPECT_EQ(parse_timestamp_ms("2026-11-24T05:45:00-04:30"), 1795515300000);
  EXPECT_EQ(parse_timestamp_ms("1969-12-31T23:59:59.999Z"), -1);
}

TEST(Timestamps, FractionsKeepMillisecondsOnly) {
  EXPECT_EQ(parse_timestamp_ms("1970-01-01T00:00:01.5Z"), 1500);
  EXPECT_EQ(parse_timestamp_ms("1970-01-01T00:00:01.123Z"), 1123);
  EXPECT_EQ(parse_timestamp_ms("1970-01-01T00:00:01.123999999Z"), 1123);
  EXPECT_FALSE(parse_timestamp_ms("1970-01-01T00:00:01.1234567890Z"));
  EXPECT_FALSE(parse_timestamp_ms("1970-01-01T00:00:01.Z"));
}

TEST(Timestamps, DateOnlyIsMidnightUtc) {
  EXPECT_EQ(parse_timestamp_ms("2000-03-01"), 951868800000);
  EXPECT_EQ(parse_timestamp_ms("2024-02-29"), 1709164800000);
}

TEST(Timestamps, RefusesImpossibleAndSloppyValues) {
  for (const char* bad : {"", "2026", "2026-11", "2026-13-01", "2026-00-10", "2026-02-29",
                          "2023-02-29", "1900-02-29", "0000-01-01", "2026-11-31", "2026-11-24T24:00:00Z",
                          "2026-11-24T10:60:00Z", "2026-11-24T10:15:60Z", "2026-11-24T10:15:00",
                          "2026-11-24 10:15:00Z", "2026-11-24t10:15:00Z", "2026-11-24T10:15Z",
                          "2026-11-24T10:15:00+0100", "2026-11-24T10:15:00+24:00",
                          "2026-11-24T10:15:00Zjunk", " 2026-11-24", "2026-11-24\n", "+2026-11-24",
                          "2026-1-24", "20261124", "2026-11-24T10:15:00z", "2026-11-24T1:15:00Z",
                          "'; DROP TABLE users.audit_log; --", "now", "infinity", "-infinity",
                          "epoch"})
    EXPECT_FALSE(parse_timestamp_ms(bad)) << bad;
  EXPECT_FALSE(parse_timestamp_ms(std::string_view{"2026-11-24\0", 11}));
}

TEST(Timestamps, FormatsAsUtcWithMilliseconds) {
  EXPECT_EQ(format_timestamp_ms(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_timestamp_ms(1795515300123), "2026-11-24T10:15:00.123Z");
  EXPECT_EQ(format_timestamp_ms(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(format_timestamp_ms(253402300799999), "9999-12-31T23:59:59.999Z");
  EXPECT_EQ(format_timestamp_ms(253402300800000), "10000-01-01T00:00:00.000Z");
}

TEST(Timestamps, FormatAndParseRoundTrip) {
  for (std::int64_t ms : {0LL, 1LL, 951782400000LL, 1709164800001LL, 253402300799999LL,
                          -62135596800000LL, 1795515300123LL}) {
    auto text = format_timestamp_ms(ms);
    EXPECT_EQ(parse_timestamp_ms(text), ms) << text;
  }
}
