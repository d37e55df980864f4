// tools/netbench: a closed-loop echo load generator built on conet.
//
//   netbench --target=ADDRESS [--connections=N] [--threads=N] [--size=BYTES]
//            [--depth=N] [--duration=5s] [--warmup=1s]
//            [--tls [--ca=PEM] [--server-name=NAME]]
//
// Opens --connections connections to an echo server, spread over --threads
// event loops (a conet::LoopGroup). Each connection keeps --depth messages
// of --size bytes in flight: it writes `depth` messages, and each time one
// whole echo has been read back and checked byte for byte it writes the
// next one. After --warmup (not counted) it measures for --duration and
// prints one line (see docs/programs/netbench.md):
//
//   msgs_per_sec=81234.5 mib_per_sec=4.958 p50_us=11.87 p99_us=20.31 p999_us=45.06 errors=0
//
// With --tls every connection runs a TLS handshake first (the server's
// certificate checked against --ca, or the system's trust store, and against
// --server-name, by default the host of --target) and the echoes go through
// TLS.
//
// Exit status: 0 when no connection failed and at least one message was
// measured (or SIGINT/SIGTERM stopped it early without errors), 1 otherwise,
// 2 for bad flags. On a terminal it shows its progress on stderr.
//
// Each connection runs a reader and a writer coroutine (one pending read
// and one pending write, full duplex), so a message bigger than the socket
// buffers cannot deadlock it. Each thread counts into its own Worker
// (latency histogram and counters); the histograms are merged after the
// threads have ended, so the hot path takes no lock.
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "net/cancellation.h"
#include "net/event_loop.h"
#include "net/loop_group.h"
#include "net/signals.h"
#include "net/socket_address.h"
#include "net/stream_socket.h"
#include "net/task.h"
#include "net/task_group.h"
#include "net/tls.h"
#include "tools/flags.h"

ABSL_FLAG(std::string, target, "", "HOST:PORT, [IPV6]:PORT, unix:PATH or unix:@NAME");
ABSL_FLAG(int, connections, 1, "connections, 1 to 1000000");
ABSL_FLAG(int, threads, 1, "event loops, 1 to 256");
ABSL_FLAG(int64_t, size, 64, "bytes per message, 1 to 64 MiB");
ABSL_FLAG(int64_t, depth, 1, "messages in flight per connection, 1 to 65536");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(5), "how long to measure");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(1), "how long to run before measuring");
ABSL_FLAG(bool, tls, false, "speak TLS to the server");
ABSL_FLAG(std::string, ca, "", "PEM CA bundle to verify the server with (default: the system's)");
ABSL_FLAG(std::string, server_name, "",
          "name to send (SNI) and check the certificate against (default: the target's host)");

namespace {

using Clock = std::chrono::steady_clock;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// Adds one to a counter that only the calling thread writes (others read it
// for the progress display): a plain load and store, no locked instruction.
void Bump(std::atomic<uint64_t>& counter) {
  counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

// LatencyHistogram counts nanosecond values in log-linear buckets, as
// HdrHistogram does: values below 128 ns have a bucket each, and above that
// every power-of-two range is split into 64 equal buckets, so a value read
// back (a bucket's midpoint) is within 1/128 (0.8%) of what was recorded.
class LatencyHistogram {
 public:
  LatencyHistogram() : counts_(kBuckets, 0) {}

  // Counts one value (negative ones as 0).
  void Record(int64_t ns) {
    ++counts_[Index(ns < 0 ? 0 : static_cast<uint64_t>(ns))];
    ++total_;
  }
  // Adds another histogram's counts to this one.
  void Merge(const LatencyHistogram& other) {
    for (int i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
  }
  // Returns the value at quantile `q` (0 < q <= 1) in nanoseconds, or 0
  // when nothing was recorded.
  double Quantile(double q) const {
    if (total_ == 0) return 0;
    const uint64_t rank =
        std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(total_))));
    uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return Midpoint(i);
    }
    return Midpoint(kBuckets - 1);
  }

 private:
  static constexpr int kSubBits = 6;
  static constexpr int kSub = 1 << kSubBits;  // buckets per power of two
  static constexpr int kBuckets = (63 - kSubBits) * kSub + 2 * kSub;

  static int Index(uint64_t v) {
    if (v < 2 * kSub) return static_cast<int>(v);
    const int shift = (63 - __builtin_clzll(v)) - kSubBits;  // >= 1
    return shift * kSub + static_cast<int>(v >> shift);      // v >> shift in [64, 128)
  }
  static double Midpoint(int index) {
    if (index < 2 * kSub) return index;
    const int shift = index / kSub - 1;
    const uint64_t lower = static_cast<uint64_t>(index - shift * kSub) << shift;
    return static_cast<double>(lower) + static_cast<double>((uint64_t{1} << shift) - 1) / 2;
  }

  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
};

// What every connection shares, read-only once the threads run (but for
// `measuring`, which the main thread flips).
struct Benchmark {
  std::string target;
  int connections = 1;
  int threads = 1;
  size_t size = 64;
  uint64_t depth = 1;
  absl::Duration connect_timeout = absl::Seconds(5);
  std::optional<conet::TlsContext> tls;  // --tls
  std::string server_name;
  // Byte j is j & 0xff; message k starts at offset (k * 131) & 0xff, so its
  // byte i is (k * 131 + i) & 0xff and messages differ from their neighbours.
  std::string pattern;
  // True while the measured interval runs: messages echoed then are counted.
  std::atomic<bool> measuring{false};

  std::span<const char> Message(uint64_t k) const {
    return std::span<const char>(pattern.data() + ((k * 131) & 0xff), size);
  }
};

// One event loop's share of the work and its counters. Only the loop's
// thread writes it; the main thread reads the atomics for progress and the
// rest after the thread has ended.
struct alignas(64) Worker {
  explicit Worker(int i) : index(i) {}

  const int index;
  std::stop_source stop;               // stopped from the worker's own loop
  LatencyHistogram latencies;          // measured messages only
  std::atomic<uint64_t> completed{0};  // every message echoed and checked
  std::atomic<uint64_t> measured{0};   // messages echoed while measuring
  std::atomic<uint64_t> errors{0};     // connections that failed
  std::atomic<uint64_t> connected{0};
  std::atomic<uint64_t> connect_failures{0};
  std::atomic<bool> finished{false};  // every connection task has ended
  std::string first_error;            // the first failure, for stderr
};

// One connection's state, shared by its reader and writer (both run on the
// same loop, so no synchronisation).
struct Connection {
  Connection(const Benchmark* b, Worker* w, int connection_id, conet::StreamSocket s)
      : bench(b),
        worker(w),
        id(connection_id),
        stream(std::move(s)),
        buffer(b->size),
        sent_at(b->depth) {}

  const Benchmark* bench;
  Worker* worker;
  int id;
  conet::StreamSocket stream;
  std::optional<conet::TlsStream> tls;  // under --tls, over `stream`
  std::vector<char> buffer;             // the echo being read
  std::vector<int64_t> sent_at;         // write time of message k at [k % depth]
  uint64_t written = 0;                 // messages written completely
  uint64_t echoed = 0;                  // messages read back and checked
  bool reader_done = false;
  std::coroutine_handle<> writer_waiting;  // the writer, out of credit
};

// Suspends the writer until fewer than `depth` messages are in flight or
// the reader has ended. The reader resumes it (same thread); the writer
// never waits here without a reader that will either read an echo or end.
class WaitForCredit {
 public:
  explicit WaitForCredit(Connection* connection) : connection_(connection) {}
  bool await_ready() const noexcept {
    return connection_->reader_done ||
           connection_->written < connection_->echoed + connection_->bench->depth;
  }
  void await_suspend(std::coroutine_handle<> writer) noexcept {
    connection_->writer_waiting = writer;
  }
  void await_resume() const noexcept {}

 private:
  Connection* connection_;
};

void WakeWriter(Connection* connection) {
  if (std::coroutine_handle<> writer = std::exchange(connection->writer_waiting, nullptr)) {
    writer.resume();  // runs until its next write or credit wait
  }
}

// Writes message after message, `depth` ahead of the echoes, on `stream`
// (the connection's socket, or its TLS stream).
template <typename Stream>
conet::Task<absl::Status> WriteMessages(Connection* connection, Stream* stream) {
  const uint64_t depth = connection->bench->depth;
  while (true) {
    WaitForCredit credit(connection);
    co_await credit;
    if (connection->reader_done) co_return absl::OkStatus();
    const uint64_t k = connection->written;
    connection->sent_at[k % depth] = NowNs();
    const std::span<const char> message = connection->bench->Message(k);
    absl::StatusOr<size_t> sent = co_await stream->WriteAll(message);
    if (!sent.ok()) co_return sent.status();
    ++connection->written;
  }
}

// Returns an error naming the first byte of `echo` that differs from
// message `k`.
absl::Status Verify(const Benchmark& bench, uint64_t k, std::span<const char> echo) {
  const std::span<const char> expected = bench.Message(k);
  if (std::memcmp(echo.data(), expected.data(), echo.size()) == 0) {
    return absl::OkStatus();
  }
  size_t i = 0;
  while (echo[i] == expected[i]) ++i;
  return absl::DataLossError(absl::StrCat("echo of message ", k, " differs at byte ", i, ": got ",
                                          static_cast<unsigned char>(echo[i]), ", sent ",
                                          static_cast<unsigned char>(expected[i])));
}

// Reads exactly `buffer.size()` bytes from a TLS stream.
conet::Task<absl::StatusOr<size_t>> ReadExact(conet::TlsStream* stream, std::span<char> buffer) {
  size_t done = 0;
  while (done < buffer.size()) {
    absl::StatusOr<size_t> n = co_await stream->ReadSome(buffer.subspan(done));
    if (!n.ok()) co_return n.status();
    if (*n == 0)
      co_return absl::OutOfRangeError(
          absl::StrCat("the TLS stream ended after ", done, " bytes of an echo"));
    done += *n;
  }
  co_return done;
}

conet::StreamSocket::ReadExactAwaiter ReadExact(conet::StreamSocket* stream,
                                                std::span<char> buffer) {
  return stream->ReadExact(buffer);
}

// Reads the echoes in order, checks them, records their latency and gives
// the writer credit for the next message. Ends at the first error (or when
// cancelled), waking the writer so that it ends too.
template <typename Stream>
conet::Task<absl::Status> ReadEchoes(Connection* connection, Stream* stream) {
  const Benchmark& bench = *connection->bench;
  Worker& worker = *connection->worker;
  absl::Status status;
  while (status.ok()) {
    const std::span<char> buffer(connection->buffer);
    absl::StatusOr<size_t> n = co_await ReadExact(stream, buffer);
    const int64_t now = NowNs();
    if (!n.ok()) {
      status = n.status();
      break;
    }
    const uint64_t k = connection->echoed;
    status = Verify(bench, k, buffer);
    if (!status.ok()) break;
    if (bench.measuring.load(std::memory_order_relaxed)) {
      worker.latencies.Record(now - connection->sent_at[k % bench.depth]);
      Bump(worker.measured);
    }
    Bump(worker.completed);
    ++connection->echoed;
    WakeWriter(connection);
  }
  connection->reader_done = true;
  WakeWriter(connection);
  co_return status;
}

void NoteError(Worker& worker, const std::string& error) {
  if (worker.first_error.empty()) worker.first_error = error;
}

// Runs the client's TLS handshake on the connection's socket (within the
// connect timeout).
conet::Task<absl::Status> Handshake(const Benchmark* bench, Connection* connection) {
  const conet::Cancellation deadline = conet::Within(bench->connect_timeout);
  absl::StatusOr<conet::TlsStream> tls = co_await conet::TlsStream::Connect(
      std::move(connection->stream), *bench->tls, bench->server_name, deadline);
  if (!tls.ok()) co_return tls.status();
  connection->tls.emplace(*std::move(tls));
  co_return absl::OkStatus();
}

// Connects (within bench->connect_timeout) and runs one closed loop until
// it fails or the worker stops.
conet::Task<void> RunConnection(const Benchmark* bench, Worker* worker, int id) {
  absl::StatusOr<conet::StreamSocket> stream =
      co_await conet::StreamSocket::Connect(bench->target, conet::Within(bench->connect_timeout));
  if (!stream.ok()) {
    if (!worker->stop.stop_requested()) {
      NoteError(*worker, stream.status().ToString());
      Bump(worker->connect_failures);
    }
    co_return;
  }
  // Small messages go out at once. UNIX sockets refuse the option, and
  // need none.
  stream->SetNoDelay(true).IgnoreError();
  Bump(worker->connected);

  Connection connection(bench, worker, id, *std::move(stream));
  absl::Status status;
  if (bench->tls) {
    status = co_await Handshake(bench, &connection);
  }
  if (status.ok()) {
    conet::TaskGroup group;  // a failing side stops the other
    if (connection.tls) {
      group.Spawn(ReadEchoes(&connection, &*connection.tls));
      group.Spawn(WriteMessages(&connection, &*connection.tls));
    } else {
      group.Spawn(ReadEchoes(&connection, &connection.stream));
      group.Spawn(WriteMessages(&connection, &connection.stream));
    }
    status = co_await group.Join();
  }
  if (!status.ok() && !worker->stop.stop_requested()) {
    Bump(worker->errors);
    NoteError(*worker, absl::StrCat("connection ", id, ": ", status.ToString()));
  }
}

// Runs this loop's share of the connections (ids index, index + threads,
// ...) until they have all ended.
conet::Task<void> RunWorker(const Benchmark* bench, Worker* worker) {
  {
    conet::TaskGroup group;
    for (int id = worker->index; id < bench->connections; id += bench->threads) {
      group.Spawn(RunConnection(bench, worker, id));
    }
    absl::Status joined = co_await group.Join();
    if (!joined.ok()) NoteError(*worker, joined.ToString());
  }
  worker->finished.store(true, std::memory_order_release);
}

struct Totals {
  uint64_t completed = 0;
  uint64_t measured = 0;
  uint64_t errors = 0;
  uint64_t connected = 0;
  uint64_t connect_failures = 0;
};

Totals Sum(const std::vector<std::unique_ptr<Worker>>& workers) {
  Totals totals;
  for (const auto& worker : workers) {
    totals.completed += worker->completed.load(std::memory_order_relaxed);
    totals.measured += worker->measured.load(std::memory_order_relaxed);
    totals.errors += worker->errors.load(std::memory_order_relaxed);
    totals.connected += worker->connected.load(std::memory_order_relaxed);
    totals.connect_failures += worker->connect_failures.load(std::memory_order_relaxed);
  }
  return totals;
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// The main thread's side: waits for time to pass or for SIGINT/SIGTERM
// (blocked in every thread, taken here with sigtimedwait), and shows the
// progress once a second when stderr is a terminal.
class Monitor {
 public:
  enum class Phase { kConnecting, kWarmingUp, kMeasuring };

  Monitor(const sigset_t& signals, const std::vector<std::unique_ptr<Worker>>& workers,
          int connections)
      : signals_(signals),
        workers_(workers),
        connections_(connections),
        show_progress_(::isatty(STDERR_FILENO) == 1),
        start_(Clock::now()),
        next_progress_(start_ + std::chrono::seconds(1)) {}

  void Enter(Phase phase) {
    phase_ = phase;
    phase_start_ = Clock::now();
    phase_completed_ = Sum(workers_).completed;
  }

  // Waits until `until`, or until `done()` holds (checked every 10 ms, if
  // given). Returns false if a stop signal came first.
  bool WaitUntil(Clock::time_point until, const std::function<bool()>& done = nullptr) {
    while (true) {
      if (done && done()) return true;
      Clock::time_point now = Clock::now();
      if (now >= next_progress_) {
        ShowProgress(now);
        while (next_progress_ <= now) next_progress_ += std::chrono::seconds(1);
      }
      if (now >= until) return true;
      Clock::time_point wake = std::min(until, next_progress_);
      if (done) wake = std::min(wake, now + std::chrono::milliseconds(10));
      const auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(wake - now);
      timespec timeout{};
      timeout.tv_sec = static_cast<time_t>(wait.count() / 1'000'000'000);
      timeout.tv_nsec = static_cast<long>(wait.count() % 1'000'000'000);
      if (::sigtimedwait(&signals_, nullptr, &timeout) > 0) return false;
    }
  }

  // Ends the progress line so that what follows starts on a line of its own.
  void Finish() {
    if (progress_shown_) std::fputc('\n', stderr);
    progress_shown_ = false;
  }

 private:
  void ShowProgress(Clock::time_point now) {
    if (!show_progress_) return;
    const Totals totals = Sum(workers_);
    char line[160];
    const double elapsed = Seconds(now - start_);
    const double in_phase = std::max(Seconds(now - phase_start_), 1e-9);
    switch (phase_) {
      case Phase::kConnecting:
        std::snprintf(line, sizeof(line), "%.0fs: connecting, %llu of %d connected, %llu failed",
                      elapsed, static_cast<unsigned long long>(totals.connected), connections_,
                      static_cast<unsigned long long>(totals.connect_failures));
        break;
      case Phase::kWarmingUp:
        std::snprintf(line, sizeof(line), "%.0fs: warming up, %.0f msgs/s, %llu errors", elapsed,
                      static_cast<double>(totals.completed - phase_completed_) / in_phase,
                      static_cast<unsigned long long>(totals.errors));
        break;
      case Phase::kMeasuring:
        std::snprintf(line, sizeof(line), "%.0fs: %.0f msgs/s, %llu errors", elapsed,
                      static_cast<double>(totals.measured) / in_phase,
                      static_cast<unsigned long long>(totals.errors));
        break;
    }
    std::fprintf(stderr, "\r%-70s", line);
    std::fflush(stderr);
    progress_shown_ = true;
  }

  sigset_t signals_;
  const std::vector<std::unique_ptr<Worker>>& workers_;
  int connections_;
  bool show_progress_;
  bool progress_shown_ = false;
  Clock::time_point start_;
  Clock::time_point next_progress_;
  Phase phase_ = Phase::kConnecting;
  Clock::time_point phase_start_ = start_;
  uint64_t phase_completed_ = 0;
};

// Reports whether `target` can name a server: an address SocketAddress
// reads, or HOST:PORT with a host name (resolved when connecting).
bool IsTarget(const std::string& target) {
  if (conet::SocketAddress::Parse(target).ok()) return true;
  if (target.rfind("unix:", 0) == 0 || target.rfind('[', 0) == 0) return false;
  const size_t colon = target.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  if (target.find(':') != colon) return false;  // an IPv6 literal needs []
  int port = 0;
  return absl::SimpleAtoi(target.substr(colon + 1), &port) && port > 0 && port <= 65535;
}

void PrintUsage() {
  std::printf(
      "usage: netbench --target=ADDRESS [--connections=N] [--threads=N]\n"
      "                [--size=BYTES] [--depth=N] [--duration=5s] [--warmup=1s]\n"
      "                [--tls [--ca=PEM] [--server-name=NAME]]\n"
      "Closed-loop echo load generator: each connection keeps --depth messages\n"
      "in flight, checks every echoed byte, and sends the next message as each\n"
      "echo arrives.\n"
      "  --target=ADDRESS   echo server: HOST:PORT, [IPV6]:PORT, unix:PATH or\n"
      "                     unix:@NAME (required)\n"
      "  --connections=N    connections, 1 to 1000000 (default 1)\n"
      "  --threads=N        event loops, one per thread, 1 to 256 (default 1)\n"
      "  --size=BYTES       bytes per message, 1 to 67108864 (default 64)\n"
      "  --depth=N          messages in flight per connection, 1 to 65536\n"
      "                     (default 1)\n"
      "  --duration=TIME    measured time, e.g. 5s or 500ms (default 5s)\n"
      "  --warmup=TIME      traffic before measuring, not counted (default 1s)\n"
      "  --tls              speak TLS (the handshake is part of connecting)\n"
      "  --ca=PEM           CA bundle to verify the server with (default: the\n"
      "                     system's trust store)\n"
      "  --server-name=NAME SNI and the name the certificate must match\n"
      "                     (default: the host of --target)\n"
      "Prints one line: msgs_per_sec= mib_per_sec= p50_us= p99_us= p999_us=\n"
      "errors=. Exit status 0 when there were no errors and some messages\n"
      "were measured, 1 otherwise, 2 for bad flags. SIGINT/SIGTERM stop early.\n");
}

int UsageError(const std::string& message) { return conet::tools::UsageError("netbench", message); }

// The host part of a HOST:PORT or [IPV6]:PORT target ("" for unix:).
std::string HostOf(const std::string& target) {
  if (target.rfind("unix:", 0) == 0) return "";
  const size_t colon = target.rfind(':');
  std::string host = target.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host;
}

// Sets up bench->tls from --tls, --ca and --server-name: OK, or an error
// (`usage`: a usage error, exit 2, rather than a TLS failure, exit 1).
absl::Status SetUpTls(Benchmark& bench, bool& usage) {
  usage = true;
  const std::string ca = absl::GetFlag(FLAGS_ca);
  const std::string name = absl::GetFlag(FLAGS_server_name);
  if (!absl::GetFlag(FLAGS_tls)) {
    if (!ca.empty() || !name.empty()) {
      return absl::InvalidArgumentError("--ca and --server-name need --tls");
    }
    return absl::OkStatus();
  }
  bench.server_name = name.empty() ? HostOf(bench.target) : name;
  conet::TlsClientOptions options;
  options.ca_file = ca;
  absl::StatusOr<conet::TlsContext> context = conet::TlsContext::Client(options);
  usage = false;
  if (!context.ok()) return context.status();
  bench.tls = *std::move(context);
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  conet::tools::ParseFlagsOrExit(argc, argv, "netbench", PrintUsage,
                                 {.ranges = {{"connections", 1, 1'000'000},
                                             {"threads", 1, 256},
                                             {"size", 1, 64 << 20},
                                             {"depth", 1, 65536}}});
  Benchmark bench;
  bench.target = absl::GetFlag(FLAGS_target);
  bench.connections = absl::GetFlag(FLAGS_connections);
  bench.threads = absl::GetFlag(FLAGS_threads);
  bench.size = static_cast<size_t>(absl::GetFlag(FLAGS_size));
  bench.depth = static_cast<uint64_t>(absl::GetFlag(FLAGS_depth));
  const absl::Duration duration = absl::GetFlag(FLAGS_duration);
  const absl::Duration warmup = absl::GetFlag(FLAGS_warmup);
  if (bench.target.empty()) return UsageError("--target=ADDRESS is required");
  if (!IsTarget(bench.target)) {
    return UsageError(absl::StrCat("--target=", bench.target,
                                   ": expected HOST:PORT, [IPV6]:PORT, "
                                   "unix:PATH or unix:@NAME"));
  }
  if (duration <= absl::ZeroDuration()) {
    return UsageError("--duration must be more than 0");
  }
  bool usage = false;
  if (absl::Status tls = SetUpTls(bench, usage); !tls.ok()) {
    if (usage) return UsageError(std::string(tls.message()));
    std::fprintf(stderr, "netbench: %s\n", std::string(tls.message()).c_str());
    return 1;
  }
  bench.pattern.resize(bench.size + 256);
  for (size_t j = 0; j < bench.pattern.size(); ++j) {
    bench.pattern[j] = static_cast<char>(j & 0xff);
  }

  // The loops' threads inherit this mask; only the Monitor sees the signals.
  const sigset_t stop_signals = conet::BlockStopSignals();

  // Declared before the group: its loops may still hold frames pointing
  // here until the group is destroyed.
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < bench.threads; ++i) {
    workers.push_back(std::make_unique<Worker>(i));
  }
  absl::StatusOr<std::unique_ptr<conet::LoopGroup>> group = conet::LoopGroup::Create(bench.threads);
  if (!group.ok()) {
    std::fprintf(stderr, "netbench: %s\n", group.status().ToString().c_str());
    return 1;
  }
  (*group)->SpawnOnEach([&bench, &workers](int index) {
    conet::Task<void> task = RunWorker(&bench, workers[index].get());
    task.SetStopToken(workers[index]->stop.get_token());
    return task;
  });
  (*group)->Start();

  // Connect, warm up, measure; a signal ends whichever phase runs.
  Monitor monitor(stop_signals, workers, bench.connections);
  bool signalled = false;
  bool connect_failed = false;
  Clock::time_point measure_start{};
  Clock::time_point measure_end{};
  monitor.Enter(Monitor::Phase::kConnecting);
  const auto connect_limit =
      Clock::now() +
      std::chrono::nanoseconds(absl::ToInt64Nanoseconds(bench.connect_timeout + absl::Seconds(1)));
  signalled = !monitor.WaitUntil(connect_limit, [&] {
    const Totals totals = Sum(workers);
    return totals.connect_failures > 0 ||
           totals.connected == static_cast<uint64_t>(bench.connections);
  });
  if (!signalled) {
    const Totals totals = Sum(workers);
    connect_failed =
        totals.connect_failures > 0 || totals.connected < static_cast<uint64_t>(bench.connections);
  }
  if (!signalled && !connect_failed) {
    monitor.Enter(Monitor::Phase::kWarmingUp);
    signalled = !monitor.WaitUntil(Clock::now() +
                                   std::chrono::nanoseconds(absl::ToInt64Nanoseconds(warmup)));
  }
  if (!signalled && !connect_failed) {
    monitor.Enter(Monitor::Phase::kMeasuring);
    measure_start = Clock::now();
    bench.measuring.store(true, std::memory_order_relaxed);
    signalled = !monitor.WaitUntil(measure_start +
                                   std::chrono::nanoseconds(absl::ToInt64Nanoseconds(duration)));
    bench.measuring.store(false, std::memory_order_relaxed);
    measure_end = Clock::now();
  }
  monitor.Finish();

  // Stop every connection from its own loop, let the tasks end (bounded:
  // a loop that is stuck is stopped anyway), then end the threads.
  for (int i = 0; i < bench.threads; ++i) {
    Worker* worker = workers[i].get();
    (*group)->loop(i).Post([worker] { worker->stop.request_stop(); });
  }
  const auto give_up = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < give_up &&
         !std::all_of(workers.begin(), workers.end(), [](const auto& worker) {
           return worker->finished.load(std::memory_order_acquire);
         })) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  (*group)->Stop();
  (*group)->Join();

  std::string first_error;
  for (const auto& worker : workers) {
    if (first_error.empty()) first_error = worker->first_error;
  }
  const Totals totals = Sum(workers);
  if (connect_failed) {
    std::fprintf(stderr, "netbench: %llu of %d connections failed: %s\n",
                 static_cast<unsigned long long>(bench.connections - totals.connected),
                 bench.connections, first_error.empty() ? "timed out" : first_error.c_str());
    return 1;
  }

  LatencyHistogram latencies;
  for (const auto& worker : workers) latencies.Merge(worker->latencies);
  const double seconds = measure_end > measure_start ? Seconds(measure_end - measure_start) : 0;
  const double messages = static_cast<double>(totals.measured);
  const double msgs_per_sec = seconds > 0 ? messages / seconds : 0;
  const double mib_per_sec =
      seconds > 0 ? messages * static_cast<double>(bench.size) / (1 << 20) / seconds : 0;
  std::printf(
      "msgs_per_sec=%.1f mib_per_sec=%.3f p50_us=%.2f p99_us=%.2f "
      "p999_us=%.2f errors=%llu\n",
      msgs_per_sec, mib_per_sec, latencies.Quantile(0.50) / 1000, latencies.Quantile(0.99) / 1000,
      latencies.Quantile(0.999) / 1000, static_cast<unsigned long long>(totals.errors));
  std::fflush(stdout);
  if (totals.errors > 0) {
    std::fprintf(stderr, "netbench: %llu connections failed; the first: %s\n",
                 static_cast<unsigned long long>(totals.errors), first_error.c_str());
    return 1;
  }
  if (totals.measured == 0 && !signalled) {
    std::fprintf(stderr, "netbench: no message was echoed while measuring\n");
    return 1;
  }
  return 0;
}
