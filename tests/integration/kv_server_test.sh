#!/usr/bin/env bash
# Runs kv_server_test.py against the kv_server Bazel passes (see BUILD).
exec python3 "$(dirname "$0")/kv_server_test.py" "$@"
