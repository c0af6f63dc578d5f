// The rows tests/helpers/cache_writer writes, so the tests can expect exactly them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cache/store.hpp"

namespace nsajit::test {

inline std::string writer_device(int writer) {
  return "test-gpu-" + std::to_string(writer);
}

inline WinnerRecord writer_winner(int writer, int j) {
  std::string variant =
      "nsa_fwd_sm90a_d576_bh16_bt64_w4_st2_p" + std::to_string(writer) + "_" + std::to_string(j);
  return WinnerRecord{.key = {.device = writer_device(writer),
                              .family = "sparse_mla_fwd",
                              .geometry = "d576v512",
                              .topk = 64 * (j + 1)},
                      .rule = "{\"h_q\":{\"16\":\"" + variant + "\"},\"split\":1}",
                      .default_variant = variant,
                      .template_hash = "tmpl-" + std::to_string(j),
                      .generator_version = "0.1.0",
                      .compiler = "nvrtc 13.0",
                      .driver = "cuda 13.0",
                      .arch = "sm_90a",
                      .tuned_shape = "h_q=16 s_q=4096 s_kv=32768",
                      .created_at = "2025-01-01T00:00:00Z"};
}

inline BinaryRecord writer_binary(int writer, int j) {
  std::vector<std::uint8_t> bytes(2000 + 37 * static_cast<std::size_t>(j));
  for (std::size_t i = 0; i < bytes.size(); ++i)
    bytes[i] = static_cast<std::uint8_t>(writer * 31 + j * 7 + i * 13);
  return BinaryRecord{.key = "bin-" + std::to_string(writer) + "-" + std::to_string(j),
                      .variant = writer_winner(writer, j).default_variant,
                      .arch = "sm_90a",
                      .compiler = "nvrtc 13.0",
                      .created_at = "2025-01-01T00:00:00Z",
                      .binary = std::move(bytes)};
}

inline std::vector<TimingRecord> writer_timings(int writer, int j) {
  WinnerRecord w = writer_winner(writer, j);
  std::vector<TimingRecord> rows;
  for (int h_q : {16, 32, 64}) {
    rows.push_back(TimingRecord{.device = w.key.device,
                                .family = w.key.family,
                                .geometry = w.key.geometry,
                                .topk = w.key.topk,
                                .variant = w.default_variant,
                                .h_q = h_q,
                                .s_q = 4096,
                                .s_kv = 32768,
                                .status = TimingStatus::ok,
                                .median_ms = 0.5 * h_q + j,
                                .detail = "",
                                .run_id = "run-" + std::to_string(writer),
                                .created_at = "2025-01-01T00:00:00Z"});
  }
  return rows;
}

}  // namespace nsajit::test
