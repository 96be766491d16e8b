"""Hyper-Modulation as the official code computes it: the hypernetwork's
scale, AdaFM of the fused upsampling layers, and the methods' choices, each
against a NumPy re-implementation of the official definitions
(GitHub hecoding/Hyper-Modulation: model/hyper_mod.py, model/stylegan.py,
pretrained_converter.py) at tiny and at the 256 px settings' layer shapes."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgt.layers import adafm
from tfgt.layers import hypernetwork
from tfgt.layers import style
from tfgt.methods import hypermod as methods
from tfgt.models import architectures
from tfgt.models import bundle
from tfgt.models import hypermod
from tfgt.models import stylegan

SOURCE_KWARGS = dict(resolution=32, channels=1, dim_z=8, w_dim=8,
                     mapping_layers=2, fmap_base=32, fmap_max=8)


def _leaky(x):
  return np.where(x >= 0, x, 0.2 * x)


def _equal_linear(x, kernel, bias):
  """The official EqualLinear: weight N(0, 1) times sqrt(2 / in)."""
  return x @ (kernel * np.sqrt(2.0 / kernel.shape[0])) + bias


def test_class_network_and_modulator_match_the_official_code():
  num_classes, width, depth, fan_in, fan_out = 3, 64, 4, 5, 7
  c = hypernetwork.ClassNetwork(num_classes, width, depth)
  c.build()
  # Non-zero biases, so that their scale is checked too.
  for variable in c.variables:
    variable.assign(tf.random.stateless_normal(variable.shape, [1, 2]))
  mod = hypernetwork.Modulator(fan_in, fan_out)
  mod.build((None, width))
  for variable in mod.variables:
    variable.assign(tf.random.stateless_normal(variable.shape, [3, 4]))
  weights = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.3, 0.7, 0.0]],
                     np.float32)
  v = c(tf.constant(weights)).numpy()
  gamma, beta, shift = [t.numpy() for t in mod(tf.constant(v))]

  # Official: equal_lr(nn.Embedding) (fan-in = width), then EqualLinear and
  # leaky ReLU 0.2 `depth` times; g and g_b are EqualLinear.
  want = weights @ (c.embedding.numpy() * np.sqrt(2.0 / width))
  for i in range(depth):
    dense = getattr(c, f"dense{i}")
    want = _leaky(_equal_linear(want, dense.kernel.numpy(),
                                dense.bias.numpy()))
  np.testing.assert_allclose(v, want, rtol=2e-5, atol=2e-6)
  pairs = _equal_linear(want, mod.g.kernel.numpy(), mod.g.bias.numpy())
  pairs = pairs.reshape(-1, fan_in, fan_out, 2)
  np.testing.assert_allclose(gamma, pairs[..., 0], rtol=2e-5, atol=2e-5)
  np.testing.assert_allclose(beta, pairs[..., 1], rtol=2e-5, atol=2e-5)
  np.testing.assert_allclose(
      shift, _equal_linear(want, mod.g_b.kernel.numpy(), mod.g_b.bias.numpy()),
      rtol=2e-5, atol=2e-5)


def _spread_at_start(scale, seed):
  c = hypernetwork.ClassNetwork(4, 64, 4, scale, name="C")
  c.build()
  mod = hypernetwork.Modulator(64, 64, scale=scale)
  mod.build((None, 64))
  gamma, beta, _ = mod(c(tf.eye(4)))
  return float(np.std(gamma.numpy())), float(np.std(beta.numpy()))


def test_unit_scale_is_about_four_times_the_official_spread():
  keras.utils.set_random_seed(0)
  official = _spread_at_start("official", 0)
  keras.utils.set_random_seed(0)
  unit = _spread_at_start("unit", 0)
  # The same weights: C with zero biases and leaky ReLUs is positively
  # homogeneous, so sqrt(2 / 64) on the embedding and gain sqrt(2) on g give
  # sqrt(2 / 64) * sqrt(2) = 1/4 of the unit scale's gamma and beta.
  for o, u in zip(official, unit):
    assert 0.2 < o < 0.4 and 0.8 < u < 1.6
    np.testing.assert_allclose(u / o, 4.0, rtol=1e-4)
  with pytest.raises(ValueError, match="scale must be one of"):
    hypernetwork.ClassNetwork(2, scale="equalised")


def _official_fused_adafm(x, w_source, gammas, betas):
  """The official FusedUpsampleAdaFM (bias 0) in NumPy, NCHW.

  x [B, in, H, W]; w_source [in, out, 3, 3] (rosinality's FusedUpsample
  weight); gammas, betas [B, in, out]. Returns [B, out, 2H, 2W].
  """
  # pretrained_converter: the buffer W is the standardised source weight
  # (unbiased std over the 3x3 taps).
  mu = w_source.mean(axis=(2, 3), keepdims=True)
  sd = w_source.std(axis=(2, 3), ddof=1, keepdims=True)
  w = (w_source - mu) / sd
  padded = np.pad(w, [(0, 0), (0, 0), (1, 1), (1, 1)])
  k4 = (padded[:, :, 1:, 1:] + padded[:, :, :-1, 1:] +
        padded[:, :, 1:, :-1] + padded[:, :, :-1, :-1]) / 4
  batch, _, height, width = x.shape
  fan_out = w_source.shape[1]
  out = np.zeros([batch, fan_out, 2 * height + 2, 2 * width + 2])
  for b in range(batch):
    kernel = gammas[b][:, :, None, None] * k4 + betas[b][:, :, None, None]
    # equalize(): fan-in = size(1) * 4 * 4 of the [in, out, 4, 4] kernel.
    kernel = kernel * np.sqrt(2.0 / (fan_out * 16))
    # conv_transpose2d, stride 2: every input pixel adds kernel * x.
    for p in range(4):
      for q in range(4):
        out[b, :, p:p + 2 * height:2, q:q + 2 * width:2] += np.einsum(
            "ihw,io->ohw", x[b], kernel[:, :, p, q])
  return out[:, :, 1:-1, 1:-1]  # padding=1


@pytest.mark.parametrize("fan_in,fan_out,size", [
    (4, 3, 5),        # tiny
    (256, 128, 6),    # the 128x128_Conv0_up of the 256 px settings
    (128, 64, 6),     # 256x256_Conv0_up
])
def test_fused_upsampling_modulation_matches_the_official_layer(
    fan_in, fan_out, size):
  rng = np.random.default_rng(fan_in)
  batch = 2
  x = rng.standard_normal([batch, fan_in, size, size])
  w_source = rng.standard_normal([fan_in, fan_out, 3, 3])
  gammas = rng.standard_normal([batch, fan_in, fan_out])
  betas = rng.standard_normal([batch, fan_in, fan_out])
  want = _official_fused_adafm(x, w_source, gammas, betas)

  # tfgt's kernel of that layer, as the rosinality importer stores it
  # (flipped, [kh, kw, in, out], / 4), after a nearest upsampling.
  kernel = np.transpose(w_source[:, :, ::-1, ::-1], (2, 3, 0, 1)) / 4.0
  kernels = adafm.fused_upsampling_kernel(
      tf.constant(kernel, tf.float32), tf.constant(gammas, tf.float32),
      tf.constant(betas, tf.float32))
  upsampled = style.upsample_nearest(
      tf.constant(np.transpose(x, (0, 2, 3, 1)), tf.float32))
  got = adafm.conv_patches(upsampled, kernels).numpy()
  got = np.transpose(got, (0, 3, 1, 2))
  scale = np.abs(want).max()
  np.testing.assert_allclose(got / scale, want / scale, atol=2e-5)

  # Eq. 4 of the 3x3 kernel before the upsampling cannot give it once beta
  # is not zero, whatever the scale of gamma and beta: the old form differs.
  plain = adafm.modulate_kernel(tf.constant(kernel, tf.float32),
                                tf.constant(gammas, tf.float32),
                                tf.constant(betas, tf.float32))
  old = np.transpose(adafm.conv_patches(upsampled, plain).numpy(),
                     (0, 3, 1, 2))
  ratio = np.sum(old * want) / np.sum(old * old)
  assert np.abs(ratio * old - want).max() > 0.05 * scale


def test_fused_layers_are_those_of_128_px_and_above():
  source = dict(SOURCE_KWARGS, resolution=256, fmap_base=128, fmap_max=4)
  g = hypermod.HyperModGenerator(2, source, class_width=4, class_depth=1)
  fused = {layer.name for layer, mod in g.modulated_layers if mod.fused}
  assert fused == {"128x128_Conv0_up", "256x256_Conv0_up"}
  always = hypermod.HyperModGenerator(2, source, class_width=4,
                                      class_depth=1,
                                      fused_modulation="always")
  assert {layer.name for layer, mod in always.modulated_layers
          if mod.fused} == {f"{2 ** k}x{2 ** k}_Conv0_up"
                            for k in range(3, 9)}
  for options in (dict(fused_modulation="never"), dict(mode="free")):
    g = hypermod.HyperModGenerator(2, source, **options)
    assert not any(mod.fused for _, mod in g.modulated_layers)
  with pytest.raises(ValueError, match="needs mode=\"hypernetwork\""):
    hypermod.HyperModGenerator(2, source, mode="free",
                               fused_modulation="always")


def test_the_generator_draws_the_fused_layers_with_the_official_kernel():
  g = hypermod.HyperModGenerator(2, SOURCE_KWARGS, class_width=4,
                                 class_depth=1, fused_modulation="always")
  g.build()
  z = tf.random.stateless_normal([3, 8], [2, 3])
  labels = tf.constant([0, 1, 1])
  images = g((z, labels), training=False).numpy()
  # The same draw by hand: every upsampling layer convolved with the fused
  # kernel of its label's gamma and beta.
  table = g._kernels_and_shifts(None)
  v = g.class_network(tf.eye(2))
  for (layer, mod), (kernels, _) in zip(g.modulated_layers, table):
    gamma, beta, _ = mod.parameters(v, None)
    if mod.fused:
      want = adafm.fused_upsampling_kernel(layer.conv.kernel, gamma, beta)
    else:
      want = (adafm.modulate_kernel(layer.conv.kernel, gamma, beta) *
              layer.conv.runtime_scale)
    np.testing.assert_array_equal(kernels.numpy(), want.numpy())
  never = hypermod.HyperModGenerator(2, SOURCE_KWARGS, class_width=4,
                                     class_depth=1, fused_modulation="never")
  never.build()
  for a, b in zip(never.variables, g.variables):
    a.assign(b)
  assert np.abs(never((z, labels), training=False).numpy() - images).max() > 1e-3


def test_a_record_without_the_options_builds_the_earlier_model(tmp_path):
  """A model.json written before `scale` and `fused_modulation` existed
  draws what it drew: the earlier unit scale, no fused modulation."""
  g = hypermod.HyperModGenerator(2, SOURCE_KWARGS, class_width=4,
                                 class_depth=1, scale="unit",
                                 fused_modulation="never")
  g.build()
  directory = str(tmp_path / "old")
  bundle.BundleWriter(directory, g, None, ["a", "b"], "hypermod").save(0)
  spec_file = os.path.join(directory, bundle.SPEC_FILE)
  with open(spec_file) as f:
    spec = json.load(f)
  assert spec["generator"]["scale"] == "unit"
  for key in ("scale", "fused_modulation"):
    del spec["generator"][key]
  with open(spec_file, "w") as f:
    json.dump(spec, f)
  loaded, _, _ = bundle.load(directory)
  assert loaded.ctor_kwargs["scale"] == "unit"
  assert loaded.ctor_kwargs["fused_modulation"] == "never"
  z = tf.random.stateless_normal([2, 8], [5, 5])
  y = tf.constant([0, 1])
  np.testing.assert_array_equal(loaded((z, y), training=False).numpy(),
                                g((z, y), training=False).numpy())
  # A new model names the official scale, so the two records differ.
  old = dict(spec["generator"])
  new = dict(num_classes=2, **hypermod.HyperModGenerator(
      2, SOURCE_KWARGS, class_width=4, class_depth=1).ctor_kwargs)
  assert (architectures.recorded_options("hypermod", "generator", old) !=
          architectures.recorded_options("hypermod", "generator", new))


@pytest.fixture(scope="module")
def source_bundle(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("source"))
  g = stylegan.StyleGANGenerator(1, style_mixing_prob=1.0, **SOURCE_KWARGS)
  d = stylegan.StyleGANDiscriminator(1, resolution=32, channels=1,
                                     fmap_base=32, fmap_max=8)
  architectures.build_by_calling(g, d)
  bundle.BundleWriter(directory, g, d, ["merged"], "scratch").save(0)
  return directory


def test_from_rgb_trains_in_ft_and_s_only(source_bundle):
  names = ["merged", "Bag"]

  def trains_from_rgb(**options):
    setup = methods.HyperModulation(source_bundle, class_width=4,
                                    class_depth=1, **options).build(names)
    return any("/FromRGB_lod0/" in v.path for v in setup.d_variables)

  assert not trains_from_rgb()
  assert trains_from_rgb(train_source=True)
  assert trains_from_rgb(train_source=True, from_scratch=True)
  setup = methods.GANMemory(source_bundle).build(names)
  assert setup.d_variables and not any(
      "/FromRGB_lod0/" in v.path for v in setup.d_variables)


def test_self_alignment_aligns_unmixed_w_unless_asked(source_bundle):
  """The source mixes styles in every training call (probability 1); the
  official alignment does not mix, and neither does the loss by default."""
  src = methods.load_stylegan_source(source_bundle)
  g = methods._generator(1, src.generator, dict(class_width=4,
                                                class_depth=1))
  z = tf.random.stateless_normal([4, 8], [7, 7])
  y = tf.zeros([4], tf.int32)
  batch = methods.objectives.Batch(
      images=None, labels=None, z_d=z, y_d=y, z_g=z, y_g=y,
      index=tf.zeros([4], tf.int64), global_batch_size=4, num_replicas=1)
  plain, _ = methods.SelfAlignmentLoss().g_loss(batch, g, None)
  mixed, _ = methods.SelfAlignmentLoss(style_mixing=True).g_loss(batch, g,
                                                                 None)
  # By hand, with unmixed w.
  source = g.source
  ws, _ = source.styles(z, y, training=False)
  noise = source.synthesis_noise(z)
  _, teacher = source.synthesize(ws, z, training=True, return_blocks=True,
                                 noise=noise)
  _, student = g.synthesize(ws, z, y, training=True, return_blocks=True,
                            noise=noise)
  want = sum(np.mean(np.abs(s.numpy() - t.numpy()))
             for s, t in zip(student, teacher))
  np.testing.assert_allclose(float(plain), want, rtol=1e-5)
  assert abs(float(mixed) - float(plain)) > 1e-6


def test_the_methods_default_to_the_official_behaviour(source_bundle):
  """What the table of docs/HYPERMOD.md gives as tfgt's default, as each
  method is built without options (a changed default fails here)."""
  align = methods.SelfAlignment(source_bundle)
  assert align.style_mixing is False
  assert align.options["scale"] == "official"
  assert align.options["fused_modulation"] == "auto"
  assert align.class_network_lr_scale == 0.01  # 2e-5 / 2e-3.
  transfer = methods.HyperModulation(source_bundle)
  assert transfer.options["scale"] == "official"
  assert transfer.options["fused_modulation"] == "auto"
  assert transfer.aligned_weights == "raw"
  # Built without options, the hypernetwork has the official scale.
  g = methods._generator(2, methods.load_stylegan_source(
      source_bundle).generator, dict(transfer.options, class_width=4,
                                     class_depth=1))
  assert g.ctor_kwargs["scale"] == "official"
