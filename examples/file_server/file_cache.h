// File: examples/file_server/file_cache.h
//
// The worker's descriptor cache (file_server --cache-ttl): a FileSource that
// keeps what another one opened for up to a TTL, so that a hot file costs
// the monitor one round trip per TTL instead of one per request. A file
// replaced on disk is served fresh once its entry expires. Each caller gets
// its own duplicate of the cached descriptor; bodies go out with explicit
// offsets (sendfile, pread), so sharing the open file is safe.
#ifndef CONET_EXAMPLES_FILE_SERVER_FILE_CACHE_H_
#define CONET_EXAMPLES_FILE_SERVER_FILE_CACHE_H_

#include <cstddef>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "examples/file_server/http_session.h"

namespace conet::file_server {

class CachingFileSource : public FileSource {
 public:
  // Caches what `inner` (which must outlive this) opens for `ttl` (zero: no
  // caching), at most `max_entries` files; `now` is the clock (tests).
  CachingFileSource(FileSource& inner, absl::Duration ttl, size_t max_entries = 4096,
                    absl::AnyInvocable<absl::Time()> now = &absl::Now)
      : inner_(&inner), ttl_(ttl), max_entries_(max_entries), now_(std::move(now)) {}

  // A cached file if its entry is fresh, else what `inner` opens (kept when
  // it succeeds). Failures are not cached.
  Task<absl::StatusOr<OpenedFile>> Open(std::string path) override;

  [[nodiscard]] size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    UniqueFd file;
    std::string path;
    absl::Time expires;
  };
  void Keep(const std::string& requested, const OpenedFile& opened, absl::Time now);

  FileSource* inner_;
  absl::Duration ttl_;
  size_t max_entries_;
  absl::AnyInvocable<absl::Time()> now_;
  absl::flat_hash_map<std::string, Entry> entries_;
};

}  // namespace conet::file_server

#endif  // CONET_EXAMPLES_FILE_SERVER_FILE_CACHE_H_
