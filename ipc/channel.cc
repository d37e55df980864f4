#include "ipc/channel.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace conet::ipc {
namespace {

// The first byte of every frame.
constexpr char kLastFrame = 'M';   // ends a message
constexpr char kMoreFrames = 'C';  // more frames (descriptors) follow
// A message's kind: the second byte of its first frame.
constexpr char kPlain = 'S';    // from Send
constexpr char kRequest = 'Q';  // from Call
constexpr char kReply = 'R';    // from Reply
// A first frame's header: the frame byte, the kind, the id.
constexpr size_t kIdSize = 8;
constexpr size_t kHeaderSize = 2 + kIdSize;

constexpr absl::string_view kEndOfChannel = "end of channel: the peer closed it";

// Returns a first frame's header (marked as the last frame).
std::string Header(char kind, uint64_t id) {
  std::string header = {kLastFrame, kind};
  for (size_t i = 0; i < kIdSize; ++i) header.push_back(static_cast<char>(id >> (8 * i)));
  return header;
}

// Returns the id in a first frame's header.
uint64_t IdIn(const char* header) {
  uint64_t id = 0;
  for (size_t i = kIdSize; i-- > 0;) id = (id << 8) | static_cast<unsigned char>(header[2 + i]);
  return id;
}

// Reports whether a failed ReceiveFds consumed a frame (its descriptors were
// closed): MSG_CTRUNC or too many descriptors, or MSG_TRUNC. Any other
// error means nothing was read (the wait ended, or the socket failed).
bool FrameWasConsumed(const absl::Status& status) {
  return absl::IsResourceExhausted(status) || absl::IsOutOfRange(status);
}

// Reports whether a read ended because its own wait did (its Cancellation,
// its task's stop token), which leaves the socket as it was.
bool WaitEnded(const absl::Status& status) {
  return absl::IsCancelled(status) || absl::IsDeadlineExceeded(status);
}

}  // namespace

bool IsEndOfChannel(const absl::Status& status) {
  return absl::IsOutOfRange(status) && status.message() == kEndOfChannel;
}

// Registers a Call under its request id while it runs. A Call that leaves
// with its request sent and no reply leaves its id behind: that reply is
// dropped when it comes.
class Channel::CallEntry {
 public:
  CallEntry(Channel* channel, uint64_t id, Waiter* waiter)
      : channel_(channel), id_(id), waiter_(waiter) {
    channel_->calls_[id] = waiter;
  }
  ~CallEntry() {
    channel_->calls_.erase(id_);
    if (sent_ && !waiter_->result.has_value()) channel_->abandoned_.insert(id_);
  }
  void Sent() { sent_ = true; }

 private:
  Channel* channel_;
  uint64_t id_;
  Waiter* waiter_;
  bool sent_ = false;
};

// Makes a Receive the channel's receiver while it waits. One whose frame
// is destroyed after it was handed a message puts the message back.
class Channel::ReceiveEntry {
 public:
  ReceiveEntry(Channel* channel, Waiter* waiter) : channel_(channel), waiter_(waiter) {
    channel_->receiver_ = waiter;
  }
  ~ReceiveEntry() {
    channel_->receiver_ = nullptr;
    if (!taken_ && waiter_->result.has_value()) {
      channel_->queued_.push_front(std::move(*waiter_->result));
    }
  }
  void Taken() { taken_ = true; }

 private:
  Channel* channel_;
  Waiter* waiter_;
  bool taken_ = false;
};

// Marks a waiter as inside AwaitResult; on the way out, however it goes
// (its frame may be destroyed), gives up the reading if it had it and
// passes it on.
class Channel::ReadingTurn {
 public:
  ReadingTurn(Channel* channel, Waiter* waiter) : channel_(channel), waiter_(waiter) {
    waiter_->waiting = true;
  }
  ~ReadingTurn() {
    waiter_->waiting = false;
    if (reading_) channel_->reading_ = false;
    channel_->PassReading();
  }
  void Start() { reading_ = channel_->reading_ = true; }
  void Stop() { reading_ = channel_->reading_ = false; }

 private:
  Channel* channel_;
  Waiter* waiter_;
  bool reading_ = false;
};

Channel::Channel(UnixSocket socket, ChannelOptions options)
    : socket_(std::move(socket)),
      options_(options),
      buffer_(options.max_message_bytes + kHeaderSize) {}

std::string Channel::What(absl::string_view text) const {
  return absl::StrCat("channel on fd ", socket_.fd(), ": ", text);
}

// --- Sending ---------------------------------------------------------------

Task<absl::Status> Channel::Send(std::string bytes, std::vector<int> fds, Cancellation cancel) {
  return SendMessage(kPlain, 0, std::move(bytes), std::move(fds), std::move(cancel));
}

Task<absl::Status> Channel::Reply(const Message& request, std::string bytes, std::vector<int> fds,
                                  Cancellation cancel) {
  return SendMessage(kReply, request.request_id, std::move(bytes), std::move(fds),
                     std::move(cancel));
}

absl::Status Channel::CheckSend(char kind, uint64_t id, size_t bytes, size_t fds) const {
  if (socket_.type() != SocketType::kSeqPacket) {
    return absl::FailedPreconditionError(What("a Channel needs a seqpacket socket"));
  }
  if (kind == kReply && id == 0) {
    return absl::InvalidArgumentError(
        What("Reply to a message that is not a request (it came from Send, not Call)"));
  }
  if (bytes > options_.max_message_bytes || fds > options_.max_fds) {
    return absl::InvalidArgumentError(What(
        absl::StrCat("message of ", bytes, " bytes and ", fds, " descriptors is over the limit of ",
                     options_.max_message_bytes, " bytes and ", options_.max_fds, " descriptors")));
  }
  return absl::OkStatus();
}

Task<absl::Status> Channel::SendMessage(char kind, uint64_t id, std::string bytes,
                                        std::vector<int> fds, Cancellation cancel) {
  if (absl::Status refused = CheckSend(kind, id, bytes.size(), fds.size()); !refused.ok()) {
    co_return refused;
  }
  absl::StatusOr<AsyncMutex::Guard> turn = co_await send_lock_->Lock(cancel);
  if (!turn.ok()) co_return turn.status();
  if (!send_broken_.ok()) co_return send_broken_;
  std::string first = Header(kind, id) + bytes;
  co_return co_await SendFrames(std::move(first), std::move(fds), std::move(cancel));
}

Task<absl::Status> Channel::SendFrames(std::string frame, std::vector<int> fds,
                                       Cancellation cancel) {
  // The first frame carries the header and payload; further frames carry
  // only descriptors, kMaxFdsPerMessage at a time.
  size_t next_fd = 0;
  while (true) {
    const size_t count = std::min(fds.size() - next_fd, kMaxFdsPerMessage);
    const bool last = next_fd + count == fds.size();
    frame[0] = last ? kLastFrame : kMoreFrames;
    std::span<const int> batch(fds.data() + next_fd, count);
    absl::StatusOr<size_t> sent = co_await socket_.SendFds(frame, batch, cancel);
    if (!sent.ok()) {
      if (next_fd > 0) {
        // Part of the message is out: the peer would join the next one to it.
        send_broken_ = absl::FailedPreconditionError(What(absl::StrCat(
            "unusable for sending: a message was cut off midway (", sent.status().message(), ")")));
      }
      co_return sent.status();
    }
    next_fd += count;
    if (last) co_return absl::OkStatus();
    frame.resize(1);
  }
}

// --- Calls and Receive -------------------------------------------------------

Task<absl::StatusOr<Message>> Channel::Call(std::string bytes, std::vector<int> fds,
                                            Cancellation cancel) {
  const uint64_t id = next_id_++;
  Waiter me;
  CallEntry entry(this, id, &me);  // before sending: the reply may come at once
  absl::Status sent = co_await SendMessage(kRequest, id, std::move(bytes), std::move(fds), cancel);
  if (!sent.ok()) co_return sent;
  entry.Sent();
  co_return co_await AwaitResult(&me, std::move(cancel));
}

Task<absl::StatusOr<Message>> Channel::Receive(Cancellation cancel) {
  if (receiver_ != nullptr) {
    co_return absl::FailedPreconditionError(What("a Receive is already pending"));
  }
  if (!queued_.empty()) {
    absl::StatusOr<Message> next = std::move(queued_.front());
    queued_.pop_front();
    PassReading();  // the queue has room again
    co_return next;
  }
  Waiter me;
  ReceiveEntry entry(this, &me);
  absl::StatusOr<Message> got = co_await AwaitResult(&me, std::move(cancel));
  entry.Taken();
  co_return got;
}

Task<absl::StatusOr<Message>> Channel::AwaitResult(Waiter* me, Cancellation cancel) {
  ReadingTurn turn(this, me);
  while (!me->result.has_value()) {
    if (!closed_.ok()) co_return closed_;
    if (!reading_ && MayRead(me)) {
      turn.Start();
      absl::Status read = co_await ReadMessage(cancel);
      turn.Stop();
      if (!read.ok() && !me->result.has_value()) co_return read;
      continue;
    }
    me->wake.Reset();
    absl::Status woke = co_await me->wake.Wait(cancel);
    if (!woke.ok() && !me->result.has_value()) co_return woke;
  }
  co_return std::move(*me->result);
}

bool Channel::MayRead(const Waiter* waiter) const {
  // A full queue waits for Receive: only the Receive itself reads on.
  return waiter == receiver_ || queued_.size() < options_.max_queued_messages;
}

void Channel::PassReading() {
  if (reading_) return;
  if (receiver_ != nullptr && receiver_->waiting && !receiver_->result.has_value()) {
    receiver_->wake.Set();
    return;
  }
  if (queued_.size() >= options_.max_queued_messages) return;
  for (const auto& [id, waiter] : calls_) {
    if (waiter->waiting && !waiter->result.has_value()) {
      waiter->wake.Set();
      return;
    }
  }
}

// --- Reading -----------------------------------------------------------------

Task<absl::Status> Channel::ReadMessage(Cancellation cancel) {
  while (true) {
    // A frame refused after it was read leaves its own header here, and
    // one shorter than a header leaves zeros after it.
    std::fill_n(buffer_.begin(), kHeaderSize, '\0');
    absl::StatusOr<ReceivedMessage> frame =
        co_await socket_.ReceiveFds(buffer_, kMaxFdsPerMessage, cancel);
    if (!frame.ok() && !FrameWasConsumed(frame.status())) {
      // The message read so far stays in partial_ for the next reader.
      if (WaitEnded(frame.status())) co_return frame.status();
      Close(frame.status());
      co_return absl::OkStatus();
    }
    if (frame.ok() && frame->size == 0) {
      Close(absl::OutOfRangeError(kEndOfChannel));
      co_return absl::OkStatus();
    }
    if (TakeFrame(frame)) {
      Dispatch();
      co_return absl::OkStatus();
    }
  }
}

bool Channel::TakeFrame(absl::StatusOr<ReceivedMessage>& frame) {
  const bool first = !partial_.started;
  if (first) {
    partial_ = Partial{};
    partial_.started = true;
    partial_.kind = buffer_[1];
    partial_.id = IdIn(buffer_.data());
  }
  // A frame the socket refused (its descriptors already closed) fails the
  // message, which is still read to its last frame: one error for it.
  absl::Status& failure = partial_.failure;
  if (failure.ok() && !frame.ok()) failure = frame.status();
  if (failure.ok()) failure = CheckFrame(first, *frame, partial_.message.fds.size());
  if (failure.ok()) {
    if (first)
      partial_.message.bytes.assign(buffer_.data() + kHeaderSize, frame->size - kHeaderSize);
    for (UniqueFd& fd : frame->fds) partial_.message.fds.push_back(std::move(fd));
  } else {
    partial_.message.fds.clear();  // closes them
  }
  return buffer_[0] != kMoreFrames;
}

absl::Status Channel::CheckFrame(bool first, const ReceivedMessage& frame,
                                 size_t fds_so_far) const {
  const char header = buffer_[0];
  if (header != kLastFrame && header != kMoreFrames) {
    return absl::DataLossError(
        What(absl::StrCat("malformed frame (header byte ", static_cast<int>(header), ")")));
  }
  if (!first && frame.size != 1) {
    return absl::DataLossError(What("malformed frame (bytes after the first frame)"));
  }
  if (first && frame.size < kHeaderSize) {
    return absl::DataLossError(
        What(absl::StrCat("malformed frame (", frame.size, " bytes, shorter than a header)")));
  }
  const char kind = partial_.kind;
  const bool has_id = partial_.id != 0;
  if (first && !(kind == kPlain && !has_id) && !((kind == kRequest || kind == kReply) && has_id)) {
    return absl::DataLossError(What(absl::StrCat("malformed message (kind ", static_cast<int>(kind),
                                                 ", id ", partial_.id, ")")));
  }
  if (fds_so_far + frame.fds.size() > options_.max_fds) {
    return absl::ResourceExhaustedError(What(absl::StrCat(
        "message with more than ", options_.max_fds, " descriptors; they were closed")));
  }
  return absl::OkStatus();
}

void Channel::Dispatch() {
  Partial done = std::move(partial_);
  partial_ = Partial{};
  if (!done.failure.ok()) {
    Route(done.kind, done.id, done.failure);
    return;
  }
  if (done.kind == kRequest) done.message.request_id = done.id;
  Route(done.kind, done.id, std::move(done.message));
}

void Channel::Route(char kind, uint64_t id, absl::StatusOr<Message> result) {
  if (kind == kReply) {
    auto call = calls_.find(id);
    if (call != calls_.end() && !call->second->result.has_value()) {
      Hand(call->second, std::move(result));
      return;
    }
    if (abandoned_.erase(id) > 0) return;  // a Call that gave up: dropped, descriptors closed
    if (result.ok()) {
      result = absl::DataLossError(What(
          absl::StrCat("reply to an unknown request (id ", id, "); its descriptors were closed")));
    }
  }
  if (receiver_ != nullptr && !receiver_->result.has_value()) {
    Hand(receiver_, std::move(result));
    return;
  }
  queued_.push_back(std::move(result));
}

void Channel::Hand(Waiter* waiter, absl::StatusOr<Message> result) {
  waiter->result = std::move(result);
  waiter->wake.Set();
}

void Channel::Close(const absl::Status& status) {
  closed_ = status;
  partial_ = Partial{};
  for (const auto& [id, waiter] : calls_) {
    if (!waiter->result.has_value()) Hand(waiter, status);
  }
  if (receiver_ != nullptr && !receiver_->result.has_value()) Hand(receiver_, status);
}

}  // namespace conet::ipc
