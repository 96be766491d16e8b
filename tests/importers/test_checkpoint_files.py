"""The safe readers of public checkpoint files (tfgt.importers.
checkpoint_files): PyTorch zip and legacy files and NVlabs pickles written
at byte level by tests/checkpoint_writers.py, and crafted pickles that would
run a command, refused before it runs."""

import collections
import os
import pickle
import zipfile

import numpy as np
import pytest

from tests import checkpoint_writers as writers
from tfgt.errors import UserInputError
from tfgt.importers import checkpoint_files as files


def _state():
  rng = np.random.RandomState(0)
  shared = rng.randn(2 * 3 * 3 * 3 + 5).astype(np.float32)
  matrix = rng.randn(4, 6).astype(np.float32)
  return collections.OrderedDict(
      # A conv weight [out, in, kh, kw] in the middle of a shared storage.
      conv=writers.Tensor(shared, 5, (2, 3, 3, 3)),
      bias=writers.Tensor(shared, 0, (5,)),
      # A transposed view: strides that are not row-major.
      transposed=writers.Tensor(matrix.reshape(-1), 0, (6, 4), (1, 6)),
      half=writers.Tensor.of(rng.randn(3).astype(np.float16)),
      steps=writers.Tensor.of(np.array(7, np.int64)),
      mask=writers.Tensor.of(np.array([True, False])),
  ), dict(conv=shared[5:].reshape(2, 3, 3, 3), bias=shared[:5],
          transposed=matrix.T, half=None, steps=np.array(7), mask=None)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_torch_files_read_without_torch(tmp_path, legacy):
  state, want = _state()
  path = str(tmp_path / "G_ema.pth")
  writers.save_torch({"generator": state, "iteration": 12,
                      "betas": (0.0, 0.999)}, path, legacy=legacy)
  assert zipfile.is_zipfile(path) != legacy
  loaded = files.load_torch(path)
  assert loaded["iteration"] == 12 and loaded["betas"] == (0.0, 0.999)
  arrays = files.flatten(loaded)
  assert list(arrays) == [f"generator.{k}" for k in state]
  for key, tensor in state.items():
    got = arrays[f"generator.{key}"]
    np.testing.assert_array_equal(got, tensor.numpy())
    assert got.dtype == tensor.storage.dtype and got.shape == tensor.shape
    if want[key] is not None:
      np.testing.assert_array_equal(got, want[key])


def test_nvlabs_pickle_reads_variables_without_running_its_source(tmp_path):
  marker = tmp_path / "ran"
  source = f"import os\nos.system('touch {marker}')\n"
  mapping = writers.Network(
      "G_mapping", {"Dense0/weight": np.ones((4, 4), np.float32)},
      build_module_src=source, build_func_name="G_mapping")
  g = writers.Network("G", {"lod": np.float32(0.0)},
                      static_kwargs=dict(resolution=8, fmap_base=32),
                      components=dict(mapping=mapping),
                      build_module_src=source)
  d = writers.Network("D", {"FromRGB_lod0/weight":
                            np.zeros((1, 1, 3, 4), np.float32)})
  path = str(tmp_path / "network.pkl")
  writers.save_nvlabs((g, d, g), path)
  loaded_g, loaded_d, loaded_gs = files.load_nvlabs_pickle(path)
  assert loaded_g.name == "G" and loaded_d.name == "D"
  assert loaded_g.static_kwargs == dict(resolution=8, fmap_base=32)
  sub = loaded_g.components["mapping"]
  np.testing.assert_array_equal(sub.variables["Dense0/weight"], np.ones((4, 4)))
  assert loaded_d.variables["FromRGB_lod0/weight"].shape == (1, 1, 3, 4)
  assert loaded_gs.build_module_src == source  # Kept as text...
  assert not marker.exists()  # ...and never run.


class _Exploit:
  """Pickles as a call of os.system, as a hostile checkpoint would."""

  def __init__(self, command):
    self.command = command

  def __reduce__(self):
    return os.system, (self.command,)


def test_pickles_that_would_run_code_are_refused(tmp_path):
  marker = tmp_path / "pwned"
  payload = pickle.dumps({"weight": _Exploit(f"touch {marker}")}, protocol=2)
  # A torch zip file whose data.pkl calls os.system.
  zipped = tmp_path / "evil.pth"
  with zipfile.ZipFile(zipped, "w") as archive:
    archive.writestr("archive/data.pkl", payload)
    archive.writestr("archive/version", "3\n")
  with pytest.raises(files.UnsafeCheckpointError,
                     match=r"asks for the Python object (posix|os)\.system, "
                     "which a PyTorch checkpoint does not hold"):
    files.load_torch(str(zipped))
  # The same as an NVlabs pickle.
  pkl = tmp_path / "evil.pkl"
  pkl.write_bytes(payload)
  with pytest.raises(files.UnsafeCheckpointError,
                     match="which a StyleGAN network pickle does not hold"):
    files.load_nvlabs_pickle(str(pkl))
  # And in the legacy format, after a valid header.
  legacy = tmp_path / "evil_legacy.pth"
  with open(legacy, "wb") as f:
    for value in (0x1950a86a20f9469cfc6c, 1001, {"little_endian": True}):
      pickle.dump(value, f, protocol=2)
    f.write(payload)
  with pytest.raises(files.UnsafeCheckpointError, match="system"):
    files.load_torch(str(legacy))
  assert not marker.exists()


def test_files_that_are_not_checkpoints(tmp_path):
  junk = tmp_path / "junk.pth"
  junk.write_bytes(b"\x00not a checkpoint" * 10)
  with pytest.raises(UserInputError, match="not a PyTorch checkpoint"):
    files.load_torch(str(junk))
  with pytest.raises(UserInputError, match="No checkpoint file at"):
    files.load_torch(str(tmp_path / "missing.pth"))
  # A zip format file whose storage is cut short.
  state, _ = _state()
  path = str(tmp_path / "cut.pth")
  writers.save_torch(state, path)
  with zipfile.ZipFile(path) as archive:
    entries = {n: archive.read(n) for n in archive.namelist()}
  entries["archive/data/0"] = entries["archive/data/0"][:8]
  with zipfile.ZipFile(path, "w") as archive:
    for name, data in entries.items():
      archive.writestr(name, data)
  with pytest.raises(UserInputError, match="truncated"):
    files.load_torch(path)
