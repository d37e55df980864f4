#include "ipc/channel.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace conet::ipc {
namespace {

// The header byte of each frame.
constexpr char kLastFrame = 'M';   // ends a message
constexpr char kMoreFrames = 'C';  // more frames (descriptors) follow

constexpr absl::string_view kEndOfChannel = "end of channel: the peer closed it";

}  // namespace

bool IsEndOfChannel(const absl::Status& status) {
  return absl::IsOutOfRange(status) && status.message() == kEndOfChannel;
}

Channel::Channel(UnixSocket socket, ChannelOptions options)
    : socket_(std::move(socket)), options_(options), buffer_(options.max_message_bytes + 1) {}

Task<absl::Status> Channel::Send(std::string bytes, std::vector<int> fds, Cancellation cancel) {
  if (socket_.type() != SocketType::kSeqPacket) {
    co_return absl::FailedPreconditionError("a Channel needs a seqpacket socket");
  }
  if (!send_broken_.ok()) co_return send_broken_;
  if (bytes.size() > options_.max_message_bytes || fds.size() > options_.max_fds) {
    co_return absl::InvalidArgumentError(
        absl::StrCat("channel message of ", bytes.size(), " bytes and ", fds.size(),
                     " descriptors is over the limit of ", options_.max_message_bytes,
                     " bytes and ", options_.max_fds, " descriptors"));
  }
  // The first frame carries the payload; further frames carry only
  // descriptors, kMaxFdsPerMessage at a time.
  size_t next_fd = 0;
  std::string frame = std::string(1, kLastFrame) + bytes;
  while (true) {
    const size_t count = std::min(fds.size() - next_fd, kMaxFdsPerMessage);
    const bool last = next_fd + count == fds.size();
    frame[0] = last ? kLastFrame : kMoreFrames;
    std::span<const int> batch(fds.data() + next_fd, count);
    absl::StatusOr<size_t> sent = co_await socket_.SendFds(frame, batch, cancel);
    if (!sent.ok()) {
      if (next_fd > 0) {
        // Part of the message is out: the peer would join the next one to it.
        send_broken_ = absl::FailedPreconditionError(
            absl::StrCat("channel unusable for sending: a message was cut off midway (",
                         sent.status().message(), ")"));
      }
      co_return sent.status();
    }
    next_fd += count;
    if (last) co_return absl::OkStatus();
    frame.resize(1);
  }
}

namespace {

// Reports whether a failed ReceiveFds consumed a frame (its descriptors were
// closed): MSG_CTRUNC or too many descriptors, or MSG_TRUNC. Any other
// error means nothing was read (the wait ended, or the socket failed).
bool FrameWasConsumed(const absl::Status& status) {
  return absl::IsResourceExhausted(status) || absl::IsOutOfRange(status);
}

}  // namespace

absl::Status Channel::CheckFrame(char header, bool first, size_t size, size_t fds_so_far,
                                 size_t fds_now) const {
  if (header != kLastFrame && header != kMoreFrames) {
    return absl::DataLossError(
        absl::StrCat("malformed channel frame (header byte ", static_cast<int>(header), ")"));
  }
  if (!first && size != 1) {
    return absl::DataLossError("malformed channel frame (bytes after the first frame)");
  }
  if (fds_so_far + fds_now > options_.max_fds) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "channel message with more than ", options_.max_fds, " descriptors; they were closed"));
  }
  return absl::OkStatus();
}

Task<absl::StatusOr<Message>> Channel::ReceiveMessage(Cancellation cancel) {
  Message message;
  absl::Status failure;  // set when the message is being discarded
  bool first = true;
  message_taken_ = false;
  while (true) {
    buffer_[0] = 0;  // a failed receive that consumed a frame leaves its header
    absl::StatusOr<ReceivedMessage> frame =
        co_await socket_.ReceiveFds(buffer_, kMaxFdsPerMessage, cancel);
    if (!frame.ok() && !FrameWasConsumed(frame.status())) {
      // If part of a message was read, the next Receive drops the rest of
      // it, so that the channel stays in step.
      if (!first) skip_rest_of_message_ = true;
      co_return frame.status();
    }
    if (frame.ok() && frame->size == 0) co_return absl::OutOfRangeError(kEndOfChannel);
    const char header = buffer_[0];
    const bool more = header == kMoreFrames;
    if (skip_rest_of_message_) {
      skip_rest_of_message_ = more;
      continue;  // a leftover of a message already reported as failed
    }
    message_taken_ = true;
    // A frame the socket refused (its descriptors already closed) fails the
    // message, which is still read to its last frame: one error for it.
    if (failure.ok() && !frame.ok()) failure = frame.status();
    if (failure.ok()) {
      failure = CheckFrame(header, first, frame->size, message.fds.size(), frame->fds.size());
    }
    if (failure.ok()) {
      if (first) message.bytes.assign(buffer_.data() + 1, frame->size - 1);
      for (UniqueFd& fd : frame->fds) message.fds.push_back(std::move(fd));
    } else {
      message.fds.clear();  // closes them
    }
    first = false;
    if (!more) break;
  }
  if (!failure.ok()) co_return failure;
  co_return message;
}

Task<absl::StatusOr<Message>> Channel::Receive(Cancellation cancel) {
  while (true) {
    absl::StatusOr<Message> message = co_await ReceiveMessage(cancel);
    if (unclaimed_replies_ == 0 || !message_taken_) co_return message;
    --unclaimed_replies_;  // the reply to a Call that gave up waiting for it
  }
}

Task<absl::StatusOr<Message>> Channel::Call(std::string bytes, std::vector<int> fds,
                                            Cancellation cancel) {
  absl::Status sent = co_await Send(std::move(bytes), std::move(fds), cancel);
  if (!sent.ok()) co_return sent;
  absl::StatusOr<Message> reply = co_await Receive(std::move(cancel));
  // Given up before any of its reply arrived: that reply, when it comes,
  // is nobody's, and must not pass for the next Call's.
  if (!message_taken_) ++unclaimed_replies_;
  co_return reply;
}

}  // namespace conet::ipc
