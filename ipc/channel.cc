#include "ipc/channel.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace conet::ipc {
namespace {

// The header byte of each frame.
constexpr char kLastFrame = 'M';  // ends a message
constexpr char kMoreFrames = 'C';  // more frames (descriptors) follow

constexpr absl::string_view kEndOfChannel = "end of channel: the peer closed it";

}  // namespace

bool IsEndOfChannel(const absl::Status& status) {
  return absl::IsOutOfRange(status) && status.message() == kEndOfChannel;
}

Channel::Channel(UnixSocket socket, ChannelOptions options)
    : socket_(std::move(socket)),
      options_(options),
      buffer_(options.max_message_bytes + 1) {}

Task<absl::Status> Channel::Send(std::string bytes, std::vector<int> fds,
                                 Cancellation cancel) {
  if (socket_.type() != SocketType::kSeqPacket) {
    co_return absl::FailedPreconditionError("a Channel needs a seqpacket socket");
  }
  if (!send_broken_.ok()) co_return send_broken_;
  if (bytes.size() > options_.max_message_bytes || fds.size() > options_.max_fds) {
    co_return absl::InvalidArgumentError(absl::StrCat(
        "channel message of ", bytes.size(), " bytes and ", fds.size(),
        " descriptors is over the limit of ", options_.max_message_bytes, " bytes and ",
        options_.max_fds, " descriptors"));
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
        send_broken_ = absl::FailedPreconditionError(absl::StrCat(
            "channel unusable for sending: a message was cut off midway (",
            sent.status().message(), ")"));
      }
      co_return sent.status();
    }
    next_fd += count;
    if (last) co_return absl::OkStatus();
    frame.resize(1);
  }
}

Task<absl::StatusOr<Message>> Channel::Receive(Cancellation cancel) {
  Message message;
  absl::Status failure;  // set when the message is being discarded
  bool first = true;
  while (true) {
    buffer_[0] = 0;  // a failed receive that consumed a frame leaves its header
    absl::StatusOr<ReceivedMessage> frame =
        co_await socket_.ReceiveFds(buffer_, kMaxFdsPerMessage, cancel);
    const char header = buffer_[0];
    if (!frame.ok()) {
      // The socket discarded an over-long frame or surplus descriptors (or
      // the wait ended). Frames still to come of a message cut short here
      // are dropped by the next Receive, so the channel stays in step.
      if (header == kMoreFrames || !first) skip_rest_of_message_ = true;
      co_return frame.status();
    }
    if (frame->size == 0) co_return absl::OutOfRangeError(kEndOfChannel);
    if (skip_rest_of_message_) {
      skip_rest_of_message_ = header == kMoreFrames;
      continue;  // a leftover of a message already reported as failed
    }
    if (header != kLastFrame && header != kMoreFrames) {
      failure = absl::DataLossError(absl::StrCat(
          "malformed channel frame (header byte ", static_cast<int>(header), ")"));
    } else if (!first && frame->size != 1) {
      failure = absl::DataLossError("malformed channel frame (bytes after the first frame)");
    }
    if (first) message.bytes.assign(buffer_.data() + 1, frame->size - 1);
    first = false;
    if (failure.ok() && message.fds.size() + frame->fds.size() > options_.max_fds) {
      failure = absl::ResourceExhaustedError(absl::StrCat(
          "channel message with more than ", options_.max_fds,
          " descriptors; they were closed"));
    }
    if (failure.ok()) {
      for (UniqueFd& fd : frame->fds) message.fds.push_back(std::move(fd));
    } else {
      message.fds.clear();  // closes them
    }
    if (header != kMoreFrames) break;
  }
  if (!failure.ok()) co_return failure;
  co_return message;
}

Task<absl::StatusOr<Message>> Channel::Call(std::string bytes, std::vector<int> fds,
                                            Cancellation cancel) {
  absl::Status sent = co_await Send(std::move(bytes), std::move(fds), cancel);
  if (!sent.ok()) co_return sent;
  co_return co_await Receive(std::move(cancel));
}

}  // namespace conet::ipc
