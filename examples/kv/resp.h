// File: examples/kv/resp.h
//
// The request side of the Redis protocol (RESP2), as kv_server reads it:
// arrays of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) and inline
// commands (a line of words, as typed into nc: `GET k\r\n`). ParseRequest
// looks at the bytes buffered so far and says whether a whole request is
// there; the caller reads more and asks again until one is.
//
//   kv::Request request;
//   kv::ParseResult result = kv::ParseRequest(reader.buffered(), &request);
//   if (result.state == kv::ParseState::kComplete) {
//     Execute(request.args);          // views into the buffer
//     reader.Consume(result.consumed);
//   }
//
// Limits and error texts are Redis's: a bulk string up to 512 MiB, an
// inline line or a length line up to 64 KiB; a malformed request is a
// "Protocol error: ..." after which the connection must be closed.
#ifndef CONET_EXAMPLES_KV_RESP_H_
#define CONET_EXAMPLES_KV_RESP_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kv {

inline constexpr size_t kMaxBulkBytes = size_t{512} << 20;
inline constexpr size_t kMaxLineBytes = size_t{64} << 10;
// A request still incomplete after this many bytes closes the connection
// (Redis's client-query-buffer-limit).
inline constexpr size_t kMaxQueryBytes = size_t{1} << 30;

struct Request {
  // Views into the parsed bytes: valid while they are.
  std::vector<std::string_view> args;
  // The words of an inline command (`args` points here then).
  std::vector<std::string> decoded;

  // How far an array request that has not all arrived was parsed, so that
  // the next call resumes there instead of parsing it all again (a peer
  // sending a million arguments one byte at a time must not cost a
  // million parses). The next call's input must start at the same request,
  // with more bytes behind it.
  int64_t expected = -1;                         // elements announced; -1 before the header is read
  size_t resume_at = 0;                          // where the next element starts
  std::vector<std::pair<size_t, size_t>> spans;  // offset and length of each
};

enum class ParseState {
  kIncomplete,  // read more, then parse again from the same start
  kComplete,    // `consumed` bytes hold one request (args may be empty)
  kError,       // `error` says what; answer it and close
};

struct ParseResult {
  ParseState state = ParseState::kIncomplete;
  size_t consumed = 0;
  std::string error;  // "Protocol error: ..." for kError
  // For kIncomplete: how many bytes the request needs at least (0 when
  // unknown), so that a reader can make room for a large value at once.
  size_t needed = 0;
};

// Parses the request at the start of `input` into `request` (cleared first).
ParseResult ParseRequest(std::string_view input, Request* request);

// Parses a whole decimal int64 as Redis does (no spaces, no '+', no
// leading zeros); false if `text` is not one.
bool ParseInt64(std::string_view text, int64_t* value);

}  // namespace kv

#endif  // CONET_EXAMPLES_KV_RESP_H_
