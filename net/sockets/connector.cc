#include "net/sockets/connector.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "net/event_loop.h"
#include "net/sockets/socket_ops.h"
#include "net/timer.h"

namespace conet::sockets {
Task<absl::StatusOr<AsyncFd>> ConnectSocket(SocketAddress address, int type, std::string what,
                                            Cancellation cancel) {
  absl::StatusOr<EventLoop*> current = internal::CurrentLoop(what);
  if (!current.ok()) co_return current.status();
  EventLoop* loop = *current;
  absl::Duration retry = absl::Milliseconds(1);
  while (true) {
    absl::StatusOr<UniqueFd> raw = OpenSocket(address.family(), type);
    if (!raw.ok()) co_return Annotate(raw.status(), what);
    absl::StatusOr<AsyncFd> fd = AsyncFd::Create(std::move(*raw), loop);
    if (!fd.ok()) co_return Annotate(fd.status(), what);
    int error = 0;
    if (::connect(fd->fd(), address.data(), address.size()) != 0) error = errno;
    if (error == EAGAIN && address.is_unix()) {
      // The listener's queue is full (unix(7)) and nothing will signal
      // room for us: try again shortly.
      absl::Status slept = co_await Sleep(retry, cancel);
      if (!slept.ok()) co_return Annotate(slept, what);
      retry = std::min(retry * 2, absl::Milliseconds(50));
      continue;
    }
    // EINTR on a non-blocking connect: it goes on in the background.
    while (error == EINPROGRESS || error == EINTR) {
      absl::Status ready = co_await fd->Writable(cancel);
      if (!ready.ok()) co_return Annotate(ready, what);
      absl::StatusOr<int> so_error = GetIntOption(fd->fd(), SOL_SOCKET, SO_ERROR, "SO_ERROR");
      if (!so_error.ok()) co_return Annotate(so_error.status(), what);
      error = *so_error;
      // A wake-up before the handshake ended leaves the socket unconnected.
      if (error == 0 && !PeerAddressOf(fd->fd()).ok()) error = EINPROGRESS;
    }
    if (error != 0) co_return absl::ErrnoToStatus(error, what);
    co_return std::move(*fd);
  }
}

}  // namespace conet::sockets
