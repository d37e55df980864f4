#include "net/buffered_stream.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace conet {

namespace {
constexpr char kEndOfStream[] = "end of stream";
}  // namespace

bool IsEndOfStream(const absl::Status& status) {
  return status.code() == absl::StatusCode::kOutOfRange && status.message() == kEndOfStream;
}

namespace internal {

namespace {

// The end of stream between items (OutOfRange).
absl::Status EndOfStreamError() { return absl::OutOfRangeError(kEndOfStream); }

// The stream ended after `got` bytes of an item (DataLoss); `what` names it.
absl::Status EndedMidItemError(size_t got, std::string_view what) {
  return absl::DataLossError(absl::StrCat("stream ended after ", got, " bytes of ",
                                          absl::string_view(what.data(), what.size())));
}

// No delimiter within `max` bytes (ResourceExhausted); `what` names the item.
absl::Status ItemTooLongError(size_t max, std::string_view what) {
  return absl::ResourceExhaustedError(
      absl::StrCat(absl::string_view(what.data(), what.size()), " longer than ", max, " bytes"));
}

}  // namespace

absl::Status MoreCame(const absl::StatusOr<size_t>& read, size_t buffered, std::string_view what) {
  if (!read.ok()) return read.status();
  if (*read > 0) return absl::OkStatus();
  return buffered == 0 ? EndOfStreamError() : EndedMidItemError(buffered, what);
}

std::span<char> ReadBuffer::Space(size_t at_least) {
  const size_t unread = end_ - begin_;
  if (unread == 0) {
    begin_ = end_ = 0;
    // A block grown for one large item is given back once it is read.
    if (capacity_ > 16 * initial_capacity_ && at_least <= initial_capacity_) {
      data_.reset();
      capacity_ = 0;
    }
  }
  if (capacity_ - end_ >= at_least) return {data_.get() + end_, capacity_ - end_};
  if (capacity_ - unread >= at_least && begin_ > 0) {
    std::memmove(data_.get(), data_.get() + begin_, unread);
  } else {
    const size_t capacity = std::max({initial_capacity_, unread + at_least, 2 * capacity_});
    auto grown = std::make_unique_for_overwrite<char[]>(capacity);
    if (unread > 0) std::memcpy(grown.get(), data_.get() + begin_, unread);
    data_ = std::move(grown);
    capacity_ = capacity;
  }
  begin_ = 0;
  end_ = unread;
  return {data_.get() + end_, capacity_ - end_};
}

namespace {
// a + b, or the largest size_t if that overflows.
size_t SaturatingAdd(size_t a, size_t b) { return a > SIZE_MAX - b ? SIZE_MAX : a + b; }
}  // namespace

absl::StatusOr<size_t> FindDelimited(std::string_view unread, std::string_view delimiter,
                                     size_t max) {
  const size_t limit = SaturatingAdd(max, delimiter.size());
  const std::string_view window = unread.substr(0, limit);
  const size_t at = window.find(delimiter);
  if (at != std::string_view::npos) return at;
  if (window.size() == limit) return ItemTooLongError(max, "an item");
  return std::string_view::npos;
}

absl::StatusOr<size_t> FindLine(std::string_view unread, size_t max) {
  // Room for the line, a "\r" and the "\n".
  const size_t limit = SaturatingAdd(max, 2);
  const std::string_view window = unread.substr(0, limit);
  const size_t at = window.find('\n');
  if (at != std::string_view::npos) {
    const bool cr = at > 0 && window[at - 1] == '\r';
    if (at - (cr ? 1 : 0) > max) return ItemTooLongError(max, "a line");
    return at;
  }
  // Without its "\n" yet: too long once more than max (+ "\r") is here.
  const bool cr = !window.empty() && window.back() == '\r';
  if (window.size() > SaturatingAdd(max, cr ? 1 : 0)) return ItemTooLongError(max, "a line");
  return std::string_view::npos;
}

}  // namespace internal
}  // namespace conet
