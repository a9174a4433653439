#pragma once
// Checks of a request that a proxy in front might read differently from SBM, so SBM refuses them
// instead of guessing, and the client address behind a trusted proxy. Pure and thread-free: the
// HTTP server calls them on its own threads as soon as a request's headers are in.
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sbm::gateway {

using header_list = std::vector<std::pair<std::string, std::string>>;  // names lowercased

// The client-facing reason when the request's framing must be refused (400):
// - no HTTP version (an HTTP/0.9 request line) or a version other than 1.0 and 1.1;
// - HTTP/1.1 without a Host header (RFC 9112 3.2), or more than one Host in any version;
// - more than one Authorization, Content-Type or Content-Length (which one counts is the question
//   a proxy and SBM could answer differently).
std::optional<std::string> framing_problem(unsigned http_major, unsigned http_minor,
                                           const header_list& headers);

// "application/json", optionally with "; charset=utf-8" (case-insensitive, as media types are).
bool is_json_media_type(std::string_view content_type);

// The address the request comes from: the peer itself, unless the peer is a trusted proxy. Then
// it is the rightmost X-Forwarded-For entry that is not itself a trusted proxy (entries to its
// left were written by the client and prove nothing). Several X-Forwarded-For headers count as
// one list, in order. An entry that is not an IP address stops the walk: the address is then the
// last trusted hop's.
std::string client_address(const std::string& peer, const header_list& headers,
                           const std::set<std::string, std::less<>>& trusted_proxies);

// An IPv4 or IPv6 address in its canonical text form, or nullopt when `text` is not one.
std::optional<std::string> canonical_ip(std::string_view text);

}  // namespace sbm::gateway
