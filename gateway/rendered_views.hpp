#pragma once
// The JSON body a lane last rendered for each speaker, reused while the speaker is unchanged: a
// speaker is read far more often than it is written, and rendering its view was the largest part
// of the cost of GET /v1/speakers/{id} (a callgrind profile: ~45k of ~120k instructions).
// "Unchanged" is known two ways. A view that came without a stamp (a write's answer, a read
// through the shard) is compared whole with the remembered one. A read sent straight to the
// speaker names the stamp of the remembered body, and the speaker answers with a view only when
// its stamp (activation, loads, row version) is another: any change of state moves the stamp, so
// a stale body is never served either way. Each lane owns its own (actors share no memory);
// bounded by `capacity` entries. An entry never changes once made (a change makes a new one), so
// a read in flight (direct_reads) may hold one while the lane moves on.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "messages/speakers.hpp"

namespace sbm::gateway {

class rendered_views {
 public:
  using renderer = std::function<std::string(const speaker_view&)>;

  struct entry {
    speaker_view view;
    std::string body;
    speaker_stamp stamp;  // none when the view came unstamped
  };

  explicit rendered_views(std::size_t capacity) : capacity_(capacity) {}

  // The body for exactly `view`: the remembered one when the view is the same, else
  // `render(view)`, remembered for next time.
  const std::string& body_of(const speaker_view& view, const renderer& render);

  // The view the speaker stamped `stamp`: rendered unless it equals the remembered one, and
  // remembered with its stamp.
  const entry& remember(const speaker_view& view, const speaker_stamp& stamp,
                        const renderer& render);

  // What is remembered for speaker `id` (null: nothing), stamped or not.
  std::shared_ptr<const entry> held(const std::string& id) const;

  // What is remembered for speaker `id` at exactly `stamp`, or null (forgotten meanwhile).
  const entry* at(const std::string& id, const speaker_stamp& stamp) const;

  std::size_t size() const { return entries_.size(); }
  std::size_t capacity() const { return capacity_; }

 private:
  const entry& put(const speaker_view& view, const speaker_stamp* stamp, const renderer& render);

  std::size_t capacity_;
  std::unordered_map<std::string, std::shared_ptr<const entry>> entries_;
};

}  // namespace sbm::gateway
