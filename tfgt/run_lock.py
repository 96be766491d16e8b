"""One trainer per run folder: an exclusive lock held while it trains.

Two trainers on one model_dir would interleave their checkpoints, bundles and
best.json into a folder that is neither run. The trainer (the chief of a
cluster) takes `<model_dir>/train.lock` with `flock` before it reads or
writes anything there. The kernel releases the lock when its process ends,
however it ends (kill -9 included), so a lock left by a dead process is taken
over at once; the file itself stays, holding who had it last (process id,
host, start time, command) for the message that refuses a second trainer.

The file is written in place, not by `tfgt.files`' rename: the lock belongs to
the file's inode, which a rename would replace. On NFS, Linux maps `flock` to
the server's byte-range locks, so trainers on two machines exclude each other
too.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time

from tfgt.errors import UserInputError

LOCK_FILE = "train.lock"


class RunFolderBusy(UserInputError):
  """Another live process holds the run folder's lock."""


def _describe(holder: dict) -> str:
  parts = [f"process {holder.get('pid', '?')}"]
  if holder.get("host"):
    parts.append(f"on {holder['host']}")
  if holder.get("started"):
    parts.append(f"since {holder['started']}")
  return " ".join(parts)


class RunLock:
  """The lock of one run folder.

  Args:
    model_dir: the run folder; it must exist.

  Use as `lock.acquire()` ... `lock.release()`, or as a context manager.
  """

  def __init__(self, model_dir: str):
    self.model_dir = model_dir
    self.path = os.path.join(model_dir, LOCK_FILE)
    self._fd = None

  def acquire(self) -> None:
    """Takes the lock, or refuses at once.

    Raises:
      RunFolderBusy: a live process holds it; the message names the process
        and host and what to do.
      UserInputError: the lock file cannot be opened (a read-only folder).
    """
    try:
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
      raise UserInputError(
          f"Cannot open the run folder's lock {self.path} ({e.strerror}): "
          "train into a folder you can write.") from e
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = _read_holder(fd)
      os.close(fd)
      raise RunFolderBusy(
          f"{self.model_dir} is being trained by {_describe(holder)} "
          f"({_shorten(' '.join(holder.get('command', [])))}): two trainers on one run folder would mix two runs. Wait for it "
          "to end or stop it (Ctrl-C or kill "
          f"{holder.get('pid', 'PID')}: it saves a checkpoint), then run the "
          "same command to resume; or give another --model_dir.") from None
    holder = dict(pid=os.getpid(), host=socket.gethostname(),
                  started=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                  command=sys.argv[:])
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(holder).encode("utf-8", "backslashreplace"), 0)
    self._fd = fd

  def release(self) -> None:
    """Lets the lock go (the file stays: removing it could let two processes
    hold locks on two inodes of one name)."""
    if self._fd is not None:
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None

  @property
  def held(self) -> bool:
    return self._fd is not None

  def __enter__(self) -> "RunLock":
    self.acquire()
    return self

  def __exit__(self, *unused) -> None:
    self.release()


def _shorten(command: str, limit: int = 200) -> str:
  """The holder's command for the message, cut at `limit` characters."""
  if not command:
    return "command unknown"
  return command if len(command) <= limit else command[:limit - 3] + "..."


def _read_holder(fd: int) -> dict:
  """What the holder wrote into the lock file; {} if unreadable."""
  try:
    data = os.pread(fd, 65536, 0)
    holder = json.loads(data.decode("utf-8", "replace"))
    return holder if isinstance(holder, dict) else {}
  except (OSError, ValueError):
    return {}
