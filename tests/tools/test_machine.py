"""`tools.machine`: the CPU named as lscpu names it."""

import os
import re


from tools import machine


def test_the_cpu_is_named_as_lscpu_names_it():
  """`tools.machine`: the model name, AVX-512, AVX512-BF16 and AMX as /proc/cpuinfo
  gives them, and the cores."""
  description = machine.cpu_description()
  with open("/proc/cpuinfo") as f:
    info = f.read()
  model = re.search(r"^model name\s*:\s*(.*)$", info, re.M).group(1).strip()
  cpu_flags = re.search(r"^flags\s*:(.*)$", info, re.M).group(1).split()
  assert description.startswith(model)
  assert ("AVX-512" in description) == ("avx512f" in cpu_flags)
  assert ("AMX" in description) == ("amx_tile" in cpu_flags)
  # bfloat16 instructions (mixed_bfloat16, docs/TRAINING.md).
  assert ("AVX512-BF16" in description) == ("avx512_bf16" in cpu_flags)
  assert description.endswith(f", {os.cpu_count()} cores")
