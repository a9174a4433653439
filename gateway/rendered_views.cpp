#include "gateway/rendered_views.hpp"

#include <tuple>

namespace sbm::gateway {

namespace {

#if defined(__x86_64__) && defined(__GLIBCXX__)
// A field added to speaker_view and missing below would let a changed view be served stale.
static_assert(sizeof(speaker_view) == 256, "speaker_view changed: compare its new field in fields()");
#endif

auto fields(const speaker_view& v) {
  return std::tie(v.speaker_id, v.client_id, v.display_name, v.bucket, v.pinned, v.pin_reason,
                  v.pinned_by, v.pinned_at_ms, v.window_size, v.window_capacity, v.window_mean,
                  v.samples_total, v.bucket_changes, v.created_at_ms, v.updated_at_ms);
}

}  // namespace

const std::string& rendered_views::body_of(
  const speaker_view& view, const std::function<std::string(const speaker_view&)>& render) {
  auto i = entries_.find(view.speaker_id);
  if (i != entries_.end()) {
    if (fields(i->second.view) != fields(view)) {
      i->second.view = view;
      i->second.body = render(view);
    }
    return i->second.body;
  }
  // Full: start again empty rather than track recency per read; the speakers being read now
  // refill it with one render each.
  if (entries_.size() >= capacity_)
    entries_.clear();
  return entries_.emplace(view.speaker_id, entry{view, render(view)}).first->second.body;
}

}  // namespace sbm::gateway
