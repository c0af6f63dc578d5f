// The cuda backend: NVRTC compiles, the driver API runs. Both libraries are dlopen'ed through
// runtime/cuda_api, so this builds and runs on machines with no CUDA at all.
//
// Compile options: --gpu-architecture=<arch> and -std=c++20 (unless the request names its own
// -std) come first, then the request's options. We do not pass -default-device: templates mark
// device functions __device__ explicitly, as they must for hipRTC too, and an unannotated helper
// should fail loudly rather than silently become device code.
//
// Contexts: every device uses the driver's PRIMARY context (what the CUDA runtime and PyTorch use),
// so pointers and streams pass freely between us and PyTorch in one process.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>

#include "runtime/backend.hpp"
#include "runtime/cubin_inspect.hpp"
#include "runtime/cuda_api.hpp"
#include "runtime/error.hpp"

namespace nsajit {
namespace {

using namespace nsajit::cuda;

constexpr const char* kWhere = "runtime/backend_cuda";

const DriverApi& driver() {
  const DriverLoad& load = load_driver();
  if (!load.api) fail(ErrorCode::unavailable, "using the CUDA driver", kWhere, load.missing_reason);
  return *load.api;
}

void check(CUresult result, std::string_view call, std::string_view what) {
  if (result == CUDA_SUCCESS) return;
  fail(ErrorCode::device_error, std::string(what), fmt::format("{}: {}", kWhere, call),
       fmt::format("{} returned {}", call, driver().describe(result)));
}

CUdeviceptr device_pointer(const void* p) {
  return reinterpret_cast<CUdeviceptr>(p);
}

// ---------------------------------------------------------------- contexts
// A retained primary context; released when the last Device/Module/Stream/Event using it dies.
class PrimaryContext {
 public:
  explicit PrimaryContext(CUdevice device) : device_(device) {
    check(driver().cuDevicePrimaryCtxRetain(&context_, device), "cuDevicePrimaryCtxRetain",
          fmt::format("retaining the primary context of CUDA device {}", device));
  }
  PrimaryContext(const PrimaryContext&) = delete;
  PrimaryContext& operator=(const PrimaryContext&) = delete;
  ~PrimaryContext() { driver().cuDevicePrimaryCtxRelease(device_); }

  [[nodiscard]] CUcontext get() const noexcept { return context_; }
  void make_current() const {
    check(driver().cuCtxSetCurrent(context_), "cuCtxSetCurrent", "making a context current");
  }

 private:
  CUdevice device_;
  CUcontext context_ = nullptr;
};

// Pushes a context for the lifetime of the scope; for destructors that may run on any thread.
class ContextScope {
 public:
  explicit ContextScope(CUcontext context) noexcept
      : pushed_(context != nullptr && driver().cuCtxPushCurrent(context) == CUDA_SUCCESS) {}
  ContextScope(const ContextScope&) = delete;
  ContextScope& operator=(const ContextScope&) = delete;
  ~ContextScope() {
    CUcontext popped = nullptr;
    if (pushed_) driver().cuCtxPopCurrent(&popped);
  }

 private:
  bool pushed_;
};

// DeviceMemory's release hook: a plain function, so it reaches the driver through the
// process-wide table, and it frees in the pointer's own context whatever thread it runs on.
void release_device_memory(void* ptr) noexcept {
  const DriverLoad& load = load_driver();
  if (!load.api || ptr == nullptr) return;
  const DriverApi& api = *load.api;
  CUcontext owner = nullptr;
  if (api.cuPointerGetAttribute(&owner, CU_POINTER_ATTRIBUTE_CONTEXT, device_pointer(ptr)) != CUDA_SUCCESS) {
    return;  // its context is gone, and the memory with it
  }
  ContextScope scope(owner);
  api.cuMemFree(device_pointer(ptr));
}

// ---------------------------------------------------------------- module, stream, event
class CudaModule final : public Module {
 public:
  CudaModule(std::shared_ptr<const PrimaryContext> context, std::span<const std::uint8_t> binary)
      : context_(std::move(context)) {
    context_->make_current();
    check(driver().cuModuleLoadData(&module_, binary.data()), "cuModuleLoadData",
          fmt::format("loading a {}-byte module", binary.size()));
  }
  ~CudaModule() override {
    ContextScope scope(context_->get());
    driver().cuModuleUnload(module_);
  }

  KernelHandle kernel(std::string_view name) override {
    const std::string kernel_name(name);
    CUfunction function = nullptr;
    const CUresult result = driver().cuModuleGetFunction(&function, module_, kernel_name.c_str());
    if (result == CUDA_ERROR_NOT_FOUND) {
      fail(ErrorCode::not_found, fmt::format("looking up kernel '{}'", kernel_name),
           fmt::format("{}: cuModuleGetFunction", kWhere), "the loaded module has no kernel of that name");
    }
    check(result, "cuModuleGetFunction", fmt::format("looking up kernel '{}'", kernel_name));
    return KernelHandle{function, kernel_name};
  }

 private:
  std::shared_ptr<const PrimaryContext> context_;
  CUmodule module_ = nullptr;
};

class CudaStream final : public Stream {
 public:
  explicit CudaStream(std::shared_ptr<const PrimaryContext> context) : context_(std::move(context)) {
    context_->make_current();
    check(driver().cuStreamCreate(&stream_, CU_STREAM_NON_BLOCKING), "cuStreamCreate", "creating a stream");
  }
  ~CudaStream() override {
    ContextScope scope(context_->get());
    driver().cuStreamDestroy(stream_);
  }
  [[nodiscard]] void* native() const noexcept override { return stream_; }
  void synchronize() override {
    check(driver().cuStreamSynchronize(stream_), "cuStreamSynchronize", "waiting for a stream");
  }

 private:
  std::shared_ptr<const PrimaryContext> context_;
  CUstream stream_ = nullptr;
};

class CudaEvent final : public Event {
 public:
  explicit CudaEvent(std::shared_ptr<const PrimaryContext> context) : context_(std::move(context)) {
    context_->make_current();
    check(driver().cuEventCreate(&event_, CU_EVENT_DEFAULT), "cuEventCreate", "creating an event");
  }
  ~CudaEvent() override {
    ContextScope scope(context_->get());
    driver().cuEventDestroy(event_);
  }
  void record(void* stream) override {
    check(driver().cuEventRecord(event_, static_cast<CUstream>(stream)), "cuEventRecord",
          "recording an event");
  }
  void synchronize() override {
    check(driver().cuEventSynchronize(event_), "cuEventSynchronize", "waiting for an event");
  }
  [[nodiscard]] float elapsed_ms_since(const Event& start) const override {
    const auto* begin = dynamic_cast<const CudaEvent*>(&start);
    if (begin == nullptr) {
      fail(ErrorCode::invalid_argument, "timing between events", kWhere,
           "the start event is not a CUDA event");
    }
    float ms = 0.0f;
    check(driver().cuEventElapsedTime(&ms, begin->event_, event_), "cuEventElapsedTime",
          "reading the time between two events");
    return ms;
  }

 private:
  std::shared_ptr<const PrimaryContext> context_;
  CUevent event_ = nullptr;
};

// ---------------------------------------------------------------- device
int device_attribute(CUdevice device, int attribute, std::string_view what) {
  int value = 0;
  check(driver().cuDeviceGetAttribute(&value, attribute, device), "cuDeviceGetAttribute",
        fmt::format("reading {} of CUDA device {}", what, device));
  return value;
}

// "GPU-6ea1c2b4-...", the form nvidia-smi and CUDA_VISIBLE_DEVICES use.
std::string format_uuid(const CUuuid& uuid) {
  std::string hex;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) hex += '-';
    hex += fmt::format("{:02x}", static_cast<unsigned char>(uuid.bytes[i]));
  }
  return "GPU-" + hex;
}

// Hopper's wgmma/TMA code needs the arch-specific target; elsewhere the plain one.
std::string arch_for(int major, int minor) {
  return major == 9 && minor == 0 ? std::string("sm_90a") : fmt::format("sm_{}{}", major, minor);
}

class CudaDevice final : public Device {
 public:
  explicit CudaDevice(int ordinal) {
    const DriverApi& api = driver();
    CUdevice device = 0;
    check(api.cuDeviceGet(&device, ordinal), "cuDeviceGet", fmt::format("opening CUDA device {}", ordinal));
    info_.vendor = Vendor::nvidia;
    info_.ordinal = ordinal;
    char name[256] = {};
    check(api.cuDeviceGetName(name, sizeof(name) - 1, device), "cuDeviceGetName", "reading the device name");
    info_.name = name;
    compute_major_ =
        device_attribute(device, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, "compute capability");
    info_.arch = arch_for(
        compute_major_,
        device_attribute(device, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, "compute capability"));
    CUuuid uuid{};
    check(api.cuDeviceGetUuid(&uuid, device), "cuDeviceGetUuid", "reading the device UUID");
    info_.uuid = format_uuid(uuid);
    info_.multiprocessors =
        device_attribute(device, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, "the SM count");
    info_.shared_memory_per_block_optin = static_cast<std::size_t>(device_attribute(
        device, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, "opt-in shared memory"));
    info_.l2_bytes =
        static_cast<std::size_t>(device_attribute(device, CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, "L2 size"));
    check(api.cuDeviceTotalMem(&info_.global_memory_bytes, device), "cuDeviceTotalMem",
          "reading device memory size");
    int driver_version = 0;
    check(api.cuDriverGetVersion(&driver_version), "cuDriverGetVersion", "reading the driver version");
    info_.driver_version = std::to_string(driver_version);
    context_ = std::make_shared<const PrimaryContext>(device);
    context_->make_current();
  }

  [[nodiscard]] const DeviceInfo& info() const noexcept override { return info_; }
  void make_current() override { context_->make_current(); }

  std::unique_ptr<Module> load_module(std::span<const std::uint8_t> binary) override {
    return std::make_unique<CudaModule>(context_, binary);
  }

  DeviceMemory allocate(std::size_t bytes) override {
    context_->make_current();
    CUdeviceptr ptr = 0;
    check(driver().cuMemAlloc(&ptr, bytes), "cuMemAlloc",
          fmt::format("allocating {} bytes on {}", bytes, info_.name));
    return DeviceMemory(reinterpret_cast<void*>(ptr), bytes, &release_device_memory);
  }

  // cuMemcpyHtoD and cuMemsetD8 may return before the device has the data; waiting on the legacy
  // stream makes them synchronous, as promised, even for later work on non-blocking streams.
  void copy_to_device(void* dst, const void* src, std::size_t bytes) override {
    context_->make_current();
    check(driver().cuMemcpyHtoD(device_pointer(dst), src, bytes), "cuMemcpyHtoD",
          fmt::format("copying {} bytes to the device", bytes));
    check(driver().cuStreamSynchronize(nullptr), "cuStreamSynchronize", "finishing a copy to the device");
  }
  void copy_to_host(void* dst, const void* src, std::size_t bytes) override {
    context_->make_current();
    check(driver().cuMemcpyDtoH(dst, device_pointer(src), bytes), "cuMemcpyDtoH",
          fmt::format("copying {} bytes to the host", bytes));
  }
  void fill_bytes(void* dst, std::uint8_t value, std::size_t bytes) override {
    context_->make_current();
    check(driver().cuMemsetD8(device_pointer(dst), value, bytes), "cuMemsetD8",
          fmt::format("filling {} bytes", bytes));
    check(driver().cuStreamSynchronize(nullptr), "cuStreamSynchronize", "finishing a fill");
  }

  std::unique_ptr<Stream> create_stream() override { return std::make_unique<CudaStream>(context_); }
  std::unique_ptr<Event> create_event() override { return std::make_unique<CudaEvent>(context_); }

  void synchronize() override {
    context_->make_current();
    check(driver().cuCtxSynchronize(), "cuCtxSynchronize", fmt::format("synchronizing {}", info_.name));
  }

  void set_max_dynamic_shared(const KernelHandle& kernel, int bytes) override {
    check(
        driver().cuFuncSetAttribute(function(kernel), CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes),
        "cuFuncSetAttribute",
        fmt::format("allowing kernel '{}' {} bytes of dynamic shared memory (device opt-in limit {})",
                    kernel.name, bytes, info_.shared_memory_per_block_optin));
  }

  KernelResources kernel_resources(const KernelHandle& kernel) override {
    KernelResources r;
    r.kernel_name = kernel.name;
    r.registers = function_attribute(kernel, CU_FUNC_ATTRIBUTE_NUM_REGS);
    r.spill_bytes = function_attribute(kernel, CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES);
    r.static_shared_bytes = function_attribute(kernel, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES);
    r.max_threads_per_block = function_attribute(kernel, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK);
    return r;
  }

  // The hot path: no context switch, no synchronisation (call make_current() once per thread).
  void launch(const KernelHandle& kernel, Dim3 grid, Dim3 block, unsigned dynamic_shared_bytes, void* stream,
              void** args) override {
    const CUresult result =
        driver().cuLaunchKernel(function(kernel), grid.x, grid.y, grid.z, block.x, block.y, block.z,
                                dynamic_shared_bytes, static_cast<CUstream>(stream), args, nullptr);
    if (result != CUDA_SUCCESS) {
      check(result, "cuLaunchKernel",
            fmt::format(
                "launching '{}' with grid ({},{},{}) block ({},{},{}) and {} bytes of dynamic shared memory",
                kernel.name, grid.x, grid.y, grid.z, block.x, block.y, block.z, dynamic_shared_bytes));
    }
  }

  void launch_clustered(const KernelHandle& kernel, Dim3 grid, Dim3 block, unsigned cluster_x,
                        unsigned dynamic_shared_bytes, void* stream, void** args) override {
    if (cluster_x <= 1) {
      launch(kernel, grid, block, dynamic_shared_bytes, stream, args);
      return;
    }
    // Described only on failure: the launch path formats nothing.
    const auto what = [&] {
      return fmt::format(
          "launching '{}' with grid ({},{},{}) in clusters of {} blocks, block ({},{},{}), {} bytes "
          "of dynamic shared memory",
          kernel.name, grid.x, grid.y, grid.z, cluster_x, block.x, block.y, block.z, dynamic_shared_bytes);
    };
    if (driver().cuLaunchKernelEx == nullptr)
      fail(ErrorCode::unavailable, what(), kWhere,
           "the CUDA driver has no cuLaunchKernelEx (CUDA 12 or newer)");
    if (grid.x % cluster_x != 0)
      fail(ErrorCode::invalid_argument, what(), kWhere, "grid.x is not a multiple of the cluster size");
    CUlaunchAttribute cluster = cluster_attribute(cluster_x);
    const CUlaunchConfig config = launch_config(grid, block, dynamic_shared_bytes, stream, &cluster);
    const CUresult result = driver().cuLaunchKernelEx(&config, function(kernel), args, nullptr);
    if (result != CUDA_SUCCESS) check(result, "cuLaunchKernelEx", what());
  }

  void launch_dependent(const KernelHandle& kernel, Dim3 grid, Dim3 block, unsigned dynamic_shared_bytes,
                        void* stream, void** args) override {
    // griddepcontrol needs sm_90; a driver or a graph capture that refuses the attribute (older
    // than CUDA 12.3 in capture) turns it off for this device: plain launches are correct too.
    if (driver().cuLaunchKernelEx != nullptr && compute_major_ >= 9 &&
        !dependent_launch_refused_.load(std::memory_order_relaxed)) {
      CUlaunchAttribute dependent{};
      dependent.id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
      dependent.value.programmaticStreamSerializationAllowed = 1;
      const CUlaunchConfig config = launch_config(grid, block, dynamic_shared_bytes, stream, &dependent);
      if (driver().cuLaunchKernelEx(&config, function(kernel), args, nullptr) == CUDA_SUCCESS) return;
      dependent_launch_refused_.store(true, std::memory_order_relaxed);
    }
    launch(kernel, grid, block, dynamic_shared_bytes, stream, args);  // reports a real launch error
  }

  int max_active_clusters(const KernelHandle& kernel, Dim3 block, unsigned cluster_x,
                          unsigned dynamic_shared_bytes) override {
    if (driver().cuOccupancyMaxActiveClusters == nullptr || compute_major_ < 9) return 0;  // clusters: sm_90+
    CUlaunchAttribute cluster = cluster_attribute(cluster_x);
    const CUlaunchConfig config =
        launch_config(Dim3{cluster_x, 1, 1}, block, dynamic_shared_bytes, nullptr, &cluster);
    int clusters = 0;
    context_->make_current();
    check(driver().cuOccupancyMaxActiveClusters(&clusters, function(kernel), &config),
          "cuOccupancyMaxActiveClusters",
          fmt::format("asking how many clusters of {} blocks of '{}' fit {}", cluster_x, kernel.name,
                      info_.name));
    return clusters;
  }

 private:
  static CUlaunchAttribute cluster_attribute(unsigned cluster_x) {
    CUlaunchAttribute a{};
    a.id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
    a.value.clusterDim = {cluster_x, 1, 1};
    return a;
  }

  static CUlaunchConfig launch_config(Dim3 grid, Dim3 block, unsigned dynamic_shared_bytes, void* stream,
                                      CUlaunchAttribute* attribute) {
    CUlaunchConfig c{};
    c.gridDimX = grid.x;
    c.gridDimY = grid.y;
    c.gridDimZ = grid.z;
    c.blockDimX = block.x;
    c.blockDimY = block.y;
    c.blockDimZ = block.z;
    c.sharedMemBytes = dynamic_shared_bytes;
    c.hStream = static_cast<CUstream>(stream);
    c.attrs = attribute;
    c.numAttrs = 1;
    return c;
  }

  static CUfunction function(const KernelHandle& kernel) {
    if (kernel.native == nullptr) {
      fail(ErrorCode::invalid_argument, "using a kernel handle", kWhere, "the handle is empty");
    }
    return static_cast<CUfunction>(kernel.native);
  }

  int function_attribute(const KernelHandle& kernel, int attribute) {
    int value = 0;
    check(driver().cuFuncGetAttribute(&value, attribute, function(kernel)), "cuFuncGetAttribute",
          fmt::format("reading attribute {} of kernel '{}'", attribute, kernel.name));
    return value;
  }

  DeviceInfo info_;
  int compute_major_ = 0;                              // 9: Hopper (thread-block clusters)
  std::atomic<bool> dependent_launch_refused_{false};  // launch_dependent: plain launches from now on
  std::shared_ptr<const PrimaryContext> context_;
};

// ---------------------------------------------------------------- compiler
class NvrtcProgramGuard {
 public:
  explicit NvrtcProgramGuard(const NvrtcApi& api) : api_(api) {}
  NvrtcProgramGuard(const NvrtcProgramGuard&) = delete;
  NvrtcProgramGuard& operator=(const NvrtcProgramGuard&) = delete;
  ~NvrtcProgramGuard() {
    if (program != nullptr) api_.nvrtcDestroyProgram(&program);
  }
  nvrtcProgram program = nullptr;

 private:
  const NvrtcApi& api_;
};

bool names_standard(const std::vector<std::string>& options) {
  return std::any_of(options.begin(), options.end(),
                     [](const std::string& o) { return o.starts_with("-std") || o.starts_with("--std"); });
}

bool names_arch(const std::vector<std::string>& options) {
  return std::any_of(options.begin(), options.end(), [](const std::string& o) {
    return o.starts_with("-arch") || o.starts_with("--gpu-architecture") ||
           o.starts_with("-gpu-architecture");
  });
}

// Thread-safe: NVRTC programs are independent, and this object is immutable after construction.
class NvrtcCompiler final : public Compiler {
 public:
  explicit NvrtcCompiler(const NvrtcApi& api) : api_(api) {
    for (int sm : api.supported_archs) {
      archs_.insert(fmt::format("sm_{}", sm));
      if (sm >= 90) archs_.insert(fmt::format("sm_{}a", sm));  // arch-specific targets (wgmma, tcgen05 ...)
    }
    archs_.insert("sm_90a");
  }

  [[nodiscard]] std::string name() const override { return "nvrtc"; }
  [[nodiscard]] std::string version() const override {
    return fmt::format("nvrtc {}.{}", api_.major, api_.minor);
  }
  [[nodiscard]] bool supports_arch(std::string_view arch) const override {
    return archs_.contains(std::string(arch));
  }

  [[nodiscard]] CompileResult compile(const CompileRequest& request) const override {
    const std::string what = fmt::format("compiling {} for {}", request.source_name, request.arch);
    if (!supports_arch(request.arch)) {
      fail(ErrorCode::invalid_argument, what, "nvrtc",
           fmt::format("{} does not support arch '{}'", version(), request.arch));
    }
    if (names_arch(request.options)) {
      fail(ErrorCode::invalid_argument, what, "nvrtc",
           "the arch comes from CompileRequest::arch, not from options");
    }
    const auto start = std::chrono::steady_clock::now();

    std::vector<const char*> header_names, header_sources;
    for (const auto& [include_name, content] : request.headers) {
      header_names.push_back(include_name.c_str());
      header_sources.push_back(content.c_str());
    }
    NvrtcProgramGuard guard(api_);
    nvrtc_check(api_.nvrtcCreateProgram(&guard.program, request.source.c_str(), request.source_name.c_str(),
                                        static_cast<int>(header_names.size()), header_sources.data(),
                                        header_names.data()),
                "nvrtcCreateProgram", what);

    std::vector<std::string> options = {"--gpu-architecture=" + request.arch};
    if (!names_standard(request.options)) options.emplace_back("-std=c++20");
    options.insert(options.end(), request.options.begin(), request.options.end());
    std::vector<const char*> option_pointers;
    for (const std::string& o : options) option_pointers.push_back(o.c_str());

    const nvrtcResult compiled = api_.nvrtcCompileProgram(
        guard.program, static_cast<int>(option_pointers.size()), option_pointers.data());
    CompileResult result;
    result.log = program_log(guard.program);
    if (compiled != NVRTC_SUCCESS) {
      fail(ErrorCode::compile_failed, what, "nvrtc",
           fmt::format("nvrtcCompileProgram returned {} with options [{}]; log:\n{}", api_.describe(compiled),
                       fmt::join(options, " "), result.log));
    }
    std::size_t size = 0;
    nvrtc_check(api_.nvrtcGetCUBINSize(guard.program, &size), "nvrtcGetCUBINSize", what);
    result.binary.resize(size);
    nvrtc_check(api_.nvrtcGetCUBIN(guard.program, reinterpret_cast<char*>(result.binary.data())),
                "nvrtcGetCUBIN", what);
    if (!is_cubin(result.binary)) {
      fail(ErrorCode::compile_failed, what, "nvrtc",
           fmt::format("NVRTC returned {} bytes that are not a cubin (was an arch given as compute_*?)",
                       size));
    }
    require_kernels(result, request, what);
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
  }

 private:
  void nvrtc_check(nvrtcResult r, std::string_view call, const std::string& what) const {
    if (r != NVRTC_SUCCESS) {
      fail(ErrorCode::compile_failed, what, fmt::format("nvrtc: {}", call),
           fmt::format("{} returned {}", call, api_.describe(r)));
    }
  }

  std::string program_log(nvrtcProgram program) const {
    std::size_t size = 0;
    if (api_.nvrtcGetProgramLogSize(program, &size) != NVRTC_SUCCESS || size == 0) return {};
    std::string log(size, '\0');
    if (api_.nvrtcGetProgramLog(program, log.data()) != NVRTC_SUCCESS) return {};
    while (!log.empty() && log.back() == '\0') log.pop_back();
    return log;
  }

  static void require_kernels(const CompileResult& result, const CompileRequest& request,
                              const std::string& what) {
    const std::vector<std::string> present = cubin_kernel_names(result.binary);
    std::vector<std::string> missing;
    for (const std::string& name : request.kernel_names) {
      if (std::find(present.begin(), present.end(), name) == present.end()) missing.push_back(name);
    }
    if (!missing.empty()) {
      fail(ErrorCode::compile_failed, what, "nvrtc",
           fmt::format(
               "the cubin lacks kernel(s) [{}] (it has [{}]; kernels must be extern \"C\" __global__); "
               "log:\n{}",
               fmt::join(missing, ", "), fmt::join(present, ", "), result.log));
    }
  }

  const NvrtcApi& api_;
  std::set<std::string> archs_;
};

// ---------------------------------------------------------------- backend
class CudaBackend final : public Backend {
 public:
  CudaBackend() {
    if (const NvrtcLoad& nvrtc = load_nvrtc(); nvrtc.api) {
      compiler_ = std::make_unique<NvrtcCompiler>(*nvrtc.api);
    }
  }

  [[nodiscard]] Vendor vendor() const noexcept override { return Vendor::nvidia; }
  [[nodiscard]] std::string name() const override { return "cuda"; }

  [[nodiscard]] const Compiler* compiler_for(std::string_view arch) const override {
    return compiler_ && compiler_->supports_arch(arch) ? compiler_.get() : nullptr;
  }
  [[nodiscard]] std::string compiler_unavailable_reason() const override {
    return compiler_ ? std::string() : load_nvrtc().missing_reason;
  }

  [[nodiscard]] int device_count() override { return count_devices(nullptr); }
  [[nodiscard]] std::string devices_unavailable_reason() override {
    std::string reason;
    count_devices(&reason);
    return reason;
  }

  [[nodiscard]] std::unique_ptr<Device> open_device(int ordinal) override {
    std::string reason;
    const int count = count_devices(&reason);
    if (count == 0)
      fail(ErrorCode::unavailable, fmt::format("opening CUDA device {}", ordinal), kWhere, reason);
    if (ordinal < 0 || ordinal >= count) {
      fail(ErrorCode::not_found, fmt::format("opening CUDA device {}", ordinal), kWhere,
           fmt::format("there are {} CUDA device(s)", count));
    }
    return std::make_unique<CudaDevice>(ordinal);
  }

 private:
  // Never throws: a missing driver, failed cuInit or failed count is 0 devices plus a reason.
  static int count_devices(std::string* reason) {
    const DriverLoad& load = load_driver();
    std::string why;
    int count = 0;
    if (!load.api) {
      why = load.missing_reason;
    } else if (load.init_result != CUDA_SUCCESS) {
      why = fmt::format("cuInit failed: {}", load.api->describe(load.init_result));
    } else if (const CUresult r = load.api->cuDeviceGetCount(&count); r != CUDA_SUCCESS) {
      why = fmt::format("cuDeviceGetCount failed: {}", load.api->describe(r));
      count = 0;
    } else if (count == 0) {
      why = "the CUDA driver reports no devices";
    }
    if (reason != nullptr) *reason = std::move(why);
    return count;
  }

  std::unique_ptr<NvrtcCompiler> compiler_;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend() {
  return std::make_unique<CudaBackend>();
}

}  // namespace nsajit
