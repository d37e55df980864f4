#include "ipc/sealed_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace conet::ipc {
namespace {

// The names of the seals in `seals`' complement within RequiredSeals().
std::string Missing(int seals) {
  std::vector<std::string> missing;
  if ((seals & F_SEAL_SEAL) == 0) missing.push_back("F_SEAL_SEAL");
  if ((seals & F_SEAL_SHRINK) == 0) missing.push_back("F_SEAL_SHRINK");
  if ((seals & F_SEAL_GROW) == 0) missing.push_back("F_SEAL_GROW");
  if ((seals & F_SEAL_WRITE) == 0) missing.push_back("F_SEAL_WRITE");
  return absl::StrJoin(missing, ", ");
}

// Writes all of `bytes` at the start of `fd`.
absl::Status Fill(int fd, absl::string_view bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n =
        ::pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::ErrnoToStatus(errno, "sealed memory: write");
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

int RequiredSeals() { return F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE; }

absl::StatusOr<UniqueFd> CreateSealedMemory(absl::string_view name, absl::string_view bytes) {
  const std::string owned(name);
  UniqueFd fd(::memfd_create(owned.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.is_open()) {
    return absl::ErrnoToStatus(errno, absl::StrCat("sealed memory: memfd_create \"", owned, "\""));
  }
  // Written, not mapped: F_SEAL_WRITE is refused while a writable shared
  // mapping exists.
  if (absl::Status filled = Fill(fd.fd(), bytes); !filled.ok()) return filled;
  if (::fcntl(fd.fd(), F_ADD_SEALS, RequiredSeals()) != 0) {
    return absl::ErrnoToStatus(errno, "sealed memory: F_ADD_SEALS");
  }
  return fd;
}

SealedMapping::SealedMapping(SealedMapping&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SealedMapping& SealedMapping::operator=(SealedMapping&& other) noexcept {
  if (this != &other) {
    this->~SealedMapping();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

SealedMapping::~SealedMapping() {
  if (data_ != nullptr) ::munmap(const_cast<void*>(data_), size_);
}

absl::StatusOr<SealedMapping> MapSealedMemory(UniqueFd fd) {
  const std::string subject = absl::StrCat("sealed memory on fd ", fd.fd());
  const int seals = ::fcntl(fd.fd(), F_GET_SEALS);
  if (seals < 0) {
    // EINVAL: a file that cannot carry seals (not a memfd or shmem).
    if (errno == EINVAL) {
      return absl::FailedPreconditionError(absl::StrCat(subject, ": not a sealable memfd"));
    }
    return absl::ErrnoToStatus(errno, absl::StrCat(subject, ": F_GET_SEALS"));
  }
  if ((seals & RequiredSeals()) != RequiredSeals()) {
    return absl::FailedPreconditionError(
        absl::StrCat(subject, ": not sealed against ", Missing(seals)));
  }
  struct stat st {};
  if (::fstat(fd.fd(), &st) != 0)
    return absl::ErrnoToStatus(errno, absl::StrCat(subject, ": fstat"));
  const size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) return SealedMapping();
  // The size can no longer change (shrink and grow are sealed), so every
  // byte of this mapping stays backed.
  void* data = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd.fd(), 0);
  if (data == MAP_FAILED) return absl::ErrnoToStatus(errno, absl::StrCat(subject, ": mmap"));
  return SealedMapping(data, size);
}

}  // namespace conet::ipc
