#include "actors/speakers/core/client_ids.hpp"

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace sbm::speakers {

struct client_id_ref::entry {
  std::string text;
  std::uint64_t refs = 0;  // guarded by the table's mutex
};

namespace {

struct table {
  std::mutex mutex;
  // Keyed by a view of the entry's own text: one copy of each id.
  std::unordered_map<std::string_view, std::unique_ptr<client_id_ref::entry>> entries;
};

// Never destroyed: a speaker that ends during static destruction still releases safely.
table& the_table() {
  static table* t = new table;
  return *t;
}

const std::string empty_id;

}  // namespace

client_id_ref::client_id_ref(std::string_view id) {
  if (id.empty()) return;
  table& t = the_table();
  std::lock_guard<std::mutex> lock{t.mutex};
  auto it = t.entries.find(id);
  if (it == t.entries.end()) {
    auto fresh = std::make_unique<entry>();
    fresh->text = std::string(id);
    const std::string_view key = fresh->text;
    it = t.entries.emplace(key, std::move(fresh)).first;
  }
  entry_ = it->second.get();
  ++entry_->refs;
}

client_id_ref& client_id_ref::operator=(client_id_ref&& other) noexcept {
  if (this != &other) {
    client_id_ref dropped{std::move(*this)};
    entry_ = other.entry_;
    other.entry_ = nullptr;
  }
  return *this;
}

client_id_ref::~client_id_ref() {
  if (!entry_) return;
  table& t = the_table();
  std::lock_guard<std::mutex> lock{t.mutex};
  if (--entry_->refs == 0) t.entries.erase(std::string_view{entry_->text});
}

const std::string& client_id_ref::str() const { return entry_ ? entry_->text : empty_id; }

std::size_t interned_client_ids() {
  table& t = the_table();
  std::lock_guard<std::mutex> lock{t.mutex};
  return t.entries.size();
}

}  // namespace sbm::speakers
