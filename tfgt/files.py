"""Atomic file writes: a reader sees the old file or the new one, never a
torn one, whatever interrupts the writer."""

from __future__ import annotations

import json
import os
import uuid


def write_text(path: str, text: str) -> None:
  """Writes `text` to a temporary file beside `path`, then renames it."""
  temporary = f"{path}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
  try:
    with open(temporary, "x") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(temporary, path)
  except BaseException:
    if os.path.exists(temporary):
      os.remove(temporary)
    raise


def write_json(path: str, value) -> None:
  """`write_text` of `value` as indented, strict JSON.

  Raises:
    ValueError: `value` holds NaN or an infinity, which strict JSON cannot
      hold (nothing is written).
  """
  write_text(path, json.dumps(value, indent=2, allow_nan=False))
