#!/bin/sh
# Stands in for Bazel's downloaded coverage tools, which are not available offline.
echo "bazel coverage is not supported offline; use coverage.py instead." >&2
exit 1
