// A stable 64-bit content hash (FNV-1a), for cache keys and template identity.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace nsajit {

class Hasher {
 public:
  Hasher& update(std::string_view bytes) noexcept;
  Hasher& update(std::span<const std::uint8_t> bytes) noexcept;
  [[nodiscard]] std::uint64_t value() const noexcept { return state_; }
  [[nodiscard]] std::string hex() const;

 private:
  void mix(std::uint8_t byte) noexcept;
  std::uint64_t state_ = 1469598103934665603ULL;
  std::uint64_t length_ = 0;
};

[[nodiscard]] std::string content_hash(std::string_view bytes);

}  // namespace nsajit
