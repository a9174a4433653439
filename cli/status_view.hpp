#pragma once
// `sbm status` as a person reads it: the document GET /v1/status answered, one block per section.
// The node, its dependencies and their breakers have tables of their own; any other section
// (queues, cluster membership, ...) is drawn from its shape, so a section the node adds later
// shows up without a change here. Pure: no I/O.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace sbm::cli {

// The document as the node sent it, keys in its order.
using status_document = nlohmann::ordered_json;

std::string render_status(const status_document& doc);

// The node and cluster sections alone (`sbm cluster status`), drawn as render_status draws them.
std::string render_cluster(const status_document& doc);

// node.ready, when the document says.
std::optional<bool> node_ready(const status_document& doc);

}  // namespace sbm::cli
