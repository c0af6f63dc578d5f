// The bench's host side without a GPU: DESIGN.md §5 formulas, the standard shapes, the table
// and JSON, the timing arithmetic (on a fake device with a scripted clock), launch geometry,
// and the bench kernels' source (rendered, and compiled with NVRTC for sm_90a when present).
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <set>
#include <sstream>

#include "runtime/error.hpp"
#include "tuner/bench_kernels.hpp"
#include "tuner/bench_sparse_mla.hpp"
#include "tuner/timing.hpp"

namespace nsajit {
namespace {

// A device whose events read a clock that the test's launches advance.
struct FakeClock {
  double now_ms = 0;
  std::vector<std::string> log;
};

class FakeEvent final : public Event {
 public:
  explicit FakeEvent(FakeClock& c) : clock_(c) {}
  void record(void*) override {
    at_ = clock_.now_ms;
    clock_.log.push_back("event");
  }
  void synchronize() override {}
  float elapsed_ms_since(const Event& start) const override {
    return static_cast<float>(at_ - static_cast<const FakeEvent&>(start).at_);
  }

 private:
  FakeClock& clock_;
  double at_ = -1;
};

class FakeDevice final : public Device {
 public:
  explicit FakeDevice(FakeClock& c) : clock_(c) {}
  const DeviceInfo& info() const noexcept override { return info_; }
  void make_current() override {}
  std::unique_ptr<Module> load_module(std::span<const std::uint8_t>) override { return nullptr; }
  DeviceMemory allocate(std::size_t) override { return {}; }
  void copy_to_device(void*, const void*, std::size_t) override {}
  void copy_to_host(void*, const void*, std::size_t) override {}
  void fill_bytes(void*, std::uint8_t, std::size_t) override {}
  std::unique_ptr<Stream> create_stream() override { return nullptr; }
  std::unique_ptr<Event> create_event() override { return std::make_unique<FakeEvent>(clock_); }
  void synchronize() override {}
  void set_max_dynamic_shared(const KernelHandle&, int) override {}
  KernelResources kernel_resources(const KernelHandle&) override { return {}; }
  void launch(const KernelHandle&, Dim3, Dim3, unsigned, void*, void**) override {}

 private:
  FakeClock& clock_;
  DeviceInfo info_;
};

BenchRow sample_row(double median_ms, double floor_ms, double peak) {
  TimingStats t;
  t.median_ms = median_ms;
  t.min_ms = median_ms * 0.9;
  t.max_ms = median_ms * 1.2;
  t.reps = 30;
  return make_bench_row(BenchShape{4096, 16, 2048, 32768, 576}, "nsa_fwd_sm90a_x", 1, t, floor_ms,
                        "nsa_bench_gather_d576_u8_nc x1", peak);
}

}  // namespace

TEST_CASE("flops_and_gathered_bytes_follow_design_section_5") {
  const BenchShape s{4096, 16, 2048, 32768, 576};
  CHECK(s.flops() == 2.0 * 4096 * 16 * 2048 * (576 + 512));  // 2 s_q h_q topk (d_qk + d_v)
  CHECK(s.flops() == 292'057'776'128.0);
  CHECK(s.gathered_bytes() == 4096.0 * 2048 * 576 * 2);  // s_q topk d_qk 2
  CHECK(s.gathered_bytes() == 9'663'676'416.0);
  const BenchShape d512{1, 128, 2048, 65536, 512};
  CHECK(d512.flops() == 2.0 * 128 * 2048 * 1024);
  CHECK(s.label() == "s_q=4096 h_q=16 topk=2048 s_kv=32768 d=576");
}

TEST_CASE("standard_shapes_are_the_design_table") {
  const auto shapes = standard_bench_shapes();
  CHECK(shapes.size() == 22);
  std::set<std::string> labels;
  for (const auto& s : shapes) {
    labels.insert(s.label());
    CHECK(s.topk == 2048);
    CHECK(s.d_qk == 576);
  }
  CHECK(labels.size() == shapes.size());
  auto has = [&](long long s_q, int h_q, int s_kv) {
    return labels.count(BenchShape{s_q, h_q, 2048, s_kv, 576}.label()) == 1;
  };
  for (long long s_q : {1024, 4096, 16384})
    for (int h : {16, 32, 64, 128}) CHECK(has(s_q, h, 32768));
  for (long long s_q : {1, 8, 32, 128})
    for (int h : {16, 128}) CHECK(has(s_q, h, 65536));
  CHECK(has(4096, 16, 262144));
  CHECK(has(4096, 128, 262144));
}

TEST_CASE("bench_row_fractions_are_floor_over_time_and_rate_over_peak") {
  const BenchRow r = sample_row(2.0, 1.5, 800.0);
  CHECK(r.floor_fraction == doctest::Approx(0.75));
  CHECK(r.tflops == doctest::Approx(292'057'776'128.0 / 2e-3 / 1e12));      // 146.03
  CHECK(r.gathered_gbps == doctest::Approx(9'663'676'416.0 / 2e-3 / 1e9));  // 4831.8
  CHECK(r.peak_fraction == doctest::Approx(r.tflops / 800.0));
  const BenchRow zero = sample_row(0.0, 1.0, 0.0);  // never divides by zero
  CHECK(zero.tflops == 0.0);
  CHECK(zero.floor_fraction == 0.0);
  CHECK(zero.peak_fraction == 0.0);
}

TEST_CASE("bench_table_has_fixed_columns_and_one_line_per_row") {
  std::vector<BenchRow> rows = {sample_row(2.0, 1.5, 800.0), sample_row(14.25, 1.3, 800.0)};
  rows[1].shape = BenchShape{16384, 128, 2048, 262144, 576};
  BenchContext ctx{"NVIDIA H100 80GB HBM3", MmaPeakResult{1.5, 1e12, 666.7, 528, 8192}};
  const std::string t = format_bench_table(rows, ctx);
  std::vector<std::string> lines;
  std::istringstream in(t);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  REQUIRE(lines.size() == 2 + rows.size() + 1);
  CHECK(lines[0] == "sparse_mla_fwd bench on NVIDIA H100 80GB HBM3: mma.sync peak 666.7 TFLOP/s (1.500 ms)");
  // Every data line lines up with the header: the variant column starts at the same offset.
  const auto variant_col = lines[1].find("variant");
  REQUIRE(variant_col != std::string::npos);
  CHECK(lines[2].find("nsa_fwd_sm90a_x") == variant_col);
  CHECK(lines[3].find("nsa_fwd_sm90a_x") == variant_col);
  CHECK(lines[2].find("   2.0000") != std::string::npos);  // median ms
  CHECK(lines[2].find("   0.750") != std::string::npos);   // of_floor
  CHECK(lines[3].find(" 16384  128  2048  262144  576") == 0);
}

TEST_CASE("bench_json_names_every_column_and_writes_null_for_non_finite") {
  std::vector<BenchRow> rows = {sample_row(2.0, 1.5, 800.0)};
  rows[0].variant = "odd\"name";
  rows[0].floor_ms = std::numeric_limits<double>::infinity();
  rows[0].floor_fraction = std::numeric_limits<double>::quiet_NaN();
  BenchContext ctx{"GPU \\ 0", MmaPeakResult{1.5, 1e12, 666.7, 528, 8192}};
  const std::string j = bench_rows_json(rows, ctx);
  CHECK(j.rfind("{\"device\": \"GPU \\\\ 0\", \"mma_sync_peak_tflops\": 666.7", 0) == 0);
  for (const char* key :
       {"\"s_q\": 4096", "\"h_q\": 16", "\"topk\": 2048", "\"s_kv\": 32768", "\"d_qk\": 576",
        "\"variant\": \"odd\\\"name\"", "\"splits\": 1", "\"median_ms\": 2,", "\"reps\": 30",
        "\"tflops\": 146.029", "\"gather_floor_ms\": null", "\"fraction_of_gather_floor\": null",
        "\"fraction_of_mma_peak\": 0.182536", "\"gathered_gbps\": 4831.84"})
    CHECK_MESSAGE(j.find(key) != std::string::npos, std::string(key) << " missing from " << j);
  CHECK(j.substr(j.size() - 3) == "]}\n");
}

TEST_CASE("median_of_sorts_and_averages_the_middle_pair") {
  CHECK(median_of({3.0, 1.0, 2.0}) == 2.0);
  CHECK(median_of({4.0, 1.0, 3.0, 2.0}) == 2.5);
  CHECK(median_of({7.0}) == 7.0);
  CHECK_THROWS_AS((void)median_of({}), Error);
}

TEST_CASE("alternating_rounds_reverse_the_order_every_other_round_and_take_each_median") {
  std::vector<std::size_t> order;
  int call = 0;
  // Kernel k's time grows with how late in the run it is timed (drift) plus its own cost k.
  const auto medians = medians_of_alternating_rounds(3, 3, [&](std::size_t k) {
    order.push_back(k);
    return static_cast<double>(10 * call++) + static_cast<double>(k);
  });
  CHECK(order == std::vector<std::size_t>{0, 1, 2, 2, 1, 0, 0, 1, 2});
  // Samples: kernel 0 at calls 0, 5, 6 -> {0, 50, 60}; kernel 1 at 1, 4, 7 -> {11, 41, 71};
  // kernel 2 at 2, 3, 8 -> {22, 32, 82}.
  CHECK(medians == std::vector<double>{50.0, 41.0, 32.0});
  CHECK(medians_of_alternating_rounds(0, 3, [](std::size_t) { return 1.0; }).empty());
}

TEST_CASE("time_launches_times_each_rep_between_consecutive_events_after_warmup_and_hold") {
  FakeClock clock;
  FakeDevice device(clock);
  TimingOptions o;
  o.warmup = 2;
  o.reps = 5;
  o.hold = [&](void*) {
    clock.log.push_back("hold");
    clock.now_ms += 100;  // the hold must not be counted in any rep
  };
  std::vector<int> reps_seen;
  const TimingStats s = time_launches(device, nullptr, o, [&](int rep) {
    reps_seen.push_back(rep);
    clock.log.push_back("launch");
    clock.now_ms += 1.0 + rep;  // rep 2..6 are timed: 3, 4, 5, 6, 7 ms
  });
  CHECK(reps_seen == std::vector<int>{0, 1, 2, 3, 4, 5, 6});
  CHECK(s.samples_ms == std::vector<double>{3, 4, 5, 6, 7});
  CHECK(s.median_ms == 5.0);
  CHECK(s.min_ms == 3.0);
  CHECK(s.max_ms == 7.0);
  CHECK(s.reps == 5);
  const std::vector<std::string> expected = {"launch", "launch", "hold",   "event",  "launch",
                                             "event",  "launch", "event",  "launch", "event",
                                             "launch", "event",  "launch", "event"};
  CHECK(clock.log == expected);
  CHECK(median_ms(device, nullptr, 0, 3, [&] { clock.now_ms += 2.0; }) == 2.0);
  o.reps = 0;
  CHECK_THROWS_AS((void)time_launches(device, nullptr, o, [](int) {}), Error);
}

TEST_CASE("gather_floor_splits_fill_the_multiprocessors_only_when_rows_are_few") {
  CHECK(gather_floor_splits(4096, 2048, 576, 132) == 1);
  CHECK(gather_floor_splits(528, 2048, 576, 132) == 1);
  CHECK(gather_floor_splits(128, 2048, 576, 132) == 5);  // ceil(528 / 128)
  CHECK(gather_floor_splits(1, 2048, 576, 132) == 144);  // capped: 2048 * 72 chunks / 1024 per block
  CHECK(gather_floor_splits(1, 8, 576, 132) == 1);       // too little work to split
  CHECK(gather_floor_splits(0, 2048, 576, 132) == 1);
}

TEST_CASE("mma_peak_flop_count_is_exact") {
  CHECK(kFlopsPerMma == 4096.0);  // m16n8k16: 2 * 16 * 8 * 16
  CHECK(mma_peak_flops(528, 8192) == 528.0 * (kMmaPeakBlock / 32) * 8192 * kMmaPeakChains * 4096);
}

TEST_CASE("bench_kernels_render_one_extern_c_kernel_per_name") {
  const BenchKernelsSource r = render_bench_kernels();
  std::set<std::string> names(r.kernel_names.begin(), r.kernel_names.end());
  CHECK(names.size() == r.kernel_names.size());
  CHECK(r.kernel_names.size() == 4 + 2 * gather_floor_configs(576).size());
  for (const auto& n : r.kernel_names) CHECK_MESSAGE(r.source.find(" " + n + "(") != std::string::npos, n);
  for (int d : {576, 512})
    for (const auto& c : gather_floor_configs(d)) {
      CHECK(names.count(c.kernel_name()) == 1);
      CHECK(r.source.find(fmt::format("gather_floor<{}, {}, {}, ", d / 8, kGatherBlock, c.unroll)) !=
            std::string::npos);
    }
  CHECK(GatherFloorConfig{576, 8, "cg"}.kernel_name() == "nsa_bench_gather_d576_u8_cg");
  CHECK(r.source.find("#include \"bench/bench_kernels.cuh\"") != std::string::npos);
  CHECK(r.source.find(fmt::format("mma_peak<{}>", kMmaPeakChains)) != std::string::npos);
  const CompileRequest req = bench_kernels_compile_request("sm_90a");
  CHECK(req.headers.count("bench/bench_kernels.cuh") == 1);
  CHECK(req.headers.count("bench/bench_random.h") == 1);
  CHECK(req.kernel_names == r.kernel_names);
}

TEST_CASE("bench_kernels_compile_with_nvrtc_for_sm90a") {
  const Compiler* nvrtc = cuda_backend().compiler_for("sm_90a");
  if (nvrtc == nullptr) {
    const char* allow = std::getenv("NSAJIT_ALLOW_NO_NVRTC");
    REQUIRE_MESSAGE((allow != nullptr && std::string(allow) == "1"),
                    "NVRTC missing: " << cuda_backend().compiler_unavailable_reason());
    MESSAGE("SKIPPED (NSAJIT_ALLOW_NO_NVRTC=1): " << cuda_backend().compiler_unavailable_reason());
    return;
  }
  const CompileResult result = nvrtc->compile(bench_kernels_compile_request("sm_90a"));
  CHECK(result.binary.size() > 1000);
}

}  // namespace nsajit
