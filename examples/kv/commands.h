// File: examples/kv/commands.h
//
// kv_server's commands, with Redis's replies and error texts: PING [msg],
// ECHO msg, GET key, SET key value [EX s|PX ms] [NX|XX], DEL key...,
// EXISTS key..., INCR key, QUIT; and the ones clients send as they start
// (COMMAND ... gets an empty array; CONFIG GET save / appendonly say there
// is no persistence, anything else an empty array), so that no client
// waits on them. Names are case-insensitive. A request that looks like
// HTTP (a command named POST or Host:) closes the connection unanswered,
// as Redis does, so that a web page cannot make a browser talk to it.
//
//   std::string replies;
//   kv::Outcome outcome = kv::Execute(request.args, store, now_ms, &replies);
//   if (outcome == kv::Outcome::kClose) ...  // QUIT: send, then close
#ifndef CONET_EXAMPLES_KV_COMMANDS_H_
#define CONET_EXAMPLES_KV_COMMANDS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "examples/kv/store.h"

namespace kv {

enum class Outcome {
  kContinue,
  kClose,          // QUIT: send what is pending, then close
  kCloseSilently,  // an HTTP request (POST, Host:): close without a reply
};

// Runs one command (args[0] is its name; args is not empty) and appends
// its RESP reply to `out`.
Outcome Execute(const std::vector<std::string_view>& args, Store& store, int64_t now_ms,
                std::string* out);

// Appends a RESP error reply ("-ERR " + message), with any CR or LF in it
// (from a peer's bytes) turned into spaces so that the reply stays one line.
void AppendError(std::string_view message, std::string* out);

}  // namespace kv

#endif  // CONET_EXAMPLES_KV_COMMANDS_H_
