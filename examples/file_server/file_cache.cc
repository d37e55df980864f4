#include "examples/file_server/file_cache.h"

#include <fcntl.h>

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace conet::file_server {

namespace {

absl::StatusOr<UniqueFd> Duplicate(const UniqueFd& file) {
  UniqueFd copy(::fcntl(file.fd(), F_DUPFD_CLOEXEC, 0));
  if (!copy.is_open()) {
    return absl::ErrnoToStatus(errno, absl::StrCat("duplicate cached fd ", file.fd()));
  }
  return copy;
}

}  // namespace

Task<absl::StatusOr<OpenedFile>> CachingFileSource::Open(std::string path) {
  const absl::Time now = now_();
  auto cached = entries_.find(path);
  if (cached != entries_.end() && now < cached->second.expires) {
    absl::StatusOr<UniqueFd> copy = Duplicate(cached->second.file);
    if (!copy.ok()) co_return absl::UnavailableError(copy.status().message());
    co_return OpenedFile{*std::move(copy), cached->second.path};
  }
  if (cached != entries_.end()) entries_.erase(cached);
  absl::StatusOr<OpenedFile> opened = co_await inner_->Open(path);
  if (opened.ok() && ttl_ > absl::ZeroDuration()) Keep(path, *opened, now);
  co_return opened;
}

void CachingFileSource::Keep(const std::string& requested, const OpenedFile& opened,
                             absl::Time now) {
  if (entries_.size() >= max_entries_) {
    absl::erase_if(entries_, [now](const auto& entry) { return entry.second.expires <= now; });
    if (entries_.size() >= max_entries_) entries_.clear();  // all fresh: start over
  }
  absl::StatusOr<UniqueFd> copy = Duplicate(opened.file);
  if (!copy.ok()) return;  // out of descriptors: serve uncached
  entries_[requested] = Entry{*std::move(copy), opened.path, now + ttl_};
}

}  // namespace conet::file_server
