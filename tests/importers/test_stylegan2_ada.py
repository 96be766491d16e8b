"""NVlabs stylegan2-ada-pytorch pickles into tfgt: stand-in snapshots at
tiny width (the torch_utils.persistence structure, class names, constructor
arguments, tensor names and layouts of training/networks.py, written by
tests/checkpoint_writers.py without PyTorch) are imported, and G_ema, G and
D are compared with the NumPy forward pass of StyleGAN2 in
tests/models/test_stylegan2.py on the same tensors."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tests import checkpoint_writers as writers
from tests.models import test_stylegan2 as reference
from tfgt import import_source
from tfgt.errors import UserInputError
from tfgt.importers import checkpoint_files as files
from tfgt.importers import mapping
from tfgt.importers import stylegan2_ada as importer

RESOLUTION = 16
# A conditional model with clamping (NVlabs' defaults otherwise: skip G,
# resnet D), and an unconditional one of the other architectures.
CONDITIONAL = (
    dict(z_dim=6, c_dim=3, w_dim=5, img_resolution=RESOLUTION,
         img_channels=3, mapping_kwargs=dict(num_layers=2),
         synthesis_kwargs=dict(channel_base=64, channel_max=6,
                               num_fp16_res=2, conv_clamp=0.9)),
    dict(c_dim=3, img_resolution=RESOLUTION, img_channels=3,
         channel_base=64, channel_max=6, num_fp16_res=2, conv_clamp=1.5,
         mapping_kwargs=dict(num_layers=2),
         epilogue_kwargs=dict(mbstd_group_size=2, mbstd_num_channels=2)))
UNCONDITIONAL = (
    dict(z_dim=6, c_dim=0, w_dim=5, img_resolution=RESOLUTION,
         img_channels=1, mapping_kwargs=dict(num_layers=3),
         synthesis_kwargs=dict(channel_base=64, channel_max=4,
                               architecture="resnet")),
    dict(c_dim=0, img_resolution=RESOLUTION, img_channels=1,
         channel_base=64, channel_max=4, architecture="skip",
         epilogue_kwargs=dict(mbstd_group_size=4)))
TOLERANCE = 1e-5


def _snapshot(path, g_kwargs, d_kwargs, seed=0, protocol=3):
  snapshot = writers.stylegan2_ada_snapshot(np.random.RandomState(seed),
                                            g_kwargs, d_kwargs)
  writers.save_persistence(snapshot, str(path), protocol=protocol)
  return snapshot


def _params(network):
  """The stand-in's tensors as the reference takes them ("a/b/c",
  NVlabs' layouts, float64)."""
  return {name.replace(".", "/"): value.astype(np.float64)
          for name, value in network.tensors().items()}


def check_generator(generator, network, g_kwargs):
  """The imported generator against the reference on `network`'s tensors,
  with the noise buffers (noise_mode "const")."""
  c_dim = g_kwargs["c_dim"]
  synthesis = g_kwargs["synthesis_kwargs"]
  z = np.random.RandomState(1).randn(4, g_kwargs["z_dim"])
  c = (np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.3, 0.2, 0.5]])
       if c_dim else None)
  expected, w, num_ws = reference.np_generator(
      _params(network), z, c, RESOLUTION,
      g_kwargs["mapping_kwargs"]["num_layers"],
      synthesis.get("architecture", "skip"), synthesis.get("conv_clamp"))
  labels = c if c_dim else np.zeros([4], np.int32)
  actual_w = generator.map(z.astype(np.float32), labels).numpy()
  assert reference.relative_error(actual_w, w) < TOLERANCE
  assert generator.num_ws == num_ws
  ws = tf.tile(actual_w[:, None], [1, generator.num_ws, 1])
  images = generator.synthesize(ws, z.astype(np.float32),
                                training=True).numpy()
  assert images.shape == (4, RESOLUTION, RESOLUTION,
                          g_kwargs["img_channels"])
  assert reference.relative_error(
      images, expected.transpose(0, 2, 3, 1)) < TOLERANCE
  np.testing.assert_array_equal(generator.w_avg.numpy(),
                                network.tensors()["mapping.w_avg"])


def check_discriminator(discriminator, network, d_kwargs):
  c_dim = d_kwargs["c_dim"]
  images = np.random.RandomState(2).uniform(
      -1, 1, [4, RESOLUTION, RESOLUTION, d_kwargs["img_channels"]])
  labels = np.array([0, 1, 2, 1], np.int32)
  epilogue = d_kwargs["epilogue_kwargs"]
  expected, features = reference.np_discriminator(
      _params(network), images.transpose(0, 3, 1, 2),
      np.eye(c_dim)[labels] if c_dim else None, RESOLUTION,
      d_kwargs.get("mapping_kwargs", {}).get("num_layers", 8),
      epilogue.get("mbstd_group_size", 4),
      epilogue.get("mbstd_num_channels", 1),
      d_kwargs.get("architecture", "resnet"), d_kwargs.get("conv_clamp"),
      d_kwargs.get("mapping_kwargs", {}).get("lr_multiplier", 0.01))
  images = images.astype(np.float32)
  logits = discriminator((images, labels)).numpy()
  assert reference.relative_error(logits, expected) < TOLERANCE
  assert reference.relative_error(discriminator.features(images).numpy(),
                                  features) < TOLERANCE


@pytest.mark.parametrize("case", ["conditional", "unconditional"])
def test_imported_networks_compute_nvlabs_stylegan2(case, tmp_path):
  g_kwargs, d_kwargs = (CONDITIONAL if case == "conditional"
                        else UNCONDITIONAL)
  path = tmp_path / "network-snapshot-000100.pkl"
  # NVlabs' Python 3.7 pickled with protocol 3; later Pythons with 4.
  snapshot = _snapshot(path, g_kwargs, d_kwargs,
                       protocol=3 if case == "conditional" else 4)
  imported = importer.import_pytorch(str(path), noise_mode="const")
  check_generator(imported.generator, snapshot["G_ema"], g_kwargs)
  check_discriminator(imported.discriminator, snapshot["D"], d_kwargs)
  options = imported.generator.ctor_kwargs
  synthesis = g_kwargs["synthesis_kwargs"]
  assert options["block_architecture"] == synthesis.get("architecture",
                                                        "skip")
  assert options["num_fp16_res"] == synthesis.get("num_fp16_res", 0)
  assert imported.discriminator.ctor_kwargs["block_architecture"] == (
      d_kwargs.get("architecture", "resnet"))
  if case == "conditional":
    assert imported.class_names == ["class_0", "class_1", "class_2"]
    # G, the raw generator, is the other one of the file.
    raw = importer.import_pytorch(str(path), network="G",
                                  noise_mode="const")
    check_generator(raw.generator, snapshot["G"], g_kwargs)
  else:
    assert imported.class_names == ["network-snapshot-000100"]
  # Every tensor of G_ema and D is in the report: placed, or a filter.
  report = {row.source: row for row in imported.report}
  for network in ("G_ema", "D"):
    for name in snapshot[network].tensors():
      row = report[f"{network}/{name}"]
      assert (row.target is None) == name.endswith("resample_filter")
  assert report["G_ema/synthesis.b8.conv0.resample_filter"].note.startswith(
      "unused: the resampling filter")
  assert report["G_ema/synthesis.b4.const"].target == (
      "generator/synthesis/b4/const")
  assert report["G_ema/mapping.w_avg"].target == "generator/w_avg"
  assert "G_ema/synthesis.b16.conv0.weight" in mapping.format_report(
      imported.report)


def test_the_reader_returns_the_snapshot_as_data(tmp_path):
  path = tmp_path / "s.pkl"
  snapshot = _snapshot(path, *CONDITIONAL)
  data = files.load_persistence_pickle(str(path))
  assert sorted(data) == ["D", "G", "G_ema", "augment_pipe",
                          "training_set_kwargs"]
  g = data["G_ema"]
  assert g.class_name == "Generator" and g.version == 6
  assert g.module_src == writers.NETWORKS_SRC  # Text, never run.
  assert g.init_kwargs["synthesis_kwargs"]["conv_clamp"] == 0.9
  block = g.modules["synthesis"].modules["b8"]
  assert block.class_name == "SynthesisBlock" and block.init_args == (6, 6)
  expected = snapshot["G_ema"].tensors()
  assert list(g.tensors) == list(expected)
  for name, value in expected.items():
    np.testing.assert_array_equal(g.tensors[name], value)
  assert data["augment_pipe"].class_name == "AugmentPipe"
  assert data["training_set_kwargs"]["resolution"] == RESOLUTION


def test_import_command_writes_a_bundle_that_tfgt_load_draws(tmp_path):
  import tfgt  # pylint: disable=g-import-not-at-top
  path = tmp_path / "cifar.pkl"
  _snapshot(path, *CONDITIONAL)
  out = str(tmp_path / "sources" / "cifar")
  imported = import_source.run("stylegan2_ada_pytorch", str(path), out,
                               class_names=["cat", "dog", "frog"])
  assert "stylegan2 16x16x3, 3 class(es) (cat, dog, frog), channel_base " \
      "64" in import_source.summary(imported)
  loaded = tfgt.load(out)
  images = loaded.draw(["dog"], per_class=2, seed=3, as_uint8=False)
  assert images.shape[-3:] == (RESOLUTION, RESOLUTION, 3)
  z = tf.random.stateless_normal([2, 6], [3, 4])
  y = tf.constant([1, 2])
  direct = imported.generator((z, y), training=False).numpy()
  from tfgt.models import bundle  # pylint: disable=g-import-not-at-top
  generator, discriminator, spec = bundle.load(out, with_discriminator=True)
  assert spec["class_names"] == ["cat", "dog", "frog"]
  assert discriminator is not None
  np.testing.assert_array_equal(generator((z, y), training=False).numpy(),
                                direct)
  # --verify would need PyTorch and NVlabs' code: refused, nothing written.
  with pytest.raises(UserInputError, match="NumPy forward pass of the "
                     "original"):
    import_source.run("stylegan2_ada_pytorch", str(path), out + "2",
                      verify=True)
  assert not os.path.exists(out + "2")
  with pytest.raises(UserInputError, match=r"--network='D': a stylegan2-ada-"
                     r"pytorch pickle's generators are G_ema, G"):
    import_source.run("stylegan2_ada_pytorch", str(path), out + "3",
                      network="D")


def _hostile_network(touch):
  """A persistence object whose module source would create `touch`."""
  return writers.Persistent(
      "Exploit", module_src=f"open({str(touch)!r}, 'w').write('ran')\n")


def test_module_source_is_never_run(tmp_path):
  touch = tmp_path / "pwned"
  source = f"open({str(touch)!r}, 'w').write('ran')\n"
  # A network of an unknown class whose source writes a file: refused.
  path = tmp_path / "exploit.pkl"
  writers.save_persistence(dict(G=_hostile_network(touch),
                                G_ema=_hostile_network(touch)), str(path))
  with pytest.raises(UserInputError, match="G_ema is a 'Exploit', not a "
                     "stylegan2-ada-pytorch Generator"):
    import_source.run("stylegan2_ada_pytorch", str(path),
                      str(tmp_path / "out"))
  assert not touch.exists() and not (tmp_path / "out").exists()
  # The same source in a network of the right classes is text: the import
  # reads the tensors and the file still never appears.
  snapshot = writers.stylegan2_ada_snapshot(np.random.RandomState(0),
                                            *UNCONDITIONAL)
  for name in ("G_ema", "D"):
    snapshot[name].module_src = source
  path = tmp_path / "disguised.pkl"
  writers.save_persistence(snapshot, str(path))
  imported = importer.import_pytorch(str(path))
  assert imported.discriminator is not None and not touch.exists()


def test_unknown_globals_and_options_are_refused_in_one_line(tmp_path):
  import pickle  # pylint: disable=g-import-not-at-top

  class Exploit:

    def __reduce__(self):
      return os.system, (f"touch {tmp_path / 'pwned'}",)

  path = tmp_path / "evil.pkl"
  snapshot = writers.stylegan2_ada_snapshot(np.random.RandomState(0),
                                            *UNCONDITIONAL)
  snapshot["G_ema"].state["_init_kwargs"]["hook"] = Exploit()
  writers.save_persistence(snapshot, str(path))
  with pytest.raises(files.UnsafeCheckpointError) as error:
    importer.import_pytorch(str(path))
  message = str(error.value)
  assert "\n" not in message and message.startswith(str(path))
  assert "system, which a stylegan2-ada-pytorch network pickle does not " \
      "hold" in message
  assert not (tmp_path / "pwned").exists()
  # Plain pickles of other things are refused too.
  path.write_bytes(pickle.dumps(Exploit(), protocol=2))
  with pytest.raises(files.UnsafeCheckpointError):
    importer.import_pytorch(str(path))

  def refused(g_kwargs, d_kwargs, match):
    _snapshot(tmp_path / "o.pkl", g_kwargs, d_kwargs)
    with pytest.raises(UserInputError, match=match):
      importer.import_pytorch(str(tmp_path / "o.pkl"))

  g, d = UNCONDITIONAL
  refused(dict(g, synthesis_kwargs=dict(g["synthesis_kwargs"],
                                        fancy_option=1)), d,
          r"G_ema.synthesis_kwargs has the argument\(s\) fancy_option=1")
  refused(dict(g, c_dim=1), dict(d, c_dim=1), r"G_ema.c_dim=1: tfgt's "
          r"StyleGAN2 builds unconditional models \(c_dim 0\) and "
          r"conditional ones")
  refused(dict(g, mapping_kwargs=dict(num_layers=3, activation="relu")), d,
          r"G_ema.mapping_kwargs.activation='relu'")
  refused(dict(g, img_resolution=32), d, r"G_ema and D differ in "
          r"resolution \(32 and 16\)")


def test_tensors_that_do_not_fit_are_refused(tmp_path):
  g, d = UNCONDITIONAL
  snapshot = writers.stylegan2_ada_snapshot(np.random.RandomState(0), g, d)
  path = str(tmp_path / "s.pkl")
  extra = snapshot["G_ema"].state["_modules"]["synthesis"].state[
      "_modules"]["b8"].state["_buffers"]
  extra["extra"] = np.zeros(3, np.float32)
  writers.save_persistence(snapshot, path)
  with pytest.raises(UserInputError, match=r"arrays with no place: "
                     r"G_ema/synthesis.b8.extra \[3\]"):
    importer.import_pytorch(path)
  del extra["extra"]
  # A resampling filter other than the constructor arguments' is refused.
  extra["resample_filter"] = writers._filter((1, 2, 1))  # pylint: disable=protected-access
  writers.save_persistence(snapshot, path)
  with pytest.raises(UserInputError, match=r"G_ema/synthesis/b8/"
                     r"resample_filter \[3, 3\] is not the filter of "
                     r"resample_filter=\[1.0, 3.0, 3.0, 1.0\]"):
    importer.import_pytorch(path)
