#include "runtime/crypto/siphash.hpp"

#include <openssl/rand.h>

#include <cstring>
#include <stdexcept>

namespace sbm::crypto {

namespace {

constexpr std::uint64_t rotl(std::uint64_t x, int b) {
  return (x << b) | (x >> (64 - b));
}

std::uint64_t load_le(const std::uint8_t* p, std::size_t n) {
  std::uint64_t out = 0;
  for (std::size_t i = 0; i < n; ++i)
    out |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return out;
}

struct state {
  std::uint64_t v0, v1, v2, v3;

  void round() {
    v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);
    v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;
    v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;
    v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);
  }

  void compress(std::uint64_t m) {
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }

  std::uint64_t finish_half() {
    round();
    round();
    round();
    round();
    return v0 ^ v1 ^ v2 ^ v3;
  }
};

}  // namespace

siphash128 siphash_2_4_128(const siphash_key& key, std::string_view data) {
  const auto k0 = load_le(key.data(), 8), k1 = load_le(key.data() + 8, 8);
  state s{0x736f6d6570736575ULL ^ k0, 0x646f72616e646f6dULL ^ k1, 0x6c7967656e657261ULL ^ k0,
          0x7465646279746573ULL ^ k1};
  s.v1 ^= 0xee;  // the 128-bit variant
  const auto* p = reinterpret_cast<const std::uint8_t*>(data.data());
  const std::size_t whole = data.size() / 8 * 8;
  for (std::size_t i = 0; i < whole; i += 8) {
    std::uint64_t m;
    std::memcpy(&m, p + i, 8);  // x86-64 and aarch64 Linux are little-endian
    s.compress(m);
  }
  s.compress(load_le(p + whole, data.size() - whole) |
             (static_cast<std::uint64_t>(data.size() & 0xff) << 56));
  s.v2 ^= 0xee;
  siphash128 out;
  out.low = s.finish_half();
  s.v1 ^= 0xdd;
  out.high = s.finish_half();
  return out;
}

siphash_key random_siphash_key() {
  siphash_key key;
  if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1)
    throw std::runtime_error("no random bytes for a SipHash key");
  return key;
}

}  // namespace sbm::crypto
