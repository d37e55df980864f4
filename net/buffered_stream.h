// File: net/buffered_stream.h
//
// BufferedReader and BufferedWriter put a buffer in front of any byte stream
// (a StreamSocket, or anything with the same ReadSome and WriteAll):
// line- and length-delimited protocols read whole items, and pipelined
// replies leave in one system call.
//
//   conet::BufferedReader reader(stream);
//   absl::StatusOr<std::string_view> line = co_await reader.ReadLine(1024);
//   absl::StatusOr<std::string_view> body = co_await reader.ReadExact(length);
//
//   conet::BufferedWriter writer(stream);
//   writer.Append("+OK\r\n");
//   writer.Append(value);
//   absl::Status sent = co_await writer.Flush();  // both in one send
//
// What the reader reads ahead stays buffered for the next call. The views it
// returns point into its buffer: they stay valid until the next call on the
// reader (copy what must live longer). Errors are distinct:
//   - the stream ended before the item began: OutOfRangeError, for which
//     IsEndOfStream() is true (a clean end between items);
//   - it ended in the middle of an item: DataLossError, saying how many bytes
//     had come;
//   - an item longer than its maximum: ResourceExhaustedError (the bytes stay
//     buffered; the caller usually closes the stream);
//   - the stream's own errors (and cancellation) as the stream reports them.
// Neither class owns the stream, which must outlive it; at most one pending
// call on each.
#ifndef CONET_NET_BUFFERED_STREAM_H_
#define CONET_NET_BUFFERED_STREAM_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "net/bytes.h"
#include "net/cancellation.h"
#include "net/task.h"

namespace conet {

// A byte stream: reads some bytes into a buffer, writes all of a range.
template <typename S>
concept ByteStream = requires(S& stream, std::span<char> buffer, ConstBytes data) {
  stream.ReadSome(buffer, kNoCancellation);
  stream.WriteAll(data, kNoCancellation);
};

// Reports whether `status` is a BufferedReader's end of stream between items.
bool IsEndOfStream(const absl::Status& status);

// Implementation details the templates below need.
namespace internal {

// What a read made for an item yielded: OK if bytes came; else the
// stream's error, or its end (between items if nothing of one is
// `buffered`, else in the middle of `what`).
absl::Status MoreCame(const absl::StatusOr<size_t>& read, size_t buffered, std::string_view what);

// The reader's storage: bytes [begin, end) of a heap block are unread.
class ReadBuffer {
 public:
  explicit ReadBuffer(size_t initial_capacity) : initial_capacity_(initial_capacity) {}

  std::string_view unread() const { return {data_.get() + begin_, end_ - begin_}; }
  void Consume(size_t count) { begin_ += count; }
  // Returns free space after the unread bytes, at least `at_least` bytes,
  // moving them to the front or growing the block as needed.
  std::span<char> Space(size_t at_least);
  void Commit(size_t count) { end_ += count; }

 private:
  std::unique_ptr<char[]> data_;
  size_t capacity_ = 0;
  size_t begin_ = 0;
  size_t end_ = 0;
  size_t initial_capacity_;
};

// Splits `unread` at the first `delimiter` within `max` bytes: the item's
// length, npos if more bytes may still bring it, or an error if not.
absl::StatusOr<size_t> FindDelimited(std::string_view unread, std::string_view delimiter,
                                     size_t max);
// The same for a line: the length up to its "\n", which is at most `max`
// bytes past its start, or max + 1 when a "\r" precedes it.
absl::StatusOr<size_t> FindLine(std::string_view unread, size_t max);

}  // namespace internal

template <ByteStream Stream>
class BufferedReader {
 public:
  // What the stream's ReadSome returns.
  using ReadSomeAwaiter =
      decltype(std::declval<Stream&>().ReadSome(std::span<char>(), kNoCancellation));
  class ReadMoreAwaiter;

  // Reads from `stream`, which must outlive the reader. The buffer starts
  // at `initial_capacity` bytes and grows for longer items.
  explicit BufferedReader(Stream& stream, size_t initial_capacity = 4096)
      : stream_(&stream), buffer_(initial_capacity) {}

  // The bytes read ahead and not consumed yet.
  std::string_view buffered() const { return buffer_.unread(); }
  // Drops the first `count` buffered bytes (count <= buffered().size()).
  void Consume(size_t count) { buffer_.Consume(count); }

  // One read of the stream, appended to buffered(): for parsers that look
  // at buffered() themselves. co_await yields the count, 0 at end of stream.
  ReadMoreAwaiter ReadMore(const Cancellation& cancel = kNoCancellation) {
    return ReadMoreAwaiter(buffer_, stream_->ReadSome(buffer_.Space(kMinRead), cancel));
  }

  // Reads through `delimiter`; yields the bytes before it (at most `max`)
  // and consumes both.
  Task<absl::StatusOr<std::string_view>> ReadUntil(std::string delimiter, size_t max,
                                                   Cancellation cancel = {});
  // Reads a line ending in "\n" or "\r\n"; yields it without the ending.
  // A line longer than `max` bytes (its ending not counted) is an error.
  Task<absl::StatusOr<std::string_view>> ReadLine(size_t max, Cancellation cancel = {});
  // Reads exactly `count` bytes and consumes them.
  Task<absl::StatusOr<std::string_view>> ReadExact(size_t count, Cancellation cancel = {});
  // Yields the next `count` bytes without consuming them.
  Task<absl::StatusOr<std::string_view>> Peek(size_t count, Cancellation cancel = {});
  // Copies up to `out.size()` bytes into `out`: buffered bytes first, else
  // one read of the stream. Yields the count, 0 at end of stream.
  Task<absl::StatusOr<size_t>> ReadSome(std::span<char> out, Cancellation cancel = {});

 private:
  static constexpr size_t kMinRead = 2048;
  // Reads until `count` bytes are buffered.
  Task<absl::Status> Fill(size_t count, const Cancellation& cancel);

  Stream* stream_;
  internal::ReadBuffer buffer_;
};

template <ByteStream Stream>
class BufferedWriter {
 public:
  // Writes to `stream`, which must outlive the writer.
  explicit BufferedWriter(Stream& stream) : stream_(&stream) {}

  // Adds bytes to send; nothing is written until Flush. Not while a Flush
  // is pending: it sends from the same buffer.
  void Append(ConstBytes data) { pending_.append(data.data(), data.size()); }
  // The bytes waiting to be sent, to format into directly.
  std::string& pending() { return pending_; }

  // Sends everything appended, in as few writes as the stream allows.
  // co_await yields OK (at once if nothing is pending) or the stream's
  // error; on an error the pending bytes are dropped.
  Task<absl::Status> Flush(Cancellation cancel = {});

 private:
  // After a large reply, the buffer's memory is given back.
  static constexpr size_t kKeptCapacity = 64 * 1024;

  Stream* stream_;
  std::string pending_;
};

// Implementation details follow.

// ReadMore's awaiter: the stream's own read, plus the buffer's bookkeeping.
template <ByteStream Stream>
class BufferedReader<Stream>::ReadMoreAwaiter {
 public:
  ReadMoreAwaiter(internal::ReadBuffer& buffer, ReadSomeAwaiter read)
      : buffer_(&buffer), read_(std::move(read)) {}

  void InheritStopToken(const std::stop_token& token) noexcept {
    if constexpr (internal::InheritsStopToken<ReadSomeAwaiter>) read_.InheritStopToken(token);
  }
  bool await_ready() { return Inner().await_ready(); }
  template <typename Handle>
  auto await_suspend(Handle handle) {
    return Inner().await_suspend(handle);
  }
  absl::StatusOr<size_t> await_resume() {
    absl::StatusOr<size_t> count = Inner().await_resume();
    if (count.ok()) buffer_->Commit(*count);
    return count;
  }

 private:
  // The stream's awaiter itself, or the one its operator co_await gives
  // (a Task's: it only refers to the task).
  decltype(auto) Inner() {
    if constexpr (internal::HasMemberCoAwait<ReadSomeAwaiter&>) {
      if (!awaiter_) awaiter_.emplace(read_.operator co_await());
      return *awaiter_;
    } else {
      return (read_);
    }
  }
  template <typename A>
  struct AwaiterOf {
    using type = int;
  };
  template <typename A>
  requires internal::HasMemberCoAwait<A&>
  struct AwaiterOf<A> {
    using type = decltype(std::declval<A&>().operator co_await());
  };

  internal::ReadBuffer* buffer_;
  ReadSomeAwaiter read_;
  std::optional<typename AwaiterOf<ReadSomeAwaiter>::type> awaiter_;
};

template <ByteStream Stream>
Task<absl::Status> BufferedReader<Stream>::Fill(size_t count, const Cancellation& cancel) {
  while (buffer_.unread().size() < count) {
    const size_t missing = count - buffer_.unread().size();
    auto more = ReadMoreAwaiter(
        buffer_, stream_->ReadSome(buffer_.Space(missing > kMinRead ? missing : kMinRead), cancel));
    absl::StatusOr<size_t> read = co_await more;
    absl::Status came = internal::MoreCame(read, buffer_.unread().size(), "the item");
    if (!came.ok()) co_return came;
  }
  co_return absl::OkStatus();
}

template <ByteStream Stream>
Task<absl::StatusOr<std::string_view>> BufferedReader<Stream>::ReadUntil(std::string delimiter,
                                                                         size_t max,
                                                                         Cancellation cancel) {
  while (true) {
    absl::StatusOr<size_t> length = internal::FindDelimited(buffer_.unread(), delimiter, max);
    if (!length.ok()) co_return length.status();
    if (*length != std::string_view::npos) {
      const std::string_view item = buffer_.unread().substr(0, *length);
      buffer_.Consume(*length + delimiter.size());
      co_return item;
    }
    absl::StatusOr<size_t> read = co_await ReadMore(cancel);
    absl::Status more =
        internal::MoreCame(read, buffer_.unread().size(), "an item before its delimiter");
    if (!more.ok()) co_return more;
  }
}

template <ByteStream Stream>
Task<absl::StatusOr<std::string_view>> BufferedReader<Stream>::ReadLine(size_t max,
                                                                        Cancellation cancel) {
  while (true) {
    // A "\r" before the "\n" is not counted against `max`.
    absl::StatusOr<size_t> length = internal::FindLine(buffer_.unread(), max);
    if (!length.ok()) co_return length.status();
    if (*length != std::string_view::npos) {
      std::string_view line = buffer_.unread().substr(0, *length);
      buffer_.Consume(*length + 1);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      co_return line;
    }
    absl::StatusOr<size_t> read = co_await ReadMore(cancel);
    absl::Status more = internal::MoreCame(read, buffer_.unread().size(), "a line before its end");
    if (!more.ok()) co_return more;
  }
}

template <ByteStream Stream>
Task<absl::StatusOr<std::string_view>> BufferedReader<Stream>::ReadExact(size_t count,
                                                                         Cancellation cancel) {
  if (absl::Status filled = co_await Fill(count, cancel); !filled.ok()) co_return filled;
  const std::string_view item = buffer_.unread().substr(0, count);
  buffer_.Consume(count);
  co_return item;
}

template <ByteStream Stream>
Task<absl::StatusOr<std::string_view>> BufferedReader<Stream>::Peek(size_t count,
                                                                    Cancellation cancel) {
  if (absl::Status filled = co_await Fill(count, cancel); !filled.ok()) co_return filled;
  co_return buffer_.unread().substr(0, count);
}

template <ByteStream Stream>
Task<absl::StatusOr<size_t>> BufferedReader<Stream>::ReadSome(std::span<char> out,
                                                              Cancellation cancel) {
  if (buffer_.unread().empty() && !out.empty()) {
    absl::StatusOr<size_t> read = co_await ReadMore(cancel);
    if (!read.ok() || *read == 0) co_return read;
  }
  const std::string_view have = buffer_.unread();
  const size_t count = have.size() < out.size() ? have.size() : out.size();
  have.copy(out.data(), count);
  buffer_.Consume(count);
  co_return count;
}

template <ByteStream Stream>
Task<absl::Status> BufferedWriter<Stream>::Flush(Cancellation cancel) {
  if (pending_.empty()) co_return absl::OkStatus();
  auto sent = co_await stream_->WriteAll(ConstBytes(pending_), cancel);
  if (pending_.capacity() > kKeptCapacity) {
    std::string().swap(pending_);
  } else {
    pending_.clear();
  }
  if (!sent.ok()) co_return sent.status();
  co_return absl::OkStatus();
}

}  // namespace conet

#endif  // CONET_NET_BUFFERED_STREAM_H_
