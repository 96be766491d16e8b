"""Reads the public GAN checkpoints as named NumPy arrays, safely.

PyTorch checkpoints (`torch.save`: BigGAN-PyTorch's `G_ema.pth`, rosinality's
StyleGAN `.model` files) and NVlabs' StyleGAN pickles (`network-*.pkl`) are
Python pickles, and unpickling can call any function the file names: a
crafted checkpoint runs code on load. The readers here never let a pickle
name a callable outside a fixed list of what such checkpoints hold
(containers, NumPy arrays, PyTorch's tensor and storage rebuilders, NVlabs'
`Network` state); anything else raises `UnsafeCheckpointError` before it is
called. NVlabs pickles carry the Python source of their networks
(`build_module_src`), which dnnlib executes on load; here it stays a string
in the returned state and is never run. Neither PyTorch nor TensorFlow 1 nor
dnnlib is needed.

Formats:
  * PyTorch zip (torch >= 1.6): a zip archive `<name>/data.pkl`, with each
    tensor's storage in `<name>/data/<key>` (raw little-endian values).
  * PyTorch legacy (torch < 1.6, the 2019 checkpoints): a magic number,
    protocol version and system info pickled in turn, the object pickle,
    the list of storage keys, then each storage as an int64 element count
    and its raw values.
  * NVlabs pickle: a pickled tuple of `dnnlib.tflib.network.Network`
    objects (StyleGAN's `G, D, Gs`), each read as `NetworkState`: its name,
    static keyword arguments, components and variables {name: array}.

Tensors come back as NumPy arrays in PyTorch's layout (e.g. conv weights
[out, in, kh, kw]); `flatten` turns nested state dicts into
{"a.b.c": array}.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import os
import pickle
import struct
import zipfile
from typing import Any, Callable

import numpy as np

from tfgt.errors import UserInputError

try:  # NumPy 2 (NumPy 1.x pickles name numpy.core.multiarray, 2.x both).
  from numpy._core import multiarray as _multiarray  # pylint: disable=g-import-not-at-top
except ImportError:
  from numpy.core import multiarray as _multiarray  # pylint: disable=g-import-not-at-top


class UnsafeCheckpointError(UserInputError):
  """A checkpoint names a Python object that its format does not hold.

  Raised before the object is looked up or called: loading stops and nothing
  from the file runs.
  """


# PyTorch storage classes -> NumPy dtypes ("bfloat16" is widened below).
_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64,
    "HalfStorage": np.float16, "BFloat16Storage": "bfloat16",
    "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8,
    "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
_LEGACY_PROTOCOL = 1001


@dataclasses.dataclass(frozen=True)
class _StorageType:
  """Stands for a PyTorch storage class (e.g. torch.FloatStorage)."""
  name: str

  @property
  def dtype(self):
    return _STORAGE_DTYPES[self.name]


class _Namespace(dict):
  """argparse.Namespace (training arguments saved in checkpoints), read
  as a dict of its attributes."""

  def __setstate__(self, state):
    self.update(state)


class NetworkState:
  """The pickled state of an NVlabs `dnnlib.tflib.network.Network`.

  Attributes:
    name: the network's name ("G", "D", "Gs", "G_mapping", ...).
    static_kwargs: its constructor's keyword arguments (resolution,
      fmap_base, ...).
    components: sub-networks by name (NetworkState).
    variables: {variable name: np.ndarray}, in NVlabs' layout.
    build_func_name: the function that builds it.
    build_module_src: the Python source the pickle carries; kept as text,
      never executed.
    state: the whole state dict as pickled.
  """

  def __setstate__(self, state: dict) -> None:
    if not isinstance(state, dict):
      raise UnsafeCheckpointError(
          "An NVlabs Network in this pickle has a state that is not a dict; "
          "it is not a StyleGAN network pickle.")
    self.state = state
    self.name = state.get("name")
    self.static_kwargs = dict(state.get("static_kwargs") or {})
    self.components = dict(state.get("components") or {})
    self.variables = {name: np.asarray(value)
                      for name, value in state.get("variables") or []}
    self.build_func_name = state.get("build_func_name")
    self.build_module_src = state.get("build_module_src")


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
  """torch._utils._rebuild_tensor(_v2): a copy of a strided view of a
  storage (deferred while a legacy file's storages are still unread)."""
  if isinstance(storage, _Pending):
    return _DeferredTensor(storage, (storage_offset, size, stride))
  del unused  # requires_grad, backward hooks, metadata.
  size, stride = tuple(size), tuple(stride)
  if not size:
    return np.array(storage[storage_offset])
  extent = storage_offset + 1 + sum((n - 1) * s for n, s in zip(size, stride))
  if any(n == 0 for n in size):
    return np.zeros(size, storage.dtype)
  if extent > storage.size:
    raise UserInputError(
        f"A tensor of size {size} and stride {stride} at offset "
        f"{storage_offset} reaches past its storage of {storage.size} "
        "values: the checkpoint is truncated or corrupt.")
  view = np.lib.stride_tricks.as_strided(
      storage[storage_offset:], shape=size,
      strides=[s * storage.itemsize for s in stride], writeable=False)
  return np.array(view)


def _rebuild_parameter(data, *unused):
  """torch._utils._rebuild_parameter: the parameter's tensor."""
  del unused
  return data


def _common_allowed() -> dict[tuple[str, str], Any]:
  # Callables and classes that these checkpoints legitimately reference.
  allowed = {
      ("collections", "OrderedDict"): collections.OrderedDict,
      ("builtins", "set"): set, ("builtins", "frozenset"): frozenset,
      ("builtins", "slice"): slice, ("builtins", "complex"): complex,
      ("__builtin__", "set"): set,
      # Protocol 2 pickles of bytes made by Python 3.
      ("_codecs", "encode"): _codecs_encode,
      ("argparse", "Namespace"): _Namespace,
      ("numpy", "dtype"): np.dtype, ("numpy", "ndarray"): np.ndarray,
  }
  for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    allowed[(module, "_reconstruct")] = _multiarray._reconstruct  # pylint: disable=protected-access
    allowed[(module, "scalar")] = _numpy_scalar
  return allowed


def _codecs_encode(text: str, encoding: str = "utf-8") -> bytes:
  if encoding not in ("latin1", "latin-1"):
    raise UnsafeCheckpointError(
        f"The pickle encodes bytes as {encoding!r}; checkpoints use latin1.")
  return text.encode("latin1")


def _numpy_scalar(dtype, data=None):
  """numpy.core.multiarray.scalar: a NumPy scalar from its raw bytes."""
  if not isinstance(dtype, np.dtype) or dtype.hasobject:
    raise UnsafeCheckpointError(
        "The pickle asks for a NumPy scalar of an object dtype, which a "
        "checkpoint does not hold.")
  return np.frombuffer(data, dtype=dtype, count=1)[0]


def _torch_allowed() -> dict[tuple[str, str], Any]:
  allowed = _common_allowed()
  allowed.update({
      ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
      ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
      ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
      ("torch", "Size"): tuple,
  })
  for name in _STORAGE_DTYPES:
    allowed[("torch", name)] = _StorageType(name)
  return allowed


class _RestrictedUnpickler(pickle.Unpickler):
  """An Unpickler that resolves only the globals in `allowed`."""

  def __init__(self, file, allowed: dict, what: str, path: str,
               persistent_load: Callable[[Any], Any] | None = None):
    super().__init__(file, encoding="latin1")
    self._allowed = allowed
    self._what = what
    self._path = path
    self._persistent = persistent_load

  def find_class(self, module: str, name: str):
    try:
      return self._allowed[(module, name)]
    except KeyError:
      raise UnsafeCheckpointError(
          f"{self._path}: the file asks for the Python object "
          f"{module}.{name}, which a {self._what} does not hold. It was not "
          "loaded, since a pickle can run code through such a reference: "
          "use a checkpoint from the model's official release, or load it "
          "in its own framework and save its state dict again with "
          "torch.save (tensors only).") from None

  def persistent_load(self, pid):
    if self._persistent is None:
      raise UnsafeCheckpointError(
          f"{self._path}: the file has persistent references, which a "
          f"{self._what} does not hold.")
    return self._persistent(pid)


def _storage_from_bytes(data: bytes, storage_type: _StorageType,
                        numel: int, path: str) -> np.ndarray:
  dtype = storage_type.dtype
  if dtype == "bfloat16":
    raw = np.frombuffer(data, dtype="<u2", count=numel)
    return (raw.astype(np.uint32) << 16).view(np.float32)
  dtype = np.dtype(dtype).newbyteorder("<")
  if len(data) < numel * dtype.itemsize:
    raise UserInputError(
        f"{path}: a {storage_type.name} of {numel} values has only "
        f"{len(data)} bytes: the file is truncated.")
  return np.frombuffer(data, dtype=dtype, count=numel).astype(
      dtype.newbyteorder("="))


def _check_storage_pid(pid, path: str) -> tuple:
  if (not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage" or
      not isinstance(pid[1], _StorageType)):
    raise UnsafeCheckpointError(
        f"{path}: a persistent reference {pid!r:.80} is not a PyTorch "
        "storage.")
  return pid


def _load_torch_zip(path: str) -> Any:
  with zipfile.ZipFile(path) as archive:
    names = archive.namelist()
    pickles = [n for n in names if n == "data.pkl" or
               n.endswith("/data.pkl")]
    if len(pickles) != 1:
      raise UserInputError(
          f"{path}: a PyTorch zip checkpoint holds one <name>/data.pkl; "
          f"this archive has {len(pickles)}.")
    prefix = pickles[0][:-len("data.pkl")]
    byteorder = prefix + "byteorder"
    if byteorder in names and archive.read(byteorder).strip() != b"little":
      raise UserInputError(f"{path}: big-endian checkpoints are not "
                           "supported; save it on a little-endian machine.")
    storages: dict[str, np.ndarray] = {}

    def persistent_load(pid):
      _, storage_type, key, _, numel = _check_storage_pid(pid, path)[:5]
      if key not in storages:
        entry = f"{prefix}data/{key}"
        if entry not in names:
          raise UserInputError(f"{path}: storage {entry} is missing.")
        storages[key] = _storage_from_bytes(archive.read(entry),
                                            storage_type, int(numel), path)
      return storages[key]

    with archive.open(pickles[0]) as f:
      return _RestrictedUnpickler(io.BytesIO(f.read()), _torch_allowed(),
                                  "PyTorch checkpoint", path,
                                  persistent_load).load()


def _load_torch_legacy(path: str) -> Any:
  with open(path, "rb") as f:
    def header():
      return _RestrictedUnpickler(f, _common_allowed(), "PyTorch checkpoint",
                                  path).load()

    if header() != _LEGACY_MAGIC:
      raise UserInputError(f"{path}: not a PyTorch checkpoint (no magic "
                           f"number). {_CHECK_FORMAT}")
    protocol = header()
    if protocol != _LEGACY_PROTOCOL:
      raise UserInputError(f"{path}: PyTorch legacy protocol {protocol}; "
                           f"only {_LEGACY_PROTOCOL} is supported.")
    info = header()
    if isinstance(info, dict) and not info.get("little_endian", True):
      raise UserInputError(f"{path}: big-endian checkpoints are not "
                           "supported.")
    pending: dict[str, tuple[_StorageType, int]] = {}
    views: list[tuple[dict, str, str, int, int]] = []

    def persistent_load(pid):
      _, storage_type, key, _, numel = _check_storage_pid(pid, path)[:5]
      pending.setdefault(key, (storage_type, int(numel)))
      # Filled in once the storages that follow the object are read.
      cell = {}
      view = pid[5] if len(pid) > 5 else None
      if view is None:
        views.append((cell, key, key, 0, int(numel)))
      else:
        view_key, offset, view_size = view
        views.append((cell, key, view_key, int(offset), int(view_size)))
      return _Pending(cell)

    obj = _RestrictedUnpickler(f, _torch_allowed(), "PyTorch checkpoint",
                               path, persistent_load).load()
    keys = header()
    storages = {}
    for key in keys:
      storage_type, numel = pending[key]
      (count,) = struct.unpack("<q", f.read(8))
      dtype = storage_type.dtype
      itemsize = 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize
      storages[key] = _storage_from_bytes(f.read(count * itemsize),
                                          storage_type, count, path)
    for cell, key, _, offset, size in views:
      cell["array"] = storages[key][offset:offset + size]
  return _resolve(obj)


class _Pending:
  """A legacy storage whose bytes follow the object pickle."""

  def __init__(self, cell: dict):
    self.cell = cell


def _resolve(obj: Any) -> Any:
  """Replaces the legacy format's deferred tensors by arrays."""
  if isinstance(obj, _DeferredTensor):
    return _rebuild_tensor(obj.storage.cell["array"], *obj.args)
  if isinstance(obj, dict):
    out = type(obj)() if isinstance(obj, collections.OrderedDict) else {}
    for k, v in obj.items():
      out[k] = _resolve(v)
    return out
  if isinstance(obj, (list, tuple)):
    return type(obj)(_resolve(v) for v in obj)
  return obj


@dataclasses.dataclass
class _DeferredTensor:
  storage: _Pending
  args: tuple


_CHECK_FORMAT = ("Check that --from names its format and that the file is "
                 "complete (a download cut short reads like this); formats "
                 "and files: docs/IMPORT.md.")


def _missing(path: str, what: str) -> str:
  if os.path.isdir(path):
    return (f"{path} is a folder; give the {what} in it (docs/IMPORT.md "
            "names the files of each format).")
  return f"No {what} at {path!r}."


def load_torch(path: str) -> Any:
  """A `torch.save` file's object, tensors as NumPy arrays, without PyTorch.

  Args:
    path: a zip-format (torch >= 1.6) or legacy-format checkpoint.

  Returns:
    What was saved (usually a dict of state dicts), every tensor a NumPy
    array in PyTorch's layout and dtype (bfloat16 widened to float32).

  Raises:
    UnsafeCheckpointError: the file names an object outside the format.
    UserInputError: not a PyTorch checkpoint, truncated or big-endian.
  """
  if not os.path.isfile(path):
    raise UserInputError(_missing(path, "checkpoint file"))
  if zipfile.is_zipfile(path):
    return _load_torch_zip(path)
  try:
    return _load_torch_legacy(path)
  except (pickle.UnpicklingError, EOFError, struct.error) as e:
    raise UserInputError(f"{path}: not a PyTorch checkpoint ({e}). "
                         f"{_CHECK_FORMAT}") from e


def load_nvlabs_pickle(path: str) -> tuple[NetworkState, ...]:
  """The networks of an NVlabs StyleGAN pickle (G, D, Gs), without TF1 or
  dnnlib, and without running the source code they carry.

  Raises:
    UnsafeCheckpointError: the file names an object outside the format.
    UserInputError: no such file, or not a pickle of networks.
  """
  if not os.path.isfile(path):
    raise UserInputError(_missing(path, "pickle"))
  allowed = _common_allowed()
  allowed[("dnnlib.tflib.network", "Network")] = NetworkState
  allowed[("dnnlib.util", "EasyDict")] = dict
  with open(path, "rb") as f:
    try:
      obj = _RestrictedUnpickler(f, allowed, "StyleGAN network pickle",
                                 path).load()
    except (pickle.UnpicklingError, EOFError) as e:
      raise UserInputError(f"{path}: not a pickle ({e}). "
                           f"{_CHECK_FORMAT}") from e
  networks = obj if isinstance(obj, tuple) else (obj,)
  if not networks or not all(isinstance(n, NetworkState) for n in networks):
    raise UserInputError(
        f"{path}: expected NVlabs networks (G, D, Gs), found "
        f"{type(obj).__name__}.")
  return networks


def flatten(obj: Any, prefix: str = "") -> dict[str, np.ndarray]:
  """{"a.b.c": array} of the arrays in nested dicts (state dicts), in
  order; other values are left out."""
  out = {}
  if isinstance(obj, dict):
    for k, v in obj.items():
      out.update(flatten(v, f"{prefix}{k}."))
  elif isinstance(obj, np.ndarray):
    out[prefix[:-1]] = obj
  return out
