#include "runtime/sparse_mla_runner.hpp"

#include "runtime/error.hpp"

namespace nsajit {

void launch_sparse_mla(Device& device, LoadedVariant& loaded, const SparseMlaLaunch& launch, void* stream) {
  if (loaded.kernels.size() < 2)
    fail(ErrorCode::internal, "launching " + loaded.variant.name(), "runtime/sparse_mla_runner",
         "the variant has no combine kernel");
  NsaSparseMlaParams params = launch.params;
  void* args[] = {&params};
  device.launch(loaded.kernels[0], launch.grid, launch.block, launch.shared_bytes, stream, args);
  // The combine waits for the main kernel inside (griddepcontrol.wait), so its launch overlaps it.
  if (launch.needs_combine)
    device.launch_dependent(loaded.kernels[1], launch.combine_grid, launch.combine_block, 0, stream, args);
}

}  // namespace nsajit
