#include "gateway/auth/base64url.hpp"

#include <array>
#include <cstdint>

namespace sbm::auth {
namespace {

constexpr std::string_view alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::int8_t not_in_alphabet = -1;

constexpr std::array<std::int8_t, 256> make_decode_table() {
  std::array<std::int8_t, 256> table{};
  for (auto& entry : table) entry = not_in_alphabet;
  for (std::size_t i = 0; i < alphabet.size(); ++i)
    table[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
  return table;
}
constexpr auto decode_table = make_decode_table();

int sextet(char c) { return decode_table[static_cast<unsigned char>(c)]; }

}  // namespace

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t group = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
                                static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8 |
                                static_cast<unsigned char>(bytes[i + 2]);
    out += alphabet[group >> 18 & 63];
    out += alphabet[group >> 12 & 63];
    out += alphabet[group >> 6 & 63];
    out += alphabet[group & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    const std::uint32_t group = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    out += alphabet[group >> 18 & 63];
    out += alphabet[group >> 12 & 63];
  } else if (rest == 2) {
    const std::uint32_t group = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
                                static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out += alphabet[group >> 18 & 63];
    out += alphabet[group >> 12 & 63];
    out += alphabet[group >> 6 & 63];
  }
  return out;
}

bool is_canonical_base64url(std::string_view text) {
  // A single trailing character would carry only 6 of 8 bits: no byte string encodes to it.
  if (text.size() % 4 == 1) return false;
  for (char c : text)
    if (sextet(c) == not_in_alphabet) return false;
  // The bits past the last whole byte must be zero, or "AB" and "AC" would both decode to the
  // same byte: one signature would have several spellings, and a deny-list or audit trail keyed
  // by the token text would be fooled by a respelled copy.
  if (text.size() % 4 == 2) return (sextet(text.back()) & 0x0f) == 0;
  if (text.size() % 4 == 3) return (sextet(text.back()) & 0x03) == 0;
  return true;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  if (!is_canonical_base64url(text)) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    buffer = (buffer << 6 | static_cast<std::uint32_t>(sextet(c))) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>(buffer >> bits & 0xff);
    }
  }
  return out;
}

}  // namespace sbm::auth
