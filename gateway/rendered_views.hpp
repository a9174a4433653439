#pragma once
// The JSON body a lane last rendered for each speaker, reused while the speaker is unchanged: a
// speaker is read far more often than it is written, and rendering its view was the largest part
// of the cost of GET /v1/speakers/{id} (a callgrind profile: ~45k of ~120k instructions).
// "Unchanged" is the whole view comparing equal, not a version number, so a stale body can never
// be served. Each lane owns its own (actors share no memory); bounded by `capacity` entries.
#include <cstddef>
#include <functional>
#include <string>
#include <unordered_map>

#include "messages/speakers.hpp"

namespace sbm::gateway {

class rendered_views {
 public:
  explicit rendered_views(std::size_t capacity) : capacity_(capacity) {}

  // The body for exactly `view`: the remembered one when the view is the same, else
  // `render(view)`, remembered for next time.
  const std::string& body_of(const speaker_view& view,
                             const std::function<std::string(const speaker_view&)>& render);

  std::size_t size() const { return entries_.size(); }
  std::size_t capacity() const { return capacity_; }

 private:
  struct entry {
    speaker_view view;
    std::string body;
  };
  std::size_t capacity_;
  std::unordered_map<std::string, entry> entries_;
};

}  // namespace sbm::gateway
