"""The machine a benchmark runs on, named in its tables.

Machines of one size differ in CPU, and a timing says little without its
CPU (docs/RESULTS.md lists those measured): every benchmark names the CPU
with `cpu_description`, read by py-cpuinfo (the library pytest-benchmark
uses for the same purpose).
"""

from __future__ import annotations

import functools
import os

import cpuinfo

# Instruction sets that change TensorFlow's CPU speed several-fold, in the
# order they are named: (cpuinfo flag, name in the description).
_FEATURES = (("avx512f", "AVX-512"), ("amx_tile", "AMX"))


@functools.cache
def cpu_description() -> str:
  """The CPU as docs/RESULTS.md names it: `lscpu`'s model name, the
  instruction sets of _FEATURES it has, and the cores this process sees,
  e.g. "Intel(R) Xeon(R) Processor with AVX-512 and AMX, 2 cores".

  Never raises: an unreadable CPU is "an unknown CPU".
  """
  try:
    info = cpuinfo.get_cpu_info()
  except Exception:  # pylint: disable=broad-except
    info = {}
  name = info.get("brand_raw") or "an unknown CPU"
  flags = set(info.get("flags", ()))
  features = [label for flag, label in _FEATURES if flag in flags]
  with_features = f" with {' and '.join(features)}" if features else ""
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
