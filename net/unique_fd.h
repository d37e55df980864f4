// File: net/unique_fd.h
//
// UniqueFd owns one file descriptor and closes it when it goes out of scope.
// It is move-only; ownership leaves it only through an explicit Release().
//
//   conet::UniqueFd file(::open("/etc/hosts", O_RDONLY | O_CLOEXEC));
//   if (!file.is_open()) return absl::ErrnoToStatus(errno, "open /etc/hosts");
//   int raw = file.fd();        // borrow
//   int mine = file.Release();   // take ownership: now yours to close
//
// (conet::OpenRegularFile in net/regular_file.h returns one, for a path
// that another user might have planted a symlink at.)
#ifndef CONET_NET_UNIQUE_FD_H_
#define CONET_NET_UNIQUE_FD_H_

#include <utility>

namespace conet {

class UniqueFd {
 public:
  // Constructs an empty owner (fd() == -1).
  UniqueFd() = default;
  // Takes ownership of `fd` (which may be -1).
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) Reset(other.Release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  // Closes the descriptor, if any.
  ~UniqueFd() { Reset(); }

  // Returns the descriptor without giving up ownership (-1 when empty).
  [[nodiscard]] int fd() const noexcept { return fd_; }
  // Reports whether a descriptor is owned.
  [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return is_open(); }
  // Gives up ownership and returns the descriptor; the caller must close it.
  [[nodiscard]] int Release() noexcept { return std::exchange(fd_, -1); }
  // Closes the owned descriptor (if any) and takes ownership of `fd`.
  void Reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

}  // namespace conet

#endif  // CONET_NET_UNIQUE_FD_H_
