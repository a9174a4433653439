#include "messages/published_views.hpp"

namespace sbm {

const std::string& published_views::snapshot::body(const renderer& render) const {
  std::call_once(rendered_, [&] { body_ = render(view); });
  return body_;
}

bool published_views::publish(const void* owner, speaker_view view, speaker_stamp stamp) {
  auto made = std::make_shared<const snapshot>(std::move(view), stamp);
  // The old snapshot is released outside the lock: a reader may still hold it.
  snapshot_ptr old;
  const std::string& id = made->view.speaker_id;  // the snapshot outlives the call either way
  std::lock_guard<std::mutex> guard{mutex_};
  auto it = entries_.find(id);
  if (it == entries_.end()) {
    if (entries_.size() >= capacity_)
      return false;
    entries_.emplace(id, entry{owner, made});
    return true;
  }
  it->second.owner = owner;
  old = std::exchange(it->second.current, std::move(made));
  return true;
}

void published_views::withdraw(const std::string& speaker_id, const void* owner) {
  snapshot_ptr old;
  std::lock_guard<std::mutex> guard{mutex_};
  auto it = entries_.find(speaker_id);
  if (it == entries_.end() || it->second.owner != owner)
    return;
  old = std::move(it->second.current);
  entries_.erase(it);
}

published_views::snapshot_ptr published_views::find(const std::string& speaker_id) const {
  std::lock_guard<std::mutex> guard{mutex_};
  auto it = entries_.find(speaker_id);
  return it == entries_.end() ? nullptr : it->second.current;
}

std::size_t published_views::size() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return entries_.size();
}

}  // namespace sbm
