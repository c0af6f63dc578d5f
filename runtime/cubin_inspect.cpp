#include "runtime/cubin_inspect.hpp"

#include <fmt/format.h>

#include <cstring>
#include <map>
#include <optional>
#include <string_view>

#include "runtime/error.hpp"

namespace nsajit {
namespace {

using Bytes = std::span<const std::uint8_t>;

constexpr std::uint16_t kEmCuda = 190;
constexpr std::size_t kElf64HeaderSize = 64;
constexpr std::size_t kElf64SectionHeaderSize = 64;
constexpr std::size_t kElf64SymbolSize = 24;
constexpr std::uint32_t kShtSymtab = 2;
constexpr std::uint32_t kShtNobits = 8;
constexpr std::uint8_t kSttFunc = 2;
constexpr std::uint8_t kStoCudaEntry = 0x10;  // st_other bit marking a __global__ entry point

// .nv.info entries: {u8 format, u8 attribute, u16 value} or, for format SVAL, {.., u16 size, bytes}.
constexpr std::uint8_t kEifmtSval = 0x04;
constexpr std::uint8_t kEiattrMaxThreads = 0x05;
constexpr std::uint8_t kEiattrReqntid = 0x10;
constexpr std::uint8_t kEiattrFrameSize = 0x11;
constexpr std::uint8_t kEiattrRegcount = 0x2f;
// .nv.compat uses the same encoding; this attribute is 1 for arch-specific (sm_XXa) code.
constexpr std::uint8_t kCompatArchSpecific = 0x09;
// sm_90+ cubins start every .nv.shared.<kernel> with this system-reserved window.
constexpr std::uint64_t kReservedSharedWindow = 1024;

[[noreturn]] void malformed(const std::string& why) {
  fail(ErrorCode::invalid_argument, "reading a cubin", "runtime/cubin_inspect", why);
}

template <class T>
T read(Bytes bytes, std::uint64_t offset) {
  if (offset > bytes.size() || bytes.size() - offset < sizeof(T)) {
    malformed(fmt::format("read of {} bytes at offset {} runs past the end ({} bytes)", sizeof(T), offset,
                          bytes.size()));
  }
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

Bytes slice(Bytes bytes, std::uint64_t offset, std::uint64_t size, std::string_view what) {
  if (offset > bytes.size() || bytes.size() - offset < size) {
    malformed(fmt::format("{} [{}, +{}) lies outside the {}-byte file", what, offset, size, bytes.size()));
  }
  return bytes.subspan(offset, size);
}

std::string c_string(Bytes table, std::uint64_t offset) {
  if (offset >= table.size()) malformed(fmt::format("string offset {} outside its table", offset));
  const auto* begin = reinterpret_cast<const char*>(table.data()) + offset;
  const void* end = std::memchr(begin, '\0', table.size() - offset);
  if (end == nullptr) malformed(fmt::format("unterminated string at offset {}", offset));
  return std::string(begin, static_cast<const char*>(end));
}

struct Section {
  std::string name;
  std::uint32_t type = 0;
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
  std::uint32_t link = 0;
  std::uint32_t info = 0;
};

struct Symbol {
  std::string name;
  std::uint32_t index = 0;
  std::uint8_t type = 0;
  std::uint8_t other = 0;
};

struct NvInfoEntry {
  std::uint8_t attribute = 0;
  bool has_payload = false;
  std::uint16_t small_value = 0;  // formats other than SVAL
  Bytes payload;                  // SVAL
};

std::vector<NvInfoEntry> parse_nv_info(Bytes data) {
  std::vector<NvInfoEntry> entries;
  std::uint64_t at = 0;
  while (at + 4 <= data.size()) {
    NvInfoEntry entry;
    const std::uint8_t format = data[at];
    entry.attribute = data[at + 1];
    const auto value = read<std::uint16_t>(data, at + 2);
    at += 4;
    if (format == kEifmtSval) {
      entry.has_payload = true;
      entry.payload = slice(data, at, value, "an .nv.info attribute");
      at += value;
    } else {
      entry.small_value = value;
    }
    entries.push_back(entry);
  }
  return entries;
}

// u32 number `i` of an SVAL payload.
std::optional<std::uint32_t> word(const NvInfoEntry& entry, std::size_t i) {
  if (!entry.has_payload || entry.payload.size() < 4 * (i + 1)) return std::nullopt;
  return read<std::uint32_t>(entry.payload, 4 * i);
}

class CubinView {
 public:
  explicit CubinView(Bytes bytes) : bytes_(bytes) {
    if (!is_cubin(bytes)) malformed("not a cubin (needs a little-endian ELF64 with e_machine EM_CUDA=190)");
    abi_version_ = bytes[8];
    flags_ = read<std::uint32_t>(bytes, 48);
    const auto shoff = read<std::uint64_t>(bytes, 40);
    const auto shentsize = read<std::uint16_t>(bytes, 58);
    const auto shnum = read<std::uint16_t>(bytes, 60);
    const auto shstrndx = read<std::uint16_t>(bytes, 62);
    if (shentsize < kElf64SectionHeaderSize) malformed(fmt::format("section header size {}", shentsize));
    if (shstrndx >= shnum) malformed(fmt::format("section name table index {} of {}", shstrndx, shnum));
    slice(bytes, shoff, std::uint64_t{shnum} * shentsize, "the section header table");

    std::vector<std::uint32_t> name_offsets;
    for (std::uint16_t i = 0; i < shnum; ++i) {
      const std::uint64_t at = shoff + std::uint64_t{i} * shentsize;
      name_offsets.push_back(read<std::uint32_t>(bytes, at));
      Section s;
      s.type = read<std::uint32_t>(bytes, at + 4);
      s.offset = read<std::uint64_t>(bytes, at + 24);
      s.size = read<std::uint64_t>(bytes, at + 32);
      s.link = read<std::uint32_t>(bytes, at + 40);
      s.info = read<std::uint32_t>(bytes, at + 44);
      sections_.push_back(s);
    }
    const Bytes names = contents(sections_[shstrndx]);
    for (std::size_t i = 0; i < sections_.size(); ++i) sections_[i].name = c_string(names, name_offsets[i]);

    for (const Section& s : sections_) {
      if (s.type != kShtSymtab) continue;
      if (s.link >= sections_.size()) malformed("symbol table links to a missing string table");
      const Bytes table = contents(s);
      const Bytes strings = contents(sections_[s.link]);
      for (std::uint64_t at = 0, index = 0; at + kElf64SymbolSize <= table.size();
           at += kElf64SymbolSize, ++index) {
        Symbol sym;
        sym.index = static_cast<std::uint32_t>(index);
        sym.name = c_string(strings, read<std::uint32_t>(table, at));
        sym.type = table[at + 4] & 0x0f;
        sym.other = table[at + 5];
        symbols_.push_back(std::move(sym));
      }
      break;
    }
  }

  [[nodiscard]] Bytes contents(const Section& s) const {
    if (s.type == kShtNobits) return {};
    return slice(bytes_, s.offset, s.size, fmt::format("section '{}'", s.name));
  }

  [[nodiscard]] const Section* section(std::string_view name) const {
    for (const Section& s : sections_) {
      if (s.name == name) return &s;
    }
    return nullptr;
  }

  [[nodiscard]] std::vector<const Symbol*> kernels() const {
    std::vector<const Symbol*> out;
    for (const Symbol& sym : symbols_) {
      if (sym.type == kSttFunc && (sym.other & kStoCudaEntry) != 0 && !sym.name.empty()) out.push_back(&sym);
    }
    return out;
  }

  [[nodiscard]] std::uint8_t abi_version() const noexcept { return abi_version_; }
  [[nodiscard]] std::uint32_t flags() const noexcept { return flags_; }

 private:
  Bytes bytes_;
  std::uint8_t abi_version_ = 0;
  std::uint32_t flags_ = 0;
  std::vector<Section> sections_;
  std::vector<Symbol> symbols_;
};

int threads_of(const NvInfoEntry& entry) {
  const auto x = word(entry, 0), y = word(entry, 1), z = word(entry, 2);
  if (!x || !y || !z) return 0;
  return static_cast<int>(std::uint64_t{*x} * *y * *z);
}

}  // namespace

bool is_cubin(std::span<const std::uint8_t> binary) noexcept {
  if (binary.size() < kElf64HeaderSize) return false;
  const bool elf = binary[0] == 0x7f && binary[1] == 'E' && binary[2] == 'L' && binary[3] == 'F';
  const bool elf64_little_endian = binary[4] == 2 && binary[5] == 1;
  const auto machine = static_cast<std::uint16_t>(binary[18] | (binary[19] << 8));
  return elf && elf64_little_endian && machine == kEmCuda;
}

std::string cubin_arch(std::span<const std::uint8_t> binary) {
  const CubinView cubin(binary);
  // ELF ABI v8 (CUDA 12.8+) keeps the SM number in bits 8-15 of e_flags; older cubins in bits 0-7.
  const std::uint32_t sm = cubin.abi_version() >= 8 ? (cubin.flags() >> 8) & 0xff : cubin.flags() & 0xff;
  bool arch_specific = false;
  if (const Section* compat = cubin.section(".nv.compat")) {
    for (const NvInfoEntry& entry : parse_nv_info(cubin.contents(*compat))) {
      if (entry.attribute == kCompatArchSpecific && !entry.has_payload)
        arch_specific = entry.small_value != 0;
    }
  }
  return fmt::format("sm_{}{}", sm, arch_specific ? "a" : "");
}

std::vector<std::string> cubin_kernel_names(std::span<const std::uint8_t> binary) {
  const CubinView cubin(binary);
  std::vector<std::string> names;
  for (const Symbol* kernel : cubin.kernels()) names.push_back(kernel->name);
  return names;
}

std::vector<KernelResources> cubin_resources(std::span<const std::uint8_t> binary) {
  const CubinView cubin(binary);

  // The module-wide .nv.info keys register counts and frame sizes by symbol index.
  std::map<std::uint32_t, int> registers;
  std::map<std::uint32_t, int> frame_bytes;
  if (const Section* info = cubin.section(".nv.info")) {
    for (const NvInfoEntry& entry : parse_nv_info(cubin.contents(*info))) {
      const auto symbol = word(entry, 0);
      const auto value = word(entry, 1);
      if (!symbol || !value) continue;
      if (entry.attribute == kEiattrRegcount) registers[*symbol] = static_cast<int>(*value);
      if (entry.attribute == kEiattrFrameSize) frame_bytes[*symbol] = static_cast<int>(*value);
    }
  }
  const bool has_reserved_window = cubin.section(".nv.shared.reserved.0") != nullptr;

  std::vector<KernelResources> out;
  for (const Symbol* kernel : cubin.kernels()) {
    KernelResources r;
    r.kernel_name = kernel->name;
    if (auto it = registers.find(kernel->index); it != registers.end()) {
      r.registers = it->second;
    } else if (const Section* text = cubin.section(".text." + kernel->name)) {
      r.registers = static_cast<int>(text->info >> 24);
    }
    if (auto it = frame_bytes.find(kernel->index); it != frame_bytes.end()) r.spill_bytes = it->second;
    if (const Section* shared = cubin.section(".nv.shared." + kernel->name)) {
      std::uint64_t bytes = shared->size;
      if (has_reserved_window) bytes = bytes > kReservedSharedWindow ? bytes - kReservedSharedWindow : 0;
      r.static_shared_bytes = static_cast<int>(bytes);
    }
    if (const Section* info = cubin.section(".nv.info." + kernel->name)) {
      int max_threads = 0, required_threads = 0;
      for (const NvInfoEntry& entry : parse_nv_info(cubin.contents(*info))) {
        if (entry.attribute == kEiattrMaxThreads) max_threads = threads_of(entry);
        if (entry.attribute == kEiattrReqntid) required_threads = threads_of(entry);
      }
      r.max_threads_per_block = max_threads != 0 ? max_threads : required_threads;
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace nsajit
