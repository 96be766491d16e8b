"""Writers of PyTorch (zip and legacy) and NVlabs pickle files at byte
level, without PyTorch or dnnlib, for the importer tests.

They stand in for `torch.save` and NVlabs' `pickle.dump` of dnnlib networks:
the same archive layout, pickle protocol, global names and persistent
references, so that the readers meet what real checkpoints hold. For the
hostile-file tests they also write what no saver writes: storages that
declare other sizes than they hold (`Declared`), legacy storage views
(`View`), pickles opcode by opcode (`Ops`), and zip archives by hand whose
entries inflate (`write_zip`, `Deflated`).
"""

import collections
import contextlib
import io
import pickle
import struct
import sys
import types
import zipfile
import zlib

import numpy as np

DTYPE_STORAGE = {np.dtype(np.float32): "FloatStorage",
                 np.dtype(np.float64): "DoubleStorage",
                 np.dtype(np.float16): "HalfStorage",
                 np.dtype(np.int64): "LongStorage",
                 np.dtype(np.int32): "IntStorage",
                 np.dtype(np.uint8): "ByteStorage",
                 np.dtype(np.bool_): "BoolStorage"}


class Tensor:
  """A tensor to save: a view (offset, shape, strides in elements) of a
  storage (a flat array), shared between tensors like PyTorch's."""

  def __init__(self, storage, offset=0, shape=None, strides=None):
    self.storage = storage
    self.offset = offset
    self.shape = tuple(storage.shape if shape is None else shape)
    if strides is None:
      strides, step = [], 1
      for n in reversed(self.shape):
        strides.insert(0, step)
        step *= n
    self.strides = tuple(strides)

  @classmethod
  def of(cls, array):
    array = np.ascontiguousarray(array)
    return cls(array.reshape(-1), 0, array.shape)

  def numpy(self):
    flat = self.storage
    return np.lib.stride_tricks.as_strided(
        flat[self.offset:], self.shape,
        [s * flat.itemsize for s in self.strides]).copy()


@contextlib.contextmanager
def fake_modules(**modules):
  """Puts modules {dotted name: {attribute: object}} in sys.modules while
  pickling, so that pickle writes their globals; restores sys.modules."""
  modules = dict(modules)
  for name in list(modules):  # Parent packages, for the import machinery.
    parts = name.split(".")
    for i in range(1, len(parts)):
      modules.setdefault(".".join(parts[:i]), {})
  saved = {name: sys.modules.get(name) for name in modules}
  try:
    for name, attributes in sorted(modules.items()):
      module = types.ModuleType(name)
      for attr, value in attributes.items():
        try:
          value.__module__, value.__qualname__ = name, attr
        except (AttributeError, TypeError):
          pass
        setattr(module, attr, value)
      sys.modules[name] = module
    yield
  finally:
    for name, module in saved.items():
      if module is None:
        sys.modules.pop(name, None)
      else:
        sys.modules[name] = module


def _torch_globals():
  def _rebuild_tensor_v2(*args):
    return args

  storages = {name: type(name, (), {}) for name in DTYPE_STORAGE.values()}
  return _rebuild_tensor_v2, storages


class Declared:
  """A storage whose file declares `numel` values (default: the array's),
  with the array's bytes as its data; in the legacy format `count` is the
  element count written before the bytes (default: `numel`). For files that
  lie about their sizes."""

  def __init__(self, array, numel=None, count=None):
    self.array = np.ascontiguousarray(array).reshape(-1)
    self.numel = self.array.size if numel is None else numel
    self.count = self.numel if count is None else count

  @property
  def dtype(self):
    return self.array.dtype

  @property
  def shape(self):
    return (self.numel,)


class View:
  """A view of values [start, start + size) of a root storage (an array),
  as the legacy format of torch < 1.0 saved storage views: the persistent
  id names the root and the view; only the root's values are stored."""

  def __init__(self, root, start, size):
    self.root, self.start, self.size = root, start, size

  @property
  def dtype(self):
    return self.root.dtype


class _TorchPickler(pickle.Pickler):

  def __init__(self, file, rebuild, storages, legacy):
    super().__init__(file, protocol=2)
    self.rebuild, self.storages, self.legacy = rebuild, storages, legacy
    self.keys = {}  # id(storage) -> (key, storage)

  def reducer_override(self, obj):
    if isinstance(obj, Tensor):
      return self.rebuild, (obj.storage, obj.offset, obj.shape, obj.strides,
                            False, collections.OrderedDict())
    return NotImplemented

  def persistent_id(self, obj):
    # Every array in the pickled object is a storage (tensors are `Tensor`).
    if isinstance(obj, View):
      assert self.legacy, "storage views are in the legacy format only"
      root = self.persistent_id(obj.root)
      return root[:5] + ((f"view{id(obj)}", obj.start, obj.size),)
    if isinstance(obj, (np.ndarray, Declared)):
      key = self.keys.setdefault(id(obj), (str(len(self.keys)), obj))[0]
      storage_type = self.storages[DTYPE_STORAGE[obj.dtype]]
      numel = obj.numel if isinstance(obj, Declared) else obj.size
      pid = ("storage", storage_type, key, "cpu", numel)
      return pid + (None,) if self.legacy else pid
    return None


def storage_bytes(storage):
  """A storage's values as torch.save writes them (little-endian)."""
  array = storage.array if isinstance(storage, Declared) else storage
  return array.astype(array.dtype.newbyteorder("<")).tobytes()


def torch_pickle(obj, legacy=False):
  """(the object pickle of `obj` as torch.save writes it, [(key, storage)]
  of the storages it refers to, in key order)."""
  rebuild, storages = _torch_globals()
  with fake_modules(**{"torch._utils": {"_rebuild_tensor_v2": rebuild},
                       "torch": storages}):
    data = io.BytesIO()
    pickler = _TorchPickler(data, rebuild, storages, legacy)
    pickler.dump(obj)
  return data.getvalue(), sorted(pickler.keys.values(), key=lambda ka: ka[0])


def write_torch_zip(path, data_pkl, storages):
  """A zip-format checkpoint: data.pkl and {key: bytes} storages, stored
  as torch.save stores them (uncompressed)."""
  with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
    archive.writestr("archive/data.pkl", data_pkl)
    archive.writestr("archive/byteorder", "little")
    for key, data in storages.items():
      archive.writestr(f"archive/data/{key}", data)
    archive.writestr("archive/version", "3\n")


def write_torch_legacy(path, data_pkl, storages, keys=None):
  """A legacy-format checkpoint: the header, the object pickle, the list of
  storage keys (default: those of `storages`), then each storage of
  `storages` [(key, count, bytes)] as its int64 count and bytes."""
  with open(path, "wb") as f:
    pickle.dump(0x1950a86a20f9469cfc6c, f, protocol=2)
    pickle.dump(1001, f, protocol=2)
    pickle.dump(dict(protocol_version=1001, little_endian=True,
                     type_sizes=dict(short=2, int=4, long=4)), f, protocol=2)
    f.write(data_pkl)
    pickle.dump([key for key, _, _ in storages] if keys is None else keys, f,
                protocol=2)
    for _, count, data in storages:
      f.write(struct.pack("<q", count))
      f.write(data)


def save_torch(obj, path, legacy=False):
  """Writes `obj` (dicts, lists, numbers and `Tensor`s) as torch.save does:
  the zip format, or with legacy=True the format of torch < 1.6."""
  data_pkl, stored = torch_pickle(obj, legacy)
  if not legacy:
    write_torch_zip(path, data_pkl, {key: storage_bytes(storage)
                                     for key, storage in stored})
    return
  write_torch_legacy(path, data_pkl, [
      (key, storage.count if isinstance(storage, Declared) else storage.size,
       storage_bytes(storage)) for key, storage in stored])


class Ops:
  """Pickle opcodes written one at a time, for the pickles that no pickler
  writes (hostile or broken ones). Each method appends and returns self."""

  def __init__(self, protocol=2):
    self.data = bytearray(b"\x80" + bytes([protocol]))

  def raw(self, data):
    self.data += data
    return self

  def global_(self, module, name):
    return self.raw(b"c" + f"{module}\n{name}\n".encode())

  def text(self, value):
    data = value.encode("utf-8")
    return self.raw(b"X" + struct.pack("<I", len(data)) + data)

  def bytes(self, value):
    return self.raw(b"B" + struct.pack("<I", len(value)) + value)

  def int(self, value):
    if -2**31 <= value < 2**31:
      return self.raw(b"J" + struct.pack("<i", value))
    data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return self.raw(b"\x8a" + bytes([len(data)]) + data)

  def __getattr__(self, name):
    # Opcodes without an argument by name: ops.mark().tuple().reduce() ...
    codes = dict(mark=b"(", tuple=b"t", list=b"l", dict=b"d",
                 empty_dict=b"}", empty_list=b"]", empty_tuple=b")",
                 reduce=b"R", build=b"b", setitem=b"s", setitems=b"u",
                 append=b"a", appends=b"e", persid=b"Q", none=b"N",
                 newobj=b"\x81", true=b"\x88", false=b"\x89")
    if name not in codes:
      raise AttributeError(name)
    return lambda: self.raw(codes[name])

  def stop(self):
    return bytes(self.data + b".")


def write_zip(path, members):
  """A zip archive written by hand: `members` [(name, data)] where data is
  bytes (stored) or a `Deflated` stream, whose declared sizes are written
  as given."""
  out, central = bytearray(), bytearray()
  for name, data in members:
    raw = name.encode()
    if isinstance(data, Deflated):
      method, stream, size, crc = 8, data.stream, data.size, data.crc
    else:
      method, stream, size, crc = 0, data, len(data), zlib.crc32(data)
    offset = len(out)
    out += struct.pack("<IHHHHHIIIHH", 0x04034b50, 20, 0, method, 0, 0x21,
                       crc, len(stream), size, len(raw), 0) + raw + stream
    central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, 20, 20, 0,
                           method, 0, 0x21, crc, len(stream), size, len(raw),
                           0, 0, 0, 0, 0, offset) + raw
  out += central + struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, len(members),
                               len(members), len(central), len(out), 0)
  with open(path, "wb") as f:
    f.write(out)


class Deflated:
  """A deflate stream of `size` zero bytes, made in milliseconds whatever
  the size (one block of 1 MiB of zeros, flushed so that it stands alone,
  repeated): what a zip bomb holds. `size` is a multiple of 1 MiB."""

  def __init__(self, size):
    block = 2**20
    assert size % block == 0
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(block)
    one = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    self.stream = one * (size // block) + b"\x03\x00"  # An empty last block.
    self.size = size
    crc = 0
    for _ in range(size // block):
      crc = zlib.crc32(zeros, crc)
    self.crc = crc


class Network:
  """Pickles as NVlabs' dnnlib.tflib.network.Network does (its state)."""

  def __init__(self, name, variables, static_kwargs=None, components=None,
               build_module_src="", build_func_name="G_style"):
    self.state = dict(version=4, name=name,
                      static_kwargs=dict(static_kwargs or {}),
                      components=dict(components or {}),
                      build_module_src=build_module_src,
                      build_func_name=build_func_name,
                      variables=list(variables.items()))

  def __getstate__(self):
    return self.state


def save_nvlabs(networks, path, protocol=3):
  """Writes a tuple of `Network`s as NVlabs' pickles (protocol 3 of
  Python 3 by default; NVlabs' own code wrote the highest its Python had),
  NumPy arrays for variables."""
  with fake_modules(**{"dnnlib.tflib.network": {"Network": Network}}):
    with open(path, "wb") as f:
      pickle.dump(tuple(networks), f, protocol=protocol)
