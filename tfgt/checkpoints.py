"""Checkpoints found from their files, and checked before they are read.

TensorFlow's `tf.train.latest_checkpoint` trusts a folder's `checkpoint`
state file: when that file is missing, torn or names a deleted checkpoint, it
answers None, and a trainer that believed it would start again from step 0
over the checkpoints still there. Here the checkpoints of a folder are the
`<name>-<step>.index` files it holds, whatever the state file says, and a
checkpoint is read whole (every tensor, so that TensorFlow checks each one's
size and CRC) before anything is restored from it.

The names follow `tf.train.CheckpointManager`: `ckpt-<step>.index` and
`ckpt-<step>.data-<shard>-of-<shards>`.
"""

from __future__ import annotations

import os
import re

import tensorflow as tf

from tfgt import files
from tfgt.errors import UserInputError

STATE_FILE = "checkpoint"
_INDEX = re.compile(r"ckpt-([0-9]+)\.index$")
_SHARDS = re.compile(r"\.data-[0-9]+-of-([0-9]+)$")


class UnreadableCheckpoint(UserInputError):
  """A checkpoint whose files are missing, truncated or corrupt."""


def prefix(directory: str, step: int) -> str:
  """The prefix of checkpoint `step` in `directory` (`<dir>/ckpt-<step>`)."""
  return os.path.join(directory, f"ckpt-{step}")


def steps_on_disk(directory: str) -> list[int]:
  """The steps of the checkpoints whose index file is in `directory`,
  ascending; [] for a folder that does not exist."""
  try:
    names = os.listdir(directory)
  except (FileNotFoundError, NotADirectoryError):
    return []
  return sorted(int(m.group(1)) for m in map(_INDEX.match, names) if m)


def newest_on_disk(directory: str) -> str | None:
  """The prefix of the newest checkpoint whose index is in `directory` (not
  read), or None."""
  steps = steps_on_disk(directory)
  return prefix(directory, steps[-1]) if steps else None


def step_of(path: str) -> int | None:
  """The step of a checkpoint prefix `.../ckpt-<step>`, or None."""
  m = re.fullmatch(r"ckpt-([0-9]+)", os.path.basename(path or ""))
  return int(m.group(1)) if m else None


def files_of(checkpoint_prefix: str) -> list[str]:
  """The files of a checkpoint that exist: its index and data shards."""
  directory, base = os.path.split(checkpoint_prefix)
  try:
    names = os.listdir(directory or ".")
  except OSError:
    return []
  return sorted(os.path.join(directory, n) for n in names
                if n == base + ".index" or
                (n.startswith(base + ".data-") and _SHARDS.search(n)))


def verify(checkpoint_prefix: str) -> None:
  """Reads every tensor of a checkpoint, so that a torn one fails here.

  TensorFlow checks each tensor's length and CRC32C as it reads it; a
  missing data shard, a truncated or altered file all fail.

  Raises:
    UnreadableCheckpoint: one line naming the file and what is wrong.
  """
  index = checkpoint_prefix + ".index"
  if not os.path.isfile(index):
    raise UnreadableCheckpoint(f"{index} is missing.")
  try:
    reader = tf.train.load_checkpoint(checkpoint_prefix)
    for key in reader.get_variable_to_shape_map():
      reader.get_tensor(key)
  except (tf.errors.OpError, IndexError, ValueError, RuntimeError,
          TypeError) as e:
    detail = (getattr(e, "message", None) or str(e)).strip()
    detail = detail.splitlines()[0] if detail else type(e).__name__
    raise UnreadableCheckpoint(
        f"the checkpoint {checkpoint_prefix} cannot be read ({detail}); its "
        f"files: {', '.join(os.path.basename(f) for f in files_of(checkpoint_prefix))}"
    ) from e


_STATE_LINE = re.compile(
    r'(?:model_checkpoint_path|all_model_checkpoint_paths): "([^"\\]*)"'
    r"|(?:all_model_checkpoint_timestamps|last_preserved_timestamp): "
    r"[-+0-9.eE]+(?:inf)?")


def state_file_step(directory: str) -> int | None:
  """The step the folder's `checkpoint` state file names, or None when the
  file is missing, torn or names no `ckpt-<step>`.

  Read as text (the lines `tf.train.CheckpointManager` writes), so that a
  torn file is a None here rather than TensorFlow's parse warnings.
  """
  try:
    with open(os.path.join(directory, STATE_FILE), encoding="utf-8") as f:
      lines = [line.strip() for line in f if line.strip()]
  except (OSError, UnicodeDecodeError):
    return None
  if not lines or not all(_STATE_LINE.fullmatch(l) for l in lines):
    return None
  named = [m.group(1) for m in map(_STATE_LINE.fullmatch, lines)
           if m.group(0).startswith("model_checkpoint_path")]
  return step_of(named[-1]) if len(named) == 1 else None


def write_state(directory: str, steps: list[int]) -> None:
  """Rewrites a folder's `checkpoint` state file (atomically) to name `steps`
  (ascending; the last is the latest), as `tf.train.CheckpointManager`
  writes it, so that the manager keeps them and deletes the oldest later.

  Each checkpoint's time is its index file's; the manager keeps for ever
  what is older than `last_preserved_timestamp`, which is set before them.
  """
  times = [os.path.getmtime(prefix(directory, s) + ".index") for s in steps]
  lines = [f'model_checkpoint_path: "ckpt-{steps[-1]}"']
  lines += [f'all_model_checkpoint_paths: "ckpt-{s}"' for s in steps]
  lines += [f"all_model_checkpoint_timestamps: {t!r}" for t in times]
  lines.append(f"last_preserved_timestamp: {min(times) - 1.0!r}")
  files.write_text(os.path.join(directory, STATE_FILE),
                   "\n".join(lines) + "\n")


def newest_readable(directory: str) -> tuple[str | None, dict[int, str]]:
  """The newest checkpoint of `directory` that reads whole.

  Args:
    directory: a folder of `ckpt-<step>` checkpoints.

  Returns:
    (prefix of the newest readable checkpoint or None, {step: message} of
    the newer ones that could not be read). Nothing is moved or deleted.
  """
  unreadable = {}
  for step in reversed(steps_on_disk(directory)):
    path = prefix(directory, step)
    try:
      verify(path)
    except UnreadableCheckpoint as e:
      unreadable[step] = str(e)
      continue
    return path, unreadable
  return None, unreadable
