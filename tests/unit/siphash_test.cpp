// SipHash-2-4-128 against the reference implementation's published vector and against OpenSSL's
// own SipHash (EVP_MAC "SIPHASH", 16-byte output) for every input length that exercises the
// block loop and each tail length.
#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include <string>

#include "runtime/crypto/siphash.hpp"

using namespace sbm::crypto;

namespace {

std::array<std::uint8_t, 16> bytes_of(const siphash128& h) {
  std::array<std::uint8_t, 16> out{};
  for (int i = 0; i < 8; ++i) {
    out[i] = static_cast<std::uint8_t>(h.low >> (8 * i));
    out[8 + i] = static_cast<std::uint8_t>(h.high >> (8 * i));
  }
  return out;
}

std::array<std::uint8_t, 16> openssl_siphash(const siphash_key& key, const std::string& data) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "SIPHASH", nullptr);
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  std::size_t size = 16;
  OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size), OSSL_PARAM_construct_end()};
  std::array<std::uint8_t, 16> out{};
  std::size_t written = 0;
  EXPECT_EQ(EVP_MAC_init(ctx, key.data(), key.size(), params), 1);
  EXPECT_EQ(EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(data.data()), data.size()), 1);
  EXPECT_EQ(EVP_MAC_final(ctx, out.data(), &written, out.size()), 1);
  EXPECT_EQ(written, 16u);
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
  return out;
}

siphash_key counting_key() {
  siphash_key key;
  for (std::size_t i = 0; i < key.size(); ++i)
    key[i] = static_cast<std::uint8_t>(i);
  return key;
}

}  // namespace

TEST(SipHash, MatchesTheReferenceVectorForTheEmptyInput) {
  const std::array<std::uint8_t, 16> expected{0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6,
                                              0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55, 0x02, 0x93};
  EXPECT_EQ(bytes_of(siphash_2_4_128(counting_key(), "")), expected);
}

TEST(SipHash, MatchesOpenSslForEveryLengthUpTo64Bytes) {
  const auto key = random_siphash_key();
  std::string data;
  for (int n = 0; n <= 64; ++n) {
    EXPECT_EQ(bytes_of(siphash_2_4_128(key, data)), openssl_siphash(key, data)) << "length " << n;
    data += static_cast<char>(n * 37 + 11);
  }
}

TEST(SipHash, DependsOnTheKey) {
  auto other = counting_key();
  other[15] ^= 1;
  EXPECT_FALSE(siphash_2_4_128(counting_key(), "a.b.c") == siphash_2_4_128(other, "a.b.c"));
  EXPECT_FALSE(random_siphash_key() == random_siphash_key());
}
