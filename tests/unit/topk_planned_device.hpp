// An H100 as the topk_select planner sees it (no GPU needed), for the planning tests.
#pragma once

#include "runtime/backend.hpp"

namespace nsajit::test {

inline DeviceInfo planned_h100() {
  DeviceInfo d;
  d.name = "NVIDIA H100 80GB HBM3";
  d.arch = "sm_90a";
  d.multiprocessors = 132;
  d.shared_memory_per_block_optin = 227 * 1024;
  return d;
}

}  // namespace nsajit::test
