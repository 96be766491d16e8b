"""NVlabs StyleGAN pickles into tfgt: a stand-in pickle at tiny width (the
variable names, layouts and pickle structure of NVlabs' networks) is
imported, and the generator's images are compared with a forward pass of
NVlabs' published G_style (networks_stylegan.py) written here from its
definition: at 8 px, and at 128 px where NVlabs fuses the upsampling."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tests import checkpoint_writers as writers
from tests.conftest import import_source_cli as _cli
from tfgt.errors import UserInputError
from tfgt.importers import mapping
from tfgt.importers import stylegan as importer


def nf(stage, fmap_base, fmap_max):
  return min(int(fmap_base / 2.0 ** stage), fmap_max)


def nvlabs_arrays(resolution, channels, fmap_base, fmap_max, dim_z, w_dim,
                  mapping_layers, seed=0):
  """Random variables named and shaped as NVlabs' G_mapping, G_synthesis,
  D and Gs's dlatent_avg (channels-first where NVlabs is)."""
  rng = np.random.RandomState(seed)
  normal = lambda *shape: rng.randn(*shape).astype(np.float32)
  mapping = {}
  fan_in = dim_z
  for i in range(mapping_layers):
    mapping[f"Dense{i}/weight"] = normal(fan_in, w_dim) * 100  # 1 / lrmul
    mapping[f"Dense{i}/bias"] = normal(w_dim)
    fan_in = w_dim
  synthesis = {"lod": np.float32(0.0)}
  log2 = int(math.log2(resolution))

  def layer(name, c_in, c_out, conv=True):
    if conv:
      synthesis[f"{name}/weight"] = normal(3, 3, c_in, c_out)
    synthesis[f"{name}/Noise/weight"] = normal(c_out)
    synthesis[f"{name}/bias"] = normal(c_out)
    synthesis[f"{name}/StyleMod/weight"] = normal(w_dim, 2 * c_out)
    synthesis[f"{name}/StyleMod/bias"] = normal(2 * c_out)

  c = nf(1, fmap_base, fmap_max)
  synthesis["4x4/Const/const"] = normal(1, c, 4, 4)
  layer("4x4/Const", c, c, conv=False)
  layer("4x4/Conv", c, c)
  for k in range(3, log2 + 1):
    r = 2 ** k
    c_out = nf(k - 1, fmap_base, fmap_max)
    layer(f"{r}x{r}/Conv0_up", c, c_out)
    layer(f"{r}x{r}/Conv1", c_out, c_out)
    c = c_out
  synthesis["ToRGB_lod0/weight"] = normal(1, 1, c, channels)
  synthesis["ToRGB_lod0/bias"] = normal(channels)
  synthesis["ToRGB_lod1/weight"] = normal(1, 1, c, channels)  # Unused.
  for i in range(2 * log2 - 2):
    r = 2 ** (i // 2 + 2)
    synthesis[f"noise{i}"] = normal(1, 1, r, r)
  d = {"lod": np.float32(0.0),
       "FromRGB_lod0/weight": normal(1, 1, channels,
                                     nf(log2 - 1, fmap_base, fmap_max)),
       "FromRGB_lod0/bias": normal(nf(log2 - 1, fmap_base, fmap_max))}
  for k in range(log2, 2, -1):
    r = 2 ** k
    c_in, c_out = nf(k - 1, fmap_base, fmap_max), nf(k - 2, fmap_base,
                                                      fmap_max)
    d[f"{r}x{r}/Conv0/weight"] = normal(3, 3, c_in, c_in)
    d[f"{r}x{r}/Conv0/bias"] = normal(c_in)
    d[f"{r}x{r}/Conv1_down/weight"] = normal(3, 3, c_in, c_out)
    d[f"{r}x{r}/Conv1_down/bias"] = normal(c_out)
  c = nf(1, fmap_base, fmap_max)
  d["4x4/Conv/weight"] = normal(3, 3, c + 1, c)
  d["4x4/Conv/bias"] = normal(c)
  d["4x4/Dense0/weight"] = normal(c * 16, nf(0, fmap_base, fmap_max))
  d["4x4/Dense0/bias"] = normal(nf(0, fmap_base, fmap_max))
  d["4x4/Dense1/weight"] = normal(nf(0, fmap_base, fmap_max), 1)
  d["4x4/Dense1/bias"] = normal(1)
  return mapping, synthesis, d, normal(w_dim)


def write_pickle(path, mapping, synthesis, d, dlatent_avg, **static):
  g = writers.Network(
      "Gs", {"dlatent_avg": dlatent_avg}, static_kwargs=static,
      components=dict(
          mapping=writers.Network("G_mapping", mapping,
                                  static_kwargs=dict(mapping_lrmul=0.01)),
          synthesis=writers.Network("G_synthesis", synthesis)),
      build_module_src="raise RuntimeError('never run')")
  writers.save_nvlabs((g, writers.Network("D", d), g), path)


# ---------------------------------------- NVlabs' G_style, from its paper
def _lrelu(x):
  return tf.where(x >= 0, x, 0.2 * x)


def _conv(x, w, gain=math.sqrt(2.0)):
  """NCHW conv with the equalised-lr scale, SAME padding."""
  w = w * (gain / math.sqrt(np.prod(w.shape[:-1])))
  y = tf.nn.conv2d(tf.transpose(x, [0, 2, 3, 1]), w, 1, "SAME")
  return tf.transpose(y, [0, 3, 1, 2])


def _upscale_conv(x, w, fused):
  w = w * (math.sqrt(2.0) / math.sqrt(np.prod(w.shape[:-1])))
  if not fused:
    x = tf.repeat(tf.repeat(x, 2, axis=2), 2, axis=3)
    y = tf.nn.conv2d(tf.transpose(x, [0, 2, 3, 1]), w, 1, "SAME")
    return tf.transpose(y, [0, 3, 1, 2])
  # upscale2d_conv2d with fused_scale: the kernel padded and summed over
  # its 4 shifts, then a stride-2 transposed convolution.
  w = tf.transpose(w, [0, 1, 3, 2])
  w = tf.pad(w, [[1, 1], [1, 1], [0, 0], [0, 0]])
  w = w[1:, 1:] + w[:-1, 1:] + w[1:, :-1] + w[:-1, :-1]
  nhwc = tf.transpose(x, [0, 2, 3, 1])
  shape = [x.shape[0], x.shape[2] * 2, x.shape[3] * 2, w.shape[2]]
  y = tf.nn.conv2d_transpose(nhwc, w, shape, 2, "SAME")
  return tf.transpose(y, [0, 3, 1, 2])


def _blur(x):
  f = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]).astype(np.float32)
  f /= f.sum()
  c = x.shape[1]
  kernel = np.tile(f[:, :, None, None], [1, 1, c, 1])
  y = tf.nn.depthwise_conv2d(tf.transpose(x, [0, 2, 3, 1]), kernel,
                             [1, 1, 1, 1], "SAME")
  return tf.transpose(y, [0, 3, 1, 2])


def nvlabs_generate(mapping, synthesis, z, resolution, mapping_layers):
  x = z * tf.math.rsqrt(tf.reduce_mean(z * z, axis=1, keepdims=True) + 1e-8)
  for i in range(mapping_layers):
    w = mapping[f"Dense{i}/weight"]
    w = w * (math.sqrt(2.0) / math.sqrt(w.shape[0]) * 0.01)
    x = _lrelu(x @ w + mapping[f"Dense{i}/bias"] * 0.01)
  dlatent = x
  index = 0

  def epilogue(x, name):
    nonlocal index
    x = x + synthesis[f"noise{index}"] * synthesis[f"{name}/Noise/weight"][
        None, :, None, None]
    x = _lrelu(x + synthesis[f"{name}/bias"][None, :, None, None])
    x = x - tf.reduce_mean(x, axis=[2, 3], keepdims=True)
    x = x * tf.math.rsqrt(tf.reduce_mean(x * x, axis=[2, 3], keepdims=True)
                          + 1e-8)
    s = synthesis[f"{name}/StyleMod/weight"]
    style = dlatent @ (s / math.sqrt(s.shape[0])) + synthesis[
        f"{name}/StyleMod/bias"]
    style = tf.reshape(style, [-1, 2, x.shape[1], 1, 1])
    index += 1
    return x * (style[:, 0] + 1) + style[:, 1]

  x = tf.tile(synthesis["4x4/Const/const"], [z.shape[0], 1, 1, 1])
  x = epilogue(x, "4x4/Const")
  x = epilogue(_conv(x, synthesis["4x4/Conv/weight"]), "4x4/Conv")
  for k in range(3, int(math.log2(resolution)) + 1):
    r = 2 ** k
    x = _blur(_upscale_conv(x, synthesis[f"{r}x{r}/Conv0_up/weight"],
                            fused=r >= 128))
    x = epilogue(x, f"{r}x{r}/Conv0_up")
    x = epilogue(_conv(x, synthesis[f"{r}x{r}/Conv1/weight"]), f"{r}x{r}/Conv1")
  x = _conv(x, synthesis["ToRGB_lod0/weight"], gain=1.0) + synthesis[
      "ToRGB_lod0/bias"][None, :, None, None]
  return tf.transpose(x, [0, 2, 3, 1]).numpy()


@pytest.mark.parametrize("resolution", [8, 128])
def test_imported_generator_draws_what_nvlabs_g_style_draws(tmp_path,
                                                            resolution):
  widths = dict(fmap_base=256, fmap_max=8 if resolution == 8 else 4)
  arrays = nvlabs_arrays(resolution, 3, dim_z=8, w_dim=8, mapping_layers=2,
                         **widths)
  path = str(tmp_path / "network-snapshot.pkl")
  # At 8 px every layer has fmap_max channels, so only the pickle's own
  # keyword arguments say what fmap_base was; at 128 px the widths are read
  # from the arrays alone.
  static = dict(fmap_base=256) if resolution == 8 else {}
  write_pickle(path, *arrays, resolution=resolution, **static)
  imported = importer.import_nvlabs(path, noise_mode="const")
  g = imported.generator
  assert g.ctor_kwargs["resolution"] == resolution
  assert (g.ctor_kwargs["fmap_base"], g.ctor_kwargs["fmap_max"]) == (
      widths["fmap_base"], widths["fmap_max"])
  assert imported.class_names == ["network-snapshot"]
  np.testing.assert_array_equal(g.w_avg.numpy(), arrays[3])
  z = tf.random.stateless_normal([3, 8], [1, 2])
  want = np.clip(nvlabs_generate(arrays[0], arrays[1], z, resolution, 2),
                 -1, 1)
  got = g((z, tf.zeros([3], tf.int32)), training=False).numpy()
  np.testing.assert_allclose(got, want, atol=2e-4)
  # Every array is accounted for: used, or unused by design.
  sources = {r.source: r for r in imported.report}
  assert sources["Gs/synthesis/ToRGB_lod1/weight"].target is None
  assert sources["D/4x4/Dense0/weight"].note.startswith("rows (C, H, W)")
  flipped = [r for r in imported.report if "flipped" in r.note]
  assert len(flipped) == (1 if resolution == 128 else 0)
  table = mapping.format_report(imported.report)
  assert "Gs/synthesis/4x4/Const/const" in table
  assert "generator/G_synthesis/const" in table


def test_imported_discriminator_reads_dense0_in_nvlabs_order(tmp_path):
  mapping, synthesis, d, avg = nvlabs_arrays(8, 3, 256, 8, 8, 8, 2)
  path = str(tmp_path / "n.pkl")
  write_pickle(path, mapping, synthesis, d, avg)
  disc = importer.import_nvlabs(path).discriminator
  kernel = {v.path: v for v in disc.variables}[
      "discriminator/4x4_Dense0/kernel"].numpy()
  c = 8
  # NVlabs' row c * 16 + h * 4 + w is tfgt's row (h * 4 + w) * C + c.
  for ch, h, w in ((0, 0, 0), (3, 1, 2), (7, 3, 3)):
    np.testing.assert_array_equal(kernel[(h * 4 + w) * c + ch],
                                  d["4x4/Dense0/weight"][ch * 16 + h * 4 + w])


def test_pickles_that_do_not_fit_are_refused(tmp_path):
  mapping, synthesis, d, avg = nvlabs_arrays(8, 3, 256, 8, 8, 8, 2)
  extra = dict(synthesis, **{"8x8/Conv1/Extra/weight": np.zeros(3)})
  path = str(tmp_path / "extra.pkl")
  write_pickle(path, mapping, extra, d, avg)
  with pytest.raises(UserInputError, match=r"arrays with no place: "
                     r"Gs/synthesis\|8x8/Conv1/Extra/weight|no place"):
    importer.import_nvlabs(path)
  missing = dict(synthesis)
  del missing["8x8/Conv1/Noise/weight"]
  write_pickle(path, mapping, missing, d, avg)
  with pytest.raises(UserInputError, match="variables without an array: "
                     "G_synthesis/8x8_Conv1/Noise/weight"):
    importer.import_nvlabs(path)
  write_pickle(path, mapping, synthesis, d, avg)
  with pytest.raises(UserInputError, match=r"no network 'G_ema'; it has "
                     r"\['D', 'G', 'Gs'\]"):
    importer.import_nvlabs(path, network="G_ema")


def test_import_command_writes_a_bundle_that_draws_the_same(tmp_path):
  from tfgt.models import bundle  # pylint: disable=g-import-not-at-top
  arrays = nvlabs_arrays(8, 3, 256, 8, 8, 8, 2)
  path = str(tmp_path / "ffhq.pkl")
  write_pickle(path, *arrays, fmap_base=256)
  out = str(tmp_path / "sources" / "ffhq")
  done = _cli("--from=stylegan_nvlabs", f"--input={path}", f"--out={out}")
  assert done.returncode == 0, done.stderr[-3000:]
  assert "Gs/synthesis/4x4/Const/const" in done.stdout
  assert "Wrote" in done.stdout and "1 class(es) (ffhq)" in done.stdout
  generator, discriminator, spec = bundle.load(out, with_discriminator=True)
  assert spec["class_names"] == ["ffhq"] and discriminator is not None
  direct = importer.import_nvlabs(path).generator
  z = tf.random.stateless_normal([2, 8], [3, 4])
  y = tf.zeros([2], tf.int32)
  np.testing.assert_array_equal(generator((z, y), training=False).numpy(),
                                direct((z, y), training=False).numpy())
  # The same --out again is refused; nothing is overwritten.
  again = _cli("--from=stylegan_nvlabs", f"--input={path}", f"--out={out}")
  assert again.returncode == 2 and "already holds a model" in again.stderr
  # --verify needs the original framework, which is not here for pickles.
  unverified = _cli("--from=stylegan_nvlabs", f"--input={path}",
                    f"--out={out}2", "--verify")
  assert unverified.returncode == 2
  assert "NumPy forward pass of the original" in unverified.stderr
  assert not (tmp_path / "sources" / "ffhq2").exists()
  # A hostile pickle: refused with the reason, no traceback.
  import pickle  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top

  class Exploit:

    def __reduce__(self):
      return os.system, (f"touch {tmp_path / 'pwned'}",)

  evil = tmp_path / "evil.pkl"
  evil.write_bytes(pickle.dumps(Exploit(), protocol=2))
  refused = _cli("--from=stylegan_nvlabs", f"--input={evil}",
                 f"--out={tmp_path / 'evil_out'}")
  assert refused.returncode == 2 and "Traceback" not in refused.stderr
  assert "system, which a StyleGAN network pickle does not hold" in (
      refused.stderr)
  assert not (tmp_path / "pwned").exists()
  assert not (tmp_path / "evil_out").exists()
