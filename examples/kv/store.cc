#include "examples/kv/store.h"

#include <limits>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "examples/kv/resp.h"

namespace kv {
namespace {

absl::string_view View(std::string_view text) { return {text.data(), text.size()}; }

}  // namespace

Store::Store(size_t shard_count)
    : shards_(std::make_unique<Shard[]>(shard_count)), shard_count_(shard_count) {}

Store::Shard& Store::ShardOf(std::string_view key) {
  // The high bits: the map uses the low ones of the same hash family.
  const size_t hash = absl::Hash<absl::string_view>{}(View(key));
  return shards_[(hash >> 32) % shard_count_];
}

Store::Entry* Store::FindLive(Map& map, std::string_view key, int64_t now_ms) {
  auto it = map.find(View(key));
  if (it == map.end()) return nullptr;
  if (it->second.Expired(now_ms)) {
    map.erase(it);
    return nullptr;
  }
  return &it->second;
}

void Store::AppendBulk(std::string_view key, int64_t now_ms, std::string* out) {
  Shard& shard = ShardOf(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  const Entry* entry = FindLive(shard.map, key, now_ms);
  if (entry == nullptr) {
    out->append("$-1\r\n");
    return;
  }
  absl::StrAppend(out, "$", entry->value.size(), "\r\n");
  out->append(entry->value);
  out->append("\r\n");
}

bool Store::Set(std::string_view key, std::string_view value, int64_t expires_at_ms,
                SetCondition condition, int64_t now_ms) {
  Shard& shard = ShardOf(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  Entry* entry = FindLive(shard.map, key, now_ms);
  if (condition == SetCondition::kIfAbsent && entry != nullptr) return false;
  if (condition == SetCondition::kIfPresent && entry == nullptr) return false;
  if (entry == nullptr) entry = &shard.map[View(key)];
  entry->value.assign(value);
  entry->expires_at_ms = expires_at_ms;
  return true;
}

bool Store::Delete(std::string_view key, int64_t now_ms) {
  Shard& shard = ShardOf(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  if (FindLive(shard.map, key, now_ms) == nullptr) return false;
  shard.map.erase(View(key));
  return true;
}

bool Store::Exists(std::string_view key, int64_t now_ms) {
  Shard& shard = ShardOf(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  return FindLive(shard.map, key, now_ms) != nullptr;
}

absl::StatusOr<int64_t> Store::Increment(std::string_view key, int64_t now_ms) {
  Shard& shard = ShardOf(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  Entry* entry = FindLive(shard.map, key, now_ms);
  int64_t value = 0;
  if (entry != nullptr && !ParseInt64(entry->value, &value)) {
    return absl::InvalidArgumentError("value is not an integer or out of range");
  }
  if (value == std::numeric_limits<int64_t>::max()) {
    return absl::OutOfRangeError("increment or decrement would overflow");
  }
  ++value;
  if (entry == nullptr) entry = &shard.map[View(key)];
  entry->value = absl::StrCat(value);  // INCR keeps the key's expiry, as Redis
  return value;
}

size_t Store::SweepExpired(int64_t now_ms) {
  size_t index;
  {
    std::lock_guard<std::mutex> lock(sweep_mu_);
    index = next_sweep_;
    next_sweep_ = (next_sweep_ + 1) % shard_count_;
  }
  Shard& shard = shards_[index];
  std::lock_guard<std::mutex> lock(shard.mu);
  size_t dropped = 0;
  for (auto it = shard.map.begin(); it != shard.map.end();) {
    if (it->second.Expired(now_ms)) {
      shard.map.erase(it++);
      ++dropped;
    } else {
      ++it;
    }
  }
  return dropped;
}

size_t Store::Size() {
  size_t total = 0;
  for (size_t i = 0; i < shard_count_; ++i) {
    std::lock_guard<std::mutex> lock(shards_[i].mu);
    total += shards_[i].map.size();
  }
  return total;
}

}  // namespace kv
