#include "gateway/static_files.hpp"

#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

#include "gateway/router.hpp"

namespace sbm::gateway {

namespace {

namespace fs = std::filesystem;

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

// Vite names what it emits under assets/ by a hash of the content, so a changed file gets a new
// name: those may be kept for a year; anything else (index.html) is revalidated every time, which
// is how a new build reaches browsers at once.
std::string cache_control_of(std::string_view relative) {
  if (relative.rfind("assets/", 0) == 0)
    return "public, max-age=31536000, immutable";
  return "no-cache";
}

std::string read_whole(const fs::path& p) {
  std::ifstream in{p, std::ios::binary};
  if (!in)
    throw std::runtime_error("cannot read " + p.string());
  std::ostringstream out;
  out << in.rdbuf();
  if (!in && !in.eof())
    throw std::runtime_error("cannot read " + p.string());
  return out.str();
}

}  // namespace

std::string_view content_type_of(std::string_view name) {
  struct entry {
    std::string_view ext, type;
  };
  static const entry types[] = {
    {".html", "text/html; charset=utf-8"},     {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},             {".map", "application/json"},
    {".svg", "image/svg+xml"},                 {".png", "image/png"},
    {".ico", "image/x-icon"},                  {".webp", "image/webp"},
    {".woff2", "font/woff2"},                  {".txt", "text/plain; charset=utf-8"},
    {".webmanifest", "application/manifest+json"},
  };
  for (const auto& t : types)
    if (ends_with(name, t.ext))
      return t.type;
  return "application/octet-stream";
}

std::shared_ptr<const static_files> static_files::load(const fs::path& dir, std::string mount,
                                                       static_limits limits) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw std::runtime_error(dir.string() + " is not a directory");
  auto out = std::make_shared<static_files>();
  out->mount_ = std::move(mount);
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file(ec) || it->is_symlink(ec))
      continue;
    if (out->files_.size() == limits.max_files)
      throw std::runtime_error(dir.string() + " holds more than " + std::to_string(limits.max_files) +
                               " files");
    const auto relative = fs::relative(it->path(), dir, ec).generic_string();
    if (ec)
      break;
    static_file f;
    f.body = read_whole(it->path());
    out->bytes_ += f.body.size();
    if (out->bytes_ > limits.max_bytes)
      throw std::runtime_error(dir.string() + " holds more than " + std::to_string(limits.max_bytes) +
                               " bytes");
    f.content_type = std::string{content_type_of(relative)};
    f.cache_control = cache_control_of(relative);
    f.html = ends_with(relative, ".html");
    out->files_.emplace(relative, std::move(f));
  }
  if (ec)
    throw std::runtime_error("cannot list " + dir.string() + ": " + ec.message());
  if (!out->files_.count("index.html"))
    throw std::runtime_error(dir.string() + " has no index.html (is the console built?)");
  return out;
}

static_lookup static_files::lookup(std::string_view method, std::string_view path) const {
  if (path.compare(0, mount_.size(), mount_) != 0)
    return {};
  auto rest = path.substr(mount_.size());
  if (!rest.empty() && rest.front() != '/')
    return {};  // "/consoles" is not under "/console"
  if (method != "GET" && method != "HEAD")
    return {static_lookup::bad_method, nullptr};
  if (!rest.empty())
    rest.remove_prefix(1);
  std::string relative;
  if (rest.empty()) {
    relative = "index.html";
  } else {
    // Decoded segment by segment; the names were taken from the directory at start, so a
    // segment that could climb ("..") or hide a separator can only miss, and is refused anyway.
    std::string segment;
    while (true) {
      const auto slash = rest.find('/');
      if (!percent_decode(rest.substr(0, slash), segment, false) || segment.empty() ||
          segment == "." || segment == ".." || segment.find_first_of(std::string_view{"/\\\0", 3}) != std::string::npos)
        return {static_lookup::missing, nullptr};
      if (!relative.empty())
        relative += '/';
      relative += segment;
      if (slash == std::string_view::npos)
        break;
      rest.remove_prefix(slash + 1);
    }
  }
  auto it = files_.find(relative);
  if (it == files_.end())
    return {static_lookup::missing, nullptr};
  return {static_lookup::found, &it->second};
}

}  // namespace sbm::gateway
