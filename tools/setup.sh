#!/usr/bin/env bash
# Sets up a machine for tfgt: Debian packages (Fashion-MNIST data, Bazel) and
# the Python package with its dependencies. Idempotent: a second run only
# checks and returns in a few seconds.
#
#   bash tools/setup.sh          # data + package
#   bash tools/setup.sh --bazel  # also Debian's Bazel, for `bazel build //...`,
#                                # and WordNet, for the tests
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
want_bazel=0
[[ "${1:-}" == "--bazel" ]] && want_bazel=1

as_root() {
  if [[ "$(id -u)" == 0 ]]; then "$@"; else sudo "$@"; fi
}

apt_packages=()
[[ -d /usr/share/datasets/fashion-mnist ]] || apt_packages+=(dataset-fashion-mnist)
if [[ "$want_bazel" == 1 ]] && ! command -v bazel >/dev/null; then
  apt_packages+=(bazel-bootstrap)
fi
# WordNet, from which a test remakes the shipped ImageNet class names.
if [[ "$want_bazel" == 1 ]] && [[ ! -f /usr/share/wordnet/data.noun ]]; then
  apt_packages+=(wordnet-base)
fi
if (( ${#apt_packages[@]} )); then
  echo "setup: installing Debian packages: ${apt_packages[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi

if ! command -v "$PYTHON" >/dev/null; then
  echo "setup: no $PYTHON; install Python 3.10 or newer (or set PYTHON=...)." >&2
  exit 1
fi

# Reinstall the package when setup.cfg changed since the last install, or when
# a dependency is missing. (`import tensorflow_gan` itself fails on TF >= 2.16,
# see tfgt/eval/tfgan.py, so it is only looked up.)
stamp=".setup-stamp"
digest="$(sha256sum setup.cfg | cut -c1-16)-$("$PYTHON" -c 'import sys; print(sys.prefix)' | sha256sum | cut -c1-8)"
installed_check='
import importlib.util, sys
import tfgt, tensorflow, gin
sys.exit(0 if all(importlib.util.find_spec(m) for m in
                  ("tensorflow_gan", "tensorflow_hub", "pytest", "xdist",
                   "nbclient", "ipykernel")) else 1)'
# Which checkout the environment's tfgt is (looked up outside this folder, so
# that the working directory does not answer for it): another clone's
# `pip install -e` moves it there, and this checkout's stamp cannot tell.
installed_at="$(cd / && "$PYTHON" -c 'import os, tfgt; print(os.path.dirname(os.path.dirname(os.path.abspath(tfgt.__file__))))' 2>/dev/null || true)"
if [[ -n "$installed_at" && "$installed_at" != "$(pwd -P)" ]]; then
  echo "setup: this Python's tfgt is the checkout at $installed_at; installing this one ($(pwd -P)) instead"
fi
if [[ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]] || \
   [[ "$installed_at" != "$(pwd -P)" ]] || \
   ! "$PYTHON" -c "$installed_check" 2>/dev/null; then
  # Debian 12 / Ubuntu 23.04+ system Pythons refuse pip installs (PEP 668).
  if "$PYTHON" -c 'import sys, sysconfig, os; sys.exit(0 if sys.prefix == sys.base_prefix and os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)'; then
    echo "setup: $PYTHON is the system's externally managed Python, which pip may not change." >&2
    echo "setup: make a virtual environment first, then run the same command in it:" >&2
    echo "         apt-get install python3-venv && python3 -m venv .venv && . .venv/bin/activate" >&2
    exit 1
  fi
  echo "setup: installing tfgt and its dependencies with pip"
  "$PYTHON" -m pip install -q --disable-pip-version-check -e ".[test]"
  echo "$digest" > "$stamp"
fi
echo "setup: ready"
