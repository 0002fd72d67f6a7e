#include "runtime/sidecar/metrics/metrics_registry.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace callmesh::metrics {
namespace {

[[noreturn]] void Misuse(const std::string& message) {
  std::cerr << "metrics registry: " << message << std::endl;
  std::abort();
}

bool IsNameChar(char c, bool colon_ok) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (c >= '0' && c <= '9') ||
         (colon_ok && c == ':');
}

bool IsValidName(const std::string& name, bool colon_ok) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) { return IsNameChar(c, colon_ok); });
}

// A sample value: integers exactly, other numbers with full precision, infinities as Prometheus
// spells them.
std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  // The shortest of 15 or 17 significant digits that reads back as the same number.
  const std::string short_form = absl::StrFormat("%.15g", value);
  if (std::strtod(short_form.c_str(), nullptr) == value) return short_form;
  return absl::StrFormat("%.17g", value);
}

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeHelp(const std::string& help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// {a="x",b="y"}, with `extra` (e.g. le="0.5") last; "" when there are no labels at all.
std::string LabelText(const std::vector<std::string>& names, const LabelValues& values,
                      const std::string& extra = "") {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    absl::StrAppend(&out, out.empty() ? "" : ",", names[i], "=\"", EscapeLabelValue(values[i]),
                    "\"");
  }
  if (!extra.empty()) absl::StrAppend(&out, out.empty() ? "" : ",", extra);
  return out.empty() ? "" : absl::StrCat("{", out, "}");
}

void AppendHeader(std::string* out, const std::string& name, const std::string& help,
                  const char* type) {
  absl::StrAppend(out, "# HELP ", name, " ", EscapeHelp(help), "\n# TYPE ", name, " ", type, "\n");
}

}  // namespace

bool IsValidMetricName(const std::string& name) { return IsValidName(name, /*colon_ok=*/true); }

bool IsValidLabelName(const std::string& name) {
  return IsValidName(name, /*colon_ok=*/false) && name.rfind("__", 0) != 0;
}

std::vector<double> LatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

std::vector<double> SizeBuckets() {
  std::vector<double> bounds;
  for (double b = 1; b <= 4096; b *= 2) bounds.push_back(b);
  return bounds;
}

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(bounds), buckets_(new std::atomic<uint64_t>[bounds->size() + 1]) {
  for (size_t i = 0; i <= bounds_->size(); ++i) buckets_[i].store(0);
}

void Histogram::Observe(double value) {
  const size_t bucket =
      std::lower_bound(bounds_->begin(), bounds_->end(), value) - bounds_->begin();
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  double sum = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(sum, sum + value, std::memory_order_relaxed)) {
  }
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot snapshot;
  snapshot.buckets.resize(bounds_->size() + 1);
  for (size_t i = 0; i <= bounds_->size(); ++i) {
    snapshot.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
    snapshot.count += snapshot.buckets[i];
  }
  // Count from the buckets so that a scrape racing an Observe never shows count < +Inf bucket.
  snapshot.sum = sum_.load(std::memory_order_relaxed);
  return snapshot;
}

template <typename Series>
Family<Series>::Family(std::vector<std::string> label_names, size_t max_series,
                       std::vector<double> bounds)
    : label_names_(std::move(label_names)),
      max_series_(std::max<size_t>(max_series, 1)),
      bounds_(std::move(bounds)) {}

template <typename Series>
std::unique_ptr<Series> Family<Series>::NewSeries() {
  if constexpr (std::is_same_v<Series, Histogram>) {
    return std::make_unique<Histogram>(&bounds_);
  } else {
    return std::make_unique<Series>();
  }
}

template <typename Series>
Series* Family<Series>::With(const LabelValues& values) {
  if (values.size() != label_names_.size()) {
    Misuse(
        absl::StrCat("a series needs ", label_names_.size(), " label values, got ", values.size()));
  }
  absl::MutexLock lock(&mu_);
  auto it = series_.find(values);
  if (it != series_.end()) return it->second.get();
  // The overflow series takes the last slot.
  if (series_.size() + 1 >= max_series_ && !label_names_.empty()) {
    overflowed_.fetch_add(1);
    std::unique_ptr<Series>& overflow =
        series_[LabelValues(label_names_.size(), kOverflowLabelValue)];
    if (overflow == nullptr) overflow = NewSeries();
    return overflow.get();
  }
  std::unique_ptr<Series>& series = series_[values];
  series = NewSeries();
  return series.get();
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

struct Registry::Entry {
  std::string name;
  std::string help;
  std::vector<std::string> label_names;
  std::unique_ptr<CounterFamily> counters;
  std::unique_ptr<GaugeFamily> gauges;
  std::unique_ptr<HistogramFamily> histograms;
  // Computed metrics.
  Type computed_type = Type::kGauge;
  std::function<void(const EmitSample&)> collect;
  size_t max_series = kDefaultMaxSeries;

  void Render(std::string* out) const;
};

void Registry::Entry::Render(std::string* out) const {
  if (counters != nullptr) {
    AppendHeader(out, name, help, "counter");
    absl::MutexLock lock(&counters->mu_);
    for (const auto& [values, counter] : counters->series_) {
      absl::StrAppend(out, name, LabelText(label_names, values), " ", counter->value(), "\n");
    }
  } else if (gauges != nullptr) {
    AppendHeader(out, name, help, "gauge");
    absl::MutexLock lock(&gauges->mu_);
    for (const auto& [values, gauge] : gauges->series_) {
      absl::StrAppend(out, name, LabelText(label_names, values), " ", gauge->value(), "\n");
    }
  } else if (histograms != nullptr) {
    AppendHeader(out, name, help, "histogram");
    absl::MutexLock lock(&histograms->mu_);
    const std::vector<double>& bounds = histograms->bounds_;
    for (const auto& [values, histogram] : histograms->series_) {
      const Histogram::Snapshot snapshot = histogram->Read();
      uint64_t cumulative = 0;
      for (size_t i = 0; i <= bounds.size(); ++i) {
        cumulative += snapshot.buckets[i];
        const std::string le = i < bounds.size() ? FormatValue(bounds[i]) : "+Inf";
        absl::StrAppend(out, name, "_bucket",
                        LabelText(label_names, values, absl::StrCat("le=\"", le, "\"")), " ",
                        cumulative, "\n");
      }
      absl::StrAppend(out, name, "_sum", LabelText(label_names, values), " ",
                      FormatValue(snapshot.sum), "\n");
      absl::StrAppend(out, name, "_count", LabelText(label_names, values), " ", snapshot.count,
                      "\n");
    }
  } else {
    AppendHeader(out, name, help, computed_type == Type::kCounter ? "counter" : "gauge");
    std::map<LabelValues, double> samples;
    collect([&](const LabelValues& values, double value) {
      if (values.size() != label_names.size()) {
        Misuse(absl::StrCat(name, ": a sample needs ", label_names.size(), " label values, got ",
                            values.size()));
      }
      if (samples.size() < max_series || samples.count(values) > 0) samples[values] = value;
    });
    for (const auto& [values, value] : samples) {
      absl::StrAppend(out, name, LabelText(label_names, values), " ", FormatValue(value), "\n");
    }
  }
}

Registry::Registry() = default;
Registry::~Registry() = default;

void Registry::Register(std::unique_ptr<Entry> entry) {
  if (!IsValidMetricName(entry->name)) Misuse(absl::StrCat("invalid metric name ", entry->name));
  std::set<std::string> seen;
  for (const std::string& label : entry->label_names) {
    if (!IsValidLabelName(label)) {
      Misuse(absl::StrCat(entry->name, ": invalid label name ", label));
    }
    if (entry->histograms != nullptr && label == "le") {
      Misuse(absl::StrCat(entry->name, ": a histogram cannot have a label named le"));
    }
    if (!seen.insert(label).second) Misuse(absl::StrCat(entry->name, ": label ", label, " twice"));
  }
  absl::MutexLock lock(&mu_);
  for (const auto& existing : entries_) {
    if (existing->name == entry->name) {
      Misuse(absl::StrCat("metric ", entry->name, " registered twice"));
    }
  }
  entries_.push_back(std::move(entry));
}

CounterFamily* Registry::AddCounter(const std::string& name, const std::string& help,
                                    std::vector<std::string> label_names, size_t max_series) {
  auto entry = std::make_unique<Entry>();
  entry->name = name;
  entry->help = help;
  entry->label_names = label_names;
  entry->counters.reset(new CounterFamily(std::move(label_names), max_series));
  CounterFamily* family = entry->counters.get();
  Register(std::move(entry));
  return family;
}

GaugeFamily* Registry::AddGauge(const std::string& name, const std::string& help,
                                std::vector<std::string> label_names, size_t max_series) {
  auto entry = std::make_unique<Entry>();
  entry->name = name;
  entry->help = help;
  entry->label_names = label_names;
  entry->gauges.reset(new GaugeFamily(std::move(label_names), max_series));
  GaugeFamily* family = entry->gauges.get();
  Register(std::move(entry));
  return family;
}

HistogramFamily* Registry::AddHistogram(const std::string& name, const std::string& help,
                                        std::vector<std::string> label_names,
                                        std::vector<double> bounds, size_t max_series) {
  if (bounds.empty()) Misuse(absl::StrCat(name, ": a histogram needs bucket bounds"));
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
      Misuse(absl::StrCat(name, ": bucket bounds must be finite and strictly increasing"));
    }
  }
  auto entry = std::make_unique<Entry>();
  entry->name = name;
  entry->help = help;
  entry->label_names = label_names;
  entry->histograms.reset(
      new HistogramFamily(std::move(label_names), max_series, std::move(bounds)));
  HistogramFamily* family = entry->histograms.get();
  Register(std::move(entry));
  return family;
}

void Registry::AddComputed(const std::string& name, const std::string& help, Type type,
                           std::vector<std::string> label_names,
                           std::function<void(const EmitSample&)> collect, size_t max_series) {
  auto entry = std::make_unique<Entry>();
  entry->name = name;
  entry->help = help;
  entry->label_names = std::move(label_names);
  entry->computed_type = type;
  entry->collect = std::move(collect);
  entry->max_series = max_series;
  Register(std::move(entry));
}

std::string Registry::Render() const {
  std::string out;
  absl::MutexLock lock(&mu_);
  for (const auto& entry : entries_) entry->Render(&out);
  return out;
}

}  // namespace callmesh::metrics
