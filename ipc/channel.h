// File: ipc/channel.h
//
// Channel carries whole messages (bytes plus any number of descriptors)
// over a SOCK_SEQPACKET socket: the request/response link between a
// privileged monitor and its unprivileged worker.
//
//   conet::ipc::Channel channel(std::move(socket));          // seqpacket
//   absl::StatusOr<conet::ipc::Message> reply =
//       co_await channel.Call("OPEN /var/log/app.log");
//   // reply->bytes == "OK", reply->fds[0] is the opened file
//
//   absl::StatusOr<conet::ipc::Message> request = co_await channel.Receive();
//   if (conet::ipc::IsEndOfChannel(request.status())) { /* peer closed */ }
//
// Each frame on the socket starts with one header byte, so no frame is
// ever empty and end of stream is unambiguous (a zero-length seqpacket
// message would read as EOF). A message with more descriptors than one
// sendmsg carries (253) is split into frames that the receiver joins.
// Limits are checked on both sides: a message over `max_message_bytes` or
// `max_fds` is refused by Send (InvalidArgument) and, if a peer sends one
// anyway, by Receive, which closes every descriptor that came with it.
#ifndef CONET_IPC_CHANNEL_H_
#define CONET_IPC_CHANNEL_H_

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ipc/unix_socket.h"
#include "net/cancellation.h"
#include "net/task.h"
#include "net/unique_fd.h"

namespace conet::ipc {

struct Message {
  std::string bytes;
  std::vector<UniqueFd> fds;  // owned, close-on-exec
};

struct ChannelOptions {
  // The most payload bytes one message may hold.
  size_t max_message_bytes = 64 * 1024;
  // The most descriptors one message may hold (split across frames).
  size_t max_fds = 1024;
};

// Reports whether `status` is Receive()'s end-of-channel (the peer closed).
bool IsEndOfChannel(const absl::Status& status);

class Channel {
 public:
  // Wraps a connected SOCK_SEQPACKET socket (see SocketPair, SeqPacketListener).
  explicit Channel(UnixSocket socket, ChannelOptions options = {});
  Channel(Channel&&) = default;
  Channel& operator=(Channel&&) = default;

  // Sends one message: `bytes` with copies of `fds` (still the caller's).
  // co_await yields OK, or the error. The descriptors must stay open until
  // the co_await completes. At most one pending Send. If a Send fails (or
  // is cancelled) after part of a multi-frame message went out, later Sends
  // fail with FailedPreconditionError: the peer cannot tell where the next
  // message would begin.
  Task<absl::Status> Send(std::string bytes, std::vector<int> fds, Cancellation cancel = {});
  // Sends a message without descriptors.
  Task<absl::Status> Send(std::string bytes, Cancellation cancel = {}) {
    return Send(std::move(bytes), std::vector<int>(), std::move(cancel));
  }
  // Receives one whole message. co_await yields it, an OutOfRangeError for
  // which IsEndOfChannel() is true when the peer has closed, or the error
  // (DataLoss for a malformed frame, ResourceExhausted / OutOfRange for a
  // message over the limits). A message that fails is still read to its
  // last frame, so it costs exactly one error, and the next Receive starts
  // at the next message; if the wait ends (cancellation, deadline) midway
  // through a message, the next Receive drops the rest of it first. At
  // most one pending Receive.
  Task<absl::StatusOr<Message>> Receive(Cancellation cancel = {});
  // Sends a request and receives the reply (one Send, then one Receive).
  // The peer must answer each request with one message, in order. A Call
  // cancelled (or timed out) after its request went out leaves its reply
  // to come: the next Receive or Call discards it when it arrives.
  Task<absl::StatusOr<Message>> Call(std::string bytes, std::vector<int> fds,
                                     Cancellation cancel = {});
  // Calls without descriptors in the request.
  Task<absl::StatusOr<Message>> Call(std::string bytes, Cancellation cancel = {}) {
    return Call(std::move(bytes), std::vector<int>(), std::move(cancel));
  }

  UnixSocket& socket() { return socket_; }
  const ChannelOptions& options() const { return options_; }

 private:
  // Receives the next message from the socket (Receive also discards the
  // replies of cancelled Calls); sets message_taken_ once a frame of it
  // has been read.
  Task<absl::StatusOr<Message>> ReceiveMessage(Cancellation cancel);
  // Returns why a frame cannot be part of the message, or OK.
  absl::Status CheckFrame(char header, bool first, size_t size, size_t fds_so_far,
                          size_t fds_now) const;

  UnixSocket socket_;
  ChannelOptions options_;
  std::vector<char> buffer_;  // one frame: header + max_message_bytes
  // A Receive ended midway through a message: drop the rest of it first.
  bool skip_rest_of_message_ = false;
  // The last ReceiveMessage read (part of) a message, rather than ending
  // before any of it arrived.
  bool message_taken_ = false;
  // Replies still to come for Calls that gave up waiting: discarded.
  size_t unclaimed_replies_ = 0;
  // A Send failed after part of a message went out: no more sends.
  absl::Status send_broken_;
};

}  // namespace conet::ipc

#endif  // CONET_IPC_CHANNEL_H_
