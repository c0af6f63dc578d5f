#include "runtime/hash.hpp"

#include <fmt/format.h>

namespace nsajit {

void Hasher::mix(std::uint8_t byte) noexcept {
  state_ ^= byte;
  state_ *= 1099511628211ULL;
}

Hasher& Hasher::update(std::string_view bytes) noexcept {
  for (char c : bytes) mix(static_cast<std::uint8_t>(c));
  // A separator keyed on length, so ("ab","c") and ("a","bc") hash differently.
  length_ += bytes.size();
  for (int i = 0; i < 8; ++i) mix(static_cast<std::uint8_t>(length_ >> (8 * i)));
  return *this;
}

Hasher& Hasher::update(std::span<const std::uint8_t> bytes) noexcept {
  for (std::uint8_t b : bytes) mix(b);
  length_ += bytes.size();
  for (int i = 0; i < 8; ++i) mix(static_cast<std::uint8_t>(length_ >> (8 * i)));
  return *this;
}

std::string Hasher::hex() const {
  return fmt::format("{:016x}", state_);
}

std::string content_hash(std::string_view bytes) {
  return Hasher().update(bytes).hex();
}

}  // namespace nsajit
