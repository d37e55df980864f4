#!/bin/sh
echo "conet: 'bazel coverage' is not supported by the offline setup; build with --config=dbg and use gcov/lcov directly" >&2
exit 1
