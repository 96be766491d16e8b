"""On-disk cache of real-image features.

Features of the real reference images cost one pass of the extractor over
every image (minutes with Inception on a CPU), and they are the same for
every evaluation of a run and for every run on the same data. They are
stored as `<cache_dir>/<hash>.npz`, where the hash is taken over a key that
names everything they depend on: dataset (source and a fingerprint of the
image bytes), split, classes, resolution and the extractor's identity
(including a fingerprint of its weights). Any change gives another key, so
stale features are never read; the key is also stored in the file and
compared on reading, which guards against hash collisions and hand-copied
files.

The directory is, in order: the `cache_dir` argument, $TFGT_CACHE_DIR,
~/.cache/tfgt/features.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from typing import Any, Callable

from absl import logging
import numpy as np

ENV_VAR = "TFGT_CACHE_DIR"


def default_directory() -> str:
  return os.environ.get(ENV_VAR) or os.path.join(
      os.path.expanduser("~"), ".cache", "tfgt", "features")


def array_fingerprint(*arrays: np.ndarray) -> str:
  """SHA-1 over the shapes, dtypes and bytes of arrays."""
  digest = hashlib.sha1()
  for a in arrays:
    a = np.ascontiguousarray(a)
    digest.update(f"{a.shape}{a.dtype}".encode())
    digest.update(memoryview(a).cast("B"))
  return digest.hexdigest()


def _canonical(key: dict[str, Any]) -> str:
  return json.dumps(key, sort_keys=True, default=str)


class FeatureCache:
  """Arrays stored under a JSON-able key.

  Attributes:
    directory: where the .npz files live.
  """

  def __init__(self, directory: str | None = None):
    self.directory = os.path.expanduser(directory or default_directory())

  def path(self, key: dict[str, Any]) -> str:
    name = hashlib.sha256(_canonical(key).encode()).hexdigest()[:24]
    return os.path.join(self.directory, name + ".npz")

  def load(self, key: dict[str, Any]) -> dict[str, np.ndarray] | None:
    """The arrays stored under `key`, or None if absent or unreadable."""
    path = self.path(key)
    if not os.path.exists(path):
      return None
    try:
      with np.load(path, allow_pickle=False) as data:
        if str(data["__key__"]) != _canonical(key):
          logging.warning("Cache file %s holds another key; ignoring it.",
                          path)
          return None
        return {k: data[k] for k in data.files if k != "__key__"}
    except (OSError, ValueError, KeyError) as e:
      logging.warning("Cannot read cache file %s (%s); rebuilding it.", path,
                      e)
      return None

  def save(self, key: dict[str, Any], arrays: dict[str, np.ndarray]) -> str:
    """Stores arrays under `key` (atomically: readers never see half a file)."""
    os.makedirs(self.directory, exist_ok=True)
    path = self.path(key)
    fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp.npz")
    try:
      with os.fdopen(fd, "wb") as f:
        np.savez(f, __key__=np.array(_canonical(key)), **arrays)
      os.replace(tmp, path)
    except BaseException:
      if os.path.exists(tmp):
        os.remove(tmp)
      raise
    return path

  def get_or_compute(self, key: dict[str, Any],
                     compute: Callable[[], dict[str, np.ndarray]]
                     ) -> dict[str, np.ndarray]:
    """Loads the arrays of `key`, or computes, stores and returns them."""
    arrays = self.load(key)
    if arrays is not None:
      logging.info("Real features from the cache: %s.", self.path(key))
      return arrays
    arrays = compute()
    try:
      path = self.save(key, arrays)
      logging.info("Real features cached in %s.", path)
    except OSError as e:
      logging.warning("Cannot write the feature cache in %s (%s); continuing "
                      "without it.", self.directory, e)
    return arrays
