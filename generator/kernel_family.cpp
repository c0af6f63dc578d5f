#include "generator/kernel_family.hpp"

#include "runtime/error.hpp"

namespace nsajit {

const KernelFamily& sparse_mla_fwd_family();
const KernelFamily& topk_select_family();

const KernelFamily& kernel_family(Family family) {
  switch (family) {
    case Family::sparse_mla_fwd:
      return sparse_mla_fwd_family();
    case Family::topk_select:
      return topk_select_family();
  }
  fail(ErrorCode::internal, "looking up a kernel family", "generator/kernel_family", "unknown enum value");
}

}  // namespace nsajit
