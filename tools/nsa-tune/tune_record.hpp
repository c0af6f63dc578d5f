// Stores one topk's tune result (winner + its binaries + every candidate's timing) in one
// cache transaction, and prints the candidate table. Shared by both families' tune commands.
#pragma once

#include <string>

#include "cache/layered_cache.hpp"
#include "generator/variant.hpp"
#include "runtime/backend.hpp"
#include "tuner/sparse_mla_tuner.hpp"

namespace nsajit::cli {

void record_tune_result(LayeredCache& cache, const Device& device, const Compiler& compiler, Family family,
                        const Geometry& geometry, const TopkTuneResult& result, long long s_q, long long s_kv,
                        int ordinal);

// `shape_label`: what a candidate's h_q column means ("h_q" or "B").
void print_tune_result(const TopkTuneResult& r, Family family, const std::string& device,
                       const std::string& shape_label);

}  // namespace nsajit::cli
