#!/usr/bin/env bash
# Runs echo_tls_test.py against the echo_server Bazel passes (see BUILD).
exec python3 "$(dirname "$0")/echo_tls_test.py" "$@"
