// File: net/bytes.h
//
// ConstBytes is the read-only view of bytes that every conet write and send
// takes: a pointer and a length, built implicitly from anything contiguous
// of char (std::string, std::string_view, absl::string_view,
// std::vector<char>, std::array<char, N>, std::span<const char>, a char
// buffer array), and from a string literal without its terminating NUL:
//
//   co_await stream.WriteAll("PING\r\n");                 // 6 bytes, no NUL
//   co_await stream.WriteAll(reply);                      // a std::string
//   co_await stream.WriteAll(std::span(buffer.data(), n));  // n bytes
//
// A const char array is taken as a string (a final NUL is not sent); a
// non-const char array is a buffer, sent whole. The view owns nothing: what
// it points to must stay valid until the operation completes.
#ifndef CONET_NET_BYTES_H_
#define CONET_NET_BYTES_H_

#include <concepts>
#include <cstddef>
#include <ranges>
#include <span>
#include <type_traits>

namespace conet {

class ConstBytes {
 public:
  // No bytes.
  ConstBytes() = default;
  // The `size` bytes at `data`.
  ConstBytes(const char* data, size_t size) : data_(data), size_(size) {}
  // The bytes of a contiguous range of char (not an array: see below).
  template <typename Range>
  requires(!std::is_array_v<std::remove_cvref_t<Range>> &&
           std::ranges::contiguous_range<const Range&> && std::ranges::sized_range<const Range&> &&
           std::same_as<std::ranges::range_value_t<const Range&>, char>)
      ConstBytes(const Range& range)  // NOLINT: implicit, as std::span's is
      : data_(std::ranges::data(range)), size_(std::ranges::size(range)) {}
  // A string literal (any const char array): its characters, less a final
  // NUL. WriteAll("abc") writes 3 bytes.
  template <size_t N>
  ConstBytes(const char (&text)[N])  // NOLINT
      : data_(text), size_(N > 0 && text[N - 1] == '\0' ? N - 1 : N) {}
  // A char buffer (a non-const array): all N bytes.
  template <size_t N>
  ConstBytes(char (&buffer)[N]) : data_(buffer), size_(N) {}  // NOLINT

  [[nodiscard]] const char* data() const noexcept { return data_; }
  [[nodiscard]] size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  // Returns the same bytes as a span.
  [[nodiscard]] std::span<const char> span() const noexcept { return {data_, size_}; }

 private:
  const char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace conet

#endif  // CONET_NET_BYTES_H_
