#include "actors/reports/core/fernet.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <climits>
#include <ctime>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using sbm::reports::fernet;
using bytes = std::vector<unsigned char>;

// The fernet/spec test vector (generate.json / verify.json).
constexpr const char* spec_key = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";
constexpr const char* spec_token =
    "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==";
constexpr std::int64_t spec_now = 499162800;  // 1985-10-26T01:20:00-07:00

fernet::iv_bytes spec_iv() {
  fernet::iv_bytes iv;
  for (std::size_t i = 0; i < iv.size(); ++i) iv[i] = static_cast<unsigned char>(i);
  return iv;
}

fernet spec_fernet() {
  auto f = fernet::from_key(spec_key);
  if (!f) throw std::logic_error("spec key refused");
  return *f;
}

// Base64url through OpenSSL's own codec, so the tests do not trust the implementation under test.
std::string to_b64url(const bytes& raw) {
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), raw.data(), static_cast<int>(raw.size()));
  out.resize(static_cast<std::size_t>(n));
  std::replace(out.begin(), out.end(), '+', '-');
  std::replace(out.begin(), out.end(), '/', '_');
  return out;
}

bytes from_b64url(std::string text) {
  std::replace(text.begin(), text.end(), '-', '+');
  std::replace(text.begin(), text.end(), '_', '/');
  bytes out(text.size() / 4 * 3);
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) throw std::invalid_argument("test base64");
  std::size_t size = static_cast<std::size_t>(n);
  if (!text.empty() && text.back() == '=') --size;  // EVP_DecodeBlock counts padding as zero bytes
  if (text.size() > 1 && text[text.size() - 2] == '=') --size;
  out.resize(size);
  return out;
}

// Builds a correctly signed token from raw parts, to reach the checks that come after the HMAC.
std::string forge(const bytes& signed_part) {
  const bytes key = from_b64url(spec_key);
  unsigned char mac[32];
  unsigned int mac_size = 0;
  HMAC(EVP_sha256(), key.data(), 16, signed_part.data(), signed_part.size(), mac, &mac_size);
  bytes token = signed_part;
  token.insert(token.end(), mac, mac + mac_size);
  return to_b64url(token);
}

bytes signed_part_of(const std::string& token) {
  bytes raw = from_b64url(token);
  raw.resize(raw.size() - 32);
  return raw;
}

// AES-128-CBC without padding, to place arbitrary final blocks.
bytes raw_cbc_encrypt(const bytes& plain, const unsigned char* iv) {
  const bytes key = from_b64url(spec_key);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  EVP_EncryptInit_ex(ctx, EVP_aes_128_cbc(), nullptr, key.data() + 16, iv);
  EVP_CIPHER_CTX_set_padding(ctx, 0);
  bytes out(plain.size() + 16);
  int n = 0, m = 0;
  EVP_EncryptUpdate(ctx, out.data(), &n, plain.data(), static_cast<int>(plain.size()));
  EVP_EncryptFinal_ex(ctx, out.data() + n, &m);
  EVP_CIPHER_CTX_free(ctx);
  out.resize(static_cast<std::size_t>(n + m));
  return out;
}

TEST(Fernet, MatchesTheSpecGenerateVector) {
  EXPECT_EQ(spec_fernet().encrypt_with_iv("hello", spec_now, spec_iv()), spec_token);
}

TEST(Fernet, MatchesTheSpecVerifyVector) {
  const auto plain = spec_fernet().decrypt(spec_token, spec_now + 1, 60);
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(*plain, "hello");
}

TEST(Fernet, RoundTripsEdgeSizesAndBinaryContent) {
  const fernet f = *fernet::from_key(fernet::generate_key());
  std::string mib(1 << 20, '\0');
  for (std::size_t i = 0; i < mib.size(); ++i) mib[i] = static_cast<char>((i * 131 + 7) & 0xFF);
  const std::vector<std::string> plaintexts = {
      "",
      "x",
      std::string(15, 'a'),
      std::string(16, 'b'),
      std::string(17, 'c'),
      mib,
      "Patient présente une douleur thoracique — 胸痛 🫀",
      std::string("nul\0in\0the\0middle\0", 19),
      std::string(1, '\0'),
  };
  for (const auto& plain : plaintexts) {
    const std::string token = f.encrypt(plain, 1'700'000'000);
    // 1 version + 8 time + 16 IV + whole PKCS7 blocks + 32 MAC, base64 with padding.
    const std::size_t raw_size = 57 + (plain.size() / 16 + 1) * 16;
    EXPECT_EQ(token.size(), (raw_size + 2) / 3 * 4) << plain.size();
    const auto back = f.decrypt(token);
    ASSERT_TRUE(back.has_value()) << plain.size();
    EXPECT_EQ(*back, plain);
  }
}

TEST(Fernet, TokenCarriesVersionAndBigEndianTimestamp) {
  const fernet f = spec_fernet();
  const std::int64_t now = 0x0102030405060708;
  const bytes raw = from_b64url(f.encrypt("hello", now));
  ASSERT_GE(raw.size(), 9u);
  EXPECT_EQ(raw[0], 0x80);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(raw[1 + i], i + 1);
}

TEST(Fernet, RandomIvMakesEveryTokenDifferent) {
  const fernet f = spec_fernet();
  const std::string a = f.encrypt("same text", spec_now);
  const std::string b = f.encrypt("same text", spec_now);
  EXPECT_NE(a, b);
  EXPECT_EQ(*f.decrypt(a), *f.decrypt(b));
}

TEST(Fernet, NegativeTimestampIsRejectedAtEncryption) {
  EXPECT_THROW(spec_fernet().encrypt("x", -1), std::invalid_argument);
}

TEST(Fernet, GeneratedKeysLookLikePythonsAndDiffer) {
  const std::string a = fernet::generate_key();
  const std::string b = fernet::generate_key();
  EXPECT_EQ(a.size(), 44u);
  EXPECT_EQ(a.back(), '=');
  EXPECT_EQ(a.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_="), std::string::npos);
  EXPECT_NE(a, b);
  EXPECT_TRUE(fernet::from_key(a).has_value());
}

TEST(Fernet, BadKeysAreRefused) {
  const std::string good = spec_key;
  EXPECT_FALSE(fernet::from_key("").has_value());
  EXPECT_FALSE(fernet::from_key(good.substr(0, 43)).has_value());               // padding dropped
  EXPECT_FALSE(fernet::from_key(good + "\n").has_value());                      // caller must trim
  EXPECT_FALSE(fernet::from_key(to_b64url(bytes(31, 1))).has_value());          // too short
  EXPECT_FALSE(fernet::from_key(to_b64url(bytes(33, 1))).has_value());          // too long
  std::string standard_alphabet = good;
  std::replace(standard_alphabet.begin(), standard_alphabet.end(), '_', '/');
  EXPECT_FALSE(fernet::from_key(standard_alphabet).has_value());
  std::string junk = good;
  junk[5] = '%';
  EXPECT_FALSE(fernet::from_key(junk).has_value());
}

TEST(Fernet, EveryAlteredBitOfTheTokenIsRefused) {
  const fernet f = spec_fernet();
  const std::string token = f.encrypt_with_iv(std::string(17, 'q'), spec_now, spec_iv());
  const bytes raw = from_b64url(token);
  ASSERT_EQ(to_b64url(raw), token);
  for (std::size_t i = 0; i < raw.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      bytes tampered = raw;
      tampered[i] ^= static_cast<unsigned char>(1u << bit);
      EXPECT_FALSE(f.decrypt(to_b64url(tampered)).has_value()) << "byte " << i << " bit " << bit;
    }
  }
}

TEST(Fernet, EveryAlteredCharacterOfTheTokenIsRefused) {
  // Includes characters whose low bits are unused by the encoding: non-canonical forms are refused too.
  const fernet f = spec_fernet();
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ %.";
  const std::string token = spec_token;
  for (std::size_t i = 0; i < token.size(); ++i) {
    for (char c : alphabet) {
      if (c == token[i]) continue;
      std::string tampered = token;
      tampered[i] = c;
      EXPECT_FALSE(f.decrypt(tampered).has_value()) << "position " << i << " char " << c;
    }
  }
}

TEST(Fernet, WrongKeyIsRefused) {
  const fernet other = *fernet::from_key(fernet::generate_key());
  EXPECT_FALSE(other.decrypt(spec_token).has_value());
}

TEST(Fernet, BadBase64IsRefused) {
  const fernet f = spec_fernet();
  const std::string token = spec_token;
  EXPECT_FALSE(f.decrypt("").has_value());
  EXPECT_FALSE(f.decrypt("%%%%%%%%").has_value());
  EXPECT_FALSE(f.decrypt(token.substr(0, token.size() - 2)).has_value());  // padding stripped
  EXPECT_FALSE(f.decrypt(token + "==").has_value());
  EXPECT_FALSE(f.decrypt(token + "\n").has_value());
  EXPECT_FALSE(f.decrypt(" " + token).has_value());
  std::string standard_alphabet = token;
  std::replace(standard_alphabet.begin(), standard_alphabet.end(), '_', '/');
  std::replace(standard_alphabet.begin(), standard_alphabet.end(), '-', '+');
  ASSERT_NE(standard_alphabet, token);
  EXPECT_FALSE(f.decrypt(standard_alphabet).has_value());
}

TEST(Fernet, EveryTruncationIsRefused) {
  const fernet f = spec_fernet();
  const std::string token = spec_token;
  for (std::size_t n = 0; n < token.size(); ++n) {
    EXPECT_FALSE(f.decrypt(token.substr(0, n)).has_value()) << n;
  }
  // Whole bytes dropped from the end and re-encoded cleanly, so only the length check can catch it.
  const bytes raw = from_b64url(token);
  for (std::size_t n = 0; n < raw.size(); ++n) {
    EXPECT_FALSE(f.decrypt(to_b64url(bytes(raw.begin(), raw.begin() + static_cast<long>(n)))).has_value()) << n;
  }
}

TEST(Fernet, ForgedTokensShowTheMacIsWhatGuardsIntegrity) {
  // Re-signing a changed IV byte that only alters plaintext (not padding) decrypts, proving the
  // forging helper is sound for the refusals below.
  bytes part = signed_part_of(spec_token);
  part[9] ^= 0x01;  // first IV byte -> first plaintext byte
  const auto plain = spec_fernet().decrypt(forge(part));
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(*plain, "iello");
}

TEST(Fernet, VersionByteOtherThan0x80IsRefusedEvenWhenSigned) {
  for (unsigned char version : {0x00, 0x7F, 0x81, 0xFF}) {
    bytes part = signed_part_of(spec_token);
    part[0] = version;
    EXPECT_FALSE(spec_fernet().decrypt(forge(part)).has_value()) << int(version);
  }
}

TEST(Fernet, BadPaddingIsRefusedEvenWhenSigned) {
  // Last IV byte flipped: the final plaintext byte becomes 0x0a while the others stay 0x0b.
  bytes part = signed_part_of(spec_token);
  part[9 + 15] ^= 0x01;
  EXPECT_FALSE(spec_fernet().decrypt(forge(part)).has_value());

  // A whole block whose last byte is 0 or larger than a block is never valid PKCS7.
  const fernet::iv_bytes iv = spec_iv();
  for (unsigned char last : {0x00, 0x11, 0xFF}) {
    bytes block(16, 0x41);
    block[15] = last;
    const bytes cipher = raw_cbc_encrypt(block, iv.data());
    bytes forged(9 + iv.size() + cipher.size());
    std::copy(part.begin(), part.begin() + 9, forged.begin());
    std::copy(iv.begin(), iv.end(), forged.begin() + 9);
    std::copy(cipher.begin(), cipher.end(), forged.begin() + 9 + static_cast<long>(iv.size()));
    EXPECT_FALSE(spec_fernet().decrypt(forge(forged)).has_value()) << int(last);
  }
}

TEST(Fernet, CiphertextNotAWholeNumberOfBlocksIsRefusedEvenWhenSigned) {
  bytes part = signed_part_of(spec_token);
  part.push_back(0x00);
  EXPECT_FALSE(spec_fernet().decrypt(forge(part)).has_value());
  part.resize(25);  // header only, no ciphertext at all
  EXPECT_FALSE(spec_fernet().decrypt(forge(part)).has_value());
}

TEST(Fernet, TtlFollowsPythonsRules) {
  const fernet f = spec_fernet();
  EXPECT_TRUE(f.decrypt(spec_token, spec_now + 60, 60).has_value());   // timestamp + ttl == now
  EXPECT_FALSE(f.decrypt(spec_token, spec_now + 61, 60).has_value());  // expired
  EXPECT_TRUE(f.decrypt(spec_token, spec_now - 60, 60).has_value());   // 60 s skew allowed
  EXPECT_FALSE(f.decrypt(spec_token, spec_now - 61, 60).has_value());  // far future
  EXPECT_TRUE(f.decrypt(spec_token, spec_now, 0).has_value());
  EXPECT_FALSE(f.decrypt(spec_token, spec_now, -1).has_value());
  // Without a ttl, age and skew do not matter.
  EXPECT_TRUE(f.decrypt(spec_token, spec_now + 1'000'000'000).has_value());
  EXPECT_TRUE(f.decrypt(spec_token, std::int64_t{0}).has_value());
  // Extremes must not overflow into acceptance.
  EXPECT_TRUE(f.decrypt(spec_token, INT64_MAX, INT64_MAX).has_value());
  EXPECT_FALSE(f.decrypt(spec_token, INT64_MAX, 1).has_value());
  EXPECT_FALSE(f.decrypt(spec_token, INT64_MIN, INT64_MAX).has_value());
  // A ttl without now uses the clock: a 1985 token is long expired, a fresh one is not.
  EXPECT_FALSE(f.decrypt(spec_token, std::nullopt, 3600).has_value());
  EXPECT_TRUE(f.decrypt(f.encrypt("fresh", std::time(nullptr)), std::nullopt, 3600).has_value());
}

TEST(Fernet, TimestampBeyondInt64IsFarFuture) {
  bytes part = signed_part_of(spec_token);
  std::fill(part.begin() + 1, part.begin() + 9, 0xFF);
  const std::string token = forge(part);
  EXPECT_TRUE(spec_fernet().decrypt(token).has_value());
  EXPECT_FALSE(spec_fernet().decrypt(token, INT64_MAX, INT64_MAX).has_value());
}

}  // namespace
