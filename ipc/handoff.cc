#include "ipc/handoff.h"

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <span>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "ipc/credentials.h"
#include "ipc/fd_passing.h"
#include "net/sockets/socket_ops.h"
#include "net/sockets/unix_socket_file.h"

namespace conet::ipc {
namespace {

// The longest protocol message: HANDOFF with 253 names of 64 bytes.
constexpr size_t kMaxMessage = 8 + kMaxFdsPerMessage * 65;
constexpr size_t kMaxNameLength = 64;

// Returns the credentials of the peer of `socket` if it runs as `uid`,
// else PermissionDeniedError naming `who`.
absl::StatusOr<Credentials> SameUidPeer(const UnixSocket& socket, const std::string& who,
                                        uid_t uid) {
  absl::StatusOr<Credentials> peer = socket.PeerCredentials();
  if (!peer.ok()) return peer.status();
  if (peer->uid != uid) {
    return absl::PermissionDeniedError(
        absl::StrCat(who, " (pid ", peer->pid, ") runs as uid ", peer->uid, ", not ", uid));
  }
  return peer;
}

// Receives one message of at most kMaxMessage bytes with up to `max_fds`
// descriptors; end of stream is an error saying `who` went away.
Task<absl::StatusOr<std::pair<std::string, std::vector<UniqueFd>>>> ReceiveMessage(
    UnixSocket* socket, size_t max_fds, std::string who, Cancellation cancel) {
  std::string buffer(kMaxMessage, '\0');
  absl::StatusOr<ReceivedMessage> got = co_await socket->ReceiveFds(buffer, max_fds, cancel);
  if (!got.ok()) co_return got.status();
  if (got->size == 0) co_return absl::UnavailableError(absl::StrCat(who, " went away"));
  buffer.resize(got->size);
  co_return std::make_pair(std::move(buffer), std::move(got->fds));
}

// Parses "HANDOFF name..." against the descriptors that came with it.
absl::StatusOr<std::vector<NamedFd>> ParseHandoff(const std::string& message,
                                                  std::vector<UniqueFd> fds) {
  const std::string quoted = absl::StrCat("\"", absl::CHexEscape(message.substr(0, 80)), "\"");
  if (absl::StartsWith(message, "ERR ")) {
    return absl::PermissionDeniedError(absl::StrCat("the older instance refused: ", quoted));
  }
  std::vector<std::string> words = absl::StrSplit(message, ' ');
  if (words.empty() || words[0] != "HANDOFF") {
    return absl::DataLossError(absl::StrCat("expected HANDOFF, got ", quoted));
  }
  words.erase(words.begin());
  if (words.size() != fds.size()) {
    return absl::DataLossError(
        absl::StrCat(quoted, " names ", words.size(), " descriptors but ", fds.size(), " came"));
  }
  std::vector<NamedFd> named;
  for (size_t i = 0; i < words.size(); ++i) {
    if (!IsValidFdName(words[i])) {
      return absl::DataLossError(absl::StrCat(quoted, ": a bad descriptor name"));
    }
    named.push_back(NamedFd{std::move(words[i]), std::move(fds[i])});
  }
  return named;
}

// Connects to `address`: std::nullopt when nobody answers there.
Task<absl::StatusOr<std::optional<UnixSocket>>> ConnectIfAnswered(SocketAddress address,
                                                                  Cancellation cancel) {
  absl::StatusOr<UnixSocket> socket =
      co_await UnixSocket::Connect(address, SocketType::kSeqPacket, std::move(cancel));
  if (socket.ok()) co_return std::optional<UnixSocket>(std::move(*socket));
  // No socket file (ENOENT), or nobody listening (ECONNREFUSED).
  if (absl::IsNotFound(socket.status()) || absl::IsUnavailable(socket.status())) {
    co_return std::optional<UnixSocket>();
  }
  co_return socket.status();
}

// Sends `message` with `offer`'s descriptors and waits for READY.
Task<absl::Status> HandTo(UnixSocket* successor, const std::vector<OfferedFd>* offer,
                          Cancellation cancel) {
  std::string message = "HANDOFF";
  std::vector<int> fds;
  for (const OfferedFd& offered : *offer) {
    absl::StrAppend(&message, " ", offered.name);
    fds.push_back(offered.fd);
  }
  absl::StatusOr<size_t> sent = co_await successor->SendFds(message, fds, cancel);
  if (!sent.ok()) co_return sent.status();
  absl::StatusOr<std::pair<std::string, std::vector<UniqueFd>>> answer =
      co_await ReceiveMessage(successor, 0, "the successor", cancel);
  if (!answer.ok()) co_return answer.status();
  if (answer->first == "READY") co_return absl::OkStatus();
  co_return absl::AbortedError(
      absl::StrCat("the successor said \"", absl::CHexEscape(answer->first.substr(0, 200)), "\""));
}

// Checks the UPGRADE hello of `successor` and returns its pid.
Task<absl::StatusOr<pid_t>> Greet(UnixSocket* successor, Cancellation cancel) {
  absl::StatusOr<std::pair<std::string, std::vector<UniqueFd>>> hello =
      co_await ReceiveMessage(successor, 0, "the successor", cancel);
  if (!hello.ok()) co_return hello.status();
  int pid = 0;
  if (!absl::StartsWith(hello->first, "UPGRADE ") ||
      !absl::SimpleAtoi(hello->first.substr(8), &pid) || pid <= 0) {
    co_return absl::DataLossError(absl::StrCat("expected UPGRADE <pid>, got \"",
                                               absl::CHexEscape(hello->first.substr(0, 80)), "\""));
  }
  co_return static_cast<pid_t>(pid);
}

// Leaves the socket files of the offered UNIX sockets to the successor.
void LeaveSocketFiles(const std::vector<OfferedFd>& offer) {
  for (const OfferedFd& offered : offer) {
    absl::StatusOr<SocketAddress> local = sockets::LocalAddressOf(offered.fd);
    if (!local.ok()) continue;
    const std::string path = sockets::UnixPathOf(*local);
    if (!path.empty()) sockets::LeaveSocketFile(path);
  }
}

// Tells a successor it is refused. Its hello is read first (briefly: it is
// not trusted to be quick): closing a UNIX socket with a message unread
// makes the peer's next receive fail with ECONNRESET instead of reading
// the answer.
Task<void> Refuse(UnixSocket* successor) {
  const Cancellation brief(absl::Now() + absl::Milliseconds(100));
  std::array<char, 64> hello;
  (void)co_await successor->Receive(hello, brief);
  const std::string refusal = "ERR permission denied";
  (void)co_await successor->Send(refusal, brief);
}

// Runs one successor's handoff; OK when it is ready.
Task<absl::Status> AnswerOne(UnixSocket successor, const std::vector<OfferedFd>* offer,
                             AnswerOptions* options) {
  const Cancellation until(absl::Now() + options->timeout);
  const uid_t uid = options->successor_uid.value_or(::geteuid());
  if (absl::StatusOr<Credentials> same = SameUidPeer(successor, "the successor", uid); !same.ok()) {
    co_await Refuse(&successor);
    co_return same.status();
  }
  absl::StatusOr<pid_t> pid = co_await Greet(&successor, until);
  if (!pid.ok()) co_return pid.status();
  if (options->on_handing_over) options->on_handing_over(*pid);
  absl::Status handed = co_await HandTo(&successor, offer, until);
  if (!handed.ok()) {
    co_return absl::Status(handed.code(),
                           absl::StrCat("upgrade to pid ", *pid, ": ", handed.message()));
  }
  co_return absl::OkStatus();
}

}  // namespace

bool IsValidFdName(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

Task<absl::StatusOr<std::optional<Takeover>>> Takeover::Begin(SocketAddress address,
                                                              Cancellation cancel) {
  const std::string where = absl::StrCat("upgrade socket ", address.ToString());
  absl::StatusOr<std::optional<UnixSocket>> older = co_await ConnectIfAnswered(address, cancel);
  if (!older.ok()) co_return older.status();
  if (!older->has_value()) co_return std::optional<Takeover>();
  UnixSocket& socket = **older;
  absl::StatusOr<Credentials> peer =
      SameUidPeer(socket, "the instance answering at " + where, ::geteuid());
  if (!peer.ok()) co_return peer.status();
  absl::StatusOr<size_t> sent = co_await socket.Send(absl::StrCat("UPGRADE ", ::getpid()), cancel);
  if (!sent.ok()) co_return sent.status();
  absl::StatusOr<std::pair<std::string, std::vector<UniqueFd>>> answer =
      co_await ReceiveMessage(&socket, kMaxFdsPerMessage, "the older instance", cancel);
  if (!answer.ok()) co_return sockets::Annotate(answer.status(), where);
  absl::StatusOr<std::vector<NamedFd>> fds = ParseHandoff(answer->first, std::move(answer->second));
  if (!fds.ok()) co_return sockets::Annotate(fds.status(), where);
  co_return std::optional<Takeover>(Takeover(socket.Release(), peer->pid, std::move(*fds)));
}

Task<absl::Status> Takeover::Say(std::string message, Cancellation cancel) {
  absl::StatusOr<UnixSocket> socket = UnixSocket::Adopt(std::move(connection_));
  if (!socket.ok()) co_return socket.status();
  absl::StatusOr<size_t> sent = co_await socket->Send(message, cancel);
  connection_ = socket->Release();
  co_return sent.status();
}

Task<absl::Status> Takeover::Ready(Cancellation cancel) {
  co_return co_await Say("READY", std::move(cancel));
}

Task<absl::Status> Takeover::Abandon(std::string reason, Cancellation cancel) {
  co_return co_await Say(absl::StrCat("ERR ", reason), std::move(cancel));
}

Task<absl::Status> AnswerSuccessors(SeqPacketListener& listener, std::vector<OfferedFd> offer,
                                    AnswerOptions options, Cancellation cancel) {
  if (offer.size() > kMaxFdsPerMessage) {
    co_return absl::InvalidArgumentError(
        absl::StrCat(offer.size(), " descriptors to hand over; at most ", kMaxFdsPerMessage));
  }
  for (const OfferedFd& offered : offer) {
    if (!IsValidFdName(offered.name)) {
      co_return absl::InvalidArgumentError(
          absl::StrCat("bad descriptor name \"", absl::CHexEscape(offered.name), "\""));
    }
  }
  while (true) {
    absl::StatusOr<UnixSocket> successor = co_await listener.Accept(cancel);
    if (!successor.ok()) {
      const absl::Status& error = successor.status();
      if (absl::IsCancelled(error) || absl::IsDeadlineExceeded(error) || !listener.is_open()) {
        co_return error;
      }
      if (options.on_failure) options.on_failure(error);
      continue;
    }
    absl::Status handed = co_await AnswerOne(std::move(*successor), &offer, &options);
    if (handed.ok()) {
      LeaveSocketFiles(offer);
      co_return absl::OkStatus();
    }
    if (options.on_failure) options.on_failure(handed);
  }
}

}  // namespace conet::ipc
