#include "examples/echo_session.h"

namespace conet::examples {

Task<void> Echo(StreamSocket stream) {
  const bool ended = co_await EchoUntilEnd(stream);
  if (!ended) co_return;
  // End of stream: the peer's half-close, or the drain's deadline ending
  // reads. Send our FIN behind every byte echoed before closing: a peer
  // still sending at the deadline then reads all of it and end of stream,
  // where a close with its newest bytes unread would reset the connection
  // (and the reset could overtake what it had not read yet).
  (void)stream.ShutdownWrite();
}

}  // namespace conet::examples
