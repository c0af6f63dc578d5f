// The dispatcher's promises (issue 4), on the GPU: a shipped (exported + imported) cache
// serves the first call without compiling; rows for another GPU or older templates are
// ignored with a message and the call still works; bad arguments launch nothing.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>

#include "cache/store.hpp"
#include "generator/compile_request.hpp"
#include "generator/kernel_family.hpp"
#include "generator/template_library.hpp"
#include "runtime/device_identity.hpp"
#include "runtime/dispatch_rule.hpp"
#include "runtime/dispatcher.hpp"
#include "runtime/error.hpp"
#include "tests/gpu/gpu_fixture.hpp"
#include "tuner/sparse_mla_check.hpp"

namespace nsajit {
namespace {

std::filesystem::path temp_dir(const std::string& tag) {
  auto d = std::filesystem::temp_directory_path() / fmt::format("nsajit-{}-{}", tag, getpid());
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

// Writes a winner for topk into `path` as a tune would: h_q 16 -> a, h_q 64 -> b, and with
// `decode16` a decode entry for h_q 16.
void write_winner(const std::filesystem::path& path, Device& device, int topk,
                  const std::string& device_key_text, const std::string& templates,
                  const char* decode16 = nullptr) {
  const Target target = target_from_arch(device.info().arch);
  const Compiler* compiler = test::gpu_backend().compiler_for(target.arch);
  REQUIRE(compiler != nullptr);
  auto store = CacheStore::open(path, OpenMode::read_write);
  DispatchRule rule;
  auto entry = [&](int h_q, const char* name) {
    const Variant v = variant_from_name(fmt::format("nsa_fwd_{}_d576_{}", target.short_name(), name));
    const auto rendered = kernel_family(Family::sparse_mla_fwd).render(v);
    const auto request = make_compile_request(v, rendered);
    const std::string key = binary_key(request, *compiler);
    store.put_binary(
        {key, v.name(), target.arch, compiler->version(), "", compiler->compile(request).binary});
    return RuleEntry{h_q, v.name(), key, 1.0};
  };
  for (auto [h_q, name] : {std::pair{16, "bh16_bt32_w4_st2"}, std::pair{64, "bh32_bt32_w4_st2"}})
    rule.entries.push_back(entry(h_q, name));
  if (decode16 != nullptr) rule.decode_entries.push_back(entry(16, decode16));
  WinnerRecord w;
  w.key = {device_key_text, "sparse_mla_fwd", Geometry{576, 512}.key(), topk};
  w.rule = rule.to_json();
  w.default_variant = rule.entries[0].variant;
  w.template_hash = templates;
  w.arch = target.arch;
  w.tuned_shape = "test";
  store.put_winner(w);
}

DispatcherOptions options_for(const std::filesystem::path& cache) {
  DispatcherOptions o;
  o.cache_path = cache.string();
  o.verbose = false;
  return o;
}

}  // namespace

TEST_CASE("exported_cache_imported_elsewhere_serves_the_first_call_without_compiling") {
  Device& device = test::gpu_device();
  if (device.info().vendor != Vendor::nvidia) return;
  const auto dir = temp_dir("ship");
  write_winner(dir / "tuned.sqlite", device, 300, device_key(device.info()), template_hash());
  {
    auto tuned = CacheStore::open(dir / "tuned.sqlite", OpenMode::read_only);
    tuned.export_to(dir / "deploy.sqlite");
  }
  auto fresh = CacheStore::open(dir / "server.sqlite", OpenMode::read_write);
  fresh.import_from(dir / "deploy.sqlite");
  CHECK(fresh.list_winners() == CacheStore::open(dir / "tuned.sqlite", OpenMode::read_only).list_winners());

  Dispatcher dispatcher(options_for(dir / "server.sqlite"));
  for (auto [h_q, s_q] : {std::pair{16, 5}, std::pair{64, 3}, std::pair{16, 40}, std::pair{32, 2}}) {
    SparseMlaFixture f(
        device, {.label = "ship", .s_q = s_q, .h_q = h_q, .s_kv = 2000, .topk = 300, .invalid_fraction = 0.1},
        static_cast<std::uint64_t>(h_q * 131 + s_q));
    const auto r =
        f.run_and_compare([&](const nsajit_sparse_mla_args& a) { dispatcher.sparse_mla_fwd(a, nullptr); });
    CHECK_MESSAGE(r.ok, r.detail);
  }
  CHECK(dispatcher.compile_count() == 0);  // new s_q and an untuned h_q (32: nearest rule) compile nothing
  bool said_nearest = false;
  for (const auto& n : dispatcher.notices())
    said_nearest |= n.find("h_q 32 was not tuned") != std::string::npos;
  CHECK(said_nearest);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a_rule_decode_entry_serves_calls_that_leave_sms_idle_and_ships_with_the_export") {
  Device& device = test::gpu_device();
  if (device.info().vendor != Vendor::nvidia) return;
  const auto dir = temp_dir("decode");
  write_winner(dir / "tuned.sqlite", device, 303, device_key(device.info()), template_hash(),
               "bh16_bt64_w4_st2");
  CacheStore::open(dir / "tuned.sqlite", OpenMode::read_only).export_to(dir / "deploy.sqlite");
  Dispatcher dispatcher(options_for(dir / "deploy.sqlite"));
  const std::string sm = target_from_arch(device.info().arch).short_name();
  CHECK(dispatcher.sparse_mla_variant_for(576, 303, 16, nullptr, 3).variant.name() ==
        fmt::format("nsa_fwd_{}_d576_bh16_bt64_w4_st2", sm));
  CHECK(dispatcher.sparse_mla_variant_for(576, 303, 16, nullptr, 100000).variant.name() ==
        fmt::format("nsa_fwd_{}_d576_bh16_bt32_w4_st2", sm));
  CHECK(dispatcher.sparse_mla_variant_for(576, 303, 64, nullptr, 3).variant.name() ==
        fmt::format("nsa_fwd_{}_d576_bh32_bt32_w4_st2", sm));  // h_q 64 has no decode entry: its main
  for (auto [h_q, s_q] : {std::pair{16, 3}, std::pair{16, 700}}) {
    SparseMlaFixture f(device,
                       {.label = "decode rule",
                        .s_q = s_q,
                        .h_q = h_q,
                        .s_kv = 2000,
                        .topk = 303,
                        .invalid_fraction = 0.1,
                        .reference_rows = 32},
                       static_cast<std::uint64_t>(s_q));
    const auto r =
        f.run_and_compare([&](const nsajit_sparse_mla_args& a) { dispatcher.sparse_mla_fwd(a, nullptr); });
    CHECK_MESSAGE(r.ok, r.detail);
  }
  CHECK(dispatcher.compile_count() == 0);  // the decode entry's binary shipped with the export
  std::filesystem::remove_all(dir);
}

TEST_CASE("rows_for_another_gpu_or_older_templates_are_ignored_and_the_call_still_works") {
  Device& device = test::gpu_device();
  if (device.info().vendor != Vendor::nvidia) return;
  const auto dir = temp_dir("stale");
  write_winner(dir / "c.sqlite", device, 301, "NVIDIA A100-SXM4-80GB|sm_80|108sm", template_hash());
  write_winner(dir / "c.sqlite", device, 302, device_key(device.info()), "0123456789abcdef");
  Dispatcher dispatcher(options_for(dir / "c.sqlite"));
  for (int topk : {301, 302}) {
    SparseMlaFixture f(device, {.label = "stale", .s_q = 3, .h_q = 16, .s_kv = 2000, .topk = topk}, 7);
    const auto r =
        f.run_and_compare([&](const nsajit_sparse_mla_args& a) { dispatcher.sparse_mla_fwd(a, nullptr); });
    CHECK_MESSAGE(r.ok, r.detail);
  }
  std::string all;
  for (const auto& n : dispatcher.notices()) all += n + "\n";
  CHECK_MESSAGE(all.find("only for other GPUs") != std::string::npos, all);
  CHECK_MESSAGE(all.find("kernel templates 0123456789abcdef") != std::string::npos, all);
  CHECK(dispatcher.compile_count() >= 1);  // the default variant, compiled once
  std::filesystem::remove_all(dir);
}

TEST_CASE("bad_arguments_return_a_clear_error_and_launch_nothing") {
  Device& device = test::gpu_device();
  if (device.info().vendor != Vendor::nvidia) return;
  const auto dir = temp_dir("bad");
  Dispatcher dispatcher(options_for(dir / "c.sqlite"));
  SparseMlaFixture f(device, {.label = "bad", .s_q = 4, .h_q = 16, .s_kv = 1000, .topk = 64}, 3);
  struct Case {
    const char* name;
    std::function<void(nsajit_sparse_mla_args&)> spoil;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {"null q", [](auto& a) { a.q.data = nullptr; }, "'q'"},
      {"null out", [](auto& a) { a.out.data = nullptr; }, "'out'"},
      {"wrong d_qk", [](auto& a) { a.q.shape[2] = 320; }, "d_qk"},
      {"h_q mismatch in out", [](auto& a) { a.out.shape[1] = 8; }, "h_q"},
      {"kv d mismatch", [](auto& a) { a.kv.shape[2] = 512; }, "d_qk"},
      {"non-contiguous last dim", [](auto& a) { a.q.strides[2] = 2; }, "contiguous"},
      {"negative stride", [](auto& a) { a.kv.strides[0] = -576; }, "negative"},
      {"odd row stride", [](auto& a) { a.kv.strides[0] = 580; }, "multiple of 8"},
      {"topk 0", [](auto& a) { a.indices.shape[2] = 0; }, "topk"},
      {"topk too large", [](auto& a) { a.indices.shape[2] = 20000; }, "topk"},
      {"d_v 256", [](auto& a) { a.d_v = 256; }, "d_v"},
      {"misaligned q", [](auto& a) { a.q.data = static_cast<char*>(a.q.data) + 2; }, "aligned"},
      {"indices dtype", [](auto& a) { a.indices.dtype = NSAJIT_DTYPE_FP32; }, "int32"},
      {"sink length",
       [](auto& a) {
         a.attn_sink = a.lse;
         a.attn_sink.ndim = 1;
         a.attn_sink.shape[0] = 3;
       },
       "attn_sink"},
      {"nan scale", [](auto& a) { a.sm_scale = std::numeric_limits<float>::quiet_NaN(); }, "sm_scale"},
  };
  for (const auto& c : cases) {
    nsajit_sparse_mla_args a = f.args();
    c.spoil(a);
    f.poison_outputs();
    std::string message;
    try {
      dispatcher.sparse_mla_fwd(a, nullptr);
    } catch (const Error& e) {
      message = e.what();
      CHECK(e.code() == ErrorCode::invalid_argument);
    }
    CHECK_MESSAGE(message.find(c.expect) != std::string::npos, c.name << ": '" << message << "'");
    CHECK_MESSAGE(f.outputs_untouched(), c.name << " launched a kernel");
  }
  std::filesystem::remove_all(dir);
}

}  // namespace nsajit

#include <sys/wait.h>

#include <cstdlib>

namespace nsajit {

// 8 real processes (like 8 tensor-parallel ranks), one GPU each where the host has 8, else
// round-robin on the GPUs there are: first all writing the same cache, then all reading it
// as a read-only shipped file. Every rank must compute the right result; shipped ranks compile
// nothing.
TEST_CASE("eight_rank_processes_share_one_cache_writable_and_shipped") {
  Device& device = test::gpu_device();
  if (device.info().vendor != Vendor::nvidia) return;
  // The helper is built next to this test executable (also when the build folder moved).
  const std::string worker =
      (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "dispatch_worker").string();
  REQUIRE(std::filesystem::exists(worker));
  const int gpus = test::gpu_backend().device_count();
  const auto dir = temp_dir("ranks");
  write_winner(dir / "shared.sqlite", device, 303, device_key(device.info()), template_hash());
  for (const std::string mode : {"writable", "shipped"}) {
    if (mode == "shipped") {
      auto s = CacheStore::open(dir / "shared.sqlite", OpenMode::read_only);
      s.export_to(dir / "deploy.sqlite");
      std::filesystem::permissions(dir / "deploy.sqlite", std::filesystem::perms::owner_read |
                                                              std::filesystem::perms::group_read |
                                                              std::filesystem::perms::others_read);
    }
    const std::string cache = (dir / (mode == "shipped" ? "deploy.sqlite" : "shared.sqlite")).string();
    std::vector<pid_t> pids;
    for (int rank = 0; rank < 8; ++rank) {
      const std::string ordinal = std::to_string(rank % gpus), topk = "303",
                        seed = std::to_string(1000 + rank);
      const pid_t pid = fork();
      REQUIRE(pid >= 0);
      if (pid == 0) {
        execl(worker.c_str(), worker.c_str(), cache.c_str(), mode.c_str(), ordinal.c_str(), topk.c_str(),
              seed.c_str(), "0", static_cast<char*>(nullptr));
        _exit(3);
      }
      pids.push_back(pid);
    }
    int ok = 0;
    for (pid_t pid : pids) {
      int status = 0;
      waitpid(pid, &status, 0);
      ok += WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    MESSAGE(fmt::format("{} of 8 rank processes on {} GPU(s) correct with a {} cache", ok, gpus, mode));
    CHECK(ok == 8);
  }
  auto check = CacheStore::open(dir / "shared.sqlite", OpenMode::read_only);
  CHECK(check.check() == "ok");
  std::filesystem::permissions(dir / "deploy.sqlite", std::filesystem::perms::owner_all);
  std::filesystem::remove_all(dir);
}

}  // namespace nsajit
