// tools/fdpass: send and receive descriptors over UNIX sockets from a
// shell, to see what descriptor passing does (built on conet::ipc).
//
//   fdpass send --to=ADDRESS [--type=TYPE] [--message=TEXT] [--timeout=5s] FILE...
//   fdpass recv --listen=ADDRESS [--type=TYPE] [--count=N]
//
// ADDRESS is unix:PATH or unix:@NAME; TYPE is seqpacket (the default),
// stream or dgram.
//
// `send` opens each FILE read-only (`-` is standard input), connects (dgram:
// sends to the address), and sends TEXT (default `DESCRIBE`, which is what
// examples/fd_broker answers with the kind of every descriptor) with the
// files' descriptors attached. Except on dgram it then waits up to
// --timeout for one reply (on a stream: whatever the first read returns)
// and prints it:
//
//   OK file:1234 dir          the reply's bytes, non-printables escaped
//   fd 0: file:1234           one line per descriptor that came with it
//
// `recv` listens on ADDRESS, prints `listening on ADDRESS`, then for each of
// --count messages (default 1) prints the same lines: the bytes, then the
// kind of each descriptor (file:<size>, dir, pipe, socket, other), which it
// closes. On a connection it answers every message with `OK <kind>...`, as
// fd_broker answers DESCRIBE, so that `fdpass send` gets a reply.
//
// Exit status: 0 on success (and on SIGINT/SIGTERM), 1 on an error, 2 on
// bad usage. Errors go to stderr as `fdpass: ...`.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ipc/fd_kind.h"
#include "ipc/fd_passing.h"
#include "ipc/unix_socket.h"
#include "net/async_fd.h"
#include "net/cancellation.h"
#include "net/event_loop.h"
#include "net/signals.h"
#include "net/socket_address.h"
#include "net/stream_socket.h"
#include "net/task.h"
#include "net/unique_fd.h"
#include "net/when_any.h"
#include "tools/flags.h"

// send
ABSL_FLAG(std::string, to, "", "unix:PATH or unix:@NAME to send to");
ABSL_FLAG(std::string, message, "DESCRIBE", "the text sent with the descriptors");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(5), "how long to wait for the reply");
// recv
ABSL_FLAG(std::string, listen, "", "unix:PATH or unix:@NAME to receive on");
ABSL_FLAG(int, count, 1, "messages to receive, 1 to 1000000");
// both
ABSL_FLAG(std::string, type, "seqpacket", "seqpacket, stream or dgram");

namespace {

using conet::SocketAddress;
using conet::StreamSocket;
using conet::Task;
using conet::UniqueFd;
using conet::ipc::SocketType;
using conet::ipc::UnixSocket;

// Big enough for any message a shell user types; a longer seqpacket or
// datagram message is reported as an error (ipc/fd_passing.h).
constexpr size_t kBufferBytes = 65536;

constexpr char kUsage[] =
    "usage: fdpass send --to=ADDRESS [--type=TYPE] [--message=TEXT] [--timeout=5s] FILE...\n"
    "       fdpass recv --listen=ADDRESS [--type=TYPE] [--count=N]\n"
    "Sends or receives descriptors over a UNIX socket and shows what came.\n"
    "  ADDRESS           unix:PATH or unix:@NAME\n"
    "  --type=TYPE       seqpacket (default), stream or dgram\n"
    "send: opens each FILE read-only (- is stdin) and sends TEXT (default\n"
    "  DESCRIBE, as fd_broker understands it; never empty) with their\n"
    "  descriptors; except on dgram, waits up to --timeout for one reply and\n"
    "  prints it, then `fd N: KIND` for each descriptor that came with it.\n"
    "recv: prints `listening on ADDRESS`, then for each of --count messages\n"
    "  (default 1) its text and `fd N: KIND` per descriptor (closed after);\n"
    "  answers each message on a connection with `OK KIND...`.\n"
    "KIND is file:<size>, dir, pipe, socket or other.\n"
    "Exit status: 0 ok (also on SIGINT/SIGTERM), 1 error, 2 bad usage.\n";

struct SendOptions {
  SocketAddress to;
  SocketType type;
  std::string message;
  absl::Duration timeout;
};

struct RecvOptions {
  SocketAddress listen;
  SocketType type;
  int count;
};

// --- Printing --------------------------------------------------------------

// Returns the kinds of `fds`, in order.
std::vector<std::string> Kinds(const std::vector<UniqueFd>& fds) {
  std::vector<std::string> kinds;
  for (const UniqueFd& fd : fds) kinds.push_back(conet::ipc::DescribeFd(fd.fd()));
  return kinds;
}

// Prints one message: its bytes (escaped) on a line, then each descriptor's
// kind.
void PrintMessage(absl::string_view bytes, const std::vector<UniqueFd>& fds) {
  std::printf("%s\n", absl::CHexEscape(bytes).c_str());
  const std::vector<std::string> kinds = Kinds(fds);
  for (size_t i = 0; i < kinds.size(); ++i) {
    std::printf("fd %zu: %s\n", i, kinds[i].c_str());
  }
  std::fflush(stdout);
}

// --- Stopping on SIGINT/SIGTERM ---------------------------------------------

// Runs `work`; a SIGINT or SIGTERM (blocked by main) cancels it and counts as
// success.
Task<absl::Status> UntilStopSignal(Task<absl::Status> work) {
  std::vector<Task<absl::Status>> racers;
  racers.push_back(std::move(work));
  racers.push_back(conet::WaitForStopSignal());
  conet::WhenAnyOf<absl::Status> first = co_await conet::WhenAny(std::move(racers));
  co_return std::move(first.value);  // the work's result, or the signal's OK
}

// --- send --------------------------------------------------------------------

// Opens `path` read-only, close-on-exec; "-" is a copy of standard input.
absl::StatusOr<UniqueFd> OpenFile(const std::string& path) {
  UniqueFd fd(path == "-" ? ::fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 0)
                          : ::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.is_open()) return absl::ErrnoToStatus(errno, path);
  return fd;
}

absl::StatusOr<std::vector<UniqueFd>> OpenFiles(const std::vector<std::string>& paths) {
  std::vector<UniqueFd> files;
  for (const std::string& path : paths) {
    absl::StatusOr<UniqueFd> file = OpenFile(path);
    if (!file.ok()) return file.status();
    files.push_back(std::move(*file));
  }
  return files;
}

// Returns the raw numbers of `fds`, which keep ownership.
std::vector<int> Borrow(const std::vector<UniqueFd>& fds) {
  std::vector<int> raw;
  for (const UniqueFd& fd : fds) raw.push_back(fd.fd());
  return raw;
}

// Sends one datagram with `files` attached; no reply is awaited.
Task<absl::Status> SendDatagram(SendOptions options, std::vector<UniqueFd> files) {
  absl::StatusOr<UnixSocket> socket = UnixSocket::OpenDatagram();
  if (!socket.ok()) co_return socket.status();
  const std::vector<int> raw = Borrow(files);
  std::span<const char> bytes(options.message.data(), options.message.size());
  std::span<const int> fds(raw);
  conet::Cancellation deadline(absl::Now() + options.timeout);
  absl::StatusOr<size_t> sent = co_await socket->SendTo(bytes, fds, options.to, deadline);
  co_return sent.status();
}

// Descriptor passing on either kind of connection: a seqpacket UnixSocket
// or a UNIX stream.
conet::ipc::SendFdsAwaiter SendOn(UnixSocket& socket, std::span<const char> bytes,
                                  std::span<const int> fds, const conet::Cancellation& cancel) {
  return socket.SendFds(bytes, fds, cancel);
}
conet::ipc::SendFdsAwaiter SendOn(StreamSocket& stream, std::span<const char> bytes,
                                  std::span<const int> fds, const conet::Cancellation& cancel) {
  return conet::ipc::SendFds(stream, bytes, fds, cancel);
}
conet::ipc::ReceiveFdsAwaiter ReceiveOn(UnixSocket& socket, std::span<char> buffer,
                                        const conet::Cancellation& cancel) {
  return socket.ReceiveFds(buffer, conet::ipc::kMaxFdsPerMessage, cancel);
}
conet::ipc::ReceiveFdsAwaiter ReceiveOn(StreamSocket& stream, std::span<char> buffer,
                                        const conet::Cancellation& cancel) {
  return conet::ipc::ReceiveFds(stream, buffer, conet::ipc::kMaxFdsPerMessage, cancel);
}

// Connects, sends the message with `files` attached, and prints one reply.
template <typename Socket>
Task<absl::Status> SendAndPrintReply(SendOptions options, std::vector<UniqueFd> files) {
  conet::Cancellation deadline(absl::Now() + options.timeout);
  absl::StatusOr<Socket> socket;
  if constexpr (std::is_same_v<Socket, StreamSocket>) {
    socket = co_await StreamSocket::Connect(options.to, deadline);
  } else {
    socket = co_await UnixSocket::Connect(options.to, options.type, deadline);
  }
  if (!socket.ok()) co_return socket.status();
  const std::vector<int> raw = Borrow(files);
  std::span<const char> bytes(options.message.data(), options.message.size());
  std::span<const int> fds(raw);
  absl::StatusOr<size_t> sent = co_await SendOn(*socket, bytes, fds, deadline);
  if (!sent.ok()) co_return sent.status();
  files.clear();  // the peer has its copies now
  std::vector<char> buffer(kBufferBytes);
  absl::StatusOr<conet::ipc::ReceivedMessage> reply = co_await ReceiveOn(*socket, buffer, deadline);
  if (absl::IsDeadlineExceeded(reply.status())) {
    co_return absl::DeadlineExceededError(absl::StrCat("no reply from ", options.to.ToString(),
                                                       " within ",
                                                       absl::FormatDuration(options.timeout)));
  }
  if (!reply.ok()) co_return reply.status();
  if (reply->size == 0) {
    co_return absl::UnavailableError(
        absl::StrCat(options.to.ToString(), " closed the connection without a reply"));
  }
  PrintMessage(absl::string_view(buffer.data(), reply->size), reply->fds);
  co_return absl::OkStatus();
}

Task<absl::Status> Send(SendOptions options, std::vector<UniqueFd> files) {
  if (options.type == SocketType::kDatagram) {
    return SendDatagram(std::move(options), std::move(files));
  }
  if (options.type == SocketType::kStream) {
    return SendAndPrintReply<StreamSocket>(std::move(options), std::move(files));
  }
  return SendAndPrintReply<UnixSocket>(std::move(options), std::move(files));
}

// --- recv --------------------------------------------------------------------

void PrintListening(const SocketAddress& address) {
  std::printf("listening on %s\n", address.ToString().c_str());
  std::fflush(stdout);
}

// Receives and prints messages on one connection until it ends or `*left`
// (the caller's count of messages still wanted) reaches 0, answering each
// with `OK <kind>...`.
template <typename Socket>
Task<absl::Status> ServeConnection(Socket socket, int* left) {
  std::vector<char> buffer(kBufferBytes);
  while (*left > 0) {
    absl::StatusOr<conet::ipc::ReceivedMessage> got =
        co_await ReceiveOn(socket, buffer, conet::kNoCancellation);
    if (!got.ok()) co_return got.status();
    if (got->size == 0) co_return absl::OkStatus();  // the peer is done
    PrintMessage(absl::string_view(buffer.data(), got->size), got->fds);
    --*left;
    const std::vector<std::string> kinds = Kinds(got->fds);
    got->fds.clear();
    std::string answer = "OK";
    for (const std::string& kind : kinds) absl::StrAppend(&answer, " ", kind);
    std::span<const char> bytes(answer.data(), answer.size());
    absl::StatusOr<size_t> sent = co_await SendOn(socket, bytes, {}, conet::kNoCancellation);
    if (!sent.ok()) {
      std::fprintf(stderr, "fdpass: reply not sent: %s\n",
                   std::string(sent.status().message()).c_str());
    }
  }
  co_return absl::OkStatus();
}

template <typename Listener>
Task<absl::Status> RecvConnections(RecvOptions options) {
  absl::StatusOr<Listener> listener = Listener::Bind(options.listen);
  if (!listener.ok()) co_return listener.status();
  PrintListening(listener->address());
  int left = options.count;
  while (left > 0) {
    auto socket = co_await listener->Accept();
    if (!socket.ok()) co_return socket.status();
    absl::Status served = co_await ServeConnection(std::move(*socket), &left);
    if (!served.ok()) co_return served;
  }
  co_return absl::OkStatus();
}

Task<absl::Status> RecvDatagrams(RecvOptions options) {
  absl::StatusOr<UnixSocket> socket = UnixSocket::BindDatagram(options.listen);
  if (!socket.ok()) co_return socket.status();
  absl::StatusOr<SocketAddress> bound = socket->LocalAddress();
  if (!bound.ok()) co_return bound.status();
  PrintListening(*bound);
  std::vector<char> buffer(kBufferBytes);
  for (int i = 0; i < options.count; ++i) {
    absl::StatusOr<conet::ipc::ReceivedMessage> got =
        co_await socket->ReceiveFds(buffer, conet::ipc::kMaxFdsPerMessage);
    if (!got.ok()) co_return got.status();
    // An empty datagram is a message too (nothing ends a datagram socket).
    PrintMessage(absl::string_view(buffer.data(), got->size), got->fds);
  }
  co_return absl::OkStatus();
}

Task<absl::Status> Recv(RecvOptions options) {
  if (options.type == SocketType::kDatagram) return RecvDatagrams(std::move(options));
  if (options.type == SocketType::kStream) {
    return RecvConnections<conet::StreamListener>(std::move(options));
  }
  return RecvConnections<conet::ipc::SeqPacketListener>(std::move(options));
}

// --- Command line ------------------------------------------------------------

void PrintUsage() { std::printf("%s", kUsage); }

int UsageError(absl::string_view message) { return conet::tools::UsageError("fdpass", message); }

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "fdpass: %s\n", std::string(status.message()).c_str());
  return 1;
}

absl::StatusOr<SocketType> ParseType(const std::string& text) {
  if (text == "seqpacket") return SocketType::kSeqPacket;
  if (text == "stream") return SocketType::kStream;
  if (text == "dgram" || text == "datagram") return SocketType::kDatagram;
  return absl::InvalidArgumentError(
      absl::StrCat("--type=", text, ": expected seqpacket, stream or dgram"));
}

absl::StatusOr<SocketAddress> ParseUnixAddress(const std::string& flag, const std::string& text) {
  if (text.empty()) return absl::InvalidArgumentError(absl::StrCat("--", flag, " is required"));
  absl::StatusOr<SocketAddress> address = SocketAddress::Parse(text);
  if (!address.ok()) return address.status();
  if (!address->is_unix()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, "=", text, ": expected unix:PATH or unix:@NAME"));
  }
  return address;
}

// Runs `task` on a new loop, SIGINT/SIGTERM stopping it; returns the exit
// status.
int Run(Task<absl::Status> task) {
  absl::StatusOr<std::unique_ptr<conet::EventLoop>> loop = conet::EventLoop::Create();
  if (!loop.ok()) return Fail(loop.status());
  absl::Status done = (*loop)->BlockOn(UntilStopSignal(std::move(task)));
  return done.ok() ? 0 : Fail(done);
}

int RunSend(int argc, char** argv) {
  const std::vector<std::string> paths = conet::tools::ParseFlagsOrExit(
      argc, argv, "fdpass", PrintUsage,
      {.first = 2, .known = {"to", "type", "message", "timeout"}, .positional = true});
  const std::string to = absl::GetFlag(FLAGS_to);
  const std::string type = absl::GetFlag(FLAGS_type);
  const std::string message = absl::GetFlag(FLAGS_message);
  const absl::Duration timeout = absl::GetFlag(FLAGS_timeout);
  absl::StatusOr<SocketAddress> address = ParseUnixAddress("to", to);
  if (!address.ok()) return UsageError(address.status().message());
  absl::StatusOr<SocketType> socket_type = ParseType(type);
  if (!socket_type.ok()) return UsageError(socket_type.status().message());
  // Empty would lose the descriptors on a stream, and read as end of stream
  // on seqpacket (see ipc/fd_passing.h).
  if (message.empty()) return UsageError("--message must not be empty");
  if (paths.size() > conet::ipc::kMaxFdsPerMessage) {
    return UsageError(absl::StrCat("at most ", conet::ipc::kMaxFdsPerMessage, " FILEs"));
  }
  absl::StatusOr<std::vector<UniqueFd>> files = OpenFiles(paths);
  if (!files.ok()) return Fail(files.status());
  SendOptions options{*address, *socket_type, message, timeout};
  return Run(Send(std::move(options), std::move(*files)));
}

int RunRecv(int argc, char** argv) {
  conet::tools::ParseFlagsOrExit(
      argc, argv, "fdpass", PrintUsage,
      {.first = 2, .known = {"listen", "type", "count"}, .ranges = {{"count", 1, 1000000}}});
  const int count = absl::GetFlag(FLAGS_count);
  const std::string listen = absl::GetFlag(FLAGS_listen);
  const std::string type = absl::GetFlag(FLAGS_type);
  absl::StatusOr<SocketAddress> address = ParseUnixAddress("listen", listen);
  if (!address.ok()) return UsageError(address.status().message());
  absl::StatusOr<SocketType> socket_type = ParseType(type);
  if (!socket_type.ok()) return UsageError(socket_type.status().message());
  RecvOptions options{*address, *socket_type, count};
  return Run(Recv(std::move(options)));
}

}  // namespace

int main(int argc, char** argv) {
  // Seen only through the signalfd in UntilStopSignal.
  conet::BlockStopSignals();

  const std::string command = argc > 1 ? argv[1] : "";
  if (command == "--help" || command == "-h" || command == "help") {
    std::printf("%s", kUsage);
    return 0;
  }
  if (command == "send") return RunSend(argc, argv);
  if (command == "recv") return RunRecv(argc, argv);
  if (command.empty()) return UsageError("expected a command: send or recv");
  return UsageError(absl::StrCat("unknown command \"", command, "\""));
}
