"""The machine a benchmark runs on, named in its tables.

Machines of one size differ in CPU, and a timing says little without its
CPU (docs/RESULTS.md lists those measured): every benchmark names the CPU
with `cpu_description`, read by py-cpuinfo (the library pytest-benchmark
uses for the same purpose).
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess

import cpuinfo

# Instruction sets that change TensorFlow's CPU speed several-fold, in the
# order they are named: (cpuinfo flag, name in the description).
_FEATURES = (("avx512f", "AVX-512"), ("avx512_bf16", "AVX512-BF16"),
             ("amx_tile", "AMX"))


@functools.cache
def cpu_description() -> str:
  """The CPU as docs/RESULTS.md names it: `lscpu`'s model name, the
  instruction sets of _FEATURES it has, and the cores this process sees,
  e.g. "Intel(R) Xeon(R) Processor with AVX-512, AVX512-BF16 and AMX, 2
  cores".

  Never raises: an unreadable CPU is "an unknown CPU".
  """
  try:
    info = cpuinfo.get_cpu_info()
  except Exception:  # pylint: disable=broad-except
    info = {}
  name = info.get("brand_raw") or "an unknown CPU"
  flags = set(info.get("flags", ()))
  features = [label for flag, label in _FEATURES if flag in flags]
  listed = (", ".join(features[:-1]) + " and " if len(features) > 1
            else "") + (features[-1] if features else "")
  with_features = f" with {listed}" if features else ""
  return f"{name}{with_features}, {os.cpu_count()} cores"


def one_thread_env(**extra: str) -> dict[str, str]:
  """This process's environment for a child TensorFlow process with one
  intra-op and one inter-op thread (two such children share 2 cores without
  contention, and a run's round-off does not depend on the thread count),
  with TensorFlow's C++ logs at warnings unless set, and `extra` on top."""
  env = dict(os.environ, TF_NUM_INTRAOP_THREADS="1",
             TF_NUM_INTEROP_THREADS="1", **extra)
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  return env


# personality(2)'s flag that turns address-space layout randomisation off.
_ADDR_NO_RANDOMIZE = 0x0040000


def addresses_fixed() -> bool:
  """Whether this process runs without address-space layout randomisation
  (under `setarch -R`), read from /proc/self/personality; False where that
  cannot be read."""
  try:
    with open("/proc/self/personality") as f:
      return bool(int(f.read().strip(), 16) & _ADDR_NO_RANDOMIZE)
  except (OSError, ValueError):
    return False


def with_fixed_addresses(command: list[str]) -> list[str]:
  """`command` run under `setarch <machine> -R`: without address-space
  layout randomisation, so that buffers lie at the same addresses in every
  run and a kernel whose round-off depends on alignment gives the same bits
  (docs/RESULTS.md, "Bit for bit").

  Raises:
    ValueError: setarch is missing (Debian's util-linux has it) or the
      kernel refuses the personality (some containers' seccomp profiles).
  """
  setarch = shutil.which("setarch")
  if setarch is None:
    raise ValueError("--fixed_addresses needs setarch (apt-get install "
                     "util-linux), which is not on PATH.")
  prefix = [setarch, platform.machine(), "-R"]
  probe = subprocess.run(prefix + ["true"], capture_output=True, text=True,
                         check=False)
  if probe.returncode != 0:
    raise ValueError("--fixed_addresses: this system does not let a process "
                     "turn address randomisation off "
                     f"({probe.stderr.strip() or probe.returncode}).")
  return prefix + list(command)
