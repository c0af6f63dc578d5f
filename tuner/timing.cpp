#include "tuner/timing.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <memory>

#include "runtime/error.hpp"

namespace nsajit {

double median_of(std::vector<double> values) {
  if (values.empty()) fail(ErrorCode::internal, "taking a median", "tuner/timing", "no samples");
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

std::vector<double> medians_of_alternating_rounds(std::size_t count, int rounds,
                                                  const std::function<double(std::size_t)>& time) {
  std::vector<std::vector<double>> samples(count);
  for (int round = 0; round < rounds; ++round)
    for (std::size_t i = 0; i < count; ++i) {
      const std::size_t k = round % 2 == 0 ? i : count - 1 - i;
      samples[k].push_back(time(k));
    }
  std::vector<double> medians;
  medians.reserve(count);
  for (auto& s : samples) medians.push_back(median_of(std::move(s)));
  return medians;
}

TimingStats time_launches(Device& device, void* stream, const TimingOptions& options,
                          const std::function<void(int rep)>& launch) {
  if (options.reps < 1 || options.warmup < 0)
    fail(ErrorCode::invalid_argument, "timing a launch", "tuner/timing",
         fmt::format("reps must be >= 1 and warmup >= 0, got reps {} warmup {}", options.reps,
                     options.warmup));
  int rep = 0;
  for (int i = 0; i < options.warmup; ++i) launch(rep++);

  std::vector<std::unique_ptr<Event>> events;
  events.reserve(static_cast<std::size_t>(options.reps) + 1);
  for (int i = 0; i <= options.reps; ++i) events.push_back(device.create_event());

  if (options.hold) options.hold(stream);
  events[0]->record(stream);
  for (int i = 0; i < options.reps; ++i) {
    launch(rep++);
    events[static_cast<std::size_t>(i) + 1]->record(stream);
  }
  events.back()->synchronize();

  TimingStats s;
  s.reps = options.reps;
  s.samples_ms.reserve(static_cast<std::size_t>(options.reps));
  for (int i = 0; i < options.reps; ++i)
    s.samples_ms.push_back(
        events[static_cast<std::size_t>(i) + 1]->elapsed_ms_since(*events[static_cast<std::size_t>(i)]));
  s.median_ms = median_of(s.samples_ms);
  const auto [lo, hi] = std::minmax_element(s.samples_ms.begin(), s.samples_ms.end());
  s.min_ms = *lo;
  s.max_ms = *hi;
  return s;
}

double median_ms(Device& device, void* stream, int warmup, int reps, const std::function<void()>& launch) {
  TimingOptions o;
  o.warmup = warmup;
  o.reps = reps;
  return time_launches(device, stream, o, [&](int) { launch(); }).median_ms;
}

}  // namespace nsajit
