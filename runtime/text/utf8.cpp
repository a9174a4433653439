#include "runtime/text/utf8.hpp"

#include <cstddef>
#include <cstdint>

namespace sbm::text {

bool valid_utf8(std::string_view value) {
  std::size_t i = 0;
  const std::size_t n = value.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(value[i]);
    std::size_t extra = 0;
    std::uint32_t code = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      code = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      code = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      code = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= n)
      return false;
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(value[i + k]);
      if ((cc & 0xC0) != 0x80)
        return false;
      code = (code << 6) | (cc & 0x3F);
    }
    // Overlong forms, UTF-16 surrogates and values past U+10FFFF are not UTF-8.
    static constexpr std::uint32_t min_for_length[] = {0, 0x80, 0x800, 0x10000};
    if (code < min_for_length[extra] || (code >= 0xD800 && code <= 0xDFFF) || code > 0x10FFFF)
      return false;
    i += extra + 1;
  }
  return true;
}

}  // namespace sbm::text
