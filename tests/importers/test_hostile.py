"""Hostile and broken checkpoint files: each is refused
with a one-line UserInputError that names the file and the fault, before
anything it declares is allocated; none crashes the process or lets NumPy
read memory outside the file's data. The files are made here, byte by byte
where no pickler would write them (tests/checkpoint_writers.py)."""

import collections
import os
import pickle
import re
import struct
import tracemalloc

import numpy as np
import pytest

from tests import checkpoint_writers as writers
from tests.importers import test_biggan as biggan_case
from tests.importers import test_stylegan as stylegan_case
from tests.conftest import import_source_cli as _cli
from tfgt import import_source
from tfgt.errors import UserInputError
from tfgt.importers import checkpoint_files as files

try:
  from numpy._core import multiarray  # pylint: disable=g-import-not-at-top
except ImportError:
  from numpy.core import multiarray  # pylint: disable=g-import-not-at-top


def refused(load, path, match, unsafe=False):
  """`load(path)` raises a one-line UserInputError (UnsafeCheckpointError if
  `unsafe`) that names `path` and matches `match`, having allocated at most
  4 MiB plus twice the file's size meanwhile. Returns the message."""
  size = os.path.getsize(path)
  tracemalloc.start()
  try:
    with pytest.raises(files.UnsafeCheckpointError if unsafe
                       else UserInputError) as error:
      load(str(path))
    peak = tracemalloc.get_traced_memory()[1]
  finally:
    tracemalloc.stop()
  message = str(error.value)
  assert "\n" not in message and message.startswith(str(path)), message
  assert re.search(match, message), message
  assert peak < 4 * 2**20 + 2 * size, (peak, message)
  return message


class _Reduce:
  """Pickles as the given __reduce__ value: a call a hostile file spells
  with names that are all on the readers' list."""

  def __init__(self, *value):
    self.value = value

  def __reduce__(self):
    return self.value


def _dtype(code, state=None):
  return _Reduce(np.dtype, (code, False, True), *([state] if state else []))


def _array(dtype, shape, data):
  """numpy's _reconstruct(ndarray, ...) with the state (shape, dtype,
  data) chosen by the file."""
  return _Reduce(multiarray._reconstruct, (np.ndarray, (0,), b"b"),  # pylint: disable=protected-access
                 (1, shape, dtype, False, data))


def _nvlabs(path, value):
  """An NVlabs pickle whose network G holds `value` as a variable."""
  writers.save_nvlabs((writers.Network("G", {"w": value}),), str(path))
  return path


# --- NumPy dtypes and arrays. ----------------------------------------------

# The dtype state of a structured dtype with one field "a" of `field` type.
# Its flags (last) are 0, which tell NumPy that it holds no objects.
def _fields(field):
  return (3, "|", None, ("a",), {"a": (np.dtype(field), 0)}, 8, 1, 0)


HOSTILE_ARRAYS = {
    # A float64 dtype whose BUILD state declares a field of Python objects,
    # then an array of it from 16 raw bytes (without the dtype checks: a
    # refusal printed, then a segmentation fault).
    "object_field_in_dtype_state": _array(_dtype("f8", _fields("O")), (2,),
                                          b"\x41" * 16),
    # Fields of floats: no object, but a structured dtype all the same.
    "float_field_in_dtype_state": _array(_dtype("f8", _fields("f8")), (2,),
                                         b"\x41" * 16),
    "void_dtype": _array(_dtype("V8"), (2,), bytes(16)),
    "object_dtype_from_bytes": _array(_dtype("O8"), (2,), b"\x41" * 16),
    "object_array_from_a_list": _array(_dtype("f8"), (2,), [1, 2]),
    # NumPy's own pickle of an object array (spelled as a call, so that the
    # torch writer below does not take the array for a storage).
    "numpy_object_array": _Reduce(*np.array([1, None],
                                            dtype=object).__reduce__()),
    "object_scalar": _Reduce(multiarray.scalar, (np.dtype("O"), b"\x41" * 8)),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_ARRAYS))
def test_no_object_or_structured_dtype_comes_out_of_a_pickle(case, tmp_path):
  path = _nvlabs(tmp_path / f"{case}.pkl", HOSTILE_ARRAYS[case])
  refused(files.load_nvlabs_pickle, path,
          r"asks for (a structured NumPy dtype|a NumPy dtype 'V8'|a NumPy "
          r"dtype 'O8'|a NumPy array of Python objects).* which a StyleGAN "
          r"network pickle does not hold\. It was not loaded", unsafe=True)
  # The same inside a PyTorch file (argparse arguments may hold arrays).
  torch_path = tmp_path / f"{case}.pth"
  writers.save_torch({"args": HOSTILE_ARRAYS[case]}, str(torch_path))
  refused(files.load_torch, torch_path, "which a PyTorch checkpoint does not "
          "hold", unsafe=True)


def test_numeric_arrays_and_scalars_still_read(tmp_path):
  values = {"f4": np.arange(6, dtype=">f4").reshape(2, 3),
            "i8": np.asfortranarray(np.arange(6).reshape(2, 3)),
            "b1": np.array([True, False]), "u1": np.arange(3, dtype=np.uint8),
            "f2": np.float16(1.5), "s": np.float32(2.0)}
  for protocol in (2, 3, 4, 5):
    path = str(tmp_path / f"p{protocol}.pkl")
    writers.save_nvlabs((writers.Network("G", values),), path, protocol)
    (net,) = files.load_nvlabs_pickle(path)
    for name, value in values.items():
      np.testing.assert_array_equal(net.variables[name], value)
      assert net.variables[name].dtype == np.asarray(value).dtype.newbyteorder(
          "=")
  # Text other than a numeric dtype code is no array either.
  path = _nvlabs(tmp_path / "text.pkl", _array(_dtype("U2"), (2,), bytes(16)))
  refused(files.load_nvlabs_pickle, path, r"a NumPy dtype 'U2'; checkpoints "
          "hold bool, integer and float arrays")


def _assert_refused_in_one_line(source_format, path, out, reason):
  """`tfgt.import_source` on `path` exits 2 with one line naming the file
  and `reason`, no traceback, and writes nothing."""
  done = _cli(f"--from={source_format}", f"--input={path}", f"--out={out}")
  assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
  assert "Traceback" not in done.stderr
  lines = [l for l in done.stderr.splitlines() if str(path) in l]
  assert len(lines) == 1, done.stderr[-2000:]
  assert reason in lines[0]
  assert not out.exists()


def test_command_refuses_an_object_dtype_in_one_line(tmp_path):
  """Such a file once made this command print a refusal and then die of a
  segmentation fault (exit 139): the file's bytes were used as pointers."""
  mapping, synthesis, d, _ = stylegan_case.nvlabs_arrays(8, 3, 256, 8, 8, 8, 2)
  # w_avg (8 values) as 8 "objects" whose addresses are the file's bytes.
  w_avg = _array(_dtype("f8", _fields("O")), (8,), b"\x41" * 64)
  path = tmp_path / "ffhq.pkl"
  stylegan_case.write_pickle(str(path), mapping, synthesis, d, w_avg,
                             fmap_base=256)
  out = tmp_path / "out"
  _assert_refused_in_one_line("stylegan_nvlabs", path, out,
                              "which a StyleGAN network pickle does not hold")


def test_values_an_importer_cannot_use_are_refused_in_one_line(tmp_path):
  """A pickle the reader accepts, whose keyword arguments the StyleGAN
  importer cannot use (without the checks: a raw ValueError, exit 1)."""
  path = str(tmp_path / "ffhq.pkl")
  stylegan_case.write_pickle(
      path, *stylegan_case.nvlabs_arrays(8, 3, 256, 8, 8, 8, 2),
      fmap_base="x")
  out = tmp_path / "out"
  with pytest.raises(UserInputError) as error:
    import_source.run("stylegan_nvlabs", path, str(out))
  message = str(error.value)
  assert "\n" not in message and message.startswith(path), message
  assert ("the stylegan_nvlabs import failed on this file (ValueError: "
          "invalid literal for int()") in message
  assert not out.exists()


# --- PyTorch tensor views. -------------------------------------------------

STORAGE = np.arange(16, dtype=np.float32)
VIEWS = {
    # (offset, sizes, strides) -> what the refusal says.
    "negative_stride": ((0, (4,), (-4,)),
                        r"tensor 'generator\.w' has a negative stride \(-4\)"),
    "negative_offset": ((-1000, (4,), (1,)),
                        r"'generator\.w' has a negative storage offset "
                        r"\(-1000\)"),
    "far_negative_stride": ((0, (2,), (-2**40,)),
                            r"negative stride \(-1099511627776\)"),
    "size_2_42": ((0, (2**42,), (1,)),
                  r"tensor 'generator\.w' has a size of 4398046511104"),
    "reaching_past_the_end": ((10, (4, 2), (2, 1)), r"'generator\.w' of size "
                              r"\[4, 2\] and stride \[2, 1\] at offset 10 "
                              r"reaches value 17 of a storage of 16"),
    "huge_size": ((0, (2**62,), (1,)), r"has a size of 2\^62\+"),
    "scalar_at_offset_99": ((99, (), ()), r"reaches value 99 of a storage of "
                            "16"),
    "stride_0_repeating_beyond_the_storage": (
        (0, (2**20, 4), (0, 1)), r"hold 4194304 values, more than its 16"),
    "sizes_and_strides_differ": ((0, (4, 4), (4,)), r"2 sizes and 1 strides"),
}


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("case", sorted(VIEWS))
def test_tensor_views_outside_their_storage_are_refused(case, legacy,
                                                        tmp_path):
  (offset, size, stride), match = VIEWS[case]
  path = tmp_path / "G_ema.pth"
  writers.save_torch({"generator": {"w": writers.Tensor(STORAGE, offset, size,
                                                        stride)}},
                     str(path), legacy=legacy)
  refused(files.load_torch, path, "is not a PyTorch checkpoint tfgt can "
          f"read: .*(?:{match})")


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_stride_0_is_read_exactly_within_its_storage(legacy, tmp_path):
  path = str(tmp_path / "G.pth")
  writers.save_torch({"repeated": writers.Tensor(STORAGE, 3, (4,), (0,)),
                      "rows": writers.Tensor(STORAGE, 0, (2, 4), (0, 1)),
                      "size_one": writers.Tensor(STORAGE, 12, (1, 4),
                                                 (2**40, 1))},
                     path, legacy=legacy)
  got = files.load_torch(path)
  np.testing.assert_array_equal(got["repeated"], [3, 3, 3, 3])
  np.testing.assert_array_equal(got["rows"], [[0, 1, 2, 3]] * 2)
  np.testing.assert_array_equal(got["size_one"], [[12, 13, 14, 15]])
  # Views of one storage that together hold more values than it are not a
  # checkpoint's (tied weights, the same view twice, are read once).
  writers.save_torch({"a": writers.Tensor(STORAGE), "tied":
                      writers.Tensor(STORAGE),
                      "b": writers.Tensor(STORAGE, 0, (4, 4))},
                     path, legacy=legacy)
  refused(files.load_torch, path, r"the tensors of storage '0' \(the last "
          r"tensor 'b'\) hold 32 values, more than its 16")


def test_legacy_storage_views_stay_inside_their_root(tmp_path):
  path = str(tmp_path / "old.pth")
  root = np.arange(10, dtype=np.float32)
  writers.save_torch({"w": writers.Tensor(writers.View(root, 4, 6), 1, (2,),
                                          (2,))}, path, legacy=True)
  np.testing.assert_array_equal(files.load_torch(path)["w"], [5, 7])
  writers.save_torch({"w": writers.Tensor(writers.View(root, 8, 6), 0, (2,))},
                     path, legacy=True)
  refused(files.load_torch, path, r"a view of 6 values at 8 of storage '0', "
          "which holds 10")
  writers.save_torch({"w": writers.Tensor(writers.View(root, 4, 2), 0, (3,))},
                     path, legacy=True)
  refused(files.load_torch, path, r"reaches value 2 of a storage of 2")


def test_command_refuses_a_negative_stride_in_one_line(tmp_path):
  """Without the view checks this import succeeded, and the bundle's bias held
  the importing process's memory from before the storage."""
  state = {k: writers.Tensor.of(v) for k, v in biggan_case.g_state_dict(
      32, 4, 3, 16, 8, False, False).items()}
  bias = np.ascontiguousarray(state["linear.bias"].numpy())
  state["linear.bias"] = writers.Tensor(bias, 0, bias.shape, (-1,))
  path = tmp_path / "G_ema.pth"
  writers.save_torch(state, str(path))
  out = tmp_path / "out"
  _assert_refused_in_one_line("biggan_pytorch", path, out,
                              "tensor 'linear.bias' has a negative stride (-1)")


# --- Storage sizes. --------------------------------------------------------


def test_zip_storages_are_checked_against_entries_and_file_before_reading(
    tmp_path):
  def bomb(path, numel, inflated):
    data_pkl, _ = writers.torch_pickle({"w": writers.Tensor(writers.Declared(
        np.zeros(1, np.float32), numel=numel), 0, (4,))})
    writers.write_zip(str(path), [("archive/data.pkl", data_pkl),
                                  ("archive/data/0",
                                   writers.Deflated(inflated))])
    return path

  # 3 GiB from a 3 MB file: without the size checks, 6 GiB of memory before any
  # check. Refused from the declared size alone.
  path = bomb(tmp_path / "bomb.pth", 3 * 2**28, 3 * 2**30)
  assert os.path.getsize(path) < 4 * 2**20
  refused(files.load_torch, path, r"storage '0' declares 3221225472 bytes "
          r"\(805306368 FloatStorage values\), more than the 2147483648 tfgt "
          r"reads as one storage \(MAX_STORAGE_BYTES")
  # 64 MiB, under that bound, from a file of 70 KB: more than the file holds,
  # which torch.save's uncompressed entries never are.
  path = bomb(tmp_path / "small_bomb.pth", 2**24, 2**26)
  refused(files.load_torch, path, r"its storages declare 671\d\d\d\d\d bytes "
          r"in all, more than the file's \d+: torch.save stores them "
          r"uncompressed, so this archive inflates")
  # A storage entry shorter than its declared values (a cut download).
  path = tmp_path / "short.pth"
  writers.save_torch({"w": writers.Tensor(writers.Declared(STORAGE, numel=100),
                                          0, (4,))}, str(path))
  refused(files.load_torch, path, r"storage archive/data/0 holds 64 bytes, "
          r"fewer than the 400 of its 100 FloatStorage values: the file is "
          "truncated")


@pytest.mark.parametrize("count,match", [
    (2**60, r"storage '0' is stored with 2\^60\+ values; the object declares "
            "16"),
    (-5, r"storage '0' is stored with -5 values; the object declares 16"),
    (17, r"is stored with 17 values; the object declares 16"),
])
def test_legacy_storage_counts_are_checked_before_reading(count, match,
                                                          tmp_path):
  path = tmp_path / "legacy.pth"
  writers.save_torch({"w": writers.Tensor(writers.Declared(STORAGE,
                                                           count=count))},
                     str(path), legacy=True)
  refused(files.load_torch, path, match)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_declared_storage_sizes_are_bounded(legacy, tmp_path):
  path = tmp_path / "huge.pth"
  for numel, match in ((2**60, r"declares 2\^62\+ bytes"),
                       (-5, r"storage '0' declares -5 values"),
                       (2**20, "fewer than the 4194304|declare 4194\\d+ "
                               "bytes, more than the \\d+ left")):
    writers.save_torch({"w": writers.Tensor(writers.Declared(
        STORAGE, numel=numel), 0, (4,))}, str(path), legacy=legacy)
    refused(files.load_torch, path, match)


# --- Malformed pickles. ----------------------------------------------------


def _deep_dict(depth):
  ops = writers.Ops()
  for _ in range(depth):
    ops.empty_dict().text("a")
  ops.empty_dict()
  for _ in range(depth):
    ops.setitem()
  return ops.stop()


def _self_containing_dict():
  return (writers.Ops().empty_dict().raw(b"q\x00").text("a").raw(b"h\x00")
          .setitem().stop())


def _deep_tuple_key(depth):
  # Python hashes nested tuples recursively without a depth check: a dict
  # key 100,000 tuples deep ends the process (C stack overflow).
  return (writers.Ops().empty_dict().empty_tuple().raw(b"\x85" * depth)
          .none().setitem().stop())


MALFORMED = {
    "ext1_opcode": (writers.Ops().raw(b"\x82\x01").stop(),
                    r"opcode EXT1 at byte \d+ asks for an object from copyreg's "
                    "extension registry"),
    "inst_opcode": (writers.Ops().raw(b"ios\nsystem\n").stop(),
                    r"opcode INST at byte \d+ asks for an object made by "
                    "calling a class"),
    "reconstruct_of_an_ordered_dict": (
        pickle.dumps(_Reduce(multiarray._reconstruct,  # pylint: disable=protected-access
                             (collections.OrderedDict, (0,), b"b")), 2),
        r"NumPy's _reconstruct asked to make a collections\.OrderedDict, not "
        "an array"),
    "numpy_scalar_from_2_bytes": (
        pickle.dumps(_Reduce(multiarray.scalar, (np.dtype("f4"), b"\0\1")), 2),
        r"a NumPy float32 scalar of 2 bytes \(it has 4\)"),
    "dict_nested_5000_deep": (_deep_dict(5000),
                              "its containers nest deeper than 64 levels"),
    "dict_that_contains_itself": (_self_containing_dict(),
                                  r"its containers nest deeper than 64 "
                                  r"levels \(or contain themselves\)"),
    "tuple_key_100000_deep": (_deep_tuple_key(100_000),
                              "tuples nest deeper than 64 levels"),
    "bytes_of_a_terabyte": (
        writers.Ops(4).raw(b"\x8e" + struct.pack("<Q", 2**40)).stop(),
        r"an item of 1099511627776 bytes at byte \d+ runs past the end"),
    # (In the legacy format the list of storages follows.)
    "no_stop": (writers.Ops().empty_dict().stop()[:-1],
                r"runs past the end of the data|stops at byte \d+ with 2 "
                "objects, not one"),
    "not_an_opcode": (writers.Ops().raw(b"\xff").stop(),
                      r"byte 0xff at byte \d+ is not a pickle opcode"),
    "call_of_a_string": (writers.Ops().text("os.system").empty_tuple()
                         .reduce().stop(),
                         "the pickle calls str, which it cannot call"),
    "state_of_a_list": (writers.Ops().empty_list().empty_dict().build().stop(),
                        "the pickle sets the state of a list"),
    "unhashable_key": (writers.Ops().empty_dict().empty_list().none()
                       .setitem().stop(),
                       r"opcode SETITEM at byte \d+: TypeError: unhashable"),
}


@pytest.mark.parametrize("fmt", ["nvlabs", "torch_zip", "torch_legacy"])
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_pickles_are_refused_in_one_line(case, fmt, tmp_path):
  data, match = MALFORMED[case]
  if fmt == "nvlabs":
    path = tmp_path / "network.pkl"
    path.write_bytes(data)
    refused(files.load_nvlabs_pickle, path, "is not a StyleGAN network pickle "
            f"tfgt can read: .*(?:{match})")
    return
  path = tmp_path / "G.pth"
  if fmt == "torch_zip":
    writers.write_torch_zip(str(path), data, {})
  else:
    writers.write_torch_legacy(str(path), data, [])
  refused(files.load_torch, path, "is not a PyTorch checkpoint tfgt can "
          f"read: .*(?:{match})")


def test_pickles_are_bounded_in_opcodes(tmp_path, monkeypatch):
  monkeypatch.setattr(files, "MAX_PICKLE_OPS", 1000)
  path = tmp_path / "long.pkl"
  path.write_bytes(writers.Ops().raw(b"N0" * 600).none().stop())
  refused(files.load_nvlabs_pickle, path, r"the pickle has more than 1000 "
          r"opcodes \(MAX_PICKLE_OPS\)")


# --- stylegan2-ada-pytorch pickles (persistence objects). ------------------


def _persistence(path, tensor):
  """A stylegan2-ada-pytorch pickle whose G_ema holds `tensor` as a
  buffer (its storage pickled as the bytes of a legacy torch.save)."""
  writers.save_persistence(dict(G_ema=writers.Persistent(
      "Generator", buffers={"w": tensor})), str(path))
  return path


def test_persistence_pickle_storages_are_checked_before_reading(tmp_path):
  path = tmp_path / "snapshot.pkl"
  for tensor, match in (
      # A storage that declares 2^60 values (and stores 16).
      (writers.Tensor(writers.Declared(STORAGE, numel=2**60), 0, (4,)),
       r"storage '0' declares 2\^62\+ bytes"),
      # One that declares more values than its bytes hold.
      (writers.Tensor(writers.Declared(STORAGE, numel=2**20), 0, (4,)),
       r"storage '0' declares 4194304 bytes \(1048576 FloatStorage values\); "
       r"64 follow"),
      # A count before the values that is not the declared one.
      (writers.Tensor(writers.Declared(STORAGE, count=2**60), 0, (4,)),
       r"storage '0' is stored with 2\^60\+ values; its reference declares "
       "16"),
      # A view that reaches past its storage.
      (writers.Tensor(STORAGE, 10, (4, 4)),
       r"tensor 'G_ema.state._buffers.w' of size \[4, 4\] .* reaches value "
       r"25 of a storage of 16")):
    _persistence(path, tensor)
    refused(files.load_persistence_pickle, path, "is not a stylegan2-ada-"
            f"pytorch network pickle tfgt can read: {match}")
  # The same pickle with a tensor that fits is read.
  _persistence(path, writers.Tensor(STORAGE, 4, (3, 4)))
  data = files.load_persistence_pickle(str(path))
  np.testing.assert_array_equal(data["G_ema"].tensors["w"],
                                STORAGE[4:].reshape(3, 4))


def test_persistence_pickle_names_outside_the_format_are_refused(tmp_path):
  path = tmp_path / "snapshot.pkl"
  # exec as the "reconstruct" function, and an unknown persistence helper.
  for module, name in (("builtins", "exec"),
                       ("torch_utils.persistence", "_src_to_module")):
    path.write_bytes(writers.Ops().global_(module, name).mark().text(
        "open('pwned', 'w')").tuple().reduce().stop())
    refused(files.load_persistence_pickle, path, f"asks for the Python "
            f"object {module}.{name}, which a stylegan2-ada-pytorch network "
            "pickle does not hold", unsafe=True)
  # A persistence object described by other than a dict.
  path.write_bytes(writers.Ops().global_(
      "torch_utils.persistence", "_reconstruct_persistent_obj").mark().text(
          "open('pwned', 'w')").tuple().reduce().stop())
  refused(files.load_persistence_pickle, path, "described by a str, not by "
          "a dict")
  # Persistent references belong to torch.save files, not to these.
  path.write_bytes(writers.Ops().text("x").persid().stop())
  refused(files.load_persistence_pickle, path, "a persistent reference")
