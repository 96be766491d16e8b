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


# --- stylegan2-ada-pytorch pickles: torch_utils.persistence objects. -------

# The module source a stand-in network carries in place of NVlabs'
# training/networks.py. A reader that ran it would fail loudly.
NETWORKS_SRC = ("# Stands in for stylegan2-ada-pytorch's training/networks.py;"
                "\nraise RuntimeError('a persistence module source was run')\n")


class EasyDict(dict):
  """dnnlib.util.EasyDict (pickled as a dict subclass, NEWOBJ + SETITEMS)."""


class Parameter:
  """A torch.nn.Parameter of a `Tensor` (or of an array)."""

  def __init__(self, data):
    self.tensor = data if isinstance(data, Tensor) else _tensor(data)


def _tensor(array):
  """A contiguous `Tensor` of an array, 0-d ones included (Tensor.of makes
  those 1-d)."""
  array = np.asarray(array)
  return Tensor(array.reshape(-1).copy(), 0, array.shape)


class Persistent:
  """An object of NVlabs' torch_utils.persistence (a torch.nn.Module whose
  class was decorated): pickles as `_reconstruct_persistent_obj(meta)` with
  meta = {type: 'class', version: 6, module_src, class_name, state}, state
  being the module's __dict__ (`_parameters`, `_buffers`, `_modules`, the
  hooks, `training`, its attributes, `_init_args`, `_init_kwargs`)."""

  def __init__(self, class_name, init_args=(), init_kwargs=None,
               parameters=(), buffers=(), modules=(), attributes=None,
               module_src=NETWORKS_SRC, version=6):
    od = collections.OrderedDict
    self.class_name, self.module_src, self.version = (class_name, module_src,
                                                      version)
    self.state = dict(
        training=False,
        _parameters=od((k, None if v is None else Parameter(v))
                       for k, v in dict(parameters).items()),
        _buffers=od((k, _tensor(v) if isinstance(v, np.ndarray) else v)
                    for k, v in dict(buffers).items()),
        _non_persistent_buffers_set=set(), _backward_hooks=od(),
        _is_full_backward_hook=None, _forward_hooks=od(),
        _forward_pre_hooks=od(), _state_dict_hooks=od(),
        _load_state_dict_pre_hooks=od(), _modules=od(modules))
    self.state.update(attributes or {})
    self.state["_init_args"] = tuple(init_args)
    self.state["_init_kwargs"] = dict(init_kwargs or {})

  def meta(self):
    return dict(type="class", version=self.version,
                module_src=self.module_src, class_name=self.class_name,
                state=self.state)

  def tensors(self, prefix=""):
    """{dotted name: array} of its parameters and buffers and its modules',
    as NVlabs' state_dict names them."""
    out = {}
    for field in ("_parameters", "_buffers"):
      for k, v in self.state[field].items():
        if v is not None:
          out[prefix + k] = (v.tensor if isinstance(v, Parameter)
                             else v).numpy()
    for k, v in self.state["_modules"].items():
      if v is not None:
        out.update(v.tensors(f"{prefix}{k}."))
    return out


class _StorageBytes:
  """A storage as a plain pickle holds it: torch.storage._load_from_bytes
  of the bytes of a legacy torch.save of the storage alone."""

  def __init__(self, data):
    self.data = data


class _PersistencePickler(pickle.Pickler):

  def __init__(self, file, protocol, names):
    super().__init__(file, protocol=protocol)
    self.names = names

  def reducer_override(self, obj):
    n = self.names
    if isinstance(obj, Persistent):
      return n["reconstruct"], (obj.meta(),)
    if isinstance(obj, Parameter):
      return n["parameter"], (obj.tensor, False, collections.OrderedDict())
    if isinstance(obj, Tensor):
      return n["rebuild"], (self._storage(obj.storage), obj.offset,
                            obj.shape, obj.strides, False,
                            collections.OrderedDict())
    if isinstance(obj, _StorageBytes):
      return n["load_from_bytes"], (obj.data,)
    return NotImplemented

  def _storage(self, storage):
    if isinstance(storage, _StorageBytes):
      return storage
    return _StorageBytes(legacy_storage_bytes(storage, self.names))


def legacy_storage_bytes(storage, names, key="0"):
  """The bytes of a legacy torch.save of one storage (an array, `Declared`
  or `View`), as PyTorch pickles a storage with a plain pickle. Call it
  inside `persistence_modules()`'s context (`names`)."""
  f = io.BytesIO()
  for header in (0x1950a86a20f9469cfc6c, 1001,
                 dict(protocol_version=1001, little_endian=True,
                      type_sizes=dict(short=2, int=4, long=4))):
    pickle.dump(header, f, protocol=2)
  pickler = _TorchPickler(f, names["rebuild"], names["storages"], True)
  pickler.keys[id(storage)] = (key, storage)
  pickler.dump(storage)
  pickle.dump([key], f, protocol=2)
  root = storage.root if isinstance(storage, View) else storage
  count = root.count if isinstance(root, Declared) else root.size
  f.write(struct.pack("<q", count))
  f.write(storage_bytes(root))
  return f.getvalue()


@contextlib.contextmanager
def persistence_modules():
  """The globals of a stylegan2-ada-pytorch pickle, in sys.modules while
  pickling; yields them by role (for `legacy_storage_bytes`)."""
  rebuild, storages = _torch_globals()

  def _rebuild_parameter(*args):
    return args

  def _load_from_bytes(data):
    return data

  def _reconstruct_persistent_obj(meta):
    return meta

  names = dict(rebuild=rebuild, storages=storages,
               parameter=_rebuild_parameter, load_from_bytes=_load_from_bytes,
               reconstruct=_reconstruct_persistent_obj)
  with fake_modules(**{
      "torch": storages,
      "torch._utils": {"_rebuild_tensor_v2": rebuild,
                       "_rebuild_parameter": _rebuild_parameter},
      "torch.storage": {"_load_from_bytes": _load_from_bytes},
      "torch_utils.persistence": {
          "_reconstruct_persistent_obj": _reconstruct_persistent_obj},
      "dnnlib.util": {"EasyDict": EasyDict}}):
    yield names


def save_persistence(obj, path, protocol=3):
  """Writes `obj` (dicts, numbers, `Persistent` networks, `Tensor`s) as
  stylegan2-ada-pytorch's training loop pickles its snapshots (a plain
  pickle.dump; protocol 3 of its Python 3.7, 4 from Python 3.8)."""
  with persistence_modules() as names:
    with open(path, "wb") as f:
      _PersistencePickler(f, protocol, names).dump(obj)


def _filter(taps=(1, 3, 3, 1)):
  f = np.outer(taps, taps).astype(np.float32)
  return f / f.sum()


class _Arrays:
  """Random arrays of a stand-in network (N(0, 0.5^2); affine biases
  around 1, as trained styles are)."""

  def __init__(self, rng):
    self.rng = rng

  def __call__(self, *shape, mean=0.0):
    return (self.rng.standard_normal(shape) * 0.5 + mean).astype(np.float32)


def _fc(a, in_features, out_features, bias_init=0, lr_multiplier=1,
        activation="linear", **kwargs):
  kwargs = dict(kwargs, **({"activation": activation}
                           if activation != "linear" else {}))
  if lr_multiplier != 1:
    kwargs["lr_multiplier"] = lr_multiplier
  if bias_init:
    kwargs["bias_init"] = bias_init
  return Persistent(
      "FullyConnectedLayer", (in_features, out_features), kwargs,
      parameters=dict(weight=a(out_features, in_features),
                      bias=a(out_features, mean=float(bias_init))),
      attributes=dict(activation=activation,
                      weight_gain=np.float64(lr_multiplier /
                                             np.sqrt(in_features)),
                      bias_gain=lr_multiplier))


def _conv(a, in_channels, out_channels, kernel_size, bias=True,
          activation="linear", up=1, down=1, resample_filter=(1, 3, 3, 1),
          conv_clamp=None, **kwargs):
  kwargs = dict(kernel_size=kernel_size, **kwargs)
  for key, value, default in (("bias", bias, True),
                              ("activation", activation, "linear"),
                              ("up", up, 1), ("down", down, 1),
                              ("conv_clamp", conv_clamp, None)):
    if value != default:
      kwargs[key] = value
  if up > 1 or down > 1:
    kwargs["resample_filter"] = list(resample_filter)
  return Persistent(
      "Conv2dLayer", (in_channels, out_channels), kwargs,
      parameters=dict(
          weight=a(out_channels, in_channels, kernel_size, kernel_size),
          **({"bias": a(out_channels)} if bias else {})),
      buffers=dict(resample_filter=_filter(
          resample_filter if up > 1 or down > 1 else (1, 3, 3, 1))),
      attributes=dict(activation=activation, up=up, down=down,
                      conv_clamp=conv_clamp, padding=kernel_size // 2,
                      weight_gain=np.float64(
                          1 / np.sqrt(in_channels * kernel_size**2)),
                      act_gain=np.float64(np.sqrt(2) if activation == "lrelu"
                                          else 1.0),
                      **({} if bias else {"bias": None})))


def _mapping(a, init_kwargs):
  """MappingNetwork(**init_kwargs)."""
  k = dict(dict(num_layers=8, embed_features=None, layer_features=None,
                lr_multiplier=0.01, w_avg_beta=0.995), **init_kwargs)
  z_dim, c_dim, w_dim = k["z_dim"], k["c_dim"], k["w_dim"]
  embed = w_dim if k["embed_features"] is None else k["embed_features"]
  embed = 0 if c_dim == 0 else embed
  hidden = w_dim if k["layer_features"] is None else k["layer_features"]
  features = [z_dim + embed] + [hidden] * (k["num_layers"] - 1) + [w_dim]
  modules = {}
  if c_dim > 0:
    modules["embed"] = _fc(a, c_dim, embed)
  for i in range(k["num_layers"]):
    modules[f"fc{i}"] = _fc(a, features[i], features[i + 1],
                            activation="lrelu",
                            lr_multiplier=k["lr_multiplier"])
  buffers = ({"w_avg": a(w_dim)} if k["num_ws"] is not None and
             k["w_avg_beta"] is not None else {})
  return Persistent(
      "MappingNetwork", (), init_kwargs, buffers=buffers, modules=modules,
      attributes={n: k[n] for n in ("z_dim", "c_dim", "w_dim", "num_ws",
                                    "num_layers", "w_avg_beta")})


def _synthesis_layer(a, in_channels, out_channels, w_dim, resolution, up=1,
                     resample_filter=(1, 3, 3, 1), conv_clamp=None):
  kwargs = dict(w_dim=w_dim, resolution=resolution)
  if up > 1:
    kwargs.update(up=up, resample_filter=list(resample_filter))
  kwargs.update(conv_clamp=conv_clamp, channels_last=False)
  return Persistent(
      "SynthesisLayer", (in_channels, out_channels), kwargs,
      parameters=dict(weight=a(out_channels, in_channels, 3, 3),
                      noise_strength=a(), bias=a(out_channels)),
      buffers=dict(resample_filter=_filter(resample_filter if up > 1
                                           else (1, 3, 3, 1)),
                   noise_const=a(resolution, resolution) * 2),
      modules=dict(affine=_fc(a, w_dim, in_channels, bias_init=1)),
      attributes=dict(resolution=resolution, up=up, use_noise=True,
                      activation="lrelu", conv_clamp=conv_clamp, padding=1,
                      act_gain=np.float64(np.sqrt(2))))


def stylegan2_ada_generator(rng, z_dim, c_dim, w_dim, img_resolution,
                            img_channels, mapping_kwargs=None,
                            synthesis_kwargs=None):
  """A stand-in of stylegan2-ada-pytorch's `Generator(**kwargs)`: the
  module tree, class names, constructor arguments, attributes, tensor
  names and layouts of training/networks.py, with random tensors from
  `rng` (np.random.RandomState). Returns a `Persistent`."""
  a = _Arrays(rng)
  mapping_kwargs = EasyDict(mapping_kwargs or {})
  synthesis_kwargs = EasyDict(synthesis_kwargs or {})
  s = dict(synthesis_kwargs)
  channel_base = s.pop("channel_base", 32768)
  channel_max = s.pop("channel_max", 512)
  num_fp16_res = s.pop("num_fp16_res", 0)
  architecture = s.get("architecture", "skip")
  resample_filter = s.get("resample_filter", (1, 3, 3, 1))
  conv_clamp = s.get("conv_clamp")
  log2 = int(np.log2(img_resolution))
  resolutions = [2**i for i in range(2, log2 + 1)]
  channels = {r: min(channel_base // r, channel_max) for r in resolutions}
  fp16_resolution = max(2**(log2 + 1 - num_fp16_res), 8)
  blocks, num_ws = {}, 0
  for res in resolutions:
    c_in = channels[res // 2] if res > 4 else 0
    c_out = channels[res]
    is_last = res == img_resolution
    parameters, modules = {}, {}
    if c_in == 0:
      parameters["const"] = a(c_out, res, res)
    else:
      modules["conv0"] = _synthesis_layer(a, c_in, c_out, w_dim, res, up=2,
                                          resample_filter=resample_filter,
                                          conv_clamp=conv_clamp)
    modules["conv1"] = _synthesis_layer(a, c_out, c_out, w_dim, res,
                                        conv_clamp=conv_clamp)
    num_conv = 1 + (c_in > 0)
    if is_last or architecture == "skip":
      modules["torgb"] = Persistent(
          "ToRGBLayer", (c_out, img_channels),
          dict(w_dim=w_dim, conv_clamp=conv_clamp, channels_last=False),
          parameters=dict(weight=a(img_channels, c_out, 1, 1),
                          bias=a(img_channels)),
          modules=dict(affine=_fc(a, w_dim, c_out, bias_init=1)),
          attributes=dict(conv_clamp=conv_clamp,
                          weight_gain=np.float64(1 / np.sqrt(c_out))))
    if c_in and architecture == "resnet":
      modules["skip"] = _conv(a, c_in, c_out, 1, bias=False, up=2,
                              resample_filter=resample_filter,
                              channels_last=False)
    num_torgb = int("torgb" in modules)
    blocks[f"b{res}"] = Persistent(
        "SynthesisBlock", (c_in, c_out),
        dict(w_dim=w_dim, resolution=res, img_channels=img_channels,
             is_last=is_last, use_fp16=res >= fp16_resolution, **s),
        parameters=parameters, buffers=dict(
            resample_filter=_filter(resample_filter)), modules=modules,
        attributes=dict(in_channels=c_in, w_dim=w_dim, resolution=res,
                        img_channels=img_channels, is_last=is_last,
                        architecture=architecture,
                        use_fp16=res >= fp16_resolution, channels_last=False,
                        num_conv=num_conv, num_torgb=num_torgb))
    num_ws += num_conv + (num_torgb if is_last else 0)
  synthesis = Persistent(
      "SynthesisNetwork", (), dict(w_dim=w_dim, img_resolution=img_resolution,
                                   img_channels=img_channels,
                                   **synthesis_kwargs),
      modules=blocks,
      attributes=dict(w_dim=w_dim, img_resolution=img_resolution,
                      img_resolution_log2=log2, img_channels=img_channels,
                      block_resolutions=resolutions, num_ws=num_ws))
  mapping = _mapping(a, dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim,
                             num_ws=num_ws, **mapping_kwargs))
  return Persistent(
      "Generator", (), dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim,
                            img_resolution=img_resolution,
                            img_channels=img_channels,
                            mapping_kwargs=mapping_kwargs,
                            synthesis_kwargs=synthesis_kwargs),
      modules=dict(synthesis=synthesis, mapping=mapping),
      attributes=dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim,
                      img_resolution=img_resolution,
                      img_channels=img_channels, num_ws=num_ws))


def stylegan2_ada_discriminator(rng, c_dim, img_resolution, img_channels,
                                **kwargs):
  """A stand-in of stylegan2-ada-pytorch's `Discriminator(c_dim=...,
  img_resolution=..., img_channels=..., **kwargs)` (architecture,
  channel_base, channel_max, num_fp16_res, conv_clamp, cmap_dim,
  block_kwargs, mapping_kwargs, epilogue_kwargs), as
  `stylegan2_ada_generator`. Returns a `Persistent`."""
  a = _Arrays(rng)
  k = dict(dict(architecture="resnet", channel_base=32768, channel_max=512,
                num_fp16_res=0, conv_clamp=None, cmap_dim=None), **kwargs)
  block_kwargs = dict(k.get("block_kwargs", {}))
  epilogue_kwargs = dict(k.get("epilogue_kwargs", {}))
  architecture, conv_clamp = k["architecture"], k["conv_clamp"]
  resample_filter = block_kwargs.get("resample_filter", (1, 3, 3, 1))
  log2 = int(np.log2(img_resolution))
  resolutions = [2**i for i in range(log2, 2, -1)]
  channels = {r: min(k["channel_base"] // r, k["channel_max"])
              for r in resolutions + [4]}
  fp16_resolution = max(2**(log2 + 1 - k["num_fp16_res"]), 8)
  cmap_dim = channels[4] if k["cmap_dim"] is None else k["cmap_dim"]
  cmap_dim = 0 if c_dim == 0 else cmap_dim
  modules, layer_index = {}, 0
  for res in resolutions:
    c_in = channels[res] if res < img_resolution else 0
    tmp, out = channels[res], channels[res // 2]
    layers = {}
    if c_in == 0 or architecture == "skip":
      layers["fromrgb"] = _conv(a, img_channels, tmp, 1, activation="lrelu",
                                trainable=True, conv_clamp=conv_clamp,
                                channels_last=False)
    layers["conv0"] = _conv(a, tmp, tmp, 3, activation="lrelu",
                            trainable=True, conv_clamp=conv_clamp,
                            channels_last=False)
    layers["conv1"] = _conv(a, tmp, out, 3, activation="lrelu", down=2,
                            trainable=True, resample_filter=resample_filter,
                            conv_clamp=conv_clamp, channels_last=False)
    if architecture == "resnet":
      layers["skip"] = _conv(a, tmp, out, 1, bias=False, down=2,
                             trainable=True, resample_filter=resample_filter,
                             channels_last=False)
    use_fp16 = res >= fp16_resolution
    modules[f"b{res}"] = Persistent(
        "DiscriminatorBlock", (c_in, tmp, out),
        dict(resolution=res, first_layer_idx=layer_index, use_fp16=use_fp16,
             **block_kwargs, img_channels=img_channels,
             architecture=architecture, conv_clamp=conv_clamp),
        buffers=dict(resample_filter=_filter(resample_filter)),
        modules=layers,
        attributes=dict(in_channels=c_in, resolution=res,
                        img_channels=img_channels,
                        first_layer_idx=layer_index,
                        architecture=architecture, use_fp16=use_fp16,
                        channels_last=False, num_layers=len(layers)))
    layer_index += len(layers)
  if c_dim > 0:
    modules["mapping"] = _mapping(a, dict(
        z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None,
        **k.get("mapping_kwargs", {})))
  c4 = channels[4]
  group_size = epilogue_kwargs.get("mbstd_group_size", 4)
  num_channels = epilogue_kwargs.get("mbstd_num_channels", 1)
  epilogue = {}
  if architecture == "skip":
    epilogue["fromrgb"] = _conv(a, img_channels, c4, 1, activation="lrelu")
  epilogue["mbstd"] = (Persistent(
      "MinibatchStdLayer", (), dict(group_size=group_size,
                                    num_channels=num_channels),
      attributes=dict(group_size=group_size, num_channels=num_channels))
                       if num_channels > 0 else None)
  epilogue["conv"] = _conv(a, c4 + num_channels, c4, 3, activation="lrelu",
                           conv_clamp=conv_clamp)
  epilogue["fc"] = _fc(a, c4 * 16, c4, activation="lrelu")
  epilogue["out"] = _fc(a, c4, 1 if cmap_dim == 0 else cmap_dim)
  modules["b4"] = Persistent(
      "DiscriminatorEpilogue", (c4,),
      dict(cmap_dim=cmap_dim, resolution=4, **epilogue_kwargs,
           img_channels=img_channels, architecture=architecture,
           conv_clamp=conv_clamp),
      modules=epilogue,
      attributes=dict(in_channels=c4, cmap_dim=cmap_dim, resolution=4,
                      img_channels=img_channels, architecture=architecture))
  init_kwargs = dict(c_dim=c_dim, img_resolution=img_resolution,
                     img_channels=img_channels, **{
                         key: EasyDict(v) if isinstance(v, dict) else v
                         for key, v in kwargs.items()})
  return Persistent(
      "Discriminator", (), init_kwargs, modules=modules,
      attributes=dict(c_dim=c_dim, img_resolution=img_resolution,
                      img_resolution_log2=log2, img_channels=img_channels,
                      block_resolutions=resolutions))


def stylegan2_ada_snapshot(rng, g_kwargs, d_kwargs):
  """What stylegan2-ada-pytorch's training loop pickles: {G, D, G_ema,
  augment_pipe, training_set_kwargs} (G and G_ema of the same constructor
  arguments, different tensors), and a plain dict of the dataset's
  arguments."""
  return dict(
      training_set_kwargs=dict(
          class_name="training.dataset.ImageFolderDataset", path="data.zip",
          use_labels=g_kwargs["c_dim"] > 0, max_size=100, xflip=False,
          resolution=g_kwargs["img_resolution"]),
      G=stylegan2_ada_generator(rng, **g_kwargs),
      D=stylegan2_ada_discriminator(rng, **d_kwargs),
      G_ema=stylegan2_ada_generator(rng, **g_kwargs),
      augment_pipe=Persistent(
          "AugmentPipe", (), dict(xflip=1, rotate90=1, xint=1),
          buffers=dict(p=np.array(0.2, np.float32),
                       Hz_geom=_Arrays(rng)(12)),
          attributes=dict(xflip=1.0, rotate90=1.0, xint=1.0,
                          imgfilter_bands=[1, 1, 1, 1]),
          module_src="# Stands in for training/augment.py\n"))
