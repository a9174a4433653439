#pragma once
// SipHash-2-4 with a 128-bit output (Aumasson and Bernstein): a keyed hash that is fast for short
// inputs and whose outputs no one without the key can predict or make collide. For tables keyed by
// a secret (the gateway's verified-token cache), where a cryptographic digest per lookup cost more
// than the lookup. Not a MAC for data that leaves the process. Pure.
#include <array>
#include <cstdint>
#include <string_view>

namespace sbm::crypto {

using siphash_key = std::array<std::uint8_t, 16>;

struct siphash128 {
  std::uint64_t low = 0, high = 0;  // the output's bytes 0-7 and 8-15, little-endian
  bool operator==(const siphash128& o) const { return low == o.low && high == o.high; }
};

siphash128 siphash_2_4_128(const siphash_key& key, std::string_view data);

// A key from the operating system's random source (OpenSSL's RAND_bytes); throws
// std::runtime_error when none is available.
siphash_key random_siphash_key();

}  // namespace sbm::crypto
