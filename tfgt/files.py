"""Atomic file writes: a reader sees the old file or the new one, never a
torn one, whatever interrupts the writer.

A write goes to a temporary file beside its target, named
`<target>.tmp-<pid>-<8 hex digits>`, which is fsynced and renamed over the
target. A writer killed before the rename leaves that temporary behind:
`remove_temporaries` deletes them (the trainer does on every start, once it
holds the run folder's lock).
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import uuid

from absl import logging

# The temporaries of this module, and those TensorFlow's checkpoint writers
# leave when killed: `checkpoint.tmp<32 hex>` (the state file) and
# `<prefix>_temp/` folders of a sharded save.
_TEMPORARY = re.compile(r".+\.tmp-[0-9]+-[0-9a-f]{8}$|.+\.tmp[0-9a-f]{32}$")
_TF_SAVE_FOLDER = re.compile(r"ckpt-[0-9]+_temp$")


def write_bytes(path: str, data: bytes) -> None:
  """Writes `data` to a temporary file beside `path`, then renames it.

  Raises:
    OSError: the write failed (e.g. a full disk); `path` is unchanged and
      the temporary removed.
  """
  temporary = f"{path}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
  try:
    with open(temporary, "xb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(temporary, path)
  except BaseException:
    if os.path.exists(temporary):
      os.remove(temporary)
    raise


def write_text(path: str, text: str) -> None:
  """`write_bytes` of `text` in UTF-8."""
  write_bytes(path, text.encode("utf-8"))


def write_json(path: str, value) -> None:
  """`write_text` of `value` as indented, strict JSON.

  Raises:
    ValueError: `value` holds NaN or an infinity, which strict JSON cannot
      hold (nothing is written).
  """
  write_text(path, json.dumps(value, indent=2, allow_nan=False))


def remove_temporaries(directory: str, recursive: bool = True) -> list[str]:
  """Deletes the temporaries that killed writers left in `directory`.

  Only names this module and TensorFlow's checkpoint writers make are
  touched; call it only while no other writer works there (the trainer
  holds the run folder's lock).

  Returns:
    The paths removed.
  """
  removed = []
  for root, folders, names in os.walk(directory):
    for name in names:
      if _TEMPORARY.fullmatch(name):
        path = os.path.join(root, name)
        os.remove(path)
        removed.append(path)
    for name in list(folders):
      if _TF_SAVE_FOLDER.fullmatch(name):
        path = os.path.join(root, name)
        shutil.rmtree(path)
        removed.append(path)
        folders.remove(name)
    if not recursive:
      break
  for path in removed:
    logging.info("Removed %s, left by a write that was interrupted.", path)
  return removed


def is_disk_full(error: BaseException) -> bool:
  """Whether an error (OSError or a TensorFlow error) says that the disk or
  the user's quota is full."""
  if isinstance(error, OSError) and error.errno in (errno.ENOSPC,
                                                    errno.EDQUOT):
    return True
  text = str(error)
  return ("No space left on device" in text or "Disk quota exceeded" in text)
