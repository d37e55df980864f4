#!/usr/bin/env bash
# Runs snippets_test.py on the files Bazel passes (see BUILD).
exec python3 "$(dirname "$0")/snippets_test.py" "$@"
