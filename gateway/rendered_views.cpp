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

// `stamp`: the speaker's, or null for an unstamped view (whose stamp is kept when the view is the
// same: the body still shows that stamp's view).
const rendered_views::entry& rendered_views::put(const speaker_view& view,
                                                 const speaker_stamp* stamp,
                                                 const renderer& render) {
  auto i = entries_.find(view.speaker_id);
  if (i != entries_.end()) {
    const auto& old = *i->second;
    if (fields(old.view) != fields(view))
      i->second = std::make_shared<const entry>(entry{view, render(view), stamp ? *stamp : speaker_stamp{}});
    else if (stamp && old.stamp != *stamp)
      i->second = std::make_shared<const entry>(entry{old.view, old.body, *stamp});
    return *i->second;
  }
  // Full: start again empty rather than track recency per read; the speakers being read now
  // refill it with one render each.
  if (entries_.size() >= capacity_)
    entries_.clear();
  auto made = std::make_shared<const entry>(entry{view, render(view), stamp ? *stamp : speaker_stamp{}});
  return *entries_.emplace(view.speaker_id, std::move(made)).first->second;
}

const std::string& rendered_views::body_of(const speaker_view& view, const renderer& render) {
  return put(view, nullptr, render).body;
}

const rendered_views::entry& rendered_views::remember(const speaker_view& view,
                                                      const speaker_stamp& stamp,
                                                      const renderer& render) {
  return put(view, &stamp, render);
}

std::shared_ptr<const rendered_views::entry> rendered_views::held(const std::string& id) const {
  auto i = entries_.find(id);
  return i == entries_.end() ? nullptr : i->second;
}

const rendered_views::entry* rendered_views::at(const std::string& id,
                                                const speaker_stamp& stamp) const {
  auto i = entries_.find(id);
  if (i == entries_.end() || stamp.activation == 0 || i->second->stamp != stamp)
    return nullptr;
  return i->second.get();
}

}  // namespace sbm::gateway
