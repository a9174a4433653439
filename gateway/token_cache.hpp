#pragma once
// Verified tokens, remembered so a signature is checked once per token rather than once per
// request. Keyed by a 128-bit SipHash of the token under a random key made per cache (a collision
// would let a forged token pass as a cached one: without the key no client can aim for one, and
// unaimed 128-bit collisions do not happen; the token text itself is not kept). SipHash costs
// about a tenth of the SHA-256 it replaced, which ran on the HTTP thread for every request. An entry
// lives until the token's exp: every rule the verifier applies holds for the rest of a token's
// life once it held (signature, issuer, audience, nbf, the maximum lifetime measured from iat or
// from the moment it is presented). A key rotation builds a new verifier and with it a new cache.
// The user's standing (disabled, demoted) is not cached here: the gateway lanes look it up with
// its own short ttl (gateway.user-cache-ttl) on every request.
// Thread-safe (the HTTP threads share it); bounded by `capacity`.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "messages/http.hpp"
#include "runtime/crypto/siphash.hpp"

namespace sbm::gateway {

class token_cache {
 public:
  // capacity 0 turns the cache off.
  explicit token_cache(std::size_t capacity = 10000);

  // The verdict remembered for this token while now < its exp.
  std::optional<token_verdict> find(std::string_view token, std::int64_t now_unix);
  // Remembers a genuine verdict until `expires_at` (unix seconds). When full, the oldest entry goes.
  void remember(std::string_view token, const token_verdict& verdict, std::int64_t expires_at);

  std::size_t size() const;

 private:
  struct entry {
    token_verdict verdict;
    std::int64_t expires_at;
  };
  using key = crypto::siphash128;
  struct key_hash {
    std::size_t operator()(const key& k) const { return static_cast<std::size_t>(k.low); }
  };
  key key_of(std::string_view token) const { return crypto::siphash_2_4_128(secret_, token); }

  std::size_t capacity_;
  const crypto::siphash_key secret_ = crypto::random_siphash_key();
  mutable std::mutex mutex_;
  std::unordered_map<key, entry, key_hash> entries_;
  std::deque<key> order_;  // insertion order, for eviction; may hold keys already gone
};

}  // namespace sbm::gateway
