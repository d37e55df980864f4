"""Compiler flags for conet's own code, in one place (used by every target)."""

# Warnings are errors in the project's own code. External repositories are
# system libraries and are never compiled here.
CONET_COPTS = [
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wshadow",
    "-Wnon-virtual-dtor",
    "-Wno-missing-field-initializers",
]

# Plain C targets (the benchmark baselines): CONET_COPTS has C++-only flags.
CONET_C_COPTS = [
    "-O2",
    "-Wall",
    "-Wextra",
    "-Werror",
]

CONET_TEST_COPTS = CONET_COPTS + [
    # gtest's TYPED_TEST and friends trip this one.
    "-Wno-unused-parameter",
]

# The Boost.Asio baselines (bench/): our warnings, less two that Asio's own
# headers trip. Asio's awaitable frames pair their own operator new/delete,
# which GCC 12 misreads as a mismatch once sanitizers change inlining
# (--config=asan); and Asio uses std::atomic_thread_fence, which GCC 12
# reports as unsupported under -fsanitize=thread (--config=tsan). They are
# benchmark baselines, never run under ThreadSanitizer, only built.
CONET_ASIO_COPTS = CONET_COPTS + [
    "-Wno-mismatched-new-delete",
    "-Wno-tsan",
]
