#pragma once
// The Prometheus text exposition format 0.0.4: families are declared with their type and help,
// samples added in any order, and render() writes each family's lines together (the format wants
// a family's samples contiguous), histograms as cumulative _bucket lines ending in le="+Inf",
// then _sum and _count. Label values and help are escaped here, so a caller passes raw text.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runtime/metrics/histogram.hpp"

namespace sbm::metrics {

enum class metric_type { counter, gauge, histogram };

using labels = std::vector<std::pair<std::string, std::string>>;

class exposition {
 public:
  // Declares a family. Samples of a family never declared are kept as `untyped` without help, so
  // nothing a component sends is lost silently (and promtool's lint points at the omission).
  void family(std::string_view name, metric_type type, std::string_view help);
  void sample(std::string_view name, labels l, double value);
  void observe(std::string_view name, labels l, const histogram_counts& h);
  // Families in the order they were declared (undeclared ones last), samples in the order added.
  std::string render() const;

 private:
  struct line {
    labels l;
    double value = 0;
    histogram_counts h;
  };
  struct fam {
    std::string name;
    std::string type;
    std::string help;
    bool is_histogram = false;
    std::vector<line> lines;
  };
  fam& find(std::string_view name, bool histogram);
  std::vector<fam> families_;
  std::map<std::string, std::size_t, std::less<>> index_;
};

// Label values: backslash, double quote and line feed escaped. Help: backslash and line feed.
std::string escape_label_value(std::string_view v);
std::string escape_help(std::string_view v);
// A sample value as Prometheus writes one: integers without a fraction, +Inf, -Inf, NaN.
std::string format_value(double v);

}  // namespace sbm::metrics
