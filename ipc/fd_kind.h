// File: ipc/fd_kind.h
//
// DescribeFd names what kind of object a descriptor refers to, in the words
// of the fd_broker's DESCRIBE reply (docs/programs/fd_broker.md):
// `file:<size>` for a regular file (its size in bytes), `dir`, `pipe` (a
// pipe or FIFO), `socket`, and `other` for everything else (devices,
// symlinks opened with O_PATH, or a descriptor fstat cannot read).
//
//   int fd = ::open("/etc/hostname", O_RDONLY | O_CLOEXEC);
//   std::string kind = conet::ipc::DescribeFd(fd);  // e.g. "file:7"
#ifndef CONET_IPC_FD_KIND_H_
#define CONET_IPC_FD_KIND_H_

#include <string>

namespace conet::ipc {

// Returns the kind of `fd` as above; it only fstat()s the descriptor, which
// stays the caller's.
std::string DescribeFd(int fd);

}  // namespace conet::ipc

#endif  // CONET_IPC_FD_KIND_H_
