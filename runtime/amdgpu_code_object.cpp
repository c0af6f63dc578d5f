#include "runtime/amdgpu_code_object.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <string_view>
#include <utility>

#include "runtime/error.hpp"

namespace nsajit {
namespace {

constexpr const char* kWhere = "runtime/amdgpu_code_object";

[[noreturn]] void malformed(const std::string& why) {
  fail(ErrorCode::invalid_argument, "reading an AMDGPU code object", kWhere, why);
}

// ------------------------------------------------------------------ bounds-checked reads
class ByteReader {
 public:
  explicit ByteReader(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}

  [[nodiscard]] std::size_t size() const noexcept { return bytes_.size(); }
  [[nodiscard]] std::span<const std::uint8_t> slice(std::uint64_t offset, std::uint64_t length) const {
    if (offset > bytes_.size() || length > bytes_.size() - offset)
      malformed(fmt::format("range [{}, +{}) lies outside the {} byte file", offset, length, bytes_.size()));
    return bytes_.subspan(offset, length);
  }
  template <class T>
  [[nodiscard]] T le(std::uint64_t offset) const {  // little-endian unsigned integer
    auto s = slice(offset, sizeof(T));
    T v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(static_cast<T>(s[i]) << (8 * i));
    return v;
  }

 private:
  std::span<const std::uint8_t> bytes_;
};

// ------------------------------------------------------------------ MessagePack
// The subset the AMDGPU metadata uses (maps, arrays, strings, integers, booleans, floats, nil),
// plus bin/ext skipped correctly so an unexpected field never derails the reader.
struct MsgValue {
  enum class Kind { nil, boolean, integer, floating, string, binary, array, map };
  Kind kind = Kind::nil;
  bool b = false;
  std::int64_t i = 0;  // integers outside int64 (huge uint64) are clamped; metadata never has them
  double f = 0.0;
  std::string s;
  std::vector<MsgValue> items;                        // array
  std::vector<std::pair<MsgValue, MsgValue>> fields;  // map, in file order

  [[nodiscard]] const MsgValue* get(std::string_view key) const {
    for (const auto& [k, v] : fields)
      if (k.kind == Kind::string && k.s == key) return &v;
    return nullptr;
  }
};

class MsgPackReader {
 public:
  explicit MsgPackReader(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}

  MsgValue read(int depth = 0) {
    if (depth > kMaxDepth) malformed("MessagePack nesting deeper than 64 levels");
    const std::uint8_t tag = byte();
    MsgValue v;
    if (tag <= 0x7f) return integer(tag);
    if (tag >= 0xe0) return integer(static_cast<std::int8_t>(tag));
    if ((tag & 0xf0) == 0x80) return map(tag & 0x0f, depth);
    if ((tag & 0xf0) == 0x90) return array(tag & 0x0f, depth);
    if ((tag & 0xe0) == 0xa0) return string(tag & 0x1f);
    switch (tag) {
      case 0xc0:
        return v;
      case 0xc2:
      case 0xc3:
        v.kind = MsgValue::Kind::boolean;
        v.b = tag == 0xc3;
        return v;
      case 0xc4:
        return binary(be<std::uint8_t>());
      case 0xc5:
        return binary(be<std::uint16_t>());
      case 0xc6:
        return binary(be<std::uint32_t>());
      case 0xc7:
        return ext(be<std::uint8_t>());
      case 0xc8:
        return ext(be<std::uint16_t>());
      case 0xc9:
        return ext(be<std::uint32_t>());
      case 0xca: {
        v.kind = MsgValue::Kind::floating;
        v.f = std::bit_cast<float>(be<std::uint32_t>());
        return v;
      }
      case 0xcb: {
        v.kind = MsgValue::Kind::floating;
        v.f = std::bit_cast<double>(be<std::uint64_t>());
        return v;
      }
      case 0xcc:
        return integer(be<std::uint8_t>());
      case 0xcd:
        return integer(be<std::uint16_t>());
      case 0xce:
        return integer(be<std::uint32_t>());
      case 0xcf: {
        const auto u = be<std::uint64_t>();
        return integer(u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
                           ? std::numeric_limits<std::int64_t>::max()
                           : static_cast<std::int64_t>(u));
      }
      case 0xd0:
        return integer(static_cast<std::int8_t>(be<std::uint8_t>()));
      case 0xd1:
        return integer(static_cast<std::int16_t>(be<std::uint16_t>()));
      case 0xd2:
        return integer(static_cast<std::int32_t>(be<std::uint32_t>()));
      case 0xd3:
        return integer(static_cast<std::int64_t>(be<std::uint64_t>()));
      case 0xd4:
        return ext(1);
      case 0xd5:
        return ext(2);
      case 0xd6:
        return ext(4);
      case 0xd7:
        return ext(8);
      case 0xd8:
        return ext(16);
      case 0xd9:
        return string(be<std::uint8_t>());
      case 0xda:
        return string(be<std::uint16_t>());
      case 0xdb:
        return string(be<std::uint32_t>());
      case 0xdc:
        return array(be<std::uint16_t>(), depth);
      case 0xdd:
        return array(be<std::uint32_t>(), depth);
      case 0xde:
        return map(be<std::uint16_t>(), depth);
      case 0xdf:
        return map(be<std::uint32_t>(), depth);
      default:
        malformed(fmt::format("MessagePack tag 0x{:02x} at offset {} is not defined", tag, pos_ - 1));
    }
  }

 private:
  static constexpr int kMaxDepth = 64;

  std::uint8_t byte() {
    need(1);
    return bytes_[pos_++];
  }
  void need(std::uint64_t n) const {
    if (n > bytes_.size() - pos_)
      malformed(fmt::format("MessagePack data ends inside a value (offset {}, {} more bytes needed, {} left)",
                            pos_, n, bytes_.size() - pos_));
  }
  template <class T>
  T be() {
    need(sizeof(T));
    T v = 0;
    for (std::size_t k = 0; k < sizeof(T); ++k) v = static_cast<T>((v << 8) | bytes_[pos_++]);
    return v;
  }
  static MsgValue integer(std::int64_t x) {
    MsgValue v;
    v.kind = MsgValue::Kind::integer;
    v.i = x;
    return v;
  }
  MsgValue string(std::uint64_t n) {
    need(n);
    MsgValue v;
    v.kind = MsgValue::Kind::string;
    v.s.assign(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
    pos_ += n;
    return v;
  }
  MsgValue binary(std::uint64_t n) {
    need(n);
    pos_ += n;
    MsgValue v;
    v.kind = MsgValue::Kind::binary;
    return v;
  }
  MsgValue ext(std::uint64_t n) {
    (void)byte();  // the ext type
    return binary(n);
  }
  MsgValue array(std::uint64_t n, int depth) {
    need(n);  // every element is at least one byte: rejects absurd counts before allocating
    MsgValue v;
    v.kind = MsgValue::Kind::array;
    v.items.reserve(std::min<std::uint64_t>(n, 1024));
    for (std::uint64_t k = 0; k < n; ++k) v.items.push_back(read(depth + 1));
    return v;
  }
  MsgValue map(std::uint64_t n, int depth) {
    need(2 * n);
    MsgValue v;
    v.kind = MsgValue::Kind::map;
    v.fields.reserve(std::min<std::uint64_t>(n, 1024));
    for (std::uint64_t k = 0; k < n; ++k) {
      MsgValue key = read(depth + 1);
      MsgValue value = read(depth + 1);
      v.fields.emplace_back(std::move(key), std::move(value));
    }
    return v;
  }

  std::span<const std::uint8_t> bytes_;
  std::size_t pos_ = 0;
};

// ------------------------------------------------------------------ ELF
constexpr std::uint16_t kEmAmdgpu = 224;
constexpr std::uint32_t kShtNote = 7;
constexpr std::uint32_t kPtNote = 4;
constexpr std::uint32_t kNtAmdgpuMetadata = 32;
constexpr std::uint32_t kEfAmdgpuMach = 0xff;

// EF_AMDGPU_MACH values (llvm/BinaryFormat/ELF.h) for the CDNA processors; only used when a
// code object has no amdhsa.target entry.
std::string processor_from_mach(std::uint32_t mach) {
  switch (mach) {
    case 0x02f:
      return "gfx906";
    case 0x030:
      return "gfx908";
    case 0x032:
      return "gfx90c";
    case 0x03f:
      return "gfx90a";
    case 0x040:
      return "gfx940";
    case 0x04b:
      return "gfx941";
    case 0x04c:
      return "gfx942";
    case 0x04f:
      return "gfx950";
    default:
      return fmt::format("amdgcn-mach-0x{:03x}", mach);
  }
}

struct NoteRange {
  std::uint64_t offset, size, align;
};

std::vector<NoteRange> note_ranges(const ByteReader& elf) {
  std::vector<NoteRange> notes;
  const auto shoff = elf.le<std::uint64_t>(0x28);
  const auto shentsize = elf.le<std::uint16_t>(0x3a);
  const auto shnum = elf.le<std::uint16_t>(0x3c);
  if (shoff != 0 && shnum != 0) {
    if (shentsize < 0x40) malformed(fmt::format("section header entries of {} bytes (need 64)", shentsize));
    for (std::uint64_t k = 0; k < shnum; ++k) {
      const std::uint64_t sh = shoff + k * shentsize;
      if (elf.le<std::uint32_t>(sh + 0x04) != kShtNote) continue;
      notes.push_back({elf.le<std::uint64_t>(sh + 0x18), elf.le<std::uint64_t>(sh + 0x20),
                       elf.le<std::uint64_t>(sh + 0x30)});
    }
    if (!notes.empty()) return notes;
  }
  const auto phoff = elf.le<std::uint64_t>(0x20);
  const auto phentsize = elf.le<std::uint16_t>(0x36);
  const auto phnum = elf.le<std::uint16_t>(0x38);
  if (phoff != 0 && phnum != 0) {
    if (phentsize < 0x38) malformed(fmt::format("program header entries of {} bytes (need 56)", phentsize));
    for (std::uint64_t k = 0; k < phnum; ++k) {
      const std::uint64_t ph = phoff + k * phentsize;
      if (elf.le<std::uint32_t>(ph) != kPtNote) continue;
      notes.push_back({elf.le<std::uint64_t>(ph + 0x08), elf.le<std::uint64_t>(ph + 0x20),
                       elf.le<std::uint64_t>(ph + 0x30)});
    }
  }
  return notes;
}

// The NT_AMDGPU_METADATA descriptor (owner "AMDGPU"), if any.
std::optional<std::span<const std::uint8_t>> metadata_note(const ByteReader& elf) {
  for (const NoteRange& range : note_ranges(elf)) {
    const ByteReader notes(elf.slice(range.offset, range.size));
    const std::uint64_t align = range.align == 8 ? 8 : 4;
    auto pad = [align](std::uint64_t n) { return (n + align - 1) / align * align; };
    std::uint64_t pos = 0;
    while (pos + 12 <= notes.size()) {
      const auto namesz = notes.le<std::uint32_t>(pos);
      const auto descsz = notes.le<std::uint32_t>(pos + 4);
      const auto type = notes.le<std::uint32_t>(pos + 8);
      const auto name = notes.slice(pos + 12, namesz);
      const std::uint64_t desc_offset = pos + 12 + pad(namesz);
      const auto desc = notes.slice(desc_offset, descsz);
      const std::string_view owner(reinterpret_cast<const char*>(name.data()),
                                   namesz > 0 && name[namesz - 1] == 0 ? namesz - 1 : namesz);
      if (type == kNtAmdgpuMetadata && owner == "AMDGPU") return desc;
      pos = desc_offset + pad(descsz);
    }
  }
  return std::nullopt;
}

int int_field(const MsgValue& kernel, std::string_view key) {
  const MsgValue* v = kernel.get(key);
  if (v == nullptr) return 0;  // absent fields mean 0 (e.g. .agpr_count before gfx908)
  if (v->kind != MsgValue::Kind::integer) malformed(fmt::format("kernel field '{}' is not an integer", key));
  return static_cast<int>(
      std::clamp<std::int64_t>(v->i, std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
}

std::string string_field(const MsgValue& node, std::string_view key) {
  const MsgValue* v = node.get(key);
  if (v == nullptr || v->kind != MsgValue::Kind::string) return {};
  return v->s;
}

// "amdgcn-amd-amdhsa--gfx942:sramecc+:xnack-" -> "gfx942"
std::string processor_from_target(std::string_view target) {
  const auto dashes = target.rfind("--");
  std::string_view id = dashes == std::string_view::npos ? target : target.substr(dashes + 2);
  return std::string(id.substr(0, id.find(':')));
}

}  // namespace

bool is_amdgpu_code_object(std::span<const std::uint8_t> binary) noexcept {
  if (binary.size() < 0x40) return false;
  if (binary[0] != 0x7f || binary[1] != 'E' || binary[2] != 'L' || binary[3] != 'F') return false;
  if (binary[4] != 2 /* ELFCLASS64 */ || binary[5] != 1 /* little-endian */) return false;
  const std::uint16_t machine = static_cast<std::uint16_t>(binary[0x12] | (binary[0x13] << 8));
  return machine == kEmAmdgpu;
}

AmdgpuCodeObject read_amdgpu_code_object(std::span<const std::uint8_t> binary) {
  if (!is_amdgpu_code_object(binary))
    malformed(fmt::format("the {} bytes are not a 64-bit little-endian ELF for EM_AMDGPU", binary.size()));
  const ByteReader elf(binary);
  const auto note = metadata_note(elf);
  if (!note) malformed("the ELF has no NT_AMDGPU_METADATA note (code object v2, or stripped)");

  MsgPackReader reader(*note);
  const MsgValue root = reader.read();
  if (root.kind != MsgValue::Kind::map) malformed("the metadata note is not a MessagePack map");

  AmdgpuCodeObject co;
  co.target = string_field(root, "amdhsa.target");
  co.processor = co.target.empty() ? processor_from_mach(elf.le<std::uint32_t>(0x30) & kEfAmdgpuMach)
                                   : processor_from_target(co.target);
  if (co.target.empty()) co.target = "amdgcn-amd-amdhsa--" + co.processor;
  if (const MsgValue* version = root.get("amdhsa.version");
      version != nullptr && version->kind == MsgValue::Kind::array && version->items.size() >= 2) {
    co.version_major = static_cast<int>(version->items[0].i);
    co.version_minor = static_cast<int>(version->items[1].i);
  }
  const MsgValue* kernels = root.get("amdhsa.kernels");
  if (kernels == nullptr || kernels->kind != MsgValue::Kind::array)
    malformed("the metadata has no amdhsa.kernels array");
  for (const MsgValue& k : kernels->items) {
    if (k.kind != MsgValue::Kind::map) malformed("an amdhsa.kernels entry is not a map");
    AmdgpuKernelMetadata m;
    m.name = string_field(k, ".name");
    m.symbol = string_field(k, ".symbol");
    m.vgpr_count = int_field(k, ".vgpr_count");
    m.agpr_count = int_field(k, ".agpr_count");
    m.sgpr_count = int_field(k, ".sgpr_count");
    m.vgpr_spill_count = int_field(k, ".vgpr_spill_count");
    m.sgpr_spill_count = int_field(k, ".sgpr_spill_count");
    m.private_segment_fixed_size = int_field(k, ".private_segment_fixed_size");
    m.group_segment_fixed_size = int_field(k, ".group_segment_fixed_size");
    m.max_flat_workgroup_size = int_field(k, ".max_flat_workgroup_size");
    m.wavefront_size = int_field(k, ".wavefront_size");
    if (const MsgValue* d = k.get(".uses_dynamic_stack"); d != nullptr && d->kind == MsgValue::Kind::boolean)
      m.uses_dynamic_stack = d->b;
    co.kernels.push_back(std::move(m));
  }
  return co;
}

std::string code_object_target(std::span<const std::uint8_t> binary) {
  return read_amdgpu_code_object(binary).target;
}

int amdgpu_lds_bytes_per_cu(std::string_view processor) noexcept {
  return processor == "gfx950" ? 160 * 1024 : 64 * 1024;
}

int amdgpu_occupancy_waves_per_simd(int vgpr_count, int lds_bytes_per_group, int workgroup_size,
                                    int lds_bytes_per_cu) {
  constexpr int kVgprsPerSimdLane = 512;
  constexpr int kVgprGranule = 8;
  constexpr int kMaxWavesPerSimd = 8;
  constexpr int kSimdsPerCu = 4;
  constexpr int kWaveSize = 64;

  const int allocated = std::max(kVgprGranule, (vgpr_count + kVgprGranule - 1) / kVgprGranule * kVgprGranule);
  if (allocated > kVgprsPerSimdLane) return 0;
  const int vgpr_waves = std::min(kMaxWavesPerSimd, kVgprsPerSimdLane / allocated);

  const int waves_per_group = std::max(1, (workgroup_size + kWaveSize - 1) / kWaveSize);
  int groups = kSimdsPerCu * vgpr_waves / waves_per_group;
  if (lds_bytes_per_group > 0) groups = std::min(groups, lds_bytes_per_cu / lds_bytes_per_group);
  if (groups <= 0) return 0;
  const int waves_per_simd = (groups * waves_per_group + kSimdsPerCu - 1) / kSimdsPerCu;
  return std::min(vgpr_waves, waves_per_simd);
}

std::vector<std::string> missing_kernels(std::span<const std::uint8_t> binary,
                                         const std::vector<std::string>& wanted) {
  if (wanted.empty()) return {};
  const AmdgpuCodeObject co = read_amdgpu_code_object(binary);
  std::vector<std::string> missing;
  for (const auto& name : wanted) {
    const bool found = std::any_of(co.kernels.begin(), co.kernels.end(),
                                   [&name](const AmdgpuKernelMetadata& k) { return k.name == name; });
    if (!found) missing.push_back(name);
  }
  return missing;
}

std::vector<KernelResources> code_object_resources(std::span<const std::uint8_t> binary) {
  const AmdgpuCodeObject co = read_amdgpu_code_object(binary);
  const int lds_per_cu = amdgpu_lds_bytes_per_cu(co.processor);
  std::vector<KernelResources> out;
  out.reserve(co.kernels.size());
  for (const AmdgpuKernelMetadata& k : co.kernels) {
    KernelResources r;
    r.kernel_name = k.name;
    r.registers = k.vgpr_count;
    r.agprs = k.agpr_count;
    r.sgprs = k.sgpr_count;
    r.spill_bytes = k.private_segment_fixed_size;
    r.vgpr_spills = k.vgpr_spill_count;
    r.sgpr_spills = k.sgpr_spill_count;
    r.static_shared_bytes = k.group_segment_fixed_size;
    r.max_threads_per_block = k.max_flat_workgroup_size;
    r.occupancy_waves_per_simd = amdgpu_occupancy_waves_per_simd(k.vgpr_count, k.group_segment_fixed_size,
                                                                 k.max_flat_workgroup_size, lds_per_cu);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace nsajit
