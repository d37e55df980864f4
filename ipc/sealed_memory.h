// File: ipc/sealed_memory.h
//
// Sealed shared memory: bytes one process hands another, read-only and
// immutable, without a copy per reader. The sender fills a memfd and seals
// it (no growing, no shrinking, no writing, no more seals), then passes
// the descriptor (fd passing, a Channel); the receiver checks the seals
// before it maps: a peer that kept the right to truncate the file could
// make every read of the mapping past the new end raise SIGBUS, and one
// that kept the right to write could change the bytes under the reader's
// feet after it checked them.
//
//   absl::StatusOr<conet::UniqueFd> memfd = conet::ipc::CreateSealedMemory("table", bytes);
//   co_await channel.Send("TABLE", {memfd->fd()});
//
//   // The receiver:
//   absl::StatusOr<conet::ipc::SealedMapping> table =
//       conet::ipc::MapSealedMemory(std::move(message.fds[0]));
//   if (!table.ok()) ...  // not a memfd, or not sealed: refused
//   std::string_view view = table->bytes();
#ifndef CONET_IPC_SEALED_MEMORY_H_
#define CONET_IPC_SEALED_MEMORY_H_

#include <cstddef>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "net/unique_fd.h"

namespace conet::ipc {

// The seals a receiver requires: F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW
// and F_SEAL_WRITE.
int RequiredSeals();

// Creates a memfd named `name` (shown in /proc/PID/fd; close-on-exec)
// holding `bytes`, sealed with RequiredSeals(). Empty `bytes` is allowed.
absl::StatusOr<UniqueFd> CreateSealedMemory(absl::string_view name, absl::string_view bytes);

// A read-only mapping of a sealed memfd; unmapped when destroyed.
class SealedMapping {
 public:
  SealedMapping() = default;
  SealedMapping(SealedMapping&& other) noexcept;
  SealedMapping& operator=(SealedMapping&& other) noexcept;
  ~SealedMapping();

  std::string_view bytes() const { return {static_cast<const char*>(data_), size_}; }
  size_t size() const { return size_; }

 private:
  friend absl::StatusOr<SealedMapping> MapSealedMemory(UniqueFd fd);
  SealedMapping(const void* data, size_t size) : data_(data), size_(size) {}

  const void* data_ = nullptr;
  size_t size_ = 0;
};

// Checks that `fd` is a memfd carrying every seal in RequiredSeals() and
// maps it read-only (the descriptor is closed: the mapping keeps the
// memory). Errors: FailedPrecondition naming the descriptor and the seals
// it lacks, or what the kernel refused (errno).
absl::StatusOr<SealedMapping> MapSealedMemory(UniqueFd fd);

}  // namespace conet::ipc

#endif  // CONET_IPC_SEALED_MEMORY_H_
