// File: net/when_any.h
//
// WhenAny runs tasks concurrently and completes with the first to finish.
// The others (the losers) are then cancelled through their stop tokens and
// joined: when co_await yields, no child is still running. co_await yields
// the winner's index and its result; if the winner threw, its exception is
// rethrown. Losers' results and exceptions are discarded.
//
//   auto [index, value] = co_await conet::WhenAny(ReadLine(a), ReadLine(b));
//   // value is a std::variant; std::get<0>(value) when index == 0.
//
// Cancelling the awaiter cancels every child.
#ifndef CONET_NET_WHEN_ANY_H_
#define CONET_NET_WHEN_ANY_H_

#include <cstddef>
#include <stop_token>
#include <utility>
#include <variant>
#include <vector>

#include "net/internal/join.h"
#include "net/task.h"

namespace conet {

template <typename... Ts>
struct WhenAnyResult {
  size_t index;
  std::variant<internal::NonVoid<Ts>...> value;
};

template <typename T>
struct WhenAnyOf {
  size_t index;
  internal::NonVoid<T> value;
};

// Implementation details follow.

namespace internal {
template <size_t I, typename... Ts>
WhenAnyResult<Ts...> TakeWinner(size_t index, std::tuple<Task<Ts>&...> tasks) {
  if constexpr (I < sizeof...(Ts)) {
    if (index == I) {
      return {index,
              std::variant<NonVoid<Ts>...>(std::in_place_index<I>, TakeResult(std::get<I>(tasks)))};
    }
    return TakeWinner<I + 1, Ts...>(index, tasks);
  } else {
    std::terminate();  // unreachable: index < sizeof...(Ts)
  }
}
}  // namespace internal

// Runs `tasks` concurrently; yields the first to complete.
template <typename... Ts>
requires(sizeof...(Ts) > 0) Task<WhenAnyResult<Ts...>> WhenAny(Task<Ts>... tasks) {
  internal::JoinState join(/*stop_on_first=*/true);
  std::stop_callback forward(co_await CurrentStopToken(),
                             internal::ForwardStop{&join.stop_source()});
  (join.Add(tasks), ...);
  co_await join;
  co_return internal::TakeWinner<0, Ts...>(join.first(), std::tuple<Task<Ts>&...>(tasks...));
}

// Runs every task in `tasks` (at least one) concurrently; yields the first
// to complete.
template <typename T>
Task<WhenAnyOf<T>> WhenAny(std::vector<Task<T>> tasks) {
  internal::JoinState join(/*stop_on_first=*/true);
  std::stop_callback forward(co_await CurrentStopToken(),
                             internal::ForwardStop{&join.stop_source()});
  for (Task<T>& task : tasks) join.Add(task);
  co_await join;
  const size_t index = join.first();
  co_return WhenAnyOf<T>{index, internal::TakeResult(tasks.at(index))};
}

}  // namespace conet

#endif  // CONET_NET_WHEN_ANY_H_
