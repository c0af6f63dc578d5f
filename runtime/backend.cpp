// The parts of the Device interface that have a vendor-neutral default.
#include "runtime/backend.hpp"

#include <fmt/format.h>

#include "runtime/error.hpp"

namespace nsajit {

void Device::launch_clustered(const KernelHandle& kernel, Dim3 grid, Dim3 block, unsigned cluster_x,
                              unsigned dynamic_shared_bytes, void* stream, void** args) {
  if (cluster_x > 1)
    fail(ErrorCode::invalid_argument,
         fmt::format("launching '{}' in clusters of {} blocks", kernel.name, cluster_x), "runtime/backend",
         "this device has no thread-block clusters");
  launch(kernel, grid, block, dynamic_shared_bytes, stream, args);
}

void Device::launch_dependent(const KernelHandle& kernel, Dim3 grid, Dim3 block,
                              unsigned dynamic_shared_bytes, void* stream, void** args) {
  launch(kernel, grid, block, dynamic_shared_bytes, stream, args);
}

int Device::max_active_clusters(const KernelHandle&, Dim3, unsigned, unsigned) {
  return 0;
}

}  // namespace nsajit
