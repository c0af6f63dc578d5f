#include "runtime/amdgpu_clang_compiler.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <vector>

#include "runtime/amdgpu_code_object.hpp"
#include "runtime/error.hpp"

extern char** environ;

namespace nsajit {
namespace {

namespace fs = std::filesystem;
constexpr const char* kWhere = "runtime/amdgpu_clang_compiler";

// A private directory under $TMPDIR (or /tmp), removed with everything in it when it dies.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern =
        fmt::format("{}/nsajit-clang-XXXXXX", base != nullptr && *base != 0 ? base : "/tmp");
    if (mkdtemp(pattern.data()) == nullptr)
      fail(ErrorCode::internal, "creating a temporary directory for clang", kWhere,
           fmt::format("mkdtemp({}): {}", pattern, std::strerror(errno)));
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  [[nodiscard]] const fs::path& path() const noexcept { return path_; }

 private:
  fs::path path_;
};

void write_file(const fs::path& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  if (!out)
    fail(ErrorCode::internal, "writing a compiler input file", kWhere,
         fmt::format("cannot write {}: {}", path.string(), std::strerror(errno)));
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Runs argv[0] (a full path) with stdout and stderr going to `output`; no shell involved.
// Returns the exit status, or 128 + signal number when the child was killed.
int run_child(const std::vector<std::string>& args, const fs::path& output) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, output.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0)
    fail(ErrorCode::unavailable, "starting clang", kWhere,
         fmt::format("posix_spawn({}): {}", args[0], std::strerror(rc)));

  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      fail(ErrorCode::internal, "waiting for clang", kWhere,
           fmt::format("waitpid: {}", std::strerror(errno)));
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

bool executable(const fs::path& p) {
  return access(p.c_str(), X_OK) == 0 && fs::is_regular_file(p);
}

std::string first_line(std::string_view text) {
  const auto end = text.find('\n');
  return std::string(text.substr(0, end));
}

// CDNA processors this path has compiled and checked (AMD-TOOLCHAIN.md), and the one it asks
// clang about because a newer LLVM may know it.
constexpr std::array kVerifiedProcessors = {"gfx90a", "gfx940", "gfx941", "gfx942"};
constexpr std::array kProbedProcessors = {"gfx950"};

struct TargetId {
  std::string processor;
  bool valid_features = true;
};

// "gfx942:sramecc+:xnack-" -> processor + whether every feature is a known on/off setting.
TargetId parse_target_id(std::string_view arch) {
  TargetId id;
  const auto colon = arch.find(':');
  id.processor = std::string(arch.substr(0, colon));
  std::vector<std::string_view> seen;
  for (auto rest = colon == std::string_view::npos ? std::string_view{} : arch.substr(colon + 1);
       !rest.empty();) {
    const auto next = rest.find(':');
    const std::string_view feature = rest.substr(0, next);
    const std::string_view name = feature.substr(0, feature.size() - 1);
    const bool known =
        (name == "sramecc" || name == "xnack") && (feature.back() == '+' || feature.back() == '-');
    if (!known || std::find(seen.begin(), seen.end(), name) != seen.end()) id.valid_features = false;
    seen.push_back(name);
    rest = next == std::string_view::npos ? std::string_view{} : rest.substr(next + 1);
  }
  return id;
}

template <std::size_t N>
bool contains(const std::array<const char*, N>& list, std::string_view s) {
  return std::find_if(list.begin(), list.end(), [s](const char* x) { return s == x; }) != list.end();
}

// A header name must stay inside the include directory.
fs::path checked_header_path(const fs::path& include_dir, const std::string& name) {
  const fs::path rel(name);
  bool ok = !name.empty() && rel.is_relative();
  for (const auto& part : rel) ok = ok && part != ".." && part != ".";
  if (!ok)
    fail(ErrorCode::invalid_argument, "writing in-memory headers for clang", kWhere,
         fmt::format("header name '{}' must be a relative path without '.' or '..' components", name));
  return include_dir / rel;
}

// The request's source name if it is a plain file name, so clang's messages cite it.
std::string source_file_name(const std::string& requested) {
  const bool plain = !requested.empty() && requested.front() != '.' &&
                     std::all_of(requested.begin(), requested.end(), [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
                     });
  return plain ? requested : "kernel.hip";
}

}  // namespace

std::string find_clang19() {
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    std::string_view rest(path);
    while (!rest.empty()) {
      const auto sep = rest.find(':');
      const std::string_view dir = rest.substr(0, sep);
      if (!dir.empty()) {
        const fs::path candidate = fs::path(std::string(dir)) / "clang++-19";
        std::error_code ec;
        if (executable(candidate)) return candidate.string();
      }
      rest = sep == std::string_view::npos ? std::string_view{} : rest.substr(sep + 1);
    }
  }
  for (const char* fixed : {"/usr/bin/clang++-19", "/usr/lib/llvm-19/bin/clang++"})
    if (executable(fixed)) return fixed;
  return {};
}

AmdgpuClangCompiler::AmdgpuClangCompiler() : AmdgpuClangCompiler(find_clang19()) {}

AmdgpuClangCompiler::AmdgpuClangCompiler(std::string clang) : clang_(std::move(clang)) {
  if (clang_.empty()) {
    unavailable_reason_ =
        "clang++-19 not found (searched $PATH, /usr/bin/clang++-19, /usr/lib/llvm-19/bin/clang++); "
        "install clang-19 and lld-19 for gfx942";
    return;
  }
  try {
    TempDir dir;
    const fs::path out = dir.path() / "version.txt";
    const int rc = run_child({clang_, "--version"}, out);
    const std::string text = read_text(out);
    if (rc != 0) {
      unavailable_reason_ = fmt::format("{} --version exited with {}: {}", clang_, rc, first_line(text));
      clang_.clear();
      return;
    }
    version_ = "clang-19 " + first_line(text);
  } catch (const Error& e) {
    unavailable_reason_ = e.what();
    clang_.clear();
  }
}

std::string AmdgpuClangCompiler::unsupported_reason(std::string_view arch) const {
  if (!available()) return unavailable_reason_;
  const TargetId id = parse_target_id(arch);
  if (!id.valid_features)
    return fmt::format(
        "'{}': only the sramecc and xnack settings (+/-), each at most once, may follow the processor", arch);
  if (contains(kVerifiedProcessors, id.processor)) return {};
  if (contains(kProbedProcessors, id.processor)) {
    std::lock_guard lock(probe_mutex_);
    if (auto it = probed_.find(id.processor); it != probed_.end()) return it->second;
    std::string reason;
    try {
      TempDir dir;
      write_file(dir.path() / "probe.hip", "extern \"C\" __attribute__((global)) void probe() {}\n");
      const fs::path log = dir.path() / "log.txt";
      const int rc =
          run_child({clang_, "-x", "hip", "--offload-arch=" + id.processor, "--offload-device-only",
                     "--no-gpu-bundle-output", "-nogpuinc", "-nogpulib", "-O0",
                     (dir.path() / "probe.hip").string(), "-o", (dir.path() / "probe.co").string()},
                    log);
      if (rc != 0)
        reason = fmt::format(
            "{} ({}) cannot target {}: {}; LLVM 20 or newer is needed, and Debian 12 packages none", clang_,
            version_, id.processor, first_line(read_text(log)));
    } catch (const Error& e) {
      reason = e.what();
    }
    probed_.emplace(id.processor, reason);
    return reason;
  }
  return fmt::format(
      "'{}' is not a CDNA target; nsa-jit's AMD templates need MFMA and 64-wide wavefronts "
      "(supported: gfx90a, gfx940, gfx941, gfx942)",
      arch);
}

bool AmdgpuClangCompiler::supports_arch(std::string_view arch) const {
  return unsupported_reason(arch).empty();
}

CompileResult AmdgpuClangCompiler::compile(const CompileRequest& request) const {
  if (const std::string why = unsupported_reason(request.arch); !why.empty())
    fail(ErrorCode::invalid_argument, fmt::format("compiling '{}' for {}", request.source_name, request.arch),
         kWhere, why);
  const auto start = std::chrono::steady_clock::now();

  TempDir dir;
  const fs::path include_dir = dir.path() / "include";
  fs::create_directories(include_dir);
  for (const auto& [name, content] : request.headers) {
    const fs::path path = checked_header_path(include_dir, name);
    fs::create_directories(path.parent_path());
    write_file(path, content);
  }
  const fs::path source = dir.path() / source_file_name(request.source_name);
  write_file(source, request.source);
  const fs::path output = dir.path() / "kernel.co";
  const fs::path log_file = dir.path() / "clang.log";

  // Defaults first, so a request's -O / -std (which clang reads last-wins) overrides them.
  std::vector<std::string> args = {clang_,
                                   "-x",
                                   "hip",
                                   "--offload-arch=" + request.arch,
                                   "--offload-device-only",
                                   "--no-gpu-bundle-output",
                                   "-nogpuinc",
                                   "-nogpulib",
                                   "-O3",
                                   "-std=c++17",
                                   "-DNSAJIT_HIP_MIN_PRELUDE=1",
                                   "-I" + include_dir.string()};
  args.insert(args.end(), request.options.begin(), request.options.end());
  args.insert(args.end(), {source.string(), "-o", output.string()});

  const int rc = run_child(args, log_file);
  CompileResult result;
  result.log = read_text(log_file);
  const std::string what = fmt::format("compiling '{}' for {}", request.source_name, request.arch);
  if (rc != 0)
    fail(ErrorCode::compile_failed, what, kWhere,
         fmt::format("{} exited with status {}; log:\n{}", clang_, rc, result.log));
  {
    std::ifstream in(output, std::ios::binary);
    result.binary.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  if (!is_amdgpu_code_object(result.binary))
    fail(ErrorCode::compile_failed, what, kWhere,
         fmt::format("clang succeeded but {} is not an AMDGPU ELF code object ({} bytes); log:\n{}",
                     output.string(), result.binary.size(), result.log));
  if (const auto missing = missing_kernels(result.binary, request.kernel_names); !missing.empty())
    fail(ErrorCode::compile_failed, what, kWhere,
         fmt::format("the code object lacks the kernels {} (are they extern \"C\" __global__?); log:\n{}",
                     fmt::join(missing, ", "), result.log));
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace nsajit
