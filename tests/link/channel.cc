#include "ipc/channel.h"

#include "net/event_loop.h"

conet::Task<bool> SendsAndReceives() {
  auto pair = conet::ipc::SocketPair(conet::ipc::SocketType::kSeqPacket);
  if (!pair.ok()) co_return false;
  conet::ipc::Channel a(std::move(pair->first));
  conet::ipc::Channel b(std::move(pair->second));
  if (!(co_await a.Send("hi")).ok()) co_return false;
  absl::StatusOr<conet::ipc::Message> got = co_await b.Receive();
  co_return got.ok() && got->bytes == "hi";
}

int main() {
  auto loop = conet::EventLoop::Create();
  return loop.ok() && (*loop)->BlockOn(SendsAndReceives()) ? 0 : 1;
}
