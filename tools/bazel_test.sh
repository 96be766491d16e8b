#!/usr/bin/env bash
# Runs Bazel tests offline and stops the Bazel server afterwards.
#
# Usage: tools/bazel_test.sh [bazel test arguments]   (default: //...)
#   tools/bazel_test.sh //:test_bazel_smoke --test_filter=output_shape
#
# Exit code is Bazel's: 0 all tests passed, 3 a test failed, 4 no test ran,
# 1 or 2 the build or the command line failed.
set -uo pipefail
cd "$(dirname "$0")/.."

if ! command -v bazel >/dev/null 2>&1; then
  echo "bazel not found: install Debian's Bazel with" \
       "'apt-get install -y bazel-bootstrap' (or 'bash tools/setup.sh --bazel')." >&2
  exit 2
fi

if [[ $# -eq 0 ]]; then
  set -- //...
fi

bazel test "$@"
status=$?
# The server would otherwise keep a JVM alive for hours.
bazel shutdown
exit "$status"
