#include "cache/layered_cache.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace nsajit {

LayeredCache::LayeredCache(const std::filesystem::path& writable_path,
                           const std::optional<std::filesystem::path>& shipped_path) {
  try {
    writable_.emplace(CacheStore::open(writable_path, OpenMode::read_write));
  } catch (const Error& e) {
    open_warnings_.push_back(fmt::format("the writable cache {} is not used (nothing will be stored): {}",
                                         writable_path.string(), e.what()));
  }
  if (!shipped_path) return;
  try {
    shipped_.emplace(CacheStore::open(*shipped_path, OpenMode::read_only));
  } catch (const Error& e) {
    open_warnings_.push_back(
        fmt::format("the shipped cache {} is not used: {}", shipped_path->string(), e.what()));
  }
}

std::optional<WinnerRecord> LayeredCache::find_winner(const WinnerKey& key) {
  if (writable_)
    if (auto found = writable_->find_winner(key)) return found;
  if (shipped_) return shipped_->find_winner(key);
  return std::nullopt;
}

std::vector<WinnerRecord> LayeredCache::winners_for(std::string_view family, std::string_view geometry,
                                                    int topk) {
  std::vector<WinnerRecord> rows;
  if (writable_) rows = writable_->winners_for(family, geometry, topk);
  if (shipped_) {
    std::size_t own = rows.size();
    for (WinnerRecord& w : shipped_->winners_for(family, geometry, topk)) {
      bool shadowed = std::any_of(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(own),
                                  [&](const WinnerRecord& mine) { return mine.key == w.key; });
      if (!shadowed) rows.push_back(std::move(w));
    }
  }
  return rows;
}

std::optional<BinaryRecord> LayeredCache::find_binary(std::string_view key) {
  if (writable_)
    if (auto found = writable_->find_binary(key)) return found;
  if (shipped_) return shipped_->find_binary(key);
  return std::nullopt;
}

CacheStore& LayeredCache::writable_or_throw(std::string_view operation) {
  if (!writable_)
    fail(ErrorCode::cache_error, std::string(operation), "layered cache",
         open_warnings_.empty() ? "there is no writable cache" : open_warnings_.front());
  return *writable_;
}

void LayeredCache::put_winner(const WinnerRecord& winner) {
  writable_or_throw("store a winner").put_winner(winner);
}

void LayeredCache::put_binary(const BinaryRecord& binary) {
  writable_or_throw("store a binary").put_binary(binary);
}

void LayeredCache::add_timings(std::span<const TimingRecord> timings) {
  writable_or_throw("store timings").add_timings(timings);
}

void LayeredCache::record_tune_result(const WinnerRecord& winner, std::span<const BinaryRecord> binaries,
                                      std::span<const TimingRecord> timings) {
  writable_or_throw("record a tune result").record_tune_result(winner, binaries, timings);
}

std::vector<std::string> LayeredCache::warnings() const {
  std::vector<std::string> all = open_warnings_;
  for (const auto* layer : {&writable_, &shipped_})
    if (*layer) all.insert(all.end(), (*layer)->warnings().begin(), (*layer)->warnings().end());
  return all;
}

}  // namespace nsajit
