"""Reads the public GAN checkpoints as named NumPy arrays, safely.

PyTorch checkpoints (`torch.save`: BigGAN-PyTorch's `G_ema.pth`, rosinality's
StyleGAN `.model` files) and NVlabs' StyleGAN pickles (`network-*.pkl`) are
Python pickles. Unpickling can call any function the file names, so a crafted
checkpoint runs code on load; and a file that names only harmless functions
can still hand them arguments that make NumPy read memory it does not own (an
array of Python objects built from the file's bytes, a tensor view that
reaches outside its storage). These files are therefore not given to Python's
`pickle`: a small pickle reader here interprets them, and it

  * knows only the opcodes that these files use (protocols 2 to 5, without
    copyreg's extension codes, INST/OBJ, the text opcodes of protocol 0 or
    out-of-band buffers);
  * resolves only the names in a fixed list of what such checkpoints hold
    (containers, NumPy arrays, dtypes and scalars, PyTorch's tensor and
    storage rebuilders, NVlabs' `Network` state and `torch_utils.persistence`
    objects, `argparse.Namespace`), each to a function of this module that
    checks its arguments: any other name raises `UnsafeCheckpointError`
    before it is looked up, and nothing the file names is ever called;
  * makes NumPy arrays only of plain numeric dtypes (bool, integers, floats)
    from bytes whose length it has checked: no object, structured, void or
    string dtype comes out of a file, however the pickle spells it;
  * checks every length against the bytes left in the file before it reads
    or allocates, and bounds the number of opcodes (MAX_PICKLE_OPS), the
    nesting of containers (MAX_NESTING) and the size of one array or storage
    (MAX_STORAGE_BYTES).

PyTorch tensors are views (offset, sizes, strides) of storages. Each view is
checked in Python integers before any array is made: sizes, strides and the
offset are >= 0, the last value it reaches lies inside its storage, and the
tensors of one storage together hold no more values than it (so no file
makes the reader allocate more than its storages). A stride of 0 is read
exactly within that bound. Every storage's declared size is compared, before
anything is read, with its zip entry (or, in the legacy format, with the
count before its bytes and the bytes left in the file), and a zip archive
whose entries would inflate beyond the file's own size is refused:
`torch.save` stores them uncompressed.

NVlabs pickles carry the Python source of their networks
(`build_module_src`, or `module_src` in stylegan2-ada-pytorch's
`torch_utils.persistence`), which dnnlib or torch_utils executes on load;
here it stays a string in the returned state and is never run. Neither
PyTorch nor TensorFlow 1 nor dnnlib is needed.

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
  * stylegan2-ada-pytorch pickle: a pickled dict (`G`, `D`, `G_ema`, ...)
    whose networks are `torch_utils.persistence` objects, each read as
    `PersistentObject`: class name, constructor arguments, source text and
    tensors {dotted name: array}. Each tensor's storage is pickled as the
    bytes of a legacy-format torch.save of that storage alone
    (`torch.storage._load_from_bytes`), read with the legacy format's
    checks.

Tensors come back as NumPy arrays in PyTorch's layout (e.g. conv weights
[out, in, kh, kw]); `flatten` turns nested state dicts into
{"a.b.c": array}. Every file that cannot be read this way raises
`UserInputError` with a one-line message that names the file and the fault.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import math
import os
import pickletools
import re
import struct
import zipfile
import zlib
from typing import Any, BinaryIO, Callable

import numpy as np

from tfgt.errors import UserInputError

# The largest array or storage read (bytes). The largest tensors of the
# supported models are tens of MiB (BigGAN's 128 px 3x3 convolutions of
# 1536 channels: 81 MiB); a file that declares more is refused before
# anything is allocated.
MAX_STORAGE_BYTES = 2 * 2**30
# The most opcodes one pickle may hold. A state dict of a few thousand
# tensors takes some 10^5; the bound keeps what a file of one-byte opcodes
# can make Python build (lists, dicts) to a few hundred MiB.
MAX_PICKLE_OPS = 1_000_000
# The deepest nesting of containers (state dicts nest a few levels, NVlabs'
# networks about ten); deeper or self-containing structures are refused.
MAX_NESTING = 64
# The most dimensions of an array (NumPy 1's limit).
MAX_DIMS = 32
# The largest object pickle of a zip checkpoint (`data.pkl` holds names and
# sizes, not values: kilobytes for the supported models).
MAX_ZIP_PICKLE_BYTES = 256 * 2**20


class UnsafeCheckpointError(UserInputError):
  """A checkpoint asks for something its format does not hold, and that
  could run code or read memory: a Python object outside the allowed names,
  or a NumPy array of Python objects.

  Raised before the object is looked up or built: loading stops and nothing
  from the file runs.
  """


class _Malformed(Exception):
  """A file the readers cannot read (turned into a UserInputError that
  names the file by `_read`)."""


class _Unsafe(Exception):
  """A file that asks for something that could run code or read memory
  (turned into an UnsafeCheckpointError by `_read`)."""

  def __init__(self, thing: str, why: str):
    super().__init__(thing)
    self.thing = thing
    self.why = why


_NAMES_CAN_RUN_CODE = "a pickle can run code through such a reference"
_OBJECTS_ARE_POINTERS = ("NumPy would take the file's bytes for the "
                         "addresses of Python objects")
_USE_RELEASED = ("use a checkpoint from the model's official release, or "
                 "load it in its own framework and save its state dict again "
                 "with torch.save (tensors only).")
_CHECK_FORMAT = ("Check that --from names its format and that the file is "
                 "complete (a download cut short reads like this); formats "
                 "and files: docs/IMPORT.md.")


def _text(value: Any, limit: int = 200) -> str:
  """`value` as one short line of printable text, for messages."""
  text = " ".join(str(value).split())
  text = "".join(c if c.isprintable() else "?" for c in text)
  return text if len(text) <= limit else text[:limit - 3] + "..."


def _is_int(value: Any) -> bool:
  """A Python int and not a bool (which isinstance counts as one)."""
  return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
  """A value the file chose, for a message: numbers and short text as they
  are, anything else by its type (printing a file's nested containers
  could recurse without end)."""
  if _is_int(value):
    return _num(value)
  if isinstance(value, (str, float)):
    return repr(_text(value, 60)) if isinstance(value, str) else str(value)
  return f"a {type(value).__name__}"


def _num(value: int) -> str:
  """An integer for a message; huge ones as powers of two (Python refuses
  to print integers of more than 4300 digits)."""
  if abs(value) < 2**53:
    return str(value)
  return f"{'-' if value < 0 else ''}2^{abs(value).bit_length() - 1}+"


# --- The names a file may use. ------------------------------------------


@dataclasses.dataclass(eq=False)
class _Global:
  """A name (module.name) that a pickle may refer to.

  `call` is what REDUCE calls with the pickle's arguments and `new` what
  NEWOBJ calls; both are checking functions of this module. A name with
  neither (numpy.ndarray) is only passed as an argument.
  """
  name: str
  call: Callable[..., Any] | None = None
  new: Callable[..., Any] | None = None


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

  @property
  def itemsize(self) -> int:
    return 2 if self.dtype == "bfloat16" else np.dtype(self.dtype).itemsize


class _Namespace(dict):
  """argparse.Namespace (training arguments saved in checkpoints), read
  as a dict of its attributes."""


class _EasyDict(dict):
  """dnnlib.util.EasyDict, read as a dict."""


# NumPy dtypes the files may declare: bool, integers and floats, in either
# byte order. Anything else (objects "O", structured or void "V", strings
# "S"/"U", datetimes) is refused.
_NUMERIC_DTYPE = re.compile(r"[<>|=]?(b1|[iu][1248]|f[248])")


class _DtypeProxy:
  """numpy.dtype(code) while a pickle builds it: a plain numeric dtype, its
  byte order set by BUILD."""

  def __init__(self, dtype: np.dtype):
    self.dtype = dtype


class _ArrayProxy:
  """numpy.core.multiarray._reconstruct(ndarray, ...): an array whose
  shape, dtype and bytes come with BUILD."""

  def __init__(self):
    self.array: np.ndarray | None = None


class _NetworkProxy:
  """An NVlabs Network while a pickle builds it: its state comes with
  BUILD and becomes a NetworkState once every array in it is read."""

  def __init__(self):
    self.state: Any = None


class _PersistentProxy:
  """An object of NVlabs' `torch_utils.persistence` (the networks of
  stylegan2-ada-pytorch) while a pickle builds it: what the pickle passes
  to `_reconstruct_persistent_obj`, kept as data. The class source in it is
  never run; it becomes a PersistentObject once its tensors are read."""

  def __init__(self, meta: dict):
    self.meta = meta


def _reconstruct_persistent(meta: Any) -> _PersistentProxy:
  """torch_utils.persistence._reconstruct_persistent_obj(meta), as data.

  Raises:
    _Malformed: `meta` is not a dict (the rest is checked when the object
      is read, by PersistentObject).
  """
  if not isinstance(meta, dict):
    raise _Malformed(f"a torch_utils.persistence object described by a "
                     f"{type(meta).__name__}, not by a dict")
  return _PersistentProxy(meta)


def _new_dtype(code: Any, align: Any = False, copy: Any = True) -> _DtypeProxy:
  """numpy.dtype(code, align, copy) for a plain numeric `code` only."""
  del align, copy  # Only structured dtypes use them.
  if not isinstance(code, str):
    raise _Malformed(f"a NumPy dtype given as a {type(code).__name__}")
  if not _NUMERIC_DTYPE.fullmatch(code):
    if code.lstrip("<>|=")[:1] in ("O", "V"):
      raise _Unsafe(f"a NumPy dtype {_text(code)!r} (Python objects, or "
                    "fields that may hold them)", _OBJECTS_ARE_POINTERS)
    raise _Malformed(f"a NumPy dtype {_text(code)!r}; checkpoints hold bool, "
                     "integer and float arrays")
  return _DtypeProxy(np.dtype(code))


def _build_dtype(proxy: _DtypeProxy, state: Any) -> None:
  """dtype.__setstate__ for plain numeric dtypes: the byte order only.

  Raises:
    _Unsafe: the state declares fields or a sub-array (a structured dtype,
      whose fields may be Python objects).
    _Malformed: any other state NumPy does not write.
  """
  if not isinstance(state, tuple) or len(state) not in (8, 9):
    raise _Malformed("a NumPy dtype with a state NumPy does not write")
  version, order, subarray, names, fields = state[:5]
  if subarray is not None or names is not None or fields is not None:
    raise _Unsafe("a structured NumPy dtype (fields or a sub-array, which "
                  "may declare Python objects)", _OBJECTS_ARE_POINTERS)
  if version not in (3, 4) or order not in ("<", ">", "|", "="):
    raise _Malformed("a NumPy dtype with a state NumPy does not write")
  if order in ("<", ">"):
    proxy.dtype = proxy.dtype.newbyteorder(order)


def _check_sizes(size: tuple[int, ...], what: str) -> None:
  """Sizes >= 0 whose product, zeros counted as ones, is at most
  MAX_STORAGE_BYTES (NumPy cannot make even an empty array of sizes whose
  product overflows)."""
  for n in size:
    if n < 0 or n > MAX_STORAGE_BYTES:
      raise _Malformed(f"{what} has a size of {_num(n)}")
  if math.prod(max(n, 1) for n in size) > MAX_STORAGE_BYTES:
    raise _Malformed(f"{what} has sizes {_text(list(size))}, more values "
                     f"than MAX_STORAGE_BYTES ({MAX_STORAGE_BYTES})")


def _shape(value: Any, what: str) -> tuple[int, ...]:
  """A shape of up to MAX_DIMS int sizes, checked by _check_sizes."""
  if not isinstance(value, (tuple, list)) or len(value) > MAX_DIMS or not all(
      _is_int(n) for n in value):
    raise _Malformed(f"{what} has a shape that is not up to {MAX_DIMS} "
                     "integers")
  _check_sizes(tuple(value), what)
  return tuple(value)


def _native(flat: np.ndarray) -> np.ndarray:
  """A writable copy of `flat` in native byte order (bools as 0/1)."""
  if flat.dtype == np.bool_:
    return flat.view(np.uint8) != 0
  return flat.astype(flat.dtype.newbyteorder("="))


def _array_from_bytes(data: Any, dtype: Any, shape: Any,
                      fortran: bool) -> np.ndarray:
  """A numeric array of `shape` from exactly its bytes."""
  if isinstance(data, list):  # How NumPy pickles arrays of objects.
    raise _Unsafe("a NumPy array of Python objects", _OBJECTS_ARE_POINTERS)
  if not isinstance(dtype, _DtypeProxy):
    raise _Malformed(f"a NumPy array whose dtype is a {type(dtype).__name__}")
  shape = _shape(shape, "a NumPy array")
  if isinstance(data, str):  # Python 2 pickles, read as latin1 text.
    data = data.encode("latin1")
  if not isinstance(data, (bytes, bytearray)):
    raise _Malformed(f"a NumPy array whose data is a {type(data).__name__}")
  count = math.prod(shape)
  nbytes = count * dtype.dtype.itemsize
  if nbytes > MAX_STORAGE_BYTES:
    raise _Malformed(f"a NumPy array of {_num(nbytes)} bytes, more than the "
                     f"{MAX_STORAGE_BYTES} tfgt reads as one array "
                     "(MAX_STORAGE_BYTES)")
  if len(data) != nbytes:
    raise _Malformed(f"a NumPy array of shape {list(shape)} and dtype "
                     f"{dtype.dtype} needs {_num(nbytes)} bytes; the file "
                     f"gives {len(data)}")
  flat = np.frombuffer(data, dtype=dtype.dtype, count=count)
  if flat.dtype.isnative and flat.dtype != np.bool_:
    values = flat  # A read-only view of the pickle's bytes: no copy.
  else:
    values = _native(flat)
  return values.reshape(shape, order="F" if fortran else "C")


def _reconstruct(subtype: Any, shape: Any = None, typecode: Any = None
                 ) -> _ArrayProxy:
  """numpy.core.multiarray._reconstruct(ndarray, (0,), b"b")."""
  del shape, typecode  # BUILD gives the real ones.
  if subtype is not _NDARRAY:
    name = subtype.name if isinstance(subtype, _Global) else type(
        subtype).__name__
    raise _Malformed(f"NumPy's _reconstruct asked to make a {_text(name)}, "
                     "not an array")
  return _ArrayProxy()


def _build_array(proxy: _ArrayProxy, state: Any) -> None:
  """ndarray.__setstate__((version, shape, dtype, is_fortran, data))."""
  if proxy.array is not None:
    raise _Malformed("a NumPy array whose state is given twice")
  if isinstance(state, tuple) and len(state) == 5 and _is_int(
      state[0]) and state[0] == 1:
    state = state[1:]
  if not isinstance(state, tuple) or len(state) != 4:
    raise _Malformed("a NumPy array with a state NumPy does not write")
  shape, dtype, fortran, data = state
  if not isinstance(fortran, (bool, int)):
    raise _Malformed("a NumPy array with a state NumPy does not write")
  proxy.array = _array_from_bytes(data, dtype, shape, bool(fortran))


def _frombuffer(data: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
  """numpy.core.numeric._frombuffer (NumPy's arrays in pickle protocol 5)."""
  if order not in ("C", "F"):
    raise _Malformed(f"a NumPy array of order {_kind(order)}")
  return _array_from_bytes(data, dtype, shape, order == "F")


def _numpy_scalar(dtype: Any, data: Any = None) -> np.generic:
  """numpy.core.multiarray.scalar: a NumPy scalar from exactly its bytes."""
  if data is None or isinstance(data, list):  # Object scalars.
    raise _Unsafe("a NumPy scalar of a Python object", _OBJECTS_ARE_POINTERS)
  if not isinstance(dtype, _DtypeProxy):
    raise _Malformed(f"a NumPy scalar whose dtype is a {type(dtype).__name__}")
  if isinstance(data, str):
    data = data.encode("latin1")
  if not isinstance(data, (bytes, bytearray)) or (
      len(data) != dtype.dtype.itemsize):
    size = len(data) if isinstance(data, (bytes, bytearray)) else type(
        data).__name__
    raise _Malformed(f"a NumPy {dtype.dtype} scalar of {size} bytes (it has "
                     f"{dtype.dtype.itemsize})")
  return _native(np.frombuffer(data, dtype=dtype.dtype, count=1))[0]


def _codecs_encode(text: Any, encoding: Any = "utf-8") -> bytes:
  """_codecs.encode(text, "latin1"): how protocol 2 pickles spell bytes."""
  if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
    raise _Malformed("the pickle encodes bytes otherwise than as latin1 text")
  return text.encode("latin1")


def _items(value: Any, what: str) -> list:
  if not isinstance(value, (list, tuple, set, frozenset)):
    raise _Malformed(f"{what} of a {type(value).__name__}")
  return list(value)


def _ordered_dict(items: Any = ()) -> collections.OrderedDict:
  """collections.OrderedDict() or OrderedDict([(key, value), ...])."""
  out = collections.OrderedDict()
  for pair in _items(items, "an OrderedDict"):
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
      raise _Malformed("an OrderedDict whose items are not pairs")
    out[pair[0]] = pair[1]
  return out


def _set(items: Any = ()) -> set:
  return set(_items(items, "a set"))


def _frozenset(items: Any = ()) -> frozenset:
  return frozenset(_items(items, "a frozenset"))


def _slice(*args: Any) -> slice:
  if not 1 <= len(args) <= 3 or not all(a is None or _is_int(a)
                                        for a in args):
    raise _Malformed("a slice of other than integers")
  return slice(*args)


def _complex(real: Any = 0.0, imag: Any = 0.0) -> complex:
  if not all(_is_int(x) or isinstance(x, float) for x in (real, imag)):
    raise _Malformed("a complex number of other than numbers")
  return complex(real, imag)


def _attributes(obj: Any, state: Any) -> None:
  """BUILD of containers that carry attributes (torch's state dicts, their
  `_metadata`): not needed, checked for shape and dropped."""
  del obj
  if isinstance(state, tuple) and len(state) == 2:
    if all(s is None or isinstance(s, dict) for s in state):
      return
  elif state is None or isinstance(state, dict):
    return
  raise _Malformed("a container with attributes that are not a dict")


def _namespace(obj: _Namespace, state: Any) -> None:
  if isinstance(state, tuple) and len(state) == 2:
    state = state[0]
  if not isinstance(state, dict):
    raise _Malformed("an argparse.Namespace whose state is not a dict")
  obj.update(state)


def _network(obj: _NetworkProxy, state: Any) -> None:
  if obj.state is not None or not isinstance(state, dict):
    raise _Malformed("an NVlabs Network whose state is not a dict; it is not "
                     "a StyleGAN network pickle")
  obj.state = state


# BUILD (obj.__setstate__) for the only types that a file may set the state
# of; each checks the state it is given.
_BUILDERS: dict[type, Callable[[Any, Any], None]] = {
    collections.OrderedDict: _attributes, _EasyDict: _attributes,
    _Namespace: _namespace, _DtypeProxy: _build_dtype,
    _ArrayProxy: _build_array, _NetworkProxy: _network,
}

_NDARRAY = _Global("numpy.ndarray")


def _common_allowed() -> dict[tuple[str, str], Any]:
  """The names that all these checkpoints may use."""
  ordered = _Global("collections.OrderedDict", _ordered_dict, _ordered_dict)
  allowed = {
      ("collections", "OrderedDict"): ordered,
      ("builtins", "set"): _Global("set", _set),
      ("__builtin__", "set"): _Global("set", _set),
      ("builtins", "frozenset"): _Global("frozenset", _frozenset),
      ("builtins", "slice"): _Global("slice", _slice),
      ("builtins", "complex"): _Global("complex", _complex),
      # Protocol 2 pickles of bytes made by Python 3.
      ("_codecs", "encode"): _Global("_codecs.encode", _codecs_encode),
      ("argparse", "Namespace"): _Global("argparse.Namespace", _Namespace,
                                         _Namespace),
      ("numpy", "dtype"): _Global("numpy.dtype", _new_dtype),
      ("numpy", "ndarray"): _NDARRAY,
  }
  # NumPy 1.x pickles name numpy.core, NumPy 2.x numpy._core.
  for core in ("numpy.core", "numpy._core"):
    allowed[(f"{core}.multiarray", "_reconstruct")] = _Global(
        "numpy _reconstruct", _reconstruct)
    allowed[(f"{core}.multiarray", "scalar")] = _Global(
        "numpy scalar", _numpy_scalar)
    allowed[(f"{core}.numeric", "_frombuffer")] = _Global(
        "numpy _frombuffer", _frombuffer)
  return allowed


# --- PyTorch's tensors and storages. ------------------------------------


@dataclasses.dataclass(eq=False)
class _Root:
  """A storage of the file: its declared type and size, its values once
  read, and the values of the tensors that view it so far."""
  key: str
  storage_type: _StorageType
  numel: int
  array: np.ndarray | None = None
  viewed: int = 0

  @property
  def nbytes(self) -> int:
    return self.numel * self.storage_type.itemsize


@dataclasses.dataclass(eq=False)
class _StorageRef:
  """A storage as a tensor refers to it: values [start, start + numel) of a
  root storage (the legacy format's storage views; else all of it)."""
  root: _Root
  start: int
  numel: int


@dataclasses.dataclass(eq=False)
class _TensorRef:
  """torch._utils._rebuild_tensor_v2's view of a storage, checked against
  the storage once the file's names are known (_TensorViews)."""
  storage: _StorageRef
  offset: int
  size: tuple[int, ...]
  stride: tuple[int, ...]


def _ints(value: Any, what: str) -> tuple[int, ...]:
  if not isinstance(value, (tuple, list)) or len(value) > MAX_DIMS or not all(
      _is_int(n) for n in value):
    raise _Malformed(f"a tensor whose {what} are not up to {MAX_DIMS} "
                     "integers")
  return tuple(value)


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any,
                    stride: Any, *unused: Any) -> _TensorRef:
  """torch._utils._rebuild_tensor(_v2): a view of a storage."""
  del unused  # requires_grad, backward hooks, metadata.
  if not isinstance(storage, _StorageRef):
    raise _Malformed(f"a tensor of a {type(storage).__name__}, not of a "
                     "storage")
  if not _is_int(storage_offset):
    raise _Malformed("a tensor whose storage offset is not an integer")
  return _TensorRef(storage, storage_offset, _ints(size, "sizes"),
                    _ints(stride, "strides"))


def _rebuild_parameter(data: Any, *unused: Any) -> _TensorRef:
  """torch._utils._rebuild_parameter: the parameter's tensor."""
  del unused
  if not isinstance(data, _TensorRef):
    raise _Malformed(f"a parameter of a {type(data).__name__}, not of a "
                     "tensor")
  return data


def _torch_size(sizes: Any = ()) -> tuple[int, ...]:
  """torch.Size([...])."""
  return _ints(sizes, "sizes")


def _torch_allowed() -> dict[tuple[str, str], Any]:
  allowed = _common_allowed()
  rebuild = _Global("torch._utils._rebuild_tensor_v2", _rebuild_tensor)
  allowed.update({
      ("torch._utils", "_rebuild_tensor_v2"): rebuild,
      ("torch._utils", "_rebuild_tensor"): rebuild,
      ("torch._utils", "_rebuild_parameter"): _Global(
          "torch._utils._rebuild_parameter", _rebuild_parameter),
      ("torch", "Size"): _Global("torch.Size", _torch_size),
  })
  for name in _STORAGE_DTYPES:
    allowed[("torch", name)] = _StorageType(name)
  return allowed


_STORAGE_KEY = re.compile(r"[\w.-]{1,64}")


def _storage_ref(pid: Any, roots: dict[str, _Root], legacy: bool
                 ) -> _StorageRef:
  """The storage of a persistent id: ("storage", type, key, location,
  numel), and in the legacy format a sixth item, None or the view
  (view key, offset, numel).

  Raises:
    _Malformed: not such an id, a size above MAX_STORAGE_BYTES, a key
      declared twice with other sizes, or a view outside its storage.
  """
  if not (isinstance(pid, tuple) and len(pid) == (6 if legacy else 5) and
          pid[0] == "storage" and isinstance(pid[1], _StorageType)):
    raise _Malformed("a persistent reference that is not a PyTorch storage")
  _, storage_type, key, location, numel = pid[:5]
  if not isinstance(key, str) or not _STORAGE_KEY.fullmatch(key) or (
      not isinstance(location, str)):
    raise _Malformed("a storage whose key or device is not a short name")
  if not _is_int(numel) or numel < 0:
    raise _Malformed(f"storage {key!r} declares {_kind(numel)} values")
  root = roots.get(key)
  if root is None:
    root = roots[key] = _Root(key, storage_type, numel)
    if root.nbytes > MAX_STORAGE_BYTES:
      raise _Malformed(
          f"storage {key!r} declares {_num(root.nbytes)} bytes ({_num(numel)} "
          f"{storage_type.name} values), more than the {MAX_STORAGE_BYTES} "
          "tfgt reads as one storage (MAX_STORAGE_BYTES; the largest tensor "
          "of the supported models is under 100 MiB)")
  elif root.storage_type != storage_type or root.numel != numel:
    raise _Malformed(f"storage {key!r} is declared twice, with other types "
                     "or sizes")
  view = pid[5] if legacy else None
  if view is None:
    return _StorageRef(root, 0, numel)
  if not (isinstance(view, tuple) and len(view) == 3 and
          all(_is_int(v) for v in view[1:])):
    raise _Malformed(f"a view of storage {key!r} that is not (key, offset, "
                     "size)")
  _, start, size = view
  if start < 0 or size < 0 or start + size > numel:
    raise _Malformed(f"a view of {_num(size)} values at {_num(start)} of "
                     f"storage {key!r}, which holds {_num(numel)}")
  return _StorageRef(root, start, size)


def _contiguous(size: tuple[int, ...], stride: tuple[int, ...]) -> bool:
  step = 1
  for n, s in zip(reversed(size), reversed(stride)):
    if n != 1 and s != step:
      return False
    step *= n
  return True


class _TensorViews:
  """Checks every tensor against its storage (`check`, before any storage
  is read) and makes the arrays (`array`, after)."""

  def __init__(self):
    self._arrays: dict[tuple, np.ndarray | None] = {}

  @staticmethod
  def _key(ref: _TensorRef) -> tuple:
    # Strides of sizes 1 and 0 do not move; the same view is made once.
    stride = tuple(s if n > 1 else 0 for n, s in zip(ref.size, ref.stride))
    return (id(ref.storage.root), ref.storage.start + ref.offset, ref.size,
            stride)

  def check(self, name: str, obj: Any) -> Any:
    """Checks a tensor's view in Python integers.

    Raises:
      _Malformed: sizes and strides of different lengths, a negative size,
        stride or offset, a view whose last value lies outside its storage,
        or tensors of a storage that hold more values than it.
    """
    if not isinstance(obj, _TensorRef):
      return obj
    size, stride, offset = obj.size, obj.stride, obj.offset
    where = f"tensor {_text(name)!r}"
    if len(size) != len(stride):
      raise _Malformed(f"{where} has {len(size)} sizes and {len(stride)} "
                       "strides")
    _check_sizes(size, where)
    for s in stride:
      if s < 0:
        raise _Malformed(f"{where} has a negative stride ({_num(s)})")
    if offset < 0:
      raise _Malformed(f"{where} has a negative storage offset "
                       f"({_num(offset)})")
    available = obj.storage.numel
    numel = math.prod(size)
    if numel == 0:
      if offset > available:
        raise _Malformed(f"{where} starts at value {_num(offset)} of a "
                         f"storage of {_num(available)}")
      return obj
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= available:
      raise _Malformed(
          f"{where} of size {list(size)} and stride {list(stride)} at offset "
          f"{_num(offset)} reaches value {_num(last)} of a storage of "
          f"{_num(available)}: the file is corrupt or truncated")
    key = self._key(obj)
    if key not in self._arrays:
      root = obj.storage.root
      root.viewed += numel
      if root.viewed > root.numel:
        raise _Malformed(
            f"the tensors of storage {root.key!r} (the last {where}) hold "
            f"{_num(root.viewed)} values, more than its {_num(root.numel)}: "
            "tensors of a checkpoint do not overlap (a stride of 0 repeats "
            "values only within that bound)")
      self._arrays[key] = None
    return obj

  def array(self, name: str, obj: Any) -> Any:
    """The array of a checked tensor (views of one storage made once), or
    a whole storage."""
    del name
    if isinstance(obj, _StorageRef):
      return obj.root.array[obj.start:obj.start + obj.numel]
    if not isinstance(obj, _TensorRef):
      return obj
    storage = obj.storage.root.array
    start = obj.storage.start + obj.offset
    size, stride = obj.size, obj.stride
    numel = math.prod(size)
    if numel == 0:
      return np.zeros(size, storage.dtype)
    key = self._key(obj)
    array = self._arrays.get(key)
    if array is None:
      if start == 0 and numel == storage.size and _contiguous(size, stride):
        array = storage.reshape(size)
      else:
        # Checked in check(); NumPy checks the bounds again.
        array = np.ndarray(
            size, storage.dtype, buffer=storage,
            offset=start * storage.itemsize,
            strides=[s * storage.itemsize if n > 1 else 0
                     for n, s in zip(size, stride)]).copy()
      self._arrays[key] = array
    return array


def _storage_array(raw: np.ndarray, storage_type: _StorageType
                   ) -> np.ndarray:
  """A storage's values from its little-endian bytes (uint8)."""
  if storage_type.dtype == "bfloat16":
    return (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
  if storage_type.dtype == np.bool_:
    return raw != 0
  values = raw.view(np.dtype(storage_type.dtype).newbyteorder("<"))
  return values if values.dtype.isnative else values.astype(
      values.dtype.newbyteorder("="))


def _storage_types() -> dict[tuple[str, str], Any]:
  """The names of PyTorch's storage classes (torch.FloatStorage, ...)."""
  return {("torch", name): _StorageType(name) for name in _STORAGE_DTYPES}


def _storage_from_bytes(data: Any) -> _StorageRef:
  """torch.storage._load_from_bytes(data): one storage that a plain pickle
  (not torch.save) holds as the bytes of a legacy-format torch.save of it
  alone (magic number, protocol, system info, a pickle of one persistent
  reference, the list of its key, the int64 count and the values).

  The values stay in `data` (a read-only view, no copy); the storage's
  declared size is checked against the bytes that follow before the view
  is made.

  Raises:
    _Malformed: anything else than such bytes (another protocol, big-endian,
      more or fewer than one storage, a count or size that does not fit,
      bytes after the values).
  """
  if not isinstance(data, (bytes, bytearray)):
    raise _Malformed(f"a storage given as a {type(data).__name__}, not as "
                     "the bytes of torch.save")
  source = _Source(io.BytesIO(data), len(data))

  def header() -> Any:
    return _Unpickler(source, {}).load()

  magic = header()
  if not _is_int(magic) or magic != _LEGACY_MAGIC:
    raise _Malformed("a storage whose bytes have no torch.save magic number")
  protocol = header()
  if protocol != _LEGACY_PROTOCOL:
    raise _Malformed(f"a storage saved with PyTorch legacy protocol "
                     f"{_kind(protocol)}; only {_LEGACY_PROTOCOL} is read")
  info = header()
  if not isinstance(info, dict) or info.get("little_endian") is not True:
    raise _Malformed("a storage saved big-endian (or without system "
                     "information); only little-endian storages are read")
  roots: dict[str, _Root] = {}
  obj = _Unpickler(source, _storage_types(),
                   lambda pid: _storage_ref(pid, roots, True)).load()
  if not isinstance(obj, _StorageRef) or len(roots) != 1:
    raise _Malformed("the bytes of a storage hold something else than one "
                     "storage")
  (root,) = roots.values()
  keys = header()
  if keys != [root.key]:
    raise _Malformed(f"the bytes of storage {root.key!r} list the storages "
                     f"{_text(keys)}")
  (count,) = struct.unpack("<q", source.read(8))
  if count != root.numel:
    raise _Malformed(f"storage {root.key!r} is stored with {_num(count)} "
                     f"values; its reference declares {root.numel}")
  if root.nbytes != source.end - source.pos:
    raise _Malformed(
        f"storage {root.key!r} declares {_num(root.nbytes)} bytes "
        f"({root.numel} {root.storage_type.name} values); "
        f"{source.end - source.pos} follow")
  raw = np.frombuffer(data, np.uint8, count=root.nbytes, offset=source.pos)
  root.array = _storage_array(raw, root.storage_type)
  return obj


# --- The pickle reader. -------------------------------------------------


class _Source:
  """Reads a pickle, never past `end`: no length a file declares makes the
  reader allocate more than the file holds."""

  def __init__(self, file: BinaryIO, end: int, start: int = 0):
    self._file = file
    self.end = end
    self.pos = start

  def read(self, n: int) -> bytes:
    if n > self.end - self.pos:
      raise _Malformed(f"an item of {_num(n)} bytes at byte {self.pos} runs "
                       f"past the end of the data ({self.end} bytes)")
    data = self._file.read(n)
    if len(data) != n:
      raise _Malformed(f"the data ends at byte {self.pos + len(data)}")
    self.pos += n
    return data

  def readline(self) -> bytes:
    line = self._file.readline(min(256, self.end - self.pos))
    self.pos += len(line)
    if not line.endswith(b"\n"):
      raise _Malformed(f"a name at byte {self.pos} that is not a short line")
    return line[:-1]

  def readinto(self, buffer: memoryview) -> None:
    """Fills `buffer` from the data, in pieces (no larger temporary)."""
    if len(buffer) > self.end - self.pos:
      raise _Malformed(f"{len(buffer)} bytes at byte {self.pos} run past "
                       f"the end of the data ({self.end} bytes)")
    done = 0
    while done < len(buffer):
      got = self._file.readinto(buffer[done:done + 2**24])
      if not got:
        raise _Malformed(f"the data ends at byte {self.pos + done}")
      done += got
    self.pos += done


_OPCODE_NAMES = {op.code.encode("latin1")[0]: op.name
                 for op in pickletools.opcodes}
# Opcodes that checkpoints never use, and what they would do.
_REFUSED_OPCODES = {
    "EXT1": "an object from copyreg's extension registry",
    "EXT2": "an object from copyreg's extension registry",
    "EXT4": "an object from copyreg's extension registry",
    "INST": "an object made by calling a class",
    "OBJ": "an object made by calling a class",
    "NEXT_BUFFER": "an out-of-band buffer",
    "READONLY_BUFFER": "an out-of-band buffer",
}


class _Unpickler:
  """A pickle reader that only builds data.

  Strings, bytes and numbers become Python values; tuples, lists, dicts
  and sets are built by this class; every name the pickle refers to must
  be in `allowed` (else _Unsafe), and REDUCE and NEWOBJ call only the
  checking functions of those names. BUILD sets the state of the objects in
  _BUILDERS only. Tuples and frozensets nest at most MAX_NESTING deep (Python
  hashes them recursively, without a depth check of its own).
  """

  def __init__(self, source: _Source, allowed: dict[tuple[str, str], Any],
               persistent_load: Callable[[Any], Any] | None = None):
    self._source = source
    self._allowed = allowed
    self._persistent_load = persistent_load
    self._stack: list = []
    self._marks: list[list] = []
    self._memo: dict[int, Any] = {}
    # id -> (tuple or frozenset, its depth); holding the object keeps its id.
    self._depths: dict[int, tuple[Any, int]] = {}
    ops = {
        "(": self._mark, ".": None, "0": self._pop_op, "1": self._pop_mark_op,
        "2": self._dup, "N": lambda: self._push(None),
        "\x88": lambda: self._push(True), "\x89": lambda: self._push(False),
        "J": lambda: self._push(self._unpack("<i")),
        "K": lambda: self._push(self._source.read(1)[0]),
        "M": lambda: self._push(self._unpack("<H")),
        "\x8a": lambda: self._push(self._long(self._source.read(1)[0])),
        "\x8b": lambda: self._push(self._long(self._unpack("<i"))),
        "G": lambda: self._push(self._unpack(">d")),
        "T": lambda: self._push(self._read_sized("<i").decode("latin1")),
        "U": lambda: self._push(self._read_sized("B").decode("latin1")),
        "B": lambda: self._push(self._read_sized("<I")),
        "C": lambda: self._push(self._read_sized("B")),
        "\x8e": lambda: self._push(self._read_sized("<Q")),
        "\x96": lambda: self._push(self._read_sized("<Q")),
        "X": lambda: self._push(self._unicode("<I")),
        "\x8c": lambda: self._push(self._unicode("B")),
        "\x8d": lambda: self._push(self._unicode("<Q")),
        ")": lambda: self._push(self._tuple(())),
        "t": lambda: self._push(self._tuple(self._pop_mark())),
        "\x85": lambda: self._push(self._tuple(self._pop_n(1))),
        "\x86": lambda: self._push(self._tuple(self._pop_n(2))),
        "\x87": lambda: self._push(self._tuple(self._pop_n(3))),
        "]": lambda: self._push([]),
        "l": lambda: self._push(self._pop_mark()),
        "a": self._append, "e": self._appends,
        "}": lambda: self._push({}),
        "d": lambda: self._push(self._setitems({}, self._pop_mark())),
        "s": self._setitem, "u": self._setitems_op,
        "\x8f": lambda: self._push(set()), "\x90": self._additems,
        "\x91": lambda: self._push(self._frozenset(self._pop_mark())),
        "c": self._global, "\x93": self._stack_global,
        "R": self._reduce, "\x81": self._newobj, "\x92": self._newobj_ex,
        "b": self._build, "Q": self._persid,
        "h": lambda: self._get(self._source.read(1)[0]),
        "j": lambda: self._get(self._unpack("<I")),
        "q": lambda: self._put(self._source.read(1)[0]),
        "r": lambda: self._put(self._unpack("<I")),
        "\x94": lambda: self._put(len(self._memo)),
        "\x80": self._proto, "\x95": self._frame,
    }
    self._ops = {ord(code): op for code, op in ops.items()}

  def load(self) -> Any:
    """The pickled object.

    Raises:
      _Unsafe: a name outside `allowed`, or an object dtype or array.
      _Malformed: anything else that is not a pickle of data these files
        hold.
    """
    for _ in range(MAX_PICKLE_OPS):
      at = self._source.pos
      code = self._source.read(1)[0]
      if code not in self._ops:
        raise _Malformed(self._unknown(code, at))
      op = self._ops[code]
      if op is None:  # STOP
        if len(self._stack) != 1 or self._marks:
          raise _Malformed(f"the pickle stops at byte {at} with "
                           f"{len(self._stack)} objects, not one")
        return self._stack.pop()
      try:
        op()
      except (_Malformed, _Unsafe):
        raise
      except (TypeError, ValueError, KeyError, IndexError, AttributeError,
              OverflowError, UnicodeError, struct.error) as e:
        # The file chose the operands; Python's complaint about them (an
        # unhashable key, a wrong argument count) is the file's fault.
        raise _Malformed(f"opcode {_OPCODE_NAMES.get(code)} at byte {at}: "
                         f"{type(e).__name__}: {_text(e)}") from None
    raise _Malformed(f"the pickle has more than {MAX_PICKLE_OPS} opcodes "
                     "(MAX_PICKLE_OPS), far more than a checkpoint's")

  @staticmethod
  def _unknown(code: int, at: int) -> str:
    name = _OPCODE_NAMES.get(code)
    if name is None:
      return f"byte 0x{code:02x} at byte {at} is not a pickle opcode"
    what = _REFUSED_OPCODES.get(name)
    if what is not None:
      return (f"opcode {name} at byte {at} asks for {what}, which "
              "checkpoints do not use")
    return (f"opcode {name} at byte {at} (protocol 0 text, or out of place) "
            "is not used by checkpoints")

  # Stack.
  def _push(self, value: Any) -> None:
    self._stack.append(value)

  def _pop(self) -> Any:
    if not self._stack:
      raise _Malformed("an opcode takes an item from an empty stack")
    return self._stack.pop()

  def _pop_op(self) -> None:
    # POP drops the top item, or the items since the last MARK if none.
    if self._stack:
      self._stack.pop()
    else:
      self._pop_mark()

  def _pop_n(self, n: int) -> list:
    if len(self._stack) < n:
      raise _Malformed(f"a tuple of {n} items on a stack of "
                       f"{len(self._stack)}")
    items = self._stack[-n:]
    del self._stack[-n:]
    return items

  def _mark(self) -> None:
    self._marks.append(self._stack)
    self._stack = []

  def _pop_mark(self) -> list:
    if not self._marks:
      raise _Malformed("items collected without a MARK")
    items = self._stack
    self._stack = self._marks.pop()
    return items

  def _pop_mark_op(self) -> None:
    self._pop_mark()

  def _dup(self) -> None:
    self._push(self._top())

  def _top(self) -> Any:
    if not self._stack:
      raise _Malformed("an opcode on an empty stack")
    return self._stack[-1]

  # Values.
  def _unpack(self, fmt: str) -> Any:
    return struct.unpack(fmt, self._source.read(struct.calcsize(fmt)))[0]

  def _read_sized(self, fmt: str) -> bytes:
    n = self._unpack(fmt)
    if n < 0:
      raise _Malformed(f"an item of {n} bytes")
    return self._source.read(n)

  def _unicode(self, fmt: str) -> str:
    return self._read_sized(fmt).decode("utf-8", "surrogatepass")

  def _long(self, n: int) -> int:
    if n < 0 or n > 1024:
      raise _Malformed(f"an integer of {n} bytes")
    return int.from_bytes(self._source.read(n), "little", signed=True)

  def _depth(self, items) -> int:
    depth = 1 + max((self._depths[id(x)][1] for x in items
                     if isinstance(x, (tuple, frozenset)) and
                     id(x) in self._depths), default=0)
    if depth > MAX_NESTING:
      raise _Malformed(f"tuples nest deeper than {MAX_NESTING} levels")
    return depth

  def _tuple(self, items) -> tuple:
    depth = self._depth(items)
    value = tuple(items)
    self._depths[id(value)] = (value, depth)
    return value

  def _frozenset(self, items) -> frozenset:
    depth = self._depth(items)  # Before hashing them.
    value = frozenset(items)
    self._depths[id(value)] = (value, depth)
    return value

  # Containers.
  def _append(self) -> None:
    value = self._pop()
    self._list(self._top()).append(value)

  def _appends(self) -> None:
    items = self._pop_mark()
    self._list(self._top()).extend(items)

  @staticmethod
  def _list(target: Any) -> list:
    if not isinstance(target, list):
      raise _Malformed(f"items appended to a {type(target).__name__}")
    return target

  @staticmethod
  def _setitems(target: Any, items: list) -> Any:
    if not isinstance(target, dict) or len(items) % 2:
      raise _Malformed(f"items set in a {type(target).__name__}")
    for i in range(0, len(items), 2):
      target[items[i]] = items[i + 1]
    return target

  def _setitem(self) -> None:
    value = self._pop()
    key = self._pop()
    self._setitems(self._top(), [key, value])

  def _setitems_op(self) -> None:
    items = self._pop_mark()
    self._setitems(self._top(), items)

  def _additems(self) -> None:
    items = self._pop_mark()
    target = self._top()
    if not isinstance(target, set):
      raise _Malformed(f"items added to a {type(target).__name__}")
    target.update(items)

  # Names and objects.
  def _find(self, module: Any, name: Any) -> None:
    if not isinstance(module, str) or not isinstance(name, str):
      raise _Malformed("a global whose name is not text")
    found = self._allowed.get((module, name))
    if found is None:
      raise _Unsafe(f"the Python object {_text(module)}.{_text(name)}",
                    _NAMES_CAN_RUN_CODE)
    self._push(found)

  def _global(self) -> None:
    module = self._source.readline().decode("utf-8")
    name = self._source.readline().decode("utf-8")
    self._find(module, name)

  def _stack_global(self) -> None:
    name = self._pop()
    module = self._pop()
    self._find(module, name)

  @staticmethod
  def _callee(obj: Any, kind: str) -> Callable[..., Any]:
    function = getattr(obj, kind, None) if isinstance(obj, _Global) else None
    if function is None:
      what = obj.name if isinstance(obj, _Global) else type(obj).__name__
      raise _Malformed(f"the pickle calls {_text(what)}, which it cannot call")
    return function

  def _reduce(self) -> None:
    args = self._pop()
    function = self._callee(self._top(), "call")
    if not isinstance(args, tuple):
      raise _Malformed("a call whose arguments are not a tuple")
    self._stack[-1] = function(*args)

  def _newobj(self) -> None:
    args = self._pop()
    function = self._callee(self._pop(), "new")
    if not isinstance(args, tuple):
      raise _Malformed("a call whose arguments are not a tuple")
    self._push(function(*args))

  def _newobj_ex(self) -> None:
    kwargs = self._pop()
    if not isinstance(kwargs, dict) or kwargs:
      raise _Malformed("an object made with keyword arguments")
    self._newobj()

  def _build(self) -> None:
    state = self._pop()
    target = self._top()
    builder = _BUILDERS.get(type(target))
    if builder is None:
      raise _Malformed(f"the pickle sets the state of a "
                       f"{type(target).__name__}")
    builder(target, state)

  def _persid(self) -> None:
    pid = self._pop()
    if self._persistent_load is None:
      raise _Malformed("a persistent reference, which this format does not "
                       "hold")
    self._push(self._persistent_load(pid))

  def _get(self, index: int) -> None:
    if index not in self._memo:
      raise _Malformed(f"memo entry {index} is read before it is stored")
    self._push(self._memo[index])

  def _put(self, index: int) -> None:
    self._memo[index] = self._top()

  def _proto(self) -> None:
    version = self._source.read(1)[0]
    if version > 5:
      raise _Malformed(f"pickle protocol {version}")

  def _frame(self) -> None:
    size = self._unpack("<Q")
    if size > self._source.end - self._source.pos:
      raise _Malformed(f"a frame of {_num(size)} bytes runs past the end of "
                       "the data")


# --- Walking what was read. ---------------------------------------------


class _Walker:
  """Copies what a pickle built into plain containers, at most MAX_NESTING
  deep and with at most MAX_PICKLE_OPS containers and items visited (shared
  containers are visited once per reference). NumPy arrays and dtypes
  replace their proxies, NVlabs Networks become NetworkState, persistence
  objects PersistentObject, and PyTorch's tensors and storages become
  `tensor(name, ref)`."""

  def __init__(self, tensor: Callable[[str, Any], Any] | None = None,
               persistent: bool = True):
    """`persistent`: whether persistence objects become PersistentObject
    (False in the pass that only checks the tensors: their descriptions
    stay dicts)."""
    self._tensor = tensor
    self._persistent = persistent
    self._visits = 0

  def walk(self, obj: Any, name: str = "", depth: int = 0) -> Any:
    """The copy of `obj`; `name` is its dotted path, for messages.

    Raises:
      _Malformed: deeper than MAX_NESTING (or self-containing), more than
        MAX_PICKLE_OPS visits, an array without its data, a Network or
        persistence object that is not one, or a tensor in a format that
        has none.
    """
    self._visits += 1
    if self._visits > MAX_PICKLE_OPS:
      raise _Malformed(f"its containers refer to each other more than "
                       f"{MAX_PICKLE_OPS} times, far more than a checkpoint's")
    if depth > MAX_NESTING:
      raise _Malformed(f"its containers nest deeper than {MAX_NESTING} levels "
                       "(or contain themselves)")
    if isinstance(obj, _ArrayProxy):
      if obj.array is None:
        raise _Malformed(f"the NumPy array {_text(name)!r} has no data")
      return obj.array
    if isinstance(obj, _DtypeProxy):
      return obj.dtype
    if isinstance(obj, (_TensorRef, _StorageRef)):
      if self._tensor is None:
        raise _Malformed(f"{_text(name)!r} is a PyTorch tensor, which this "
                         "format does not hold")
      return self._tensor(name, obj)
    if isinstance(obj, _NetworkProxy):
      return NetworkState(self.walk(obj.state, name, depth + 1), name)
    if isinstance(obj, _PersistentProxy):
      meta = self.walk(obj.meta, name, depth + 1)
      return PersistentObject(meta, name) if self._persistent else meta
    if isinstance(obj, dict):
      out = (collections.OrderedDict()
             if isinstance(obj, collections.OrderedDict) else {})
      for key, value in obj.items():
        out[key] = self.walk(value, _join(name, key), depth + 1)
      return out
    if isinstance(obj, (list, tuple)):
      items = [self.walk(v, _join(name, i), depth + 1)
               for i, v in enumerate(obj)]
      return items if isinstance(obj, list) else tuple(items)
    return obj


def _join(name: str, key: Any) -> str:
  """The dotted name of `key` below `name`, for messages; at most 300
  characters (a long key at every level would otherwise make long names)."""
  key = (str(key)[:100] if isinstance(key, (str, int))
         else f"<{type(key).__name__}>")
  name = f"{name}.{key}" if name else key
  return name if len(name) <= 300 else "..." + name[-297:]


# --- The formats. -------------------------------------------------------


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

  def __init__(self, state: Any, where: str = ""):
    """Reads a Network's state dict (its arrays already read).

    Raises:
      _Malformed: a state that is not an NVlabs Network's.
    """
    what = f"the NVlabs Network {_text(where)!r}" if where else "a Network"
    if not isinstance(state, dict):
      raise _Malformed(f"{what} has no state dict; it is not a StyleGAN "
                       "network pickle")
    for field, kind in (("name", str), ("build_func_name", str),
                        ("build_module_src", str), ("static_kwargs", dict),
                        ("components", dict), ("variables", (list, tuple))):
      if state.get(field) is not None and not isinstance(state[field], kind):
        raise _Malformed(f"{what} has a {field} of type "
                         f"{type(state[field]).__name__}")
    self.state = state
    self.name = state.get("name")
    self.static_kwargs = dict(state.get("static_kwargs") or {})
    self.components = dict(state.get("components") or {})
    if not all(isinstance(c, NetworkState) for c in self.components.values()):
      raise _Malformed(f"{what} has components that are not Networks")
    self.variables = {}
    for pair in state.get("variables") or []:
      if not isinstance(pair, (list, tuple)) or len(pair) != 2 or (
          not isinstance(pair[0], str)):
        raise _Malformed(f"{what} has variables that are not (name, array)")
      value = pair[1]
      if isinstance(value, (bool, float)) or (
          _is_int(value) and -2**63 <= value < 2**63):
        value = np.asarray(value)  # Python numbers: bool, int64, float64.
      if not isinstance(value, (np.ndarray, np.generic)):
        raise _Malformed(f"variable {_text(pair[0])!r} of {what} is a "
                         f"{type(value).__name__}, not an array")
      self.variables[pair[0]] = np.asarray(value)
    self.build_func_name = state.get("build_func_name")
    self.build_module_src = state.get("build_module_src")


_MODULE_NAME = re.compile(r"[^.]{1,100}")
_CLASS_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")


class PersistentObject:
  """An object of NVlabs' `torch_utils.persistence` (the networks of
  stylegan2-ada-pytorch pickles, each a `torch.nn.Module`), as data.

  The pickle describes it by `meta`: the class's module source, its name,
  and the object's `__dict__` (its state: the module's `_parameters`,
  `_buffers` and `_modules`, the constructor's arguments `_init_args` and
  `_init_kwargs`, and plain attributes). NVlabs' loader executes the source
  to rebuild the class; here it stays a string and is never run.

  Attributes:
    class_name: the class's name ("Generator", "SynthesisLayer", ...).
    version: the persistence format's version (NVlabs' 6).
    module_src: the Python source the pickle carries; text, never executed.
    init_args: the constructor's positional arguments (tuple).
    init_kwargs: its keyword arguments (dict; nested EasyDicts as dicts).
    state: the object's state as pickled (arrays already read).
    modules: the sub-modules {name: PersistentObject} (None left out).
    tensors: {dotted name: np.ndarray} of the parameters and buffers of the
      object and of its sub-modules ("mapping.fc0.weight"), in PyTorch's
      layout; None parameters (a layer without bias) are left out.
  """

  def __init__(self, meta: Any, where: str = ""):
    """Reads a persistence object's description (its tensors already read).

    Raises:
      _Malformed: a description that is not one of torch_utils.persistence
        (fields missing or of other types, module or tensor names that are
        not names, parameters that are not arrays, sub-modules that are not
        persistence objects).
    """
    what = (f"the torch_utils.persistence object {_text(where)!r}" if where
            else "a torch_utils.persistence object")
    if not isinstance(meta, dict):
      raise _Malformed(f"{what} is described by a {type(meta).__name__}")
    for field, kind in (("type", str), ("version", int), ("module_src", str),
                        ("class_name", str), ("state", dict)):
      if not isinstance(meta.get(field), kind) or isinstance(
          meta.get(field), bool):
        raise _Malformed(f"{what} has no {field} of type {kind.__name__}")
    if meta["type"] != "class":
      raise _Malformed(f"{what} is of type {_text(meta['type'])!r}, not "
                       "'class'")
    if not _CLASS_NAME.fullmatch(meta["class_name"]):
      raise _Malformed(f"{what} has a class name that is not a Python "
                       f"name ({_text(meta['class_name'])!r})")
    state = meta["state"]
    self.class_name: str = meta["class_name"]
    self.version: int = meta["version"]
    self.module_src: str = meta["module_src"]
    self.state = state
    what = f"{what} ({self.class_name})"
    init_args = state.get("_init_args", meta.get("init_args", ()))
    init_kwargs = state.get("_init_kwargs", meta.get("init_kwargs", {}))
    if not isinstance(init_args, (tuple, list)):
      raise _Malformed(f"{what} has init_args of type "
                       f"{type(init_args).__name__}")
    if not isinstance(init_kwargs, dict) or not all(
        isinstance(k, str) for k in init_kwargs):
      raise _Malformed(f"{what} has init_kwargs that are not a dict by name")
    self.init_args = tuple(init_args)
    self.init_kwargs = dict(init_kwargs)
    self.modules: dict[str, PersistentObject] = {}
    self.tensors: dict[str, np.ndarray] = {}
    for field in ("_parameters", "_buffers", "_modules"):
      entries = state.get(field, {})
      if not isinstance(entries, dict):
        raise _Malformed(f"{what} has {field} of type "
                         f"{type(entries).__name__}")
      for key, value in entries.items():
        if not isinstance(key, str) or not _MODULE_NAME.fullmatch(key):
          raise _Malformed(f"{what} has {field} named {_kind(key)}")
        if value is None:
          continue
        if field == "_modules":
          if not isinstance(value, PersistentObject):
            raise _Malformed(f"{what} has a sub-module {_text(key)!r} of "
                             f"type {type(value).__name__}, not a "
                             "torch_utils.persistence object")
          self.modules[key] = value
          items = [(f"{key}.{n}", v) for n, v in value.tensors.items()]
        elif isinstance(value, np.ndarray):
          items = [(key, value)]
        else:
          raise _Malformed(f"{what} has {field[1:-1]} {_text(key)!r} of "
                           f"type {type(value).__name__}, not a tensor")
        for name, array in items:
          if name in self.tensors:
            raise _Malformed(f"{what} holds two tensors named "
                             f"{_text(name)!r}")
          self.tensors[name] = array


def _read(path: str, what: str, reader: Callable[[], Any]) -> Any:
  """reader(), every failure as a one-line UserInputError naming `path`.

  Raises:
    UnsafeCheckpointError: the file asks for something that could run code
      or read memory.
    UserInputError: anything else that makes the file unreadable.
  """
  try:
    return reader()
  except UserInputError:
    raise
  except _Unsafe as e:
    raise UnsafeCheckpointError(
        f"{path}: the file asks for {e.thing}, which a {what} does not hold. "
        f"It was not loaded, since {e.why}: {_USE_RELEASED}") from None
  except _Malformed as e:
    raise UserInputError(f"{path} is not a {what} tfgt can read: {e}. "
                         f"{_CHECK_FORMAT}") from None
  except OSError as e:
    raise UserInputError(f"{path}: cannot be read ({_text(e)}).") from None
  except Exception as e:  # pylint: disable=broad-except
    # The checks above cover what the formats allow; whatever else a file
    # makes Python raise still means that the file cannot be read, and must
    # not end the import with a traceback. The cause is kept for debugging.
    raise UserInputError(
        f"{path} is not a {what} tfgt can read ({type(e).__name__}: "
        f"{_text(e)}). {_CHECK_FORMAT}") from e


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo,
                nbytes: int) -> np.ndarray:
  """The first `nbytes` bytes of an archive entry (uint8), read in pieces
  into one buffer of that size."""
  if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
    raise _Malformed(f"entry {_text(info.filename)!r} is compressed with "
                     f"method {info.compress_type}; torch.save stores "
                     "entries uncompressed")
  buffer = np.empty(nbytes, np.uint8)
  try:
    with archive.open(info) as f:
      _Source(f, nbytes).readinto(memoryview(buffer))
  except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError,
          NotImplementedError) as e:
    raise _Malformed(f"entry {_text(info.filename)!r} cannot be read "
                     f"({_text(e)})") from None
  return buffer


def _load_torch_zip(path: str) -> Any:
  file_size = os.path.getsize(path)
  try:
    archive = zipfile.ZipFile(path)
  except (zipfile.BadZipFile, EOFError, ValueError, struct.error,
          NotImplementedError) as e:
    raise _Malformed(f"its zip directory cannot be read ({_text(e)})"
                     ) from None
  with archive:
    names = set(archive.namelist())
    pickles = sorted(n for n in names
                     if n == "data.pkl" or n.endswith("/data.pkl"))
    if len(pickles) != 1:
      raise _Malformed(f"a PyTorch zip checkpoint holds one <name>/data.pkl; "
                       f"this archive has {len(pickles)}")
    prefix = pickles[0][:-len("data.pkl")]
    if prefix + "byteorder" in names:
      info = archive.getinfo(prefix + "byteorder")
      if info.file_size > 16 or bytes(_read_entry(
          archive, info, info.file_size)).strip() != b"little":
        raise UserInputError(f"{path}: big-endian checkpoints are not "
                             "supported; save it on a little-endian machine.")
    pickle_info = archive.getinfo(pickles[0])
    if pickle_info.file_size > min(MAX_ZIP_PICKLE_BYTES, file_size):
      raise _Malformed(f"its {pickles[0]} declares {pickle_info.file_size} "
                       f"bytes, more than the file's {file_size} (or than "
                       f"{MAX_ZIP_PICKLE_BYTES}, MAX_ZIP_PICKLE_BYTES)")
    data = bytes(_read_entry(archive, pickle_info, pickle_info.file_size))
    roots: dict[str, _Root] = {}
    obj = _Unpickler(_Source(io.BytesIO(data), len(data)), _torch_allowed(),
                     lambda pid: _storage_ref(pid, roots, False)).load()
    del data
    views = _TensorViews()
    _Walker(views.check).walk(obj)
    # Every storage against its entry, and all of them against the file,
    # before any is read.
    declared = pickle_info.file_size
    entries = {}
    for key, root in roots.items():
      name = f"{prefix}data/{key}"
      if name not in names:
        raise _Malformed(f"storage {name} is missing")
      info = entries[key] = archive.getinfo(name)
      if info.file_size < root.nbytes:
        raise _Malformed(
            f"storage {name} holds {info.file_size} bytes, fewer than the "
            f"{root.nbytes} of its {root.numel} {root.storage_type.name} "
            "values: the file is truncated")
      declared += root.nbytes
    if declared > file_size:
      raise _Malformed(
          f"its storages declare {_num(declared)} bytes in all, more than "
          f"the file's {file_size}: torch.save stores them uncompressed, so "
          "this archive inflates (a zip bomb reads like this)")
    for key, root in roots.items():
      root.array = _storage_array(
          _read_entry(archive, entries[key], root.nbytes), root.storage_type)
    return _Walker(views.array).walk(obj)


def _load_torch_legacy(path: str) -> Any:
  with open(path, "rb") as f:
    source = _Source(f, os.fstat(f.fileno()).st_size)

    def header() -> Any:
      return _Unpickler(source, {}).load()

    magic = header()
    if not _is_int(magic) or magic != _LEGACY_MAGIC:
      raise _Malformed("it has no magic number at its start")
    protocol = header()
    if protocol != _LEGACY_PROTOCOL:
      raise UserInputError(f"{path}: PyTorch legacy protocol "
                           f"{_kind(protocol)}; only {_LEGACY_PROTOCOL} is "
                           "supported.")
    info = header()
    if isinstance(info, dict) and info.get("little_endian") is False:
      raise UserInputError(f"{path}: big-endian checkpoints are not "
                           "supported.")
    roots: dict[str, _Root] = {}
    obj = _Unpickler(source, _torch_allowed(),
                     lambda pid: _storage_ref(pid, roots, True)).load()
    keys = header()
    if not isinstance(keys, list) or not all(
        isinstance(k, str) for k in keys) or len(set(keys)) != len(keys):
      raise _Malformed("the list of storages after the object is not a list "
                       "of distinct keys")
    unknown = [k for k in keys if k not in roots]
    missing = set(roots) - set(keys)
    if unknown or missing:
      raise _Malformed(f"the storages listed ({_text(sorted(keys))}) are not "
                       f"those the tensors use ({_text(sorted(roots))})")
    views = _TensorViews()
    _Walker(views.check).walk(obj)
    declared = sum(root.nbytes + 8 for root in roots.values())
    if declared > source.end - source.pos:
      raise _Malformed(f"its storages declare {_num(declared)} bytes, more "
                       f"than the {source.end - source.pos} left in the file: "
                       "the file is truncated")
    for key in keys:
      root = roots[key]
      (count,) = struct.unpack("<q", source.read(8))
      if count != root.numel:
        raise _Malformed(f"storage {key!r} is stored with {_num(count)} "
                         f"values; the object declares {root.numel}")
      raw = np.empty(root.nbytes, np.uint8)
      source.readinto(memoryview(raw))
      root.array = _storage_array(raw, root.storage_type)
  return _Walker(views.array).walk(obj)


def _missing(path: str, what: str) -> str:
  if os.path.isdir(path):
    return (f"{path} is a folder; give the {what} in it (docs/IMPORT.md "
            "names the files of each format).")
  return f"No {what} at {path!r}."


def load_torch(path: str) -> Any:
  """A `torch.save` file's object, tensors as NumPy arrays, without PyTorch.

  Checks everything that the module docstring lists before it reads or
  allocates; the arrays returned hold at most the file's storages (a tensor
  may share its storage's memory when it is all of it).

  Args:
    path: a zip-format (torch >= 1.6) or legacy-format checkpoint.

  Returns:
    What was saved (usually a dict of state dicts), every tensor a NumPy
    array in PyTorch's layout and dtype (bfloat16 widened to float32).

  Raises:
    UnsafeCheckpointError: the file names an object outside the format, or
      asks for an array of Python objects.
    UserInputError: not a PyTorch checkpoint; truncated, corrupt or
      big-endian; a tensor outside its storage; sizes above the limits.
  """
  if not os.path.isfile(path):
    raise UserInputError(_missing(path, "checkpoint file"))
  what = "PyTorch checkpoint"
  try:
    zipped = zipfile.is_zipfile(path)
  except OSError as e:
    raise UserInputError(f"{path}: cannot be read ({_text(e)}).") from None
  if zipped:
    return _read(path, what, lambda: _load_torch_zip(path))
  return _read(path, what, lambda: _load_torch_legacy(path))


def load_nvlabs_pickle(path: str) -> tuple[NetworkState, ...]:
  """The networks of an NVlabs StyleGAN pickle (G, D, Gs), without TF1 or
  dnnlib, and without running the source code they carry.

  Arrays stored in native byte order come back as read-only views of the
  bytes read (so the file is not held in memory twice).

  Raises:
    UnsafeCheckpointError: the file names an object outside the format, or
      asks for an array of Python objects.
    UserInputError: no such file, or not a pickle of networks (anything the
      module docstring lists as checked).
  """
  if not os.path.isfile(path):
    raise UserInputError(_missing(path, "pickle"))
  allowed = _common_allowed()
  allowed[("dnnlib.tflib.network", "Network")] = _Global(
      "dnnlib.tflib.network.Network", None, _NetworkProxy)
  allowed[("dnnlib.util", "EasyDict")] = _Global(
      "dnnlib.util.EasyDict", _EasyDict, _EasyDict)
  what = "StyleGAN network pickle"

  def read() -> Any:
    with open(path, "rb") as f:
      obj = _Unpickler(_Source(f, os.fstat(f.fileno()).st_size),
                       allowed).load()
    return _Walker().walk(obj)

  obj = _read(path, what, read)
  networks = obj if isinstance(obj, tuple) else (obj,)
  if not networks or not all(isinstance(n, NetworkState) for n in networks):
    raise UserInputError(
        f"{path}: expected NVlabs networks (G, D, Gs), found "
        f"{type(obj).__name__}.")
  return networks


def load_persistence_pickle(path: str) -> Any:
  """What a stylegan2-ada-pytorch pickle holds (`network-snapshot-*.pkl`:
  a dict of G, D, G_ema, augment_pipe and training_set_kwargs), without
  PyTorch or NVlabs' code, and without running the source code it carries.

  The networks are `torch_utils.persistence` objects, which the pickle
  rebuilds by calling `_reconstruct_persistent_obj(meta)` (NVlabs' loader
  then executes the class source in `meta`); each is read as a
  PersistentObject, its source kept as text. The names the file may use are
  those of such pickles: that function (as a data constructor), PyTorch's
  tensor and parameter rebuilders and `torch.storage._load_from_bytes`
  (each storage as the bytes of a legacy torch.save of it alone, read by
  the checks of the legacy format), containers, `dnnlib.util.EasyDict`,
  NumPy scalars and arrays of numeric dtypes. Tensor views are checked
  against their storages as in `load_torch`; arrays stored in native byte
  order are read-only views of the bytes read.

  Args:
    path: the pickle.

  Returns:
    The pickled object (normally a dict), each network a PersistentObject,
    each tensor a NumPy array in PyTorch's layout.

  Raises:
    UnsafeCheckpointError: the file names an object outside the format, or
      asks for an array of Python objects.
    UserInputError: no such file, or not such a pickle (truncated, a
      storage whose sizes do not fit, a tensor outside its storage, sizes
      above the limits, a persistence object that is not one).
  """
  if not os.path.isfile(path):
    raise UserInputError(_missing(path, "pickle"))
  allowed = _torch_allowed()
  allowed.update({
      ("torch.storage", "_load_from_bytes"): _Global(
          "torch.storage._load_from_bytes", _storage_from_bytes),
      ("torch_utils.persistence", "_reconstruct_persistent_obj"): _Global(
          "torch_utils.persistence._reconstruct_persistent_obj",
          _reconstruct_persistent),
      ("dnnlib.util", "EasyDict"): _Global("dnnlib.util.EasyDict",
                                           _EasyDict, _EasyDict),
  })

  def read() -> Any:
    with open(path, "rb") as f:
      obj = _Unpickler(_Source(f, os.fstat(f.fileno()).st_size),
                       allowed).load()
    views = _TensorViews()
    _Walker(views.check, persistent=False).walk(obj)
    return _Walker(views.array).walk(obj)

  return _read(path, "stylegan2-ada-pytorch network pickle", read)


def flatten(obj: Any, prefix: str = "") -> dict[str, np.ndarray]:
  """{"a.b.c": array} of the arrays in nested dicts (state dicts), in
  order; other values are left out. (What the loaders return nests at most
  MAX_NESTING deep.)"""
  out = {}
  if isinstance(obj, dict):
    for k, v in obj.items():
      out.update(flatten(v, f"{prefix}{k}."))
  elif isinstance(obj, np.ndarray):
    out[prefix[:-1]] = obj
  return out
