"""Writers of PyTorch (zip and legacy) and NVlabs pickle files at byte
level, without PyTorch or dnnlib, for the importer tests.

They stand in for `torch.save` and NVlabs' `pickle.dump` of dnnlib networks:
the same archive layout, pickle protocol, global names and persistent
references, so that the readers meet what real checkpoints hold.
"""

import collections
import contextlib
import io
import pickle
import struct
import sys
import types
import zipfile

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
    if isinstance(obj, np.ndarray):
      key = self.keys.setdefault(id(obj), (str(len(self.keys)), obj))[0]
      storage_type = self.storages[DTYPE_STORAGE[obj.dtype]]
      pid = ("storage", storage_type, key, "cpu", obj.size)
      return pid + (None,) if self.legacy else pid
    return None


def save_torch(obj, path, legacy=False):
  """Writes `obj` (dicts, lists, numbers and `Tensor`s) as torch.save does:
  the zip format, or with legacy=True the format of torch < 1.6."""
  rebuild, storages = _torch_globals()
  with fake_modules(**{"torch._utils": {"_rebuild_tensor_v2": rebuild},
                       "torch": storages}):
    data = io.BytesIO()
    pickler = _TorchPickler(data, rebuild, storages, legacy)
    pickler.dump(obj)
  stored = [(key, array) for key, array in pickler.keys.values()]
  if not legacy:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
      archive.writestr("archive/data.pkl", data.getvalue())
      archive.writestr("archive/byteorder", "little")
      for key, array in stored:
        archive.writestr(f"archive/data/{key}",
                         array.astype(array.dtype.newbyteorder("<")).tobytes())
      archive.writestr("archive/version", "3\n")
    return
  with open(path, "wb") as f:
    pickle.dump(0x1950a86a20f9469cfc6c, f, protocol=2)
    pickle.dump(1001, f, protocol=2)
    pickle.dump(dict(protocol_version=1001, little_endian=True,
                     type_sizes=dict(short=2, int=4, long=4)), f, protocol=2)
    f.write(data.getvalue())
    pickle.dump(sorted(key for key, _ in stored), f, protocol=2)
    for key, array in sorted(stored, key=lambda ka: ka[0]):
      f.write(struct.pack("<q", array.size))
      f.write(array.astype(array.dtype.newbyteorder("<")).tobytes())


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


def save_nvlabs(networks, path):
  """Writes a tuple of `Network`s as NVlabs' pickles (protocol 3 of
  Python 3, NumPy arrays for variables)."""
  with fake_modules(**{"dnnlib.tflib.network": {"Network": Network}}):
    with open(path, "wb") as f:
      pickle.dump(tuple(networks), f, protocol=3)
