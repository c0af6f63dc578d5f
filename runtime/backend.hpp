// The one interface every GPU vendor sits behind. Vendor APIs (driver, NVRTC, HIP, hipRTC)
// appear only in the backend_*.cpp files; everything else uses these small types.
//
// Two halves, because offline compilation must work on a machine with no GPU or driver:
//   Compiler - source -> binary for a named arch (NVRTC, hipRTC, clang-19). No device needed.
//   Device   - one GPU: modules, kernels, memory, streams, events, launches.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nsajit {

enum class Vendor { nvidia, amd };
std::string_view to_string(Vendor v) noexcept;

// ---------------------------------------------------------------- compilation
struct CompileRequest {
  std::string source;                          // one self-contained translation unit
  std::string source_name = "kernel.cu";       // for logs
  std::map<std::string, std::string> headers;  // in-memory headers: include name -> content
  std::vector<std::string> options;            // extra compiler options (-D..., -O3 ...)
  std::string arch;                            // "sm_90a", "gfx90a", "gfx942"
  std::vector<std::string> kernel_names;       // extern "C" kernels that must be in the binary
};

struct CompileResult {
  std::vector<std::uint8_t> binary;  // cubin (NVIDIA) or AMDGPU code object ELF (AMD)
  std::string log;                   // compiler log, also on success (warnings)
  double seconds = 0.0;
};

// Per-kernel resources, read from the binary (cubin attributes or AMDGPU metadata note).
struct KernelResources {
  std::string kernel_name;
  int registers = 0;            // NVIDIA regs/thread; AMD unified VGPR count
  int agprs = 0;                // AMD only
  int sgprs = 0;                // AMD only
  int spill_bytes = 0;          // local memory (NVIDIA) / scratch (AMD) per thread
  int vgpr_spills = 0;          // AMD only
  int sgpr_spills = 0;          // AMD only: SGPRs spilled (into VGPR lanes: not in spill_bytes)
  int static_shared_bytes = 0;  // shared memory / LDS declared statically
  int max_threads_per_block = 0;
  int occupancy_waves_per_simd = 0;  // AMD only, 0 when unknown
};

class Compiler {
 public:
  virtual ~Compiler() = default;
  [[nodiscard]] virtual std::string name() const = 0;     // "nvrtc", "hiprtc", "clang-19"
  [[nodiscard]] virtual std::string version() const = 0;  // goes into cache keys
  [[nodiscard]] virtual bool supports_arch(std::string_view arch) const = 0;
  // Throws Error(compile_failed) carrying the full log when the source does not compile.
  [[nodiscard]] virtual CompileResult compile(const CompileRequest& request) const = 0;
};

// ---------------------------------------------------------------- devices
struct DeviceInfo {
  Vendor vendor = Vendor::nvidia;
  int ordinal = 0;
  std::string name;                               // "NVIDIA H100 80GB HBM3"
  std::string arch;                               // "sm_90a", "gfx90a"
  std::string uuid;                               // stable identity, when the driver has one
  int multiprocessors = 0;                        // SMs / CUs
  std::size_t shared_memory_per_block_optin = 0;  // the most a kernel can ask for
  std::size_t l2_bytes = 0;
  std::size_t global_memory_bytes = 0;
  std::string driver_version;  // e.g. "13000"
};

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

// A device allocation, freed when the object dies.
class DeviceMemory {
 public:
  DeviceMemory() = default;
  DeviceMemory(void* ptr, std::size_t bytes, void (*release)(void*) noexcept)
      : ptr_(ptr), bytes_(bytes), release_(release) {}
  DeviceMemory(DeviceMemory&& o) noexcept { *this = std::move(o); }
  DeviceMemory& operator=(DeviceMemory&& o) noexcept {
    if (this != &o) {
      reset();
      ptr_ = o.ptr_;
      bytes_ = o.bytes_;
      release_ = o.release_;
      o.ptr_ = nullptr;
      o.bytes_ = 0;
    }
    return *this;
  }
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;
  ~DeviceMemory() { reset(); }

  [[nodiscard]] void* get() const noexcept { return ptr_; }
  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }
  template <class T>
  [[nodiscard]] T* as() const noexcept {
    return static_cast<T*>(ptr_);
  }

 private:
  void reset() noexcept {
    if (ptr_ != nullptr && release_ != nullptr) release_(ptr_);
    ptr_ = nullptr;
  }
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
  void (*release_)(void*) noexcept = nullptr;
};

// A handle to a kernel inside a loaded Module; valid while the Module lives.
struct KernelHandle {
  void* native = nullptr;  // CUfunction / hipFunction_t
  std::string name;
};

class Module {
 public:
  virtual ~Module() = default;
  // Throws Error(not_found) when the binary has no such kernel.
  [[nodiscard]] virtual KernelHandle kernel(std::string_view name) = 0;
};

// Streams and events are RAII too; native() is the vendor handle for launches.
class Stream {
 public:
  virtual ~Stream() = default;
  [[nodiscard]] virtual void* native() const noexcept = 0;
  virtual void synchronize() = 0;
};

class Event {
 public:
  virtual ~Event() = default;
  virtual void record(void* stream) = 0;
  virtual void synchronize() = 0;
  // Milliseconds between two recorded, completed events.
  [[nodiscard]] virtual float elapsed_ms_since(const Event& start) const = 0;
};

class Device {
 public:
  virtual ~Device() = default;
  [[nodiscard]] virtual const DeviceInfo& info() const noexcept = 0;

  // Makes this device's context current on the calling thread (CUDA primary context).
  virtual void make_current() = 0;

  [[nodiscard]] virtual std::unique_ptr<Module> load_module(std::span<const std::uint8_t> binary) = 0;
  [[nodiscard]] virtual DeviceMemory allocate(std::size_t bytes) = 0;
  virtual void copy_to_device(void* dst, const void* src, std::size_t bytes) = 0;  // synchronous
  virtual void copy_to_host(void* dst, const void* src, std::size_t bytes) = 0;    // synchronous
  virtual void fill_bytes(void* dst, std::uint8_t value, std::size_t bytes) = 0;   // synchronous
  [[nodiscard]] virtual std::unique_ptr<Stream> create_stream() = 0;
  [[nodiscard]] virtual std::unique_ptr<Event> create_event() = 0;
  virtual void synchronize() = 0;

  // Raises the kernel's dynamic shared memory limit (needed above 48 KB on NVIDIA).
  virtual void set_max_dynamic_shared(const KernelHandle& kernel, int bytes) = 0;
  // Registers, local memory and max threads as the driver reports them for a loaded kernel.
  [[nodiscard]] virtual KernelResources kernel_resources(const KernelHandle& kernel) = 0;

  // Asynchronous launch on `stream` (nullptr = default stream). args: pointers to each
  // kernel parameter, as cuLaunchKernel / hipModuleLaunchKernel take them. Never synchronises.
  virtual void launch(const KernelHandle& kernel, Dim3 grid, Dim3 block, unsigned dynamic_shared_bytes,
                      void* stream, void** args) = 0;

  // launch() with the grid's blocks grouped into thread-block clusters of cluster_x consecutive
  // blocks (grid.x a multiple of it). cluster_x 1 is a plain launch; devices without clusters
  // refuse anything else.
  virtual void launch_clustered(const KernelHandle& kernel, Dim3 grid, Dim3 block, unsigned cluster_x,
                                unsigned dynamic_shared_bytes, void* stream, void** args);
  // launch() of a kernel that starts with griddepcontrol.wait (programmatic dependent launch):
  // it may be scheduled while the stream's previous kernel runs, once that kernel's blocks have
  // all started, and waits there for its results. Hides the launch gap of a short follow-up
  // kernel. Devices without it launch plainly (the wait is then a no-op).
  virtual void launch_dependent(const KernelHandle& kernel, Dim3 grid, Dim3 block,
                                unsigned dynamic_shared_bytes, void* stream, void** args);
  // How many clusters of cluster_x blocks of this shape can run at once (0: no clusters here).
  [[nodiscard]] virtual int max_active_clusters(const KernelHandle& kernel, Dim3 block, unsigned cluster_x,
                                                unsigned dynamic_shared_bytes);
};

// ---------------------------------------------------------------- backends
// A backend owns the dlopen'ed vendor libraries. Construction never throws for a missing
// library or driver: availability is queried, and each missing piece has a specific reason.
class Backend {
 public:
  virtual ~Backend() = default;
  [[nodiscard]] virtual Vendor vendor() const noexcept = 0;
  [[nodiscard]] virtual std::string name() const = 0;  // "cuda", "hip"

  // Offline compilation (no driver needed). nullptr + reason when the compiler is missing.
  [[nodiscard]] virtual const Compiler* compiler_for(std::string_view arch) const = 0;
  [[nodiscard]] virtual std::string compiler_unavailable_reason() const = 0;

  // GPUs; 0 devices (with a reason) when the driver or GPU is missing.
  [[nodiscard]] virtual int device_count() = 0;
  [[nodiscard]] virtual std::string devices_unavailable_reason() = 0;
  [[nodiscard]] virtual std::unique_ptr<Device> open_device(int ordinal) = 0;
};

std::unique_ptr<Backend> make_cuda_backend();
std::unique_ptr<Backend> make_hip_backend();

// Process-wide backends, created on first use (thread-safe).
Backend& cuda_backend();
Backend& hip_backend();

// The backend that compiles for `arch` ("sm_*" -> cuda, "gfx*" -> hip).
Backend& backend_for_arch(std::string_view arch);

}  // namespace nsajit
