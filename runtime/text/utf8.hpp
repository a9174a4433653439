#pragma once
// Strict UTF-8 validation (no overlong forms, no surrogates, nothing past U+10FFFF), shared by the
// gateway and by every family that refuses text a peer node or client sends. Pure, no dependencies.
#include <string_view>

namespace sbm::text {
bool valid_utf8(std::string_view value);
}
