#!/usr/bin/env bash
# Sets up a machine for tfgt: Debian packages (Fashion-MNIST data, Bazel) and
# the Python package with its dependencies. Idempotent: a second run only
# checks and returns in a few seconds.
#
#   bash tools/setup.sh          # data + package
#   bash tools/setup.sh --bazel  # also Debian's Bazel, for `bazel build //...`
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
if (( ${#apt_packages[@]} )); then
  echo "setup: installing Debian packages: ${apt_packages[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi

# Reinstall the package when setup.cfg changed since the last install.
stamp=".setup-stamp"
digest="$(sha256sum setup.cfg | cut -c1-16)-$("$PYTHON" -c 'import sys; print(sys.prefix)' | sha256sum | cut -c1-8)"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]] || \
   ! "$PYTHON" -c "import tfgt, tensorflow, gin, tensorflow_gan.python" 2>/dev/null; then
  echo "setup: installing tfgt and its dependencies with pip"
  "$PYTHON" -m pip install -q --disable-pip-version-check -e ".[test]"
  echo "$digest" > "$stamp"
fi
echo "setup: ready"
