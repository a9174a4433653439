#pragma once
// The client id of an active speaker, held once per node. A million active speakers belong to a
// few hundred clients, so each keeps a pointer into this table instead of a string of its own.
// Pure: STL only.
#include <cstddef>
#include <string>
#include <string_view>

namespace sbm::speakers {

// One reference to an interned client id; move-only, so the count is touched only when a speaker
// takes or drops its id (activation, reload, exit), never per message. An entry is freed with its
// last reference, so the table holds only the clients of the speakers alive now. Every table
// operation takes one node-wide mutex: speakers on any thread may intern at once.
class client_id_ref {
 public:
  client_id_ref() = default;  // the empty id, held by no table entry
  explicit client_id_ref(std::string_view id);
  client_id_ref(client_id_ref&& other) noexcept : entry_(other.entry_) { other.entry_ = nullptr; }
  client_id_ref& operator=(client_id_ref&& other) noexcept;
  client_id_ref(const client_id_ref&) = delete;
  client_id_ref& operator=(const client_id_ref&) = delete;
  ~client_id_ref();

  const std::string& str() const;

  struct entry;

 private:
  entry* entry_ = nullptr;
};

// Distinct client ids held now, node-wide (for tests and metrics).
std::size_t interned_client_ids();

}  // namespace sbm::speakers
