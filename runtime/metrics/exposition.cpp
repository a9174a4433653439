#include "runtime/metrics/exposition.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace sbm::metrics {

namespace {

// Backslash and line feed escaped always, the double quote only inside a label value.
std::string escape(std::string_view v, bool quote) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (c == '"' && quote)
      out += "\\\"";
    else
      out += c;
  }
  return out;
}

}  // namespace

std::string escape_label_value(std::string_view v) {
  return escape(v, true);
}

std::string escape_help(std::string_view v) {
  return escape(v, false);
}

std::string format_value(double v) {
  if (std::isnan(v))
    return "NaN";
  if (std::isinf(v))
    return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  // The shortest form that reads back as the same double (0.0005, not 0.00050000000000000001).
  char buf[32];
  for (int precision = 15; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v)
      break;
  }
  return buf;
}

namespace {

const char* type_name(metric_type t) {
  switch (t) {
    case metric_type::counter: return "counter";
    case metric_type::gauge: return "gauge";
    case metric_type::histogram: return "histogram";
  }
  return "untyped";
}

void write_labels(std::string& out, const labels& l, const char* extra_name = nullptr,
                  const std::string& extra_value = {}) {
  if (l.empty() && !extra_name)
    return;
  out += '{';
  bool first = true;
  for (const auto& [name, value] : l) {
    if (!first)
      out += ',';
    first = false;
    out += name;
    out += "=\"";
    out += escape_label_value(value);
    out += '"';
  }
  if (extra_name) {
    if (!first)
      out += ',';
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
}

}  // namespace

void exposition::family(std::string_view name, metric_type type, std::string_view help) {
  auto& f = find(name, type == metric_type::histogram);
  f.type = type_name(type);
  f.help = std::string{help};
}

exposition::fam& exposition::find(std::string_view name, bool histogram) {
  auto it = index_.find(name);
  if (it != index_.end())
    return families_[it->second];
  fam f;
  f.name = std::string{name};
  f.type = "untyped";
  f.is_histogram = histogram;
  index_.emplace(f.name, families_.size());
  families_.push_back(std::move(f));
  return families_.back();
}

void exposition::sample(std::string_view name, labels l, double value) {
  find(name, false).lines.push_back(line{std::move(l), value, {}});
}

void exposition::observe(std::string_view name, labels l, const histogram_counts& h) {
  find(name, true).lines.push_back(line{std::move(l), 0, h});
}

std::string exposition::render() const {
  std::string out;
  out.reserve(families_.size() * 256);
  for (const auto& f : families_) {
    if (f.lines.empty())
      continue;
    if (!f.help.empty()) {
      out += "# HELP " + f.name + ' ' + escape_help(f.help) + '\n';
    }
    out += "# TYPE " + f.name + ' ' + f.type + '\n';
    for (const auto& ln : f.lines) {
      if (!f.is_histogram) {
        out += f.name;
        write_labels(out, ln.l);
        out += ' ' + format_value(ln.value) + '\n';
        continue;
      }
      // Buckets are cumulative: each counts every observation at or below its bound.
      std::uint64_t running = 0;
      for (std::size_t i = 0; i < ln.h.bounds.size(); ++i) {
        running += i < ln.h.counts.size() ? ln.h.counts[i] : 0;
        out += f.name + "_bucket";
        write_labels(out, ln.l, "le", format_value(ln.h.bounds[i]));
        out += ' ' + std::to_string(running) + '\n';
      }
      if (ln.h.counts.size() > ln.h.bounds.size())
        running += ln.h.counts[ln.h.bounds.size()];
      out += f.name + "_bucket";
      write_labels(out, ln.l, "le", "+Inf");
      out += ' ' + std::to_string(running) + '\n';
      out += f.name + "_sum";
      write_labels(out, ln.l);
      out += ' ' + format_value(ln.h.sum) + '\n';
      out += f.name + "_count";
      write_labels(out, ln.l);
      out += ' ' + std::to_string(running) + '\n';
    }
  }
  return out;
}

}  // namespace sbm::metrics
