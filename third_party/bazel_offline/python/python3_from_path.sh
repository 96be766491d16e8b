#!/bin/sh
# Interpreter of the Bazel Python toolchain: whichever python3 is first on PATH.
exec python3 "$@"
