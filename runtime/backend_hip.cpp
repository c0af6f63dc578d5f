// The AMD backend: HIP runtime + hipRTC through dlopen (runtime/hip_api.hpp), and clang++-19 for
// the CDNA3 targets hipRTC 5.2 cannot compile (runtime/amdgpu_clang_compiler.hpp).
//
// Which compiler serves an arch:
//   gfx90a (and its :sramecc/:xnack variants verified with hipRTC 5.2) -> hipRTC, else clang-19
//   gfx940 / gfx941 / gfx942                                             -> clang-19
//   NSA_JIT_HIP_COMPILER=clang sends gfx90a to clang-19 as well (=hiprtc keeps the default).
// hipRTC aborts the process on an arch it does not know, so nothing else ever reaches it.
//
// Device side: written against the HIP C API of ROCm 5.2 and 7 and never run (no AMD GPU was
// available). hipGetDeviceProperties is avoided for everything but the arch name, because its
// struct layout changed in ROCm 6; see DeviceInfo below.
#include "runtime/backend_hip.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "runtime/amdgpu_clang_compiler.hpp"
#include "runtime/amdgpu_code_object.hpp"
#include "runtime/backend.hpp"
#include "runtime/error.hpp"
#include "runtime/hip_api.hpp"

namespace nsajit {
namespace {

using namespace hip_detail;
constexpr const char* kWhere = "runtime/backend_hip";

// ================================================================== hipRTC compiler
// Target IDs compiled and checked with hipRTC 5.2.3 (AMD-TOOLCHAIN.md). gfx908 and gfx90c also
// compile, but gfx908 aborts on the bf16 MFMA builtins the templates use, so it stays out.
constexpr std::array kHiprtcTargets = {"gfx90a", "gfx90a:xnack-", "gfx90a:sramecc+:xnack-"};

class HiprtcCompiler final : public Compiler {
 public:
  explicit HiprtcCompiler(std::shared_ptr<const HiprtcApi> api) : api_(std::move(api)) {
    int runtime_version = 0;
    const auto& rt = api_->runtime;
    if (rt != nullptr && rt->loaded && rt->hipRuntimeGetVersion(&runtime_version) == kHipSuccess) {
      version_ = fmt::format("hiprtc {}", runtime_version);
    } else {
      int major = 0, minor = 0;
      std::lock_guard lock(hiprtc_mutex());
      api_->hiprtcVersion(&major, &minor);
      version_ = fmt::format("hiprtc {}.{}", major, minor);
    }
  }

  std::string name() const override { return "hiprtc"; }
  std::string version() const override { return version_; }
  bool supports_arch(std::string_view arch) const override {
    return std::find(kHiprtcTargets.begin(), kHiprtcTargets.end(), arch) != kHiprtcTargets.end();
  }

  CompileResult compile(const CompileRequest& request) const override {
    const std::string what = fmt::format("compiling '{}' for {}", request.source_name, request.arch);
    if (!supports_arch(request.arch))
      fail(ErrorCode::invalid_argument, what, kWhere,
           fmt::format("hipRTC is only used for {} (it aborts the process on targets it does not know)",
                       fmt::join(kHiprtcTargets, ", ")));
    const auto start = std::chrono::steady_clock::now();

    std::vector<const char*> header_sources, header_names;
    for (const auto& [include_name, content] : request.headers) {
      header_names.push_back(include_name.c_str());
      header_sources.push_back(content.c_str());
    }
    const std::string arch_option = "--offload-arch=" + request.arch;
    std::vector<const char*> options = {arch_option.c_str(), "-O3", "-std=c++17"};
    for (const auto& o : request.options) options.push_back(o.c_str());

    CompileResult result;
    {
      // Every hipRTC call, from create to destroy, under the one process-wide lock.
      std::lock_guard lock(hiprtc_mutex());
      HiprtcProgram program = nullptr;
      check(api_->hiprtcCreateProgram(&program, request.source.c_str(), request.source_name.c_str(),
                                      static_cast<int>(header_sources.size()), header_sources.data(),
                                      header_names.data()),
            "hiprtcCreateProgram", what);
      struct ProgramGuard {
        const HiprtcApi& api;
        HiprtcProgram& p;
        ~ProgramGuard() { api.hiprtcDestroyProgram(&p); }
      } guard{*api_, program};

      const HiprtcResult compiled =
          api_->hiprtcCompileProgram(program, static_cast<int>(options.size()), options.data());
      std::size_t log_size = 0;
      if (api_->hiprtcGetProgramLogSize(program, &log_size) == kHiprtcSuccess && log_size > 1) {
        result.log.resize(log_size);
        if (api_->hiprtcGetProgramLog(program, result.log.data()) != kHiprtcSuccess) result.log.clear();
        while (!result.log.empty() && result.log.back() == '\0') result.log.pop_back();
      }
      if (compiled != kHiprtcSuccess)
        fail(ErrorCode::compile_failed, what, kWhere,
             fmt::format("hiprtcCompileProgram: {}; options: {}; log:\n{}", api_->error_name(compiled),
                         fmt::join(options, " "), result.log));
      std::size_t code_size = 0;
      check(api_->hiprtcGetCodeSize(program, &code_size), "hiprtcGetCodeSize", what);
      result.binary.resize(code_size);
      check(api_->hiprtcGetCode(program, reinterpret_cast<char*>(result.binary.data())), "hiprtcGetCode",
            what);
    }
    if (!is_amdgpu_code_object(result.binary))
      fail(ErrorCode::compile_failed, what, kWhere,
           fmt::format("hipRTC returned {} bytes that are not an AMDGPU ELF code object; log:\n{}",
                       result.binary.size(), result.log));
    if (const auto missing = missing_kernels(result.binary, request.kernel_names); !missing.empty())
      fail(ErrorCode::compile_failed, what, kWhere,
           fmt::format("the code object lacks the kernels {} (are they extern \"C\" __global__?); log:\n{}",
                       fmt::join(missing, ", "), result.log));
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
  }

 private:
  void check(HiprtcResult r, const char* call, const std::string& what) const {
    if (r != kHiprtcSuccess)
      fail(ErrorCode::compile_failed, what, kWhere, fmt::format("{}: {}", call, api_->error_name(r)));
  }

  std::shared_ptr<const HiprtcApi> api_;
  std::string version_;
};

// ================================================================== device side
// DeviceMemory frees through a plain function pointer, so hipFree is reachable process-wide.
// The library is opened with RTLD_NODELETE, so the pointer stays valid.
std::atomic<HipError (*)(void*)> g_hip_free{nullptr};

void release_hip_memory(void* ptr) noexcept {
  if (auto f = g_hip_free.load(); f != nullptr) (void)f(ptr);  // nothing useful to do on failure
}

class HipCalls {
 public:
  explicit HipCalls(std::shared_ptr<const HipRuntimeApi> api) : api_(std::move(api)) {}
  [[nodiscard]] const HipRuntimeApi& api() const noexcept { return *api_; }
  [[nodiscard]] const std::shared_ptr<const HipRuntimeApi>& shared() const noexcept { return api_; }
  void check(HipError e, const char* call, const std::string& what) const {
    if (e != kHipSuccess)
      fail(ErrorCode::device_error, what, kWhere, fmt::format("{}: {}", call, api_->error_name(e)));
  }

 private:
  std::shared_ptr<const HipRuntimeApi> api_;
};

// Kernel resources read from the code object at load time, keyed by hipFunction_t, so
// kernel_resources() reports AGPRs, spills and occupancy that hipFuncGetAttribute does not have.
struct KernelRegistry {
  std::mutex mutex;
  std::map<void*, KernelResources> by_function;
};

class HipModule final : public Module {
 public:
  HipModule(HipCalls calls, int ordinal, HipModuleHandle module, std::vector<KernelResources> resources,
            std::shared_ptr<KernelRegistry> registry)
      : calls_(std::move(calls)),
        ordinal_(ordinal),
        module_(module),
        resources_(std::move(resources)),
        registry_(std::move(registry)) {}
  HipModule(const HipModule&) = delete;
  HipModule& operator=(const HipModule&) = delete;
  ~HipModule() override {
    {
      std::lock_guard lock(registry_->mutex);
      for (void* f : functions_) registry_->by_function.erase(f);
    }
    (void)calls_.api().hipSetDevice(ordinal_);
    (void)calls_.api().hipModuleUnload(module_);
  }

  KernelHandle kernel(std::string_view name) override {
    const std::string n(name);
    HipFunctionHandle f = nullptr;
    const HipError e = calls_.api().hipModuleGetFunction(&f, module_, n.c_str());
    if (e != kHipSuccess || f == nullptr) {
      const bool listed = std::any_of(resources_.begin(), resources_.end(),
                                      [&n](const KernelResources& r) { return r.kernel_name == n; });
      fail(listed ? ErrorCode::device_error : ErrorCode::not_found, fmt::format("looking up kernel '{}'", n),
           kWhere,
           fmt::format("hipModuleGetFunction: {}; the code object's kernels: {}", calls_.api().error_name(e),
                       kernel_names()));
    }
    std::lock_guard lock(registry_->mutex);
    for (const auto& r : resources_)
      if (r.kernel_name == n) registry_->by_function[f] = r;
    functions_.push_back(f);
    return KernelHandle{f, n};
  }

 private:
  std::string kernel_names() const {
    std::vector<std::string> names;
    for (const auto& r : resources_) names.push_back(r.kernel_name);
    return names.empty() ? std::string("(none)") : fmt::format("{}", fmt::join(names, ", "));
  }

  HipCalls calls_;
  int ordinal_;
  HipModuleHandle module_;
  std::vector<KernelResources> resources_;
  std::shared_ptr<KernelRegistry> registry_;
  std::vector<void*> functions_;
};

class HipStream final : public Stream {
 public:
  HipStream(HipCalls calls, HipStreamHandle s) : calls_(std::move(calls)), stream_(s) {}
  HipStream(const HipStream&) = delete;
  HipStream& operator=(const HipStream&) = delete;
  ~HipStream() override { (void)calls_.api().hipStreamDestroy(stream_); }
  void* native() const noexcept override { return stream_; }
  void synchronize() override {
    calls_.check(calls_.api().hipStreamSynchronize(stream_), "hipStreamSynchronize",
                 "synchronising a stream");
  }

 private:
  HipCalls calls_;
  HipStreamHandle stream_;
};

class HipEvent final : public Event {
 public:
  HipEvent(HipCalls calls, HipEventHandle e) : calls_(std::move(calls)), event_(e) {}
  HipEvent(const HipEvent&) = delete;
  HipEvent& operator=(const HipEvent&) = delete;
  ~HipEvent() override { (void)calls_.api().hipEventDestroy(event_); }
  void record(void* stream) override {
    calls_.check(calls_.api().hipEventRecord(event_, stream), "hipEventRecord", "recording an event");
  }
  void synchronize() override {
    calls_.check(calls_.api().hipEventSynchronize(event_), "hipEventSynchronize", "waiting for an event");
  }
  float elapsed_ms_since(const Event& start) const override {
    const auto* begin = dynamic_cast<const HipEvent*>(&start);
    if (begin == nullptr)
      fail(ErrorCode::invalid_argument, "timing between events", kWhere,
           "the start event is not a HIP event");
    float ms = 0.0f;
    calls_.check(calls_.api().hipEventElapsedTime(&ms, begin->event_, event_), "hipEventElapsedTime",
                 "timing between events");
    return ms;
  }

 private:
  HipCalls calls_;
  HipEventHandle event_;
};

// The arch name ("gfx90a") from the bytes of hipDeviceProp_t. Its layout differs between ROCm
// 5 (hipGetDeviceProperties) and 6+ (hipGetDevicePropertiesR0600), so instead of an offset we
// look for gcnArchName itself: a NUL-started string "gfx<hex digits>[:features]" after the
// 256-byte marketing name. Checked only against the 5.2 header layout, never on hardware.
std::string arch_from_properties(const HipRuntimeApi& api, int ordinal) {
  if (api.hipGetDeviceProperties == nullptr) return {};
  std::vector<char> props(64 * 1024, 0);  // far larger than any hipDeviceProp_t
  if (api.hipGetDeviceProperties(props.data(), ordinal) != kHipSuccess) return {};
  for (std::size_t i = 256; i + 8 < props.size(); ++i) {
    if (props[i - 1] != '\0' || std::strncmp(&props[i], "gfx", 3) != 0) continue;
    std::size_t end = i + 3;
    while (end < props.size() && std::isxdigit(static_cast<unsigned char>(props[end]))) ++end;
    if (end == i + 3 || end >= props.size() || (props[end] != '\0' && props[end] != ':')) continue;
    return std::string(&props[i], end - i);
  }
  return {};
}

// When gcnArchName cannot be found: the compute capability HIP reports is the gfx version
// (gfx942 -> 9.4), which names the processor only where it is unambiguous among CDNA parts.
std::string arch_from_compute_capability(int major, int minor) {
  if (major == 9 && minor == 4) return "gfx942";  // MI300X/MI300A; gfx940/941 were pre-release
  if (major == 9 && minor == 5) return "gfx950";
  return {};
}

std::string format_uuid(const unsigned char (&b)[16]) {
  return fmt::format(
      "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
      b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

class HipDevice final : public Device {
 public:
  HipDevice(HipCalls calls, int ordinal) : calls_(std::move(calls)), ordinal_(ordinal) {
    const auto& api = calls_.api();
    const std::string what = fmt::format("opening HIP device {}", ordinal);
    calls_.check(api.hipSetDevice(ordinal), "hipSetDevice", what);
    auto attribute = [&](HipDeviceAttribute a, const char* label) {
      int v = 0;
      const HipError e = api.hipDeviceGetAttribute(&v, static_cast<int>(a), ordinal);
      if (e != kHipSuccess)
        fail(ErrorCode::device_error, what, kWhere,
             fmt::format("hipDeviceGetAttribute({}): {}", label, api.error_name(e)));
      return v;
    };
    info_.vendor = Vendor::amd;
    info_.ordinal = ordinal;
    char name[256] = {};
    calls_.check(api.hipDeviceGetName(name, sizeof(name) - 1, ordinal), "hipDeviceGetName", what);
    info_.name = name;
    info_.multiprocessors = attribute(HipDeviceAttribute::multiprocessor_count, "multiprocessor count");
    info_.l2_bytes = static_cast<std::size_t>(attribute(HipDeviceAttribute::l2_cache_size, "L2 cache size"));
    // AMD has no opt-in: the per-block maximum is what a kernel can use (64 KB on gfx90a/942).
    info_.shared_memory_per_block_optin = static_cast<std::size_t>(std::max(
        attribute(HipDeviceAttribute::max_shared_memory_per_block, "max shared memory per block"),
        attribute(HipDeviceAttribute::shared_mem_per_block_optin, "shared memory per block opt-in")));
    std::size_t total = 0;
    calls_.check(api.hipDeviceTotalMem(&total, ordinal), "hipDeviceTotalMem", what);
    info_.global_memory_bytes = total;
    int driver = 0;
    calls_.check(api.hipDriverGetVersion(&driver), "hipDriverGetVersion", what);
    info_.driver_version = std::to_string(driver);

    info_.arch = arch_from_properties(api, ordinal);
    if (info_.arch.empty()) {
      const int major = attribute(HipDeviceAttribute::compute_capability_major, "compute capability major");
      const int minor = attribute(HipDeviceAttribute::compute_capability_minor, "compute capability minor");
      info_.arch = arch_from_compute_capability(major, minor);
      if (info_.arch.empty())
        fail(ErrorCode::device_error, what, kWhere,
             fmt::format(
                 "cannot tell the gfx processor of '{}': no gcnArchName in hipDeviceProp_t and compute "
                 "capability {}.{} names several processors",
                 info_.name, major, minor));
    }

    unsigned char uuid[16] = {};
    if (api.hipDeviceGetUuid != nullptr && api.hipDeviceGetUuid(uuid, ordinal) == kHipSuccess &&
        std::any_of(std::begin(uuid), std::end(uuid), [](unsigned char c) { return c != 0; })) {
      info_.uuid = format_uuid(uuid);
    } else {
      char bus[64] = {};
      calls_.check(api.hipDeviceGetPCIBusId(bus, sizeof(bus) - 1, ordinal), "hipDeviceGetPCIBusId", what);
      info_.uuid = fmt::format("pci:{}", bus);
    }
    g_hip_free.store(api.hipFree);
  }

  const DeviceInfo& info() const noexcept override { return info_; }

  void make_current() override {
    calls_.check(calls_.api().hipSetDevice(ordinal_), "hipSetDevice", "making the HIP device current");
  }

  std::unique_ptr<Module> load_module(std::span<const std::uint8_t> binary) override {
    const std::string what = fmt::format("loading a {} byte code object on {}", binary.size(), info_.name);
    // Read the metadata first: a code object for another processor fails here with a clear
    // message instead of hipErrorNoBinaryForGpu.
    const AmdgpuCodeObject co = read_amdgpu_code_object(binary);
    if (co.processor != info_.arch)
      fail(ErrorCode::invalid_argument, what, kWhere,
           fmt::format("the code object targets {} but the device is {}", co.target, info_.arch));
    make_current();
    HipModuleHandle module = nullptr;
    calls_.check(calls_.api().hipModuleLoadData(&module, binary.data()), "hipModuleLoadData", what);
    return std::make_unique<HipModule>(calls_, ordinal_, module, code_object_resources(binary), registry_);
  }

  DeviceMemory allocate(std::size_t bytes) override {
    make_current();
    void* ptr = nullptr;
    calls_.check(calls_.api().hipMalloc(&ptr, bytes), "hipMalloc", fmt::format("allocating {} bytes", bytes));
    return DeviceMemory(ptr, bytes, &release_hip_memory);
  }

  // The copies and the fill run on the legacy null stream; the streams this backend creates are
  // non-blocking, so each call waits for the null stream to finish before it returns.
  void copy_to_device(void* dst, const void* src, std::size_t bytes) override {
    const std::string what = fmt::format("copying {} bytes to the device", bytes);
    make_current();
    calls_.check(calls_.api().hipMemcpyHtoD(dst, const_cast<void*>(src), bytes), "hipMemcpyHtoD", what);
    calls_.check(calls_.api().hipStreamSynchronize(nullptr), "hipStreamSynchronize", what);
  }
  void copy_to_host(void* dst, const void* src, std::size_t bytes) override {
    const std::string what = fmt::format("copying {} bytes to the host", bytes);
    make_current();
    calls_.check(calls_.api().hipMemcpyDtoH(dst, const_cast<void*>(src), bytes), "hipMemcpyDtoH", what);
    calls_.check(calls_.api().hipStreamSynchronize(nullptr), "hipStreamSynchronize", what);
  }
  void fill_bytes(void* dst, std::uint8_t value, std::size_t bytes) override {
    const std::string what = fmt::format("filling {} bytes with 0x{:02x}", bytes, value);
    make_current();
    calls_.check(calls_.api().hipMemsetD8(dst, value, bytes), "hipMemsetD8", what);
    calls_.check(calls_.api().hipStreamSynchronize(nullptr), "hipStreamSynchronize", what);
  }

  std::unique_ptr<Stream> create_stream() override {
    make_current();
    HipStreamHandle s = nullptr;
    calls_.check(calls_.api().hipStreamCreateWithFlags(&s, kHipStreamNonBlocking), "hipStreamCreateWithFlags",
                 "creating a stream");
    return std::make_unique<HipStream>(calls_, s);
  }
  std::unique_ptr<Event> create_event() override {
    make_current();
    HipEventHandle e = nullptr;
    calls_.check(calls_.api().hipEventCreateWithFlags(&e, kHipEventDefault), "hipEventCreateWithFlags",
                 "creating an event");
    return std::make_unique<HipEvent>(calls_, e);
  }
  void synchronize() override {
    make_current();
    calls_.check(calls_.api().hipDeviceSynchronize(), "hipDeviceSynchronize", "synchronising the device");
  }

  // AMD has no dynamic-LDS opt-in: anything up to the per-block maximum is allowed as is.
  void set_max_dynamic_shared(const KernelHandle& kernel, int bytes) override {
    if (bytes < 0 || static_cast<std::size_t>(bytes) > info_.shared_memory_per_block_optin)
      fail(ErrorCode::invalid_argument,
           fmt::format("allowing {} bytes of dynamic LDS for '{}'", bytes, kernel.name), kWhere,
           fmt::format("{} allows at most {} bytes of LDS per workgroup", info_.arch,
                       info_.shared_memory_per_block_optin));
  }

  KernelResources kernel_resources(const KernelHandle& kernel) override {
    {
      std::lock_guard lock(registry_->mutex);
      if (auto it = registry_->by_function.find(kernel.native); it != registry_->by_function.end())
        return it->second;
    }
    // Not from one of our modules: ask the runtime, which knows fewer fields.
    const auto& api = calls_.api();
    const std::string what = fmt::format("reading the resources of kernel '{}'", kernel.name);
    if (api.hipFuncGetAttribute == nullptr)
      fail(ErrorCode::unavailable, what, kWhere,
           "the kernel was not loaded by this device and hipFuncGetAttribute is missing");
    auto attribute = [&](HipFunctionAttribute a, const char* call) {
      int v = 0;
      calls_.check(api.hipFuncGetAttribute(&v, static_cast<int>(a), kernel.native), call, what);
      return v;
    };
    KernelResources r;
    r.kernel_name = kernel.name;
    r.registers = attribute(HipFunctionAttribute::num_regs, "hipFuncGetAttribute(NUM_REGS)");
    r.spill_bytes =
        attribute(HipFunctionAttribute::local_size_bytes, "hipFuncGetAttribute(LOCAL_SIZE_BYTES)");
    r.static_shared_bytes =
        attribute(HipFunctionAttribute::shared_size_bytes, "hipFuncGetAttribute(SHARED_SIZE_BYTES)");
    r.max_threads_per_block =
        attribute(HipFunctionAttribute::max_threads_per_block, "hipFuncGetAttribute(MAX_THREADS_PER_BLOCK)");
    return r;
  }

  void launch(const KernelHandle& kernel, Dim3 grid, Dim3 block, unsigned dynamic_shared_bytes, void* stream,
              void** args) override {
    const HipError e =
        calls_.api().hipModuleLaunchKernel(kernel.native, grid.x, grid.y, grid.z, block.x, block.y, block.z,
                                           dynamic_shared_bytes, stream, args, nullptr);
    if (e != kHipSuccess)
      fail(ErrorCode::device_error, fmt::format("launching '{}'", kernel.name), kWhere,
           fmt::format("hipModuleLaunchKernel(grid {}x{}x{}, block {}x{}x{}, {} bytes LDS): {}", grid.x,
                       grid.y, grid.z, block.x, block.y, block.z, dynamic_shared_bytes,
                       calls_.api().error_name(e)));
  }

 private:
  HipCalls calls_;
  int ordinal_;
  DeviceInfo info_;
  std::shared_ptr<KernelRegistry> registry_ = std::make_shared<KernelRegistry>();
};

// ================================================================== backend
class HipBackend final : public Backend {
 public:
  HipBackend()
      : runtime_(load_hip_runtime_api()),
        hiprtc_api_(load_hiprtc_api(runtime_)),
        clang_(std::make_unique<AmdgpuClangCompiler>()) {
    if (hiprtc_api_->loaded) hiprtc_ = std::make_unique<HiprtcCompiler>(hiprtc_api_);
    if (const char* choice = std::getenv("NSA_JIT_HIP_COMPILER"); choice != nullptr)
      prefer_clang_ = std::string_view(choice) == "clang";
  }

  Vendor vendor() const noexcept override { return Vendor::amd; }
  std::string name() const override { return "hip"; }

  const Compiler* compiler_for(std::string_view arch) const override {
    const bool hiprtc_ok = hiprtc_ != nullptr && hiprtc_->supports_arch(arch);
    if (hiprtc_ok && !prefer_clang_) return hiprtc_.get();
    if (clang_->supports_arch(arch)) return clang_.get();
    return hiprtc_ok ? hiprtc_.get() : nullptr;
  }

  std::string compiler_unavailable_reason() const override {
    const std::string hiprtc = hiprtc_ != nullptr ? fmt::format("hiprtc: {} ({})", hiprtc_->version(),
                                                                fmt::join(kHiprtcTargets, ", "))
                                                  : fmt::format("hiprtc: {}", hiprtc_api_->reason);
    const std::string clang =
        clang_->available()
            ? fmt::format("clang-19: {} (gfx90a, gfx940, gfx941, gfx942)", clang_->clang_path())
            : fmt::format("clang-19: {}", clang_->unavailable_reason());
    return fmt::format("{}; {}; gfx950: {}", hiprtc, clang, arch_unsupported_reason("gfx950"));
  }

  std::string arch_unsupported_reason(std::string_view arch) const {
    if (compiler_for(arch) != nullptr) return {};
    std::string why = clang_->unsupported_reason(arch);
    if (arch.starts_with("gfx90a") && hiprtc_ == nullptr)
      why = fmt::format("{}; hiprtc: {}", why, hiprtc_api_->reason);
    return why;
  }

  int device_count() override {
    std::lock_guard lock(mutex_);
    if (!runtime_->loaded) {
      devices_reason_ = runtime_->reason;
      return 0;
    }
    int count = 0;
    const HipError e = runtime_->hipGetDeviceCount(&count);
    if (e != kHipSuccess) {
      devices_reason_ = fmt::format("hipGetDeviceCount: {}", runtime_->error_name(e));
      return 0;
    }
    devices_reason_ = count == 0 ? "hipGetDeviceCount found no AMD GPU" : "";
    return count;
  }

  std::string devices_unavailable_reason() override {
    (void)device_count();
    std::lock_guard lock(mutex_);
    return devices_reason_;
  }

  std::unique_ptr<Device> open_device(int ordinal) override {
    const int count = device_count();
    if (count == 0)
      fail(ErrorCode::unavailable, fmt::format("opening HIP device {}", ordinal), kWhere,
           devices_unavailable_reason());
    if (ordinal < 0 || ordinal >= count)
      fail(ErrorCode::not_found, fmt::format("opening HIP device {}", ordinal), kWhere,
           fmt::format("there are {} HIP devices (ordinals 0..{})", count, count - 1));
    return std::make_unique<HipDevice>(HipCalls(runtime_), ordinal);
  }

 private:
  std::shared_ptr<const HipRuntimeApi> runtime_;
  std::shared_ptr<const HiprtcApi> hiprtc_api_;
  std::unique_ptr<HiprtcCompiler> hiprtc_;
  std::unique_ptr<AmdgpuClangCompiler> clang_;
  bool prefer_clang_ = false;
  std::mutex mutex_;
  std::string devices_reason_;
};

}  // namespace

std::unique_ptr<Backend> make_hip_backend() {
  return std::make_unique<HipBackend>();
}

std::string hip_arch_unsupported_reason(std::string_view arch) {
  return static_cast<const HipBackend&>(hip_backend()).arch_unsupported_reason(arch);
}

}  // namespace nsajit
