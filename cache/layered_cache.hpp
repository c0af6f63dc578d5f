// A writable cache over an optional read-only shipped one (e.g. a deploy.sqlite from
// `nsa-tune export`). Reads look in the writable cache first, so a local tune shadows the
// shipped winner for the same key; writes go to the writable cache only. A layer that
// cannot be opened (read-only home, damaged file, newer schema) is dropped with a warning
// and the other layer carries on; with neither, every lookup misses and writes throw.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cache/store.hpp"

namespace nsajit {

class LayeredCache {
 public:
  LayeredCache(const std::filesystem::path& writable_path,
               const std::optional<std::filesystem::path>& shipped_path = std::nullopt);

  [[nodiscard]] std::optional<WinnerRecord> find_winner(const WinnerKey& key);
  // Writable rows first; a shipped row whose key the writable cache has is left out.
  [[nodiscard]] std::vector<WinnerRecord> winners_for(std::string_view family, std::string_view geometry,
                                                      int topk);
  [[nodiscard]] std::optional<BinaryRecord> find_binary(std::string_view key);

  // Throw Error(cache_error) when there is no writable layer.
  void put_winner(const WinnerRecord& winner);
  void put_binary(const BinaryRecord& binary);
  void add_timings(std::span<const TimingRecord> timings);
  void record_tune_result(const WinnerRecord& winner, std::span<const BinaryRecord> binaries,
                          std::span<const TimingRecord> timings);

  // nullptr when that layer is absent.
  [[nodiscard]] CacheStore* writable() noexcept { return writable_ ? &*writable_ : nullptr; }
  [[nodiscard]] CacheStore* shipped() noexcept { return shipped_ ? &*shipped_ : nullptr; }

  // Why a layer was dropped, plus the layers' read warnings (corrupt binaries).
  [[nodiscard]] std::vector<std::string> warnings() const;

 private:
  CacheStore& writable_or_throw(std::string_view operation);

  std::optional<CacheStore> writable_;
  std::optional<CacheStore> shipped_;
  std::vector<std::string> open_warnings_;
};

}  // namespace nsajit
