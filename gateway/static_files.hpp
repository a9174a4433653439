#pragma once
// The QA console's built files (console/, built by scripts/build into build/console), served by the
// node itself under one mount ("/console"). Everything is read into memory once at start, so a
// request costs a map lookup on the HTTP thread and never touches the disk, and only files that
// were under the directory at start can ever be named: a path cannot climb out of it.
// Pure: no CAF, no RESTinio; the front door turns a lookup into an answer.
#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace sbm::gateway {

// Where the node serves the console.
inline constexpr std::string_view console_mount = "/console";

struct static_file {
  std::string content_type;
  std::string cache_control;
  bool html = false;  // gets the page's security headers
  std::string body;
};

struct static_lookup {
  enum kind_t { outside, found, missing, bad_method } kind = outside;
  const static_file* file = nullptr;  // when found
};

// Most bytes and files one directory may hold, since all of it stays in memory: the console is a
// few hundred KiB.
struct static_limits {
  std::size_t max_bytes = 64u << 20;
  std::size_t max_files = 10000;
};

class static_files {
 public:
  // Reads every regular file under `dir`, recursively (symbolic links are not followed). Throws
  // std::runtime_error naming the problem: not a directory, no index.html, over a limit, unreadable.
  static std::shared_ptr<const static_files> load(const std::filesystem::path& dir,
                                                  std::string mount, static_limits limits = {});

  // For a request's method and path (percent-encoded, without the query): `outside` when the path
  // is not under the mount; the mount itself and "mount/" name index.html. Only GET and HEAD.
  static_lookup lookup(std::string_view method, std::string_view path) const;

  std::size_t size() const { return files_.size(); }
  std::size_t bytes() const { return bytes_; }
  const std::string& mount() const { return mount_; }

 private:
  std::string mount_;
  std::unordered_map<std::string, static_file> files_;  // by path relative to the directory
  std::size_t bytes_ = 0;
};

// By file name extension; application/octet-stream for anything unknown.
std::string_view content_type_of(std::string_view name);

}  // namespace sbm::gateway
