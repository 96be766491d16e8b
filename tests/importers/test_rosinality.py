"""rosinality's StyleGAN v1 port into tfgt: stand-in checkpoints at tiny
width (rosinality's names, layouts and torch.save formats) are imported, and
both networks are compared with the NumPy forward passes of its published
model.py in tests/rosinality_reference.py."""

import numpy as np
import pytest
import tensorflow as tf

from tests import checkpoint_writers as writers
from tests import rosinality_reference as ref
from tests.conftest import import_source_cli as _cli
from tfgt.errors import UserInputError
from tfgt.importers import mapping
from tfgt.importers import rosinality as importer
from tfgt.methods import hypermod as hypermod_methods
from tfgt.models import hypermod

# Channels per block, 4 px .. 1024 px: NVlabs' nf with fmap_base 128 and
# fmap_max 16 up to 128 px (1 above, where nf gives 0: those blocks are
# never used at the resolutions tested).
WIDTHS = [16, 16, 16, 8, 4, 2, 1, 1, 1]
DIM, N_MLP = 8, 3


def _tensors(obj):
  if isinstance(obj, dict):
    return {k: _tensors(v) for k, v in obj.items()}
  if isinstance(obj, list):
    return [_tensors(v) for v in obj]
  if isinstance(obj, np.ndarray):
    return writers.Tensor.of(obj)
  return obj


def save(obj, path, legacy=False):
  writers.save_torch(_tensors(obj), str(path), legacy=legacy)


def _noise(step, batch, seed):
  """rosinality's noise: one map [B, 1, s, s] per block."""
  rng = np.random.RandomState(seed)
  return [rng.randn(batch, 1, 4 * 2 ** i, 4 * 2 ** i) for i in range(step + 1)]


def _tfgt_noise(noise):
  """The same maps as tfgt's per-layer list: the block's map for its first
  layer and another map for its second, which block noise must ignore."""
  layers = []
  for n in noise:
    layers += [tf.constant(n.transpose(0, 2, 3, 1), tf.float32),
               tf.constant(100.0 * np.ones_like(n).transpose(0, 2, 3, 1))]
  return layers


def _draw(generator, z, noise):
  """tfgt images [B, C, R, R] of z with the given per-layer noise, linear."""
  ws, _ = generator.styles(tf.constant(z, tf.float32), tf.zeros(
      [z.shape[0]], tf.int32))
  images = generator.synthesize(ws, tf.constant(z, tf.float32),
                                training=True, noise=noise)
  return images.numpy().transpose(0, 3, 1, 2)


@pytest.mark.parametrize("step,legacy", [(2, True), (5, False)])
def test_imported_networks_compute_rosinalitys(step, legacy, tmp_path):
  """16 px (nearest upsampling, box downsampling) from the legacy torch
  format; 128 px (the fused transposed and strided convolutions) from the
  zip format."""
  resolution = 4 * 2 ** step
  ckpt = ref.checkpoint(WIDTHS, DIM, N_MLP, seed=3)
  save(ckpt, tmp_path / "train_step-7.model", legacy=legacy)
  imported = importer.import_rosinality(
      str(tmp_path / "train_step-7.model"), resolution)
  g, d = imported.generator, imported.discriminator
  assert imported.class_names == ["train_step-7"]
  assert (g.resolution, g.dim_z, g.w_dim) == (resolution, DIM, DIM)
  rng = np.random.RandomState(7)
  z = rng.randn(3, DIM)
  noise = _noise(step, 3, seed=8)
  want = ref.generator_forward(ckpt["g_running"], z, noise, step)
  got = _draw(g, z, _tfgt_noise(noise))
  assert np.abs(want).max() > 0.1  # Not a trivially small output.
  np.testing.assert_allclose(got, want, rtol=1e-3, atol=2e-4 * np.abs(
      want).max())
  # The discriminator; a batch of 3 shows the statistic is over the whole
  # batch (NVlabs' groups of 4 would not divide it).
  images = rng.uniform(-1, 1, [3, 3, resolution, resolution])
  want_d = ref.discriminator_forward(ckpt["discriminator"], images, step)
  got_d = d((tf.constant(images.transpose(0, 2, 3, 1), tf.float32),
             tf.zeros([3], tf.int32)), training=False).numpy()
  np.testing.assert_allclose(got_d, want_d[:, 0], rtol=1e-3, atol=1e-3)
  np.testing.assert_allclose(
      d.features(tf.constant(images.transpose(0, 2, 3, 1), tf.float32)),
      ref.features(ckpt["discriminator"], images, step), rtol=1e-3,
      atol=1e-4)
  # The report: every array placed or unused by design.
  table = mapping.format_report(imported.report)
  assert "unused: optimizer state" in table
  assert "g_running/style.1.linear.weight_orig" in table
  assert "unused: the fixed [1, 2, 1] blur" in table
  assert "unused: above the imported resolution" in table
  assert ("fused [in, out, kh, kw]" in table) == (step >= 5)
  # w_avg is the mean w of the mapping network.
  w = ref.mapping(ckpt["g_running"], rng.randn(4000, DIM))
  np.testing.assert_allclose(g.w_avg.numpy(), w.mean(0), atol=0.1 * np.abs(
      w.mean(0)).max() + 0.05)


def test_constant_noise_shares_one_buffer_per_block(tmp_path):
  ckpt = ref.checkpoint(WIDTHS, DIM, N_MLP)
  save(ckpt, tmp_path / "ckpt.model")
  imported = importer.import_rosinality(str(tmp_path / "ckpt.model"), 16,
                                        network="generator",
                                        noise_mode="const")
  g = imported.generator
  buffers = [b.numpy() for b in g.synthesis.const_noise()]
  assert all(np.array_equal(a, b) for a, b in zip(buffers[::2],
                                                  buffers[1::2]))
  z = np.random.RandomState(1).randn(2, DIM)
  noise = [np.tile(b.transpose(0, 3, 1, 2), [2, 1, 1, 1])
           for b in buffers[::2]]
  want = ref.generator_forward(ckpt["generator"], z, noise, 2)
  # noise=None: the generator's own (constant) noise.
  np.testing.assert_allclose(_draw(g, z, None), want, rtol=1e-3,
                             atol=2e-4 * np.abs(want).max())


def test_gan_memory_on_an_imported_source_starts_as_the_source(tmp_path):
  """The modulated layers keep the port's bias before the blur: every class
  of GAN Memory draws the imported source's images at step 0."""
  save(ref.g_state_dict(WIDTHS, DIM, N_MLP, seed=2), tmp_path / "g.model")
  source = importer.import_rosinality(str(tmp_path / "g.model"),
                                      128).generator
  g = hypermod_methods._generator(2, source, dict(mode="free"))  # pylint: disable=protected-access
  assert isinstance(g, hypermod.HyperModGenerator)
  assert g.source.synthesis.layers_in_order[2].bias_before_blur
  z = tf.random.stateless_normal([4, DIM], [1, 2])
  want = source((z, tf.zeros([4], tf.int32)), training=False).numpy()
  got = g((z, tf.constant([0, 1, 1, 0])), training=False).numpy()
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_bad_input_says_what_is_wrong(tmp_path):
  ckpt = ref.checkpoint(WIDTHS, DIM, N_MLP)
  path = tmp_path / "ckpt.model"
  save(ckpt, path)
  with pytest.raises(UserInputError, match="power of 2 in .8, 1024.*got 24"):
    importer.import_rosinality(str(path), 24)
  with pytest.raises(UserInputError, match="holds g_running, generator"):
    importer.import_rosinality(str(path), 16, network="G")
  with pytest.raises(UserInputError, match="unconditional.*2 class names"):
    importer.import_rosinality(str(path), 16, class_names=["a", "b"])
  # A blur that is not the port's fixed kernel.
  g = dict(ckpt["g_running"])
  g["generator.progression.1.conv1.2.weight"] = np.ones([16, 1, 3, 3],
                                                        np.float32)
  save({"g_running": g}, tmp_path / "blur.model")
  with pytest.raises(UserInputError, match="conv1.2.weight is not the "
                     r"\[1, 2, 1\] blur"):
    importer.import_rosinality(str(tmp_path / "blur.model"), 16)
  # A damaged array never becomes a weight.
  g = dict(ckpt["g_running"])
  g["style.3.linear.weight_orig"] = g["style.3.linear.weight_orig"].copy()
  g["style.3.linear.weight_orig"][0, 0] = np.nan
  save(g, tmp_path / "nan.model")
  with pytest.raises(UserInputError, match="style.3.linear.weight_orig holds "
                     "NaN"):
    importer.import_rosinality(str(tmp_path / "nan.model"), 16)
  # Another kind of state dict.
  save({"linear.weight": np.zeros([2, 2], np.float32)},
       tmp_path / "other.model")
  with pytest.raises(UserInputError, match="not a StyledGenerator"):
    importer.import_rosinality(str(tmp_path / "other.model"), 16)


def test_import_command_writes_a_bundle_that_draws_the_same(tmp_path):
  from tfgt.models import bundle  # pylint: disable=g-import-not-at-top
  ckpt = ref.checkpoint(WIDTHS, DIM, N_MLP, seed=4)
  save(ckpt, tmp_path / "train_step-3.model")
  out = str(tmp_path / "sources" / "ffhq")
  missing = _cli("--from=stylegan_rosinality",
                 f"--input={tmp_path / 'train_step-3.model'}", f"--out={out}")
  assert missing.returncode == 2 and "--resolution is required" in (
      missing.stderr)
  assert "Traceback" not in missing.stderr
  done = _cli("--from=stylegan_rosinality",
              f"--input={tmp_path / 'train_step-3.model'}", "--resolution=16",
              f"--out={out}", "--class_names=faces")
  assert done.returncode == 0, done.stderr[-3000:]
  assert "g_running/generator.progression.2.conv2.conv.weight_orig" in (
      done.stdout)
  assert "discriminator/from_rgb.6.conv.weight_orig" in done.stdout
  assert ("stylegan 16x16x3, 1 class(es) (faces), fmap_base 128, fmap_max 16"
          ", discriminator imported") in done.stdout
  generator, discriminator, spec = bundle.load(out, with_discriminator=True)
  assert spec["generator"]["bias_before_blur"] and spec["generator"][
      "block_noise"]
  assert spec["discriminator"]["mbstd_group_size"] is None
  z = np.random.RandomState(2).randn(2, DIM)
  noise = _noise(2, 2, seed=3)
  want = ref.generator_forward(ckpt["g_running"], z, noise, 2)
  np.testing.assert_allclose(_draw(generator, z, _tfgt_noise(noise)), want,
                             rtol=1e-3, atol=2e-4 * np.abs(want).max())
  images = np.random.RandomState(3).uniform(-1, 1, [2, 3, 16, 16])
  np.testing.assert_allclose(
      discriminator((tf.constant(images.transpose(0, 2, 3, 1), tf.float32),
                     tf.zeros([2], tf.int32))).numpy(),
      ref.discriminator_forward(ckpt["discriminator"], images, 2)[:, 0],
      rtol=1e-3, atol=1e-3)


def test_later_layout_and_untrained_blocks(tmp_path):
  """Later versions of the port put a leaky ReLU after from-RGB (keys
  from_rgb.<i>.0.conv.*); a resolution whose block never trained is
  refused with the one the file reached."""
  ckpt = ref.checkpoint(WIDTHS, DIM, N_MLP)
  ckpt["discriminator"] = {k.replace(".conv.", ".0.conv.")
                           if k.startswith("from_rgb.") else k: v
                           for k, v in ckpt["discriminator"].items()}
  for block in range(3, ref.BLOCKS):  # Trained up to 16 px only.
    for i in (1, 2):
      name = f"generator.progression.{block}.noise{i}.weight_orig"
      ckpt["g_running"][name] = np.zeros_like(ckpt["g_running"][name])
  save(ckpt, tmp_path / "later.model")
  imported = importer.import_rosinality(str(tmp_path / "later.model"), 16)
  assert imported.discriminator.from_rgb_activation
  assert "discriminator/from_rgb.6.0.conv.weight_orig" in (
      mapping.format_report(imported.report))
  with pytest.raises(UserInputError, match=r"32 px was never trained.*"
                     r"reached 16 px. Give --resolution=16"):
    importer.import_rosinality(str(tmp_path / "later.model"), 32)
  # A file with the generator only: --network names what it holds.
  save({"generator": ckpt["generator"]}, tmp_path / "g_only.model")
  with pytest.raises(UserInputError, match="no 'g_running' in it; it holds "
                     "generator"):
    importer.import_rosinality(str(tmp_path / "g_only.model"), 16)
