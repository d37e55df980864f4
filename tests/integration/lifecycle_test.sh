#!/usr/bin/env bash
# Runs lifecycle_test.py against the servers Bazel passes (see BUILD).
exec python3 "$(dirname "$0")/lifecycle_test.py" "$@"
