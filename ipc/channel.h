// File: ipc/channel.h
//
// Channel carries whole messages (bytes plus any number of descriptors)
// over a SOCK_SEQPACKET socket: the request/response link between a
// privileged monitor and its unprivileged worker. Either side may Call the
// other, with any number of Calls in flight, each matched to its own reply
// whatever order the replies come in:
//
//   conet::ipc::Channel channel(std::move(socket));          // seqpacket
//   absl::StatusOr<conet::ipc::Message> reply =
//       co_await channel.Call("OPEN /var/log/app.log");
//   // reply->bytes == "OK", reply->fds[0] is the opened file
//
// and the side that answers receives the requests (and plain messages):
//
//   absl::StatusOr<conet::ipc::Message> request = co_await channel.Receive();
//   if (conet::ipc::IsEndOfChannel(request.status())) { /* peer closed */ }
//   if (request->request_id != 0) co_await channel.Reply(*request, "OK", fds);
//
// The wire: each frame starts with one header byte ('M' the last frame of
// its message, 'C' more follow), so no frame is ever empty and end of
// stream is unambiguous (a zero-length seqpacket message would read as
// EOF). A message's first frame goes on with its kind ('S' a message from
// Send, 'Q' a request, 'R' a reply) and a 64-bit id (little-endian; the
// request's id in a request and in its reply, 0 otherwise), then the
// payload. A message with more descriptors than one sendmsg carries (253)
// is split into frames that the receiver joins.
//
// Limits are checked on both sides: a message over `max_message_bytes` or
// `max_fds` is refused by Send (InvalidArgument) and, if a peer sends one
// anyway, by the receiving side, which closes every descriptor that came
// with it and reports it to its Call (a reply) or to Receive (the rest).
//
// A Channel belongs to one EventLoop (the one its socket is registered
// with): every call is made from that loop's thread; its waiters share no
// lock, which one loop makes safe. It must outlive every operation on it:
// end (or destroy) a task still waiting on it, such as a detached Receive
// loop, before the Channel goes.
#ifndef CONET_IPC_CHANNEL_H_
#define CONET_IPC_CHANNEL_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ipc/unix_socket.h"
#include "net/cancellation.h"
#include "net/sync.h"
#include "net/task.h"
#include "net/unique_fd.h"

namespace conet::ipc {

struct Message {
  std::string bytes;
  std::vector<UniqueFd> fds;  // owned, close-on-exec
  // The id the peer's Call gave this request (answer it with Reply), or 0
  // for a message sent with Send (no answer is awaited).
  uint64_t request_id = 0;
};

struct ChannelOptions {
  // The most payload bytes one message may hold.
  size_t max_message_bytes = 64 * 1024;
  // The most descriptors one message may hold (split across frames).
  size_t max_fds = 1024;
  // The most received messages (and errors) held for Receive while no
  // Receive takes them (at least 1). Calls read the socket for each other;
  // when this many wait, they stop reading (a reply behind them waits too)
  // until a Receive takes one, so a peer cannot make a Call-only side hold
  // more.
  size_t max_queued_messages = 64;
};

// Reports whether `status` is Receive()'s end-of-channel (the peer closed).
bool IsEndOfChannel(const absl::Status& status);

class Channel {
 public:
  // Wraps a connected SOCK_SEQPACKET socket (see SocketPair, SeqPacketListener).
  explicit Channel(UnixSocket socket, ChannelOptions options = {});
  // Movable while no operation is pending.
  Channel(Channel&&) = default;
  Channel& operator=(Channel&&) = default;

  // Sends one message: `bytes` with copies of `fds` (still the caller's).
  // co_await yields OK, or the error. The descriptors must stay open until
  // the co_await completes. Sends, Replies and the requests of Calls queue
  // up and go out one whole message at a time, in the order they started.
  // If a send fails (or is cancelled) after part of a multi-frame message
  // went out, later sends fail with FailedPreconditionError: the peer
  // cannot tell where the next message would begin.
  Task<absl::Status> Send(std::string bytes, std::vector<int> fds, Cancellation cancel = {});
  // Sends a message without descriptors.
  Task<absl::Status> Send(std::string bytes, Cancellation cancel = {}) {
    return Send(std::move(bytes), std::vector<int>(), std::move(cancel));
  }

  // Receives one whole message that is not a reply: a request (request_id
  // set) or a message from Send. co_await yields it, an OutOfRangeError for
  // which IsEndOfChannel() is true when the peer has closed, or the error
  // (DataLoss for a malformed frame or a reply to no request of ours,
  // ResourceExhausted / OutOfRange for a message over the limits). A
  // message that fails is still read to its last frame, so it costs exactly
  // one error. Messages that arrive while no Receive waits are kept for the
  // next one (see max_queued_messages). At most one Receive may be pending
  // (another fails with FailedPreconditionError). If the wait ends
  // (cancellation, deadline) midway through a message, the next reader of
  // the socket goes on with it.
  Task<absl::StatusOr<Message>> Receive(Cancellation cancel = {});

  // Sends a request (`bytes` with copies of `fds`, which must stay open
  // until the co_await completes) and waits for its reply: the peer's
  // Reply to the Message it received. co_await yields the reply, or the
  // error: the send's, the reply's (over the limits), the end of the
  // channel. Any number of Calls may be in flight, beside a Receive; one of
  // them at a time reads the socket and hands each reply to its Call (and
  // other messages to Receive), and the others wait to be handed theirs.
  // A Call cancelled (or timed out) after its request went out leaves its
  // reply to come: it is dropped, descriptors closed, when it arrives.
  Task<absl::StatusOr<Message>> Call(std::string bytes, std::vector<int> fds,
                                     Cancellation cancel = {});
  // Calls without descriptors in the request.
  Task<absl::StatusOr<Message>> Call(std::string bytes, Cancellation cancel = {}) {
    return Call(std::move(bytes), std::vector<int>(), std::move(cancel));
  }

  // Answers `request` (a Message from Receive with request_id set) with
  // `bytes` and copies of `fds`: sent as Send sends. A message without a
  // request id is InvalidArgumentError. `request` is read at once.
  Task<absl::Status> Reply(const Message& request, std::string bytes, std::vector<int> fds,
                           Cancellation cancel = {});
  // Answers without descriptors.
  Task<absl::Status> Reply(const Message& request, std::string bytes, Cancellation cancel = {}) {
    return Reply(request, std::move(bytes), std::vector<int>(), std::move(cancel));
  }

  UnixSocket& socket() { return socket_; }
  const ChannelOptions& options() const { return options_; }

 private:
  // A Call waiting for its reply, or the Receive waiting for a message.
  struct Waiter {
    AsyncEvent wake;  // set when handed a result, or to take over reading
    std::optional<absl::StatusOr<Message>> result;
    bool waiting = false;  // inside AwaitResult
  };
  // The message being read, frame by frame; it outlives a reader that
  // gives up midway, so that the next one goes on with it.
  struct Partial {
    bool started = false;  // its first frame is in
    char kind = 0;
    uint64_t id = 0;
    Message message;
    absl::Status failure;  // set: the message is read to its end, then reported
  };
  class CallEntry;
  class ReceiveEntry;
  class ReadingTurn;

  // Sends one message of `kind` with `id`.
  Task<absl::Status> SendMessage(char kind, uint64_t id, std::string bytes, std::vector<int> fds,
                                 Cancellation cancel);
  // Sends the frames of one message (the first one already framed).
  Task<absl::Status> SendFrames(std::string first, std::vector<int> fds, Cancellation cancel);
  // Returns why a message cannot be sent, or OK.
  absl::Status CheckSend(char kind, uint64_t id, size_t bytes, size_t fds) const;
  // Waits until `me` is handed its result, reading the socket for everyone
  // while nobody else does.
  Task<absl::StatusOr<Message>> AwaitResult(Waiter* me, Cancellation cancel);
  // Reads until a whole message is in and hands it on. Returns OK, or why
  // this reader's wait ended; the end of the channel and socket errors go
  // to every waiter.
  Task<absl::Status> ReadMessage(Cancellation cancel);
  // Takes a frame (and its descriptors) into partial_; returns whether it
  // was the message's last.
  bool TakeFrame(absl::StatusOr<ReceivedMessage>& frame);
  // Returns why a frame cannot be part of the message, or OK.
  absl::Status CheckFrame(bool first, const ReceivedMessage& frame, size_t fds_so_far) const;
  // Hands the message in partial_ to its Call, the Receive or the queue.
  void Dispatch();
  void Route(char kind, uint64_t id, absl::StatusOr<Message> result);
  // Gives `waiter` its result and wakes it.
  static void Hand(Waiter* waiter, absl::StatusOr<Message> result);
  // Ends the channel for reading: every waiter, now and later, gets `status`.
  void Close(const absl::Status& status);
  // Wakes a waiter to read the socket, if nobody does and one may.
  void PassReading();
  bool MayRead(const Waiter* waiter) const;
  // Prefixes `text` with the channel's descriptor.
  std::string What(absl::string_view text) const;

  UnixSocket socket_;
  ChannelOptions options_;
  std::vector<char> buffer_;  // one frame: header + max_message_bytes
  // Sending: one whole message at a time.
  std::unique_ptr<AsyncMutex> send_lock_ = std::make_unique<AsyncMutex>();
  // A send failed after part of a message went out: no more sends.
  absl::Status send_broken_;
  uint64_t next_id_ = 1;
  // Receiving.
  Partial partial_;
  bool reading_ = false;                        // a waiter reads the socket
  std::map<uint64_t, Waiter*> calls_;           // Calls by request id
  Waiter* receiver_ = nullptr;                  // the pending Receive
  std::deque<absl::StatusOr<Message>> queued_;  // for Receive
  std::set<uint64_t> abandoned_;                // Calls that gave up: their replies are dropped
  absl::Status closed_;                         // the end of the channel, once read
};

}  // namespace conet::ipc

#endif  // CONET_IPC_CHANNEL_H_
