"""The checkpoint readers under fuzzing: valid
stand-in files (a PyTorch zip and legacy file, NVlabs pickles of protocols 3
and 4, a stylegan2-ada-pytorch snapshot) mutated at random, seeded, a fixed number of times each: bytes
flipped, opcodes replaced, integers (sizes, strides, offsets, counts) and
length fields set to boundary values, files cut short or spliced, zip entries
cut or grown. Every mutated file must be read or refused with a one-line
UserInputError that the readers anticipated (no other exception under it),
and must not make the reader allocate more than the file's content
justifies. The readers are safe by construction (nothing from a file reaches
NumPy unchecked), so the files run in this process: a crash ends the test."""

import argparse
import collections
import io
import os
import pickletools
import struct
import tracemalloc

import numpy as np

from tests import checkpoint_writers as writers
from tfgt.errors import UserInputError
from tfgt.importers import checkpoint_files as files

SEED = 36
MUTATIONS_PER_FILE = 250
# Values for integers and lengths: around the sizes of the stand-ins, signs,
# and the widths of the pickle's integer fields.
BOUNDARIES = (0, 1, 2, 3, -1, -2, -5, 15, 16, 17, 99, 255, 256, 2**15,
              2**16, 2**31 - 1, 2**31, -2**31, 2**32, 2**40, 2**42, 2**60,
              2**63 - 1, -2**63, 2**64)
_INT_OPS = {"BININT", "BININT1", "BININT2", "LONG1", "LONG4"}
_SIZED_OPS = {"BINUNICODE": "<I", "SHORT_BINUNICODE": "B",
              "BINUNICODE8": "<Q", "BINBYTES": "<I", "SHORT_BINBYTES": "B",
              "BINBYTES8": "<Q", "BINSTRING": "<i", "SHORT_BINSTRING": "B",
              "BYTEARRAY8": "<Q", "FRAME": "<Q"}
_OPCODES = [op.code.encode("latin1") for op in pickletools.opcodes]


def _state():
  rng = np.random.RandomState(0)
  shared = rng.randn(2 * 3 * 3 + 5).astype(np.float32)
  matrix = rng.randn(4, 6).astype(np.float32)
  return {
      "generator": collections.OrderedDict(
          conv=writers.Tensor(shared, 5, (2, 3, 3)),
          bias=writers.Tensor(shared, 0, (5,)),
          transposed=writers.Tensor(matrix.reshape(-1), 0, (6, 4), (1, 6)),
          half=writers.Tensor.of(rng.randn(3).astype(np.float16)),
          steps=writers.Tensor.of(np.array(7, np.int64)),
          mask=writers.Tensor.of(np.array([True, False]))),
      "args": argparse.Namespace(lr=2e-4, betas=(0.0, 0.999), name="G"),
      "history": [1, 2.5, "three", None, {4, 5}],
  }


def _networks():
  rng = np.random.RandomState(1)
  mapping = writers.Network(
      "G_mapping", {"Dense0/weight": rng.randn(4, 4).astype(np.float32),
                    "Dense0/bias": np.zeros(4, np.float16)},
      static_kwargs=dict(mapping_lrmul=0.01))
  g = writers.Network("G", {"lod": np.float32(0.0),
                            "mask": np.array([True, False])},
                      static_kwargs=dict(resolution=8, fmap_base=32),
                      components=dict(mapping=mapping),
                      build_module_src="raise SystemExit('never run')")
  return (g, writers.Network("D", {"w": np.ones((2, 3), ">f4")}), g)


def _opcodes(data, start=0):
  """[(name, position, argument end)] of the pickle at data[start:]."""
  ops = list(pickletools.genops(io.BytesIO(data[start:])))
  ends = [pos for _, _, pos in ops[1:]] + [ops[-1][2] + 1]
  return [(op.name, start + pos, start + end)
          for (op, _, pos), end in zip(ops, ends)]


def _encode_int(value):
  if -2**31 <= value < 2**31:
    return b"J" + struct.pack("<i", value)
  raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
  return b"\x8a" + bytes([len(raw)]) + raw


def _field(value, fmt):
  """`value` in a length field of struct format `fmt`, wrapped to fit."""
  bits = struct.calcsize(fmt) * 8
  value %= 2**bits
  if fmt.endswith(("i", "q")) and value >= 2**(bits - 1):
    value -= 2**bits
  return struct.pack(fmt, value)


def mutate_pickle(rng, data, ops):
  """One random mutation of the bytes `data`, whose pickle opcodes are
  `ops` (_opcodes); returns (what, mutated bytes)."""
  kind = rng.choice(["flip", "opcode", "integer", "length", "cut", "splice"])
  if kind == "flip":
    at = rng.randint(len(data))
    return f"flip@{at}", data[:at] + bytes([rng.randint(256)]) + data[at + 1:]
  if kind == "opcode":
    _, at, _ = ops[rng.randint(len(ops))]
    code = _OPCODES[rng.randint(len(_OPCODES))]
    return f"opcode@{at}={code!r}", data[:at] + code + data[at + 1:]
  if kind == "integer":
    found = [op for op in ops if op[0] in _INT_OPS]
    if found:
      _, at, end = found[rng.randint(len(found))]
      value = BOUNDARIES[rng.randint(len(BOUNDARIES))]
      return f"int@{at}={value}", data[:at] + _encode_int(value) + data[end:]
  if kind == "length":
    found = [op for op in ops if op[0] in _SIZED_OPS]
    if found:
      name, at, _ = found[rng.randint(len(found))]
      fmt = _SIZED_OPS[name]
      value = BOUNDARIES[rng.randint(len(BOUNDARIES))]
      field = _field(value, fmt)
      return (f"length@{at}={value}",
              data[:at + 1] + field + data[at + 1 + len(field):])
  if kind == "cut":
    at = rng.randint(len(data))
    return f"cut@{at}", data[:at]
  at = rng.randint(len(data))
  span = rng.randint(1, 33)
  if rng.rand() < 0.5:
    return f"delete@{at}+{span}", data[:at] + data[at + span:]
  return f"duplicate@{at}+{span}", data[:at + span] + data[at:]


def _array_bytes(obj, seen, depth=0):
  """The bytes of the distinct arrays in what a reader returned."""
  assert depth <= 66  # The readers' MAX_NESTING (64), and two levels.
  if isinstance(obj, np.ndarray):
    if id(obj) in seen:
      return 0
    seen.add(id(obj))
    return obj.nbytes
  if isinstance(obj, files.NetworkState):
    return (sum(_array_bytes(v, seen, depth + 1)
                for v in obj.variables.values()) +
            _array_bytes(obj.components, seen, depth + 1))
  if isinstance(obj, dict):
    obj = list(obj.values())
  if isinstance(obj, (list, tuple)):
    return sum(_array_bytes(v, seen, depth + 1) for v in obj)
  return 0


def check(load, path, what, failures, outcomes):
  """Reads a mutated file; records in `failures` anything but a read or a
  one-line, anticipated refusal within the memory bound."""
  size = os.path.getsize(path)
  tracemalloc.reset_peak()
  base = tracemalloc.get_traced_memory()[0]
  try:
    result = load(path)
  except UserInputError as e:
    message = str(e)
    if "\n" in message or not message.startswith(path):
      failures.append(f"{what}: not one line naming the file: {message}")
    elif e.__cause__ is not None:
      failures.append(f"{what}: unanticipated {type(e.__cause__).__name__}: "
                      f"{message}")
    outcomes["refused"] += 1
  except Exception as e:  # pylint: disable=broad-except
    failures.append(f"{what}: {type(e).__name__}: {e}")
    return
  else:
    outcomes["read"] += 1
    held = _array_bytes(result, set())
    if held > 2 * size + 2**16:
      failures.append(f"{what}: read {held} bytes of arrays from a file of "
                      f"{size}")
  peak = tracemalloc.get_traced_memory()[1] - base
  if peak > 8 * size + 2**20:
    failures.append(f"{what}: allocated {peak} bytes for a file of {size}")


def _fuzz_files(tmp_path):
  """{name: (loader, the valid file, write(rng) -> (what, mutated path))}."""
  state = _state()
  out = {}

  # PyTorch zip: the object pickle, the storages, or the archive's bytes.
  data_pkl, stored = writers.torch_pickle(state)
  storages = {key: writers.storage_bytes(s) for key, s in stored}
  zip_ops = _opcodes(data_pkl)
  zip_path = str(tmp_path / "zip.pth")
  writers.write_torch_zip(zip_path, data_pkl, storages)
  with open(zip_path, "rb") as f:
    zip_bytes = f.read()

  def zip_case(rng):
    path = str(tmp_path / "zip_mutated.pth")
    choice = rng.rand()
    if choice < 0.7:
      what, mutated = mutate_pickle(rng, data_pkl, zip_ops)
      writers.write_torch_zip(path, mutated, storages)
    elif choice < 0.85:
      key = sorted(storages)[rng.randint(len(storages))]
      cut = dict(storages)
      size = rng.randint(2 * len(cut[key]) + 2)
      cut[key] = (cut[key] * 2 + b"\0")[:size]
      what = f"storage {key} of {size} bytes"
      writers.write_torch_zip(path, data_pkl, cut)
    else:
      at = rng.randint(len(zip_bytes))
      what = f"zip flip@{at}"
      with open(path, "wb") as f:
        f.write(zip_bytes[:at] + bytes([rng.randint(256)]) +
                zip_bytes[at + 1:])
    return what, path

  out["torch_zip"] = (files.load_torch, zip_path, zip_case)

  # PyTorch legacy: its five pickles, the storage counts, or any byte.
  legacy_pkl, legacy_stored = writers.torch_pickle(state, legacy=True)
  legacy_path = str(tmp_path / "legacy.pth")
  writers.write_torch_legacy(legacy_path, legacy_pkl, [
      (key, s.size, writers.storage_bytes(s)) for key, s in legacy_stored])
  with open(legacy_path, "rb") as f:
    legacy = f.read()
  legacy_ops, start = [], 0
  for _ in range(5):  # Magic, protocol, system info, object, storage keys.
    ops = _opcodes(legacy, start)
    legacy_ops += ops
    start = ops[-1][1] + 1
  counts = []
  for _, s in legacy_stored:
    counts.append(start)
    start += 8 + s.nbytes

  def legacy_case(rng):
    path = str(tmp_path / "legacy_mutated.pth")
    if rng.rand() < 0.15:
      at = counts[rng.randint(len(counts))]
      value = BOUNDARIES[rng.randint(len(BOUNDARIES))]
      what = f"count@{at}={value}"
      mutated = legacy[:at] + _field(value, "<q") + legacy[at + 8:]
    else:
      what, mutated = mutate_pickle(rng, legacy, legacy_ops)
    with open(path, "wb") as f:
      f.write(mutated)
    return what, path

  out["torch_legacy"] = (files.load_torch, legacy_path, legacy_case)

  # NVlabs pickles of protocols 3 (the default of Python 3's pickle) and 4
  # (NVlabs' own: frames, memoize, stack globals).
  for protocol in (3, 4):
    path = str(tmp_path / f"nvlabs{protocol}.pkl")
    writers.save_nvlabs(_networks(), path, protocol)
    with open(path, "rb") as f:
      data = f.read()
    ops = _opcodes(data)

    def nvlabs_case(rng, data=data, ops=ops, protocol=protocol):
      what, mutated = mutate_pickle(rng, data, ops)
      path = str(tmp_path / f"nvlabs{protocol}_mutated.pkl")
      with open(path, "wb") as f:
        f.write(mutated)
      return what, path

    out[f"nvlabs_protocol_{protocol}"] = (files.load_nvlabs_pickle, path,
                                          nvlabs_case)

  # A stylegan2-ada-pytorch snapshot: persistence objects whose storages are
  # small legacy torch.save files inside the pickle.
  rng = np.random.RandomState(2)
  inner = writers.Persistent(
      "MappingNetwork", (), dict(z_dim=4, w_dim=4),
      parameters=dict(weight=rng.randn(4, 4).astype(np.float32)),
      buffers=dict(w_avg=np.zeros(4, np.float32)))
  snapshot = dict(G_ema=writers.Persistent(
      "Generator", (), dict(z_dim=4, c_dim=0, w_dim=4),
      buffers=dict(steps=np.array(7, np.int64)),
      modules=dict(mapping=inner), attributes=dict(num_ws=2)),
                  training_set_kwargs=dict(resolution=8))
  persistence_path = str(tmp_path / "persistence.pkl")
  writers.save_persistence(snapshot, persistence_path)
  with open(persistence_path, "rb") as f:
    persistence = f.read()
  persistence_ops = _opcodes(persistence)

  def persistence_case(rng):
    what, mutated = mutate_pickle(rng, persistence, persistence_ops)
    path = str(tmp_path / "persistence_mutated.pkl")
    with open(path, "wb") as f:
      f.write(mutated)
    return what, path

  out["stylegan2_ada_persistence"] = (files.load_persistence_pickle,
                                      persistence_path, persistence_case)
  return out


def test_mutated_files_read_or_are_refused_in_one_line(tmp_path):
  cases = _fuzz_files(tmp_path)
  failures = []
  outcomes = {name: collections.Counter() for name in cases}
  tracemalloc.start()
  try:
    for name, (load, valid, make) in sorted(cases.items()):
      rng = np.random.RandomState([SEED, len(name)])
      check(load, valid, f"{name} unmutated", failures, outcomes[name])
      assert outcomes[name]["read"] == 1, failures
      for i in range(MUTATIONS_PER_FILE):
        what, path = make(rng)
        check(load, path, f"{name} #{i} {what}", failures, outcomes[name])
  finally:
    tracemalloc.stop()
  assert not failures, f"{len(failures)} failures:\n" + "\n".join(
      failures[:20])
  # Mutations that leave a file readable and ones that break it both occur:
  # the fuzzing reaches past the first check.
  for name, counts in outcomes.items():
    assert counts["read"] > 1 and counts["refused"] > MUTATIONS_PER_FILE // 4, (
        name, counts)
