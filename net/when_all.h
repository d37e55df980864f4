// File: net/when_all.h
//
// WhenAll runs tasks concurrently on the current loop and completes when all
// of them have. co_await yields a tuple (or vector) of their results, void
// results as std::monostate. If any task threw, the first exception (in
// argument order) is rethrown, after every task has completed.
//
//   auto [a, b] = co_await conet::WhenAll(FetchA(), FetchB());
//   std::vector<int> all = co_await conet::WhenAll(std::move(tasks));
//
// Cancelling the awaiter (its task's stop token) cancels every child.
#ifndef CONET_NET_WHEN_ALL_H_
#define CONET_NET_WHEN_ALL_H_

#include <stop_token>
#include <tuple>
#include <vector>

#include "net/internal/join.h"
#include "net/task.h"

namespace conet {

// Runs `tasks` concurrently; yields all their results.
template <typename... Ts>
Task<std::tuple<internal::NonVoid<Ts>...>> WhenAll(Task<Ts>... tasks) {
  internal::JoinState join(/*stop_on_first=*/false);
  std::stop_callback forward(co_await CurrentStopToken(),
                             internal::ForwardStop{&join.stop_source()});
  (join.Add(tasks), ...);
  co_await join;
  // Braced initialisation evaluates left to right: argument order.
  co_return std::tuple<internal::NonVoid<Ts>...>{internal::TakeResult(tasks)...};
}

// Runs every task in `tasks` concurrently; yields their results in order.
template <typename T>
Task<std::vector<internal::NonVoid<T>>> WhenAll(std::vector<Task<T>> tasks) {
  internal::JoinState join(/*stop_on_first=*/false);
  std::stop_callback forward(co_await CurrentStopToken(),
                             internal::ForwardStop{&join.stop_source()});
  for (Task<T>& task : tasks) join.Add(task);
  co_await join;
  std::vector<internal::NonVoid<T>> results;
  results.reserve(tasks.size());
  for (Task<T>& task : tasks) results.push_back(internal::TakeResult(task));
  co_return results;
}

}  // namespace conet

#endif  // CONET_NET_WHEN_ALL_H_
