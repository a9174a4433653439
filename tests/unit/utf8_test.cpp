#include <gtest/gtest.h>

#include <string>

#include "runtime/text/utf8.hpp"

using sbm::text::valid_utf8;

TEST(Utf8, AcceptsEveryEncodingLength) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("metoprolol 50 mg"));
  EXPECT_TRUE(valid_utf8("\xC3\xA9"));          // é
  EXPECT_TRUE(valid_utf8("\xE2\x82\xAC"));      // €
  EXPECT_TRUE(valid_utf8("\xF0\x9F\x98\x80"));  // U+1F600
  EXPECT_TRUE(valid_utf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF, the last code point
  EXPECT_TRUE(valid_utf8(std::string("a\0b", 3)));  // NUL is valid UTF-8; callers refuse controls
}

TEST(Utf8, RefusesMalformedSequences) {
  EXPECT_FALSE(valid_utf8("\xFF"));
  EXPECT_FALSE(valid_utf8("\x80"));                  // a lone continuation byte
  EXPECT_FALSE(valid_utf8("\xC3"));                  // truncated at the end
  EXPECT_FALSE(valid_utf8("\xE2\x82"));
  EXPECT_FALSE(valid_utf8("\xC3\x28"));              // bad continuation
  EXPECT_FALSE(valid_utf8("\xC0\xAF"));              // overlong '/', a classic traversal trick
  EXPECT_FALSE(valid_utf8("\xE0\x80\xAF"));          // overlong, 3 bytes
  EXPECT_FALSE(valid_utf8("\xED\xA0\x80"));          // UTF-16 surrogate U+D800
  EXPECT_FALSE(valid_utf8("\xF4\x90\x80\x80"));      // past U+10FFFF
  EXPECT_FALSE(valid_utf8("\xF8\x88\x80\x80\x80"));  // 5-byte forms do not exist
}
