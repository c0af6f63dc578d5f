// Device-event timing of a launch sequence: warm-up, then `reps` timed runs back to back,
// one event between consecutive runs, median / min / max of the per-run times.
#pragma once

#include <functional>
#include <vector>

#include "runtime/backend.hpp"

namespace nsajit {

struct TimingStats {
  double median_ms = 0, min_ms = 0, max_ms = 0;
  int reps = 0;
  std::vector<double> samples_ms;  // in run order
};

struct TimingOptions {
  int warmup = 5;
  int reps = 30;
  // Called on the stream after the warm-up and before the first event, e.g. a spin kernel
  // (BenchKernels::spin) that keeps the device busy while the host queues every timed run:
  // the runs then start back to back and host launch latency stays out of the numbers.
  std::function<void(void* stream)> hold;
};

// The median of the per-rep values; NaN-free input assumed. Throws on an empty input.
[[nodiscard]] double median_of(std::vector<double> values);

// Same-run comparison of `count` kernels whose timings drift with the card's clocks and
// temperature: `rounds` rounds, each timing every kernel once (time(i) -> ms), the order
// reversed every other round; returns each kernel's median over the rounds.
[[nodiscard]] std::vector<double> medians_of_alternating_rounds(
    std::size_t count, int rounds, const std::function<double(std::size_t)>& time);

// Times `launch(rep)` (rep = 0, 1, ... across warm-up and timed runs, so the caller can rotate
// among input sets: launch(rep % sets)). Events e0..e_reps are recorded between the timed
// runs on `stream`; run i takes elapsed(e_i, e_{i+1}). Synchronises the stream at the end.
[[nodiscard]] TimingStats time_launches(Device& device, void* stream, const TimingOptions& options,
                                        const std::function<void(int rep)>& launch);

// The median in milliseconds, no hold (the tuner's short form).
[[nodiscard]] double median_ms(Device& device, void* stream, int warmup, int reps,
                               const std::function<void()>& launch);

}  // namespace nsajit
