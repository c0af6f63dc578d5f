// STUB - replaced by the CUDA backend (driver API + NVRTC through dlopen).
#include "runtime/backend.hpp"
#include "runtime/error.hpp"

namespace nsajit {
namespace {
class StubBackend final : public Backend {
 public:
  Vendor vendor() const noexcept override { return Vendor::nvidia; }
  std::string name() const override { return "cuda"; }
  const Compiler* compiler_for(std::string_view) const override { return nullptr; }
  std::string compiler_unavailable_reason() const override { return "not implemented"; }
  int device_count() override { return 0; }
  std::string devices_unavailable_reason() override { return "not implemented"; }
  std::unique_ptr<Device> open_device(int) override {
    fail(ErrorCode::unavailable, "opening a device", "runtime/backend_cuda", "not implemented");
  }
};
}  // namespace
std::unique_ptr<Backend> make_cuda_backend() { return std::make_unique<StubBackend>(); }
}  // namespace nsajit
