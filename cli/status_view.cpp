#include "cli/status_view.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <vector>

namespace sbm::cli {

namespace {

using row = std::vector<std::string>;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string heading(std::string key) {
  if (ends_with(key, "_ms"))
    key.resize(key.size() - 3);
  for (auto& c : key)
    c = c == '_' ? ' ' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return key;
}

// 950ms, 12.5s, 3m07s, 2h05m: what an operator reads at a glance.
std::string duration_text(double ms) {
  char out[32];
  if (ms < 0)
    return "-";
  if (ms < 1000)
    std::snprintf(out, sizeof out, "%.0fms", ms);
  else if (ms < 60'000)
    std::snprintf(out, sizeof out, "%.1fs", ms / 1000);
  else if (ms < 3'600'000)
    std::snprintf(out, sizeof out, "%dm%02ds", static_cast<int>(ms / 60'000),
                  static_cast<int>(ms / 1000) % 60);
  else
    std::snprintf(out, sizeof out, "%dh%02dm", static_cast<int>(ms / 3'600'000),
                  static_cast<int>(ms / 60'000) % 60);
  return out;
}

std::string scalar_text(const status_document& v, const std::string& key = {}) {
  if (v.is_null())
    return "-";
  if (v.is_boolean())
    return v.get<bool>() ? "yes" : "no";
  if (v.is_number() && ends_with(key, "_ms"))
    return duration_text(v.get<double>());
  if (v.is_number_float()) {
    char out[32];
    std::snprintf(out, sizeof out, "%.1f", v.get<double>());
    return out;
  }
  if (v.is_string())
    return v.get<std::string>();
  if (v.is_array() && std::all_of(v.begin(), v.end(), [](const auto& e) { return e.is_primitive(); })) {
    std::string out;
    for (const auto& e : v)
      out += (out.empty() ? "" : ",") + scalar_text(e);
    return out.empty() ? "-" : out;
  }
  return v.dump();
}

// A nested object's scalars become dotted columns ("window.size"), so a row stays one line.
void flatten(const status_document& obj, const std::string& prefix, std::vector<std::pair<std::string, std::string>>& out) {
  for (const auto& [k, v] : obj.items()) {
    const auto name = prefix.empty() ? k : prefix + "." + k;
    if (v.is_object() && !v.empty())
      flatten(v, name, out);
    else
      out.emplace_back(name, scalar_text(v, k));
  }
}

void table(std::string& out, const std::vector<row>& rows) {
  std::vector<std::size_t> width;
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i)
        width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  for (const auto& r : rows) {
    std::string line = " ";
    for (std::size_t i = 0; i < r.size(); ++i) {
      line += ' ';
      line += r[i];
      if (i + 1 < r.size())
        line.append(width[i] - r[i].size() + 1, ' ');
    }
    while (!line.empty() && line.back() == ' ')
      line.pop_back();
    out += line + "\n";
  }
}

// Rows of objects: the union of their (flattened) keys as columns, in first-seen order.
void object_rows(std::string& out, const std::vector<std::pair<std::string, const status_document*>>& items,
                 const std::string& name_column) {
  std::vector<std::string> columns;
  std::vector<std::vector<std::pair<std::string, std::string>>> cells;
  for (const auto& [name, obj] : items) {
    std::vector<std::pair<std::string, std::string>> c;
    if (!name_column.empty())
      c.emplace_back(name_column, name);
    flatten(*obj, "", c);
    for (const auto& [k, v] : c)
      if (std::find(columns.begin(), columns.end(), k) == columns.end())
        columns.push_back(k);
    cells.push_back(std::move(c));
  }
  std::vector<row> rows;
  row head;
  for (const auto& c : columns)
    head.push_back(heading(c));
  rows.push_back(head);
  for (const auto& c : cells) {
    row r;
    for (const auto& col : columns) {
      auto it = std::find_if(c.begin(), c.end(), [&](const auto& kv) { return kv.first == col; });
      r.push_back(it == c.end() ? "" : it->second);
    }
    rows.push_back(std::move(r));
  }
  table(out, rows);
}

bool all_objects(const status_document& v) {
  return !v.empty() && std::all_of(v.begin(), v.end(), [](const auto& e) { return e.is_object(); });
}

// A list of records (an array of objects, or an object of named objects), drawn as a table.
bool record_table(std::string& out, const status_document& v) {
  if (!(v.is_array() || v.is_object()) || !all_objects(v))
    return false;
  std::vector<std::pair<std::string, const status_document*>> items;
  if (v.is_object()) {
    for (const auto& [k, e] : v.items())
      items.emplace_back(k, &e);
  } else {
    for (const auto& e : v)
      items.emplace_back(std::string{}, &e);
  }
  object_rows(out, items, v.is_object() ? "name" : "");
  return true;
}

void generic_section(std::string& out, const status_document& v) {
  if (record_table(out, v))
    return;
  if (!v.is_object()) {
    out += "  " + (v.is_array() && v.empty() ? std::string{"(none)"} : scalar_text(v)) + "\n";
    return;
  }
  // Plain values as "key: value" lines; a list of records inside gets a table of its own.
  std::vector<std::pair<std::string, std::string>> pairs;
  std::vector<std::pair<std::string, const status_document*>> tables;
  for (const auto& [k, e] : v.items()) {
    if ((e.is_array() || e.is_object()) && all_objects(e))
      tables.emplace_back(k, &e);
    else if (e.is_object() && !e.empty())
      flatten(e, k, pairs);
    else
      pairs.emplace_back(k, scalar_text(e, k));
  }
  std::vector<row> rows;
  for (auto& [k, text] : pairs)
    rows.push_back({k + ":", text});
  table(out, rows);
  for (const auto& [k, e] : tables) {
    out += "  " + k + ":\n";
    record_table(out, *e);
  }
}

std::string text_of(const status_document& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? "" : scalar_text(*it, key);
}

void dependencies_section(std::string& out, const status_document& deps) {
  if (!deps.is_array())
    return generic_section(out, deps);
  std::vector<row> rows{{"NAME", "REQUIRED", "UP", "STATE", "DETAIL"}};
  for (const auto& d : deps)
    rows.push_back({text_of(d, "name"), text_of(d, "required"), text_of(d, "up"), text_of(d, "state"),
                    text_of(d, "detail")});
  table(out, rows);

  std::vector<row> breakers{{"NAME", "STATE", "CALLS", "FAILED", "SLOW", "FAILED %", "REFUSED", "RETRIES",
                             "TRANSITIONS", "RETRY IN", "LAST CHANGE"}};
  for (const auto& d : deps) {
    auto b = d.find("breaker");
    if (b == d.end() || !b->is_object())
      continue;
    const bool open = text_of(*b, "state") == "open";
    std::string last = "-";
    if (auto l = b->find("last_transition"); l != b->end() && l->is_object())
      last = text_of(*l, "from") + " -> " + text_of(*l, "to") + ", " +
             duration_text(l->value("ms_ago", -1.0)) + " ago";
    breakers.push_back({text_of(d, "name"), text_of(*b, "state"), text_of(*b, "calls"), text_of(*b, "failures"),
                        text_of(*b, "slow_calls"), text_of(*b, "failure_rate"), text_of(*b, "refused"),
                        text_of(*b, "retries"), text_of(*b, "transitions"),
                        open ? text_of(*b, "retry_in_ms") : "-", last});
  }
  if (breakers.size() > 1) {
    out += "\nBREAKERS\n";
    table(out, breakers);
  }
}

}  // namespace

std::optional<bool> node_ready(const status_document& doc) {
  if (!doc.is_object())
    return std::nullopt;
  auto node = doc.find("node");
  if (node == doc.end() || !node->is_object())
    return std::nullopt;
  auto ready = node->find("ready");
  if (ready == node->end() || !ready->is_boolean())
    return std::nullopt;
  return ready->get<bool>();
}

std::string render_cluster(const status_document& doc) {
  if (!doc.is_object())
    return render_status(doc);
  status_document part = status_document::object();
  for (const char* key : {"node", "cluster"})
    if (doc.contains(key))
      part[key] = doc.at(key);
  return render_status(part);
}

std::string render_status(const status_document& doc) {
  std::string out;
  if (!doc.is_object())
    return doc.dump(2) + "\n";
  std::vector<std::string> order;
  for (const char* first : {"node", "dependencies"})
    if (doc.contains(first))
      order.emplace_back(first);
  for (const auto& [k, v] : doc.items())
    if (std::find(order.begin(), order.end(), k) == order.end())
      order.push_back(k);
  for (const auto& key : order) {
    if (!out.empty())
      out += "\n";
    out += heading(key) + "\n";
    const auto& v = doc.at(key);
    if (key == "dependencies") {
      dependencies_section(out, v);
    } else if (key == "node" && v.is_object()) {
      // The node sends its keys sorted; its state reads first.
      status_document node;
      for (const char* first : {"status", "ready", "draining", "version"})
        if (v.contains(first))
          node[first] = v.at(first);
      for (const auto& [k, e] : v.items())
        if (!node.contains(k))
          node[k] = e;
      generic_section(out, node);
    } else {
      generic_section(out, v);
    }
  }
  return out;
}

}  // namespace sbm::cli
