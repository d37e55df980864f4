// File: examples/kv/store.h
//
// kv_server's store: binary-safe keys and values with optional expiry,
// shared by every loop. It is split into shards, each a hash map behind its
// own mutex, so that loops on different cores rarely meet; every operation
// holds one shard's lock for a map lookup and a copy. Expired keys vanish on
// access, and SweepExpired drops the rest a shard at a time.
//
//   kv::Store store;
//   store.Set("k", "v", kv::kNoExpiry, kv::SetCondition::kAlways, now_ms);
//   std::string reply;
//   store.AppendBulk("k", now_ms, &reply);  // "$1\r\nv\r\n"
#ifndef CONET_EXAMPLES_KV_STORE_H_
#define CONET_EXAMPLES_KV_STORE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace kv {

// Times are Unix milliseconds, as Redis keeps them.
inline constexpr int64_t kNoExpiry = 0;

enum class SetCondition { kAlways, kIfAbsent, kIfPresent };

class Store {
 public:
  explicit Store(size_t shard_count = 64);

  // Appends the value of `key` as a RESP bulk string ("$-1\r\n" if absent).
  void AppendBulk(std::string_view key, int64_t now_ms, std::string* out);
  // Sets `key` (kNoExpiry: for ever) if `condition` holds; returns whether
  // it did. A key set again loses its old expiry.
  bool Set(std::string_view key, std::string_view value, int64_t expires_at_ms,
           SetCondition condition, int64_t now_ms);
  // Removes `key`; returns whether it was there.
  bool Delete(std::string_view key, int64_t now_ms);
  bool Exists(std::string_view key, int64_t now_ms);
  // Adds one to the integer held at `key` (absent: 0) and returns it;
  // InvalidArgument "value is not an integer or out of range" or
  // OutOfRange "increment or decrement would overflow", as Redis words them.
  absl::StatusOr<int64_t> Increment(std::string_view key, int64_t now_ms);
  // Drops the expired keys of the next shard in turn; returns how many.
  size_t SweepExpired(int64_t now_ms);
  // How many keys are stored (expired ones not yet swept included).
  size_t Size();

 private:
  struct Entry {
    std::string value;
    int64_t expires_at_ms = kNoExpiry;
    bool Expired(int64_t now_ms) const {
      return expires_at_ms != kNoExpiry && expires_at_ms < now_ms;  // as Redis: now > when
    }
  };
  struct Shard {
    std::mutex mu;
    absl::flat_hash_map<std::string, Entry> map;
  };
  using Map = absl::flat_hash_map<std::string, Entry>;

  Shard& ShardOf(std::string_view key);
  // Finds a live entry (erasing it if it has expired), or null.
  static Entry* FindLive(Map& map, std::string_view key, int64_t now_ms);

  std::unique_ptr<Shard[]> shards_;
  size_t shard_count_;
  std::mutex sweep_mu_;
  size_t next_sweep_ = 0;
};

}  // namespace kv

#endif  // CONET_EXAMPLES_KV_STORE_H_
