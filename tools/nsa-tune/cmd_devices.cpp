// nsa-tune devices: backends, GPUs and compilers found. Never crashes: every missing piece
// is reported with its reason.
#include <fmt/format.h>

#include "generator/target.hpp"
#include "runtime/backend.hpp"
#include "runtime/device_identity.hpp"
#include "runtime/error.hpp"
#include "tools/nsa-tune/commands.hpp"
#include "tools/nsa-tune/json.hpp"

namespace nsajit::cli {
namespace {

struct CompilerLine {
  std::string arch, name, version, reason;
};

void run_devices(const GlobalOptions& g) {
  std::string json = "{\"backends\":[";
  bool first_backend = true;
  for (Backend* b : {&cuda_backend(), &hip_backend()}) {
    std::vector<CompilerLine> compilers;
    for (const auto& arch : known_targets()) {
      if (backend_for_arch(arch).name() != b->name()) continue;
      CompilerLine c{arch, "", "", ""};
      if (const Compiler* comp = b->compiler_for(arch)) {
        c.name = comp->name();
        c.version = comp->version();
      } else {
        c.reason = b->compiler_unavailable_reason();
      }
      compilers.push_back(c);
    }
    const int n = b->device_count();
    std::vector<DeviceInfo> infos;
    std::string device_error;
    for (int i = 0; i < n; ++i) {
      try {
        infos.push_back(b->open_device(i)->info());
      } catch (const Error& e) {
        device_error = e.what();
      }
    }
    if (g.json) {
      json +=
          fmt::format("{}{{\"backend\":{},\"compilers\":[", first_backend ? "" : ",", json_string(b->name()));
      for (std::size_t i = 0; i < compilers.size(); ++i)
        json += fmt::format("{}{{\"target\":{},\"compiler\":{},\"version\":{},\"unavailable\":{}}}",
                            i ? "," : "", json_string(compilers[i].arch), json_string(compilers[i].name),
                            json_string(compilers[i].version), json_string(compilers[i].reason));
      json += fmt::format("],\"devices_unavailable\":{},\"devices\":[",
                          json_string(n == 0 ? b->devices_unavailable_reason() : device_error));
      for (std::size_t i = 0; i < infos.size(); ++i) {
        const auto& d = infos[i];
        json += fmt::format(
            "{}{{\"ordinal\":{},\"name\":{},\"arch\":{},\"multiprocessors\":{},\"shared_memory_per_block\":{}"
            ","
            "\"l2_bytes\":{},\"memory_bytes\":{},\"driver\":{},\"key\":{}}}",
            i ? "," : "", d.ordinal, json_string(d.name), json_string(d.arch), d.multiprocessors,
            d.shared_memory_per_block_optin, d.l2_bytes, d.global_memory_bytes, json_string(d.driver_version),
            json_string(device_key(d)));
      }
      json += "]}";
      first_backend = false;
      continue;
    }
    fmt::print("backend {}\n", b->name());
    for (const auto& c : compilers) {
      if (c.reason.empty())
        fmt::print("  compiler for {:<7} {} ({})\n", c.arch, c.name, c.version);
      else
        fmt::print("  compiler for {:<7} unavailable: {}\n", c.arch, c.reason);
    }
    if (n == 0) fmt::print("  GPUs: none ({})\n", b->devices_unavailable_reason());
    for (const auto& d : infos)
      fmt::print("  GPU {}: {} ({}, {} SMs, {} KB shared/block, {} MB L2, {:.1f} GB, driver {})\n", d.ordinal,
                 d.name, d.arch, d.multiprocessors, d.shared_memory_per_block_optin / 1024, d.l2_bytes >> 20,
                 static_cast<double>(d.global_memory_bytes) / 1e9, d.driver_version);
    if (!device_error.empty()) fmt::print("  GPU error: {}\n", device_error);
  }
  if (g.json) fmt::print("{}]}}\n", json);
}

}  // namespace

void register_devices(CLI::App& app, GlobalOptions& g) {
  auto* cmd = app.add_subcommand("devices", "backends, GPUs and compilers found");
  cmd->add_flag("--json", g.json, "machine-readable output");
  cmd->callback([&g] { run_devices(g); });
}

}  // namespace nsajit::cli
