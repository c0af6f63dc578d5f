// Launches a planned sparse_mla_fwd call: the main kernel and, for a topk split, the combine.
#pragma once

#include "runtime/loaded_variant.hpp"
#include "runtime/sparse_mla_launch.hpp"

namespace nsajit {

// Asynchronous on `stream`; never synchronises or allocates (load_variant raised the
// kernel's dynamic shared memory limit already).
void launch_sparse_mla(Device& device, LoadedVariant& loaded, const SparseMlaLaunch& launch, void* stream);

}  // namespace nsajit
