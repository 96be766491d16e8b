"""Hyper-Modulation and GAN Memory on an unconditional StyleGAN2: the
per-class kernel convolution against the shared-kernel one, GAN Memory's
exact start, the hypernetwork's gradients, the conditional D, and both
stages through the trainer with sampling and export, at tiny width."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import FASHION_MNIST_DIR
from tests.conftest import assert_from_z_matches
from tests.conftest import events
from tests.methods.test_hypermod import check_starts_as_the_source
from tests.methods.test_hypermod import check_hypernetwork_generator
from tests.methods.test_hypermod import train_stage
from tfgt import evaluate as evaluate_lib
from tfgt import export as export_lib
from tfgt import sample as sample_lib
from tfgt.errors import UserInputError
from tfgt.layers import stylegan2_ops as ops
from tfgt.methods import hypermod as methods
from tfgt.models import architectures
from tfgt.models import bundle
from tfgt.models import hypermod
from tfgt.models import stylegan2

# 32 px (Fashion-MNIST's smallest), 4 to 8 channels.
SOURCE_KWARGS = dict(resolution=32, channels=1, dim_z=8, w_dim=8,
                     mapping_layers=2, channel_base=128, channel_max=8)
D_KWARGS = dict(resolution=32, channels=1, channel_base=128, channel_max=8)
TINY_HYPER = dict(class_width=6, class_depth=2)


def _source(num_classes=1):
  g = stylegan2.StyleGAN2Generator(num_classes, **SOURCE_KWARGS)
  d = stylegan2.StyleGAN2Discriminator(num_classes, **D_KWARGS)
  architectures.build_by_calling(g, d)
  # Noise, biases and w_avg away from their zero start, so that the bias
  # shift, the noise and truncation are all visible.
  for i, layer in enumerate(g.synthesis.conv_layers()):
    layer.noise_strength.assign(0.3)
    layer.bias.assign(tf.random.stateless_normal(layer.bias.shape, [i, 1]))
  g.w_avg.assign(tf.random.stateless_normal([8], [0, 9]))
  return g, d


@pytest.fixture(scope="module")
def source_bundle(tmp_path_factory):
  """A random unconditional StyleGAN2 bundle (one merged class)."""
  directory = str(tmp_path_factory.mktemp("source2"))
  g, d = _source()
  bundle.BundleWriter(directory, g, d, ["merged"], "scratch").save(0)
  return directory


@pytest.mark.parametrize("up", [1, 2])
def test_per_class_kernels_equal_the_shared_kernel_convolution(up):
  x = tf.random.stateless_normal([5, 4, 4, 3], [0, up])
  styles = tf.random.stateless_normal([5, 3], [1, up]) + 1.0
  kernels = tf.random.stateless_normal([3, 3, 3, 3, 2], [2, up])
  labels = tf.constant([2, 0, 2, 1, 2])
  f = ops.setup_filter(ops.DEFAULT_FILTER)
  by_class = ops.kernel_modulated_conv2d(
      x, ops.KernelModulation(kernels, labels), styles, f, up=up).numpy()
  by_sample = ops.kernel_modulated_conv2d(
      x, ops.KernelModulation(tf.gather(kernels, labels), None), styles, f,
      up=up).numpy()
  assert by_class.shape == (5, 4 * up, 4 * up, 2)
  for c in range(3):
    rows = labels.numpy() == c
    want = ops.modulated_conv2d(x[rows], kernels[c], styles[rows], f,
                                up=up).numpy()
    # The same operations on fewer rows (bit for bit on the same batch:
    # GAN Memory's start below).
    np.testing.assert_allclose(by_class[rows], want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(by_sample[rows], want, rtol=1e-5, atol=1e-5)


def test_gan_memory_starts_as_the_source_bit_for_bit():
  source, _ = _source()
  g = methods._generator(3, source, dict(mode="free"))
  assert isinstance(g, hypermod.HyperModStyleGAN2Generator)
  assert [m.name for _, m in g.modulated_layers] == [
      "b4_conv1_mod", "b8_conv0_mod", "b8_conv1_mod", "b16_conv0_mod",
      "b16_conv1_mod", "b32_conv0_mod", "b32_conv1_mod"]
  z, labels, want, parts = check_starts_as_the_source(source, g)
  assert set(parts) == {"block_4x4", "block_8x8", "block_16x16",
                        "block_32x32", "l1"}
  # A class whose beta changes no longer draws the source; the others do.
  mod = g.modulated_layers[1][1]
  start = mod.beta.numpy()
  mod.beta[1].assign(mod.beta[1] + 0.5)
  changed = g((z, labels), training=False).numpy()
  rows = labels.numpy() == 1
  assert np.array_equal(changed[~rows], want[~rows])
  assert not np.allclose(changed[rows], want[rows], atol=1e-3)
  # So does its bias shift.
  mod.beta.assign(start)
  mod.shift[2].assign(tf.fill(mod.shift.shape[1:], 0.7))
  changed = g((z, labels), training=False).numpy()
  rows = labels.numpy() == 2
  assert np.array_equal(changed[~rows], want[~rows])
  assert not np.allclose(changed[rows], want[rows], atol=1e-3)


def test_adafm_modulates_the_base_weight_before_demodulation():
  source, _ = _source()
  g = methods._generator(2, source, dict(mode="free"))
  layer, mod = g.modulated_layers[2]
  gamma = tf.random.stateless_uniform(mod.gamma.shape, [3, 4], 0.5, 1.5)
  beta = tf.random.stateless_normal(mod.beta.shape, [5, 6])
  mod.gamma.assign(gamma)
  mod.beta.assign(beta)
  kernels = g.modulation(tf.constant([1]))[2].kernels.numpy()
  w = layer.weight.numpy()
  mu = w.mean(axis=(0, 1))
  sigma = w.std(axis=(0, 1), ddof=1)
  want = gamma.numpy()[1] * (w - mu) / sigma + beta.numpy()[1]
  np.testing.assert_allclose(kernels[1], want, rtol=1e-5, atol=1e-5)
  # With beta = 0, a gamma that scales all of one output channel's slices
  # alike (a different factor per channel) is demodulated away; a factor
  # that differs over the input channels is not.
  mod.beta.assign(tf.zeros_like(mod.beta))
  z = tf.random.stateless_normal([4, 8], [7, 8])
  draw = lambda: g((z, tf.fill([4], 0)), training=False).numpy()
  one = draw()
  per_output = tf.random.stateless_uniform([1, 1, mod.gamma.shape[2]],
                                           [9, 9], 0.5, 3.0)
  mod.gamma.assign(mod.gamma * per_output)
  np.testing.assert_allclose(draw(), one, atol=1e-5)
  per_input = tf.random.stateless_uniform([1, mod.gamma.shape[1], 1],
                                          [9, 8], 0.5, 3.0)
  mod.gamma.assign(mod.gamma * per_input)
  assert np.abs(draw() - one).max() > 1e-2


def test_hypernetwork_labels_weights_gradient_and_w_avg():
  source, _ = _source()
  g = methods._generator(2, source, TINY_HYPER)
  z = tf.random.stateless_normal([4, 8], [3, 4])
  labels = tf.constant([1, 0, 1, 1])
  by_label = check_hypernetwork_generator(g, z, labels)
  # The export's table of kernels draws the same images.
  g.prepare_serving()
  assert np.array_equal(g((z, labels), training=False).numpy(),
                        by_label.numpy())
  with pytest.raises(ValueError, match="FIR"):
    hypermod.HyperModStyleGAN2Generator(2, SOURCE_KWARGS,
                                        fused_modulation="always")


def test_discriminator_heads_and_what_trains(source_bundle):
  src = methods.load_stylegan_source(source_bundle)
  d = methods.conditional_discriminator(src.discriminator, 3)
  assert isinstance(d, hypermod.HyperModStyleGAN2Discriminator)
  assert d.mapping is None and d.num_classes == 3
  old = {v.path.split("/", 1)[1]: v.numpy()
         for v in src.discriminator.variables}
  for v in d.variables:
    path = v.path.split("/", 1)[1]
    if path.startswith(d.head_prefix):
      assert v.shape[-1] == 3
    else:
      np.testing.assert_array_equal(v.numpy(), old[path])
  images = tf.random.stateless_uniform([4, 32, 32, 1], [1, 1], -1, 1)
  labels = tf.constant([0, 2, 1, 2])
  per_class = d((images, tf.one_hot(labels, 3)))
  np.testing.assert_allclose(d((images, labels)).numpy(), per_class.numpy(),
                             rtol=1e-6)
  names = ["merged", "Bag"]

  def trains_from_rgb(method):
    return any("/b32/fromrgb/" in v.path
               for v in method.build(names).d_variables)

  assert not trains_from_rgb(methods.HyperModulation(source_bundle,
                                                     **TINY_HYPER))
  assert not trains_from_rgb(methods.GANMemory(source_bundle))
  assert trains_from_rgb(methods.HyperModulation(
      source_bundle, train_source=True, **TINY_HYPER))
  setup = methods.HyperModulation(source_bundle, train_source=True,
                                  from_scratch=True, **TINY_HYPER).build(names)
  assert isinstance(setup.generator, hypermod.HyperModStyleGAN2Generator)
  with pytest.raises(UserInputError, match="FIR"):
    methods.HyperModulation(source_bundle, fused_modulation="always",
                            **TINY_HYPER).build(names)
  with pytest.raises(ValueError, match="not implemented for StyleGAN2"):
    hypermod.HyperModStyleGAN2Generator(2, SOURCE_KWARGS,
                                        formulation="stacked")
  # A "skip" D reads the image at every block: each from-RGB layer (the
  # epilogue's too) stays frozen.
  skip = stylegan2.StyleGAN2Discriminator(1, block_architecture="skip",
                                          **D_KWARGS)
  skip.build()
  heads = methods.conditional_discriminator(skip, 2)
  assert heads.from_rgb_prefixes == tuple(
      f"b{r}/fromrgb/" for r in (32, 16, 8, 4))


def test_a_conditional_stylegan2_is_refused(tmp_path):
  g, d = _source(num_classes=2)
  bundle.BundleWriter(str(tmp_path), g, d, ["a", "b"], "scratch").save(0)
  with pytest.raises(UserInputError, match="unconditional StyleGAN or "
                     "StyleGAN2.*2 classes"):
    methods.load_stylegan_source(str(tmp_path))


def _stage(config, model_dir, source_bundle, steps, extra=()):
  return train_stage(config, model_dir, source_bundle, steps, extra,
                     strategy=tf.distribute.OneDeviceStrategy("/cpu:0"))


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR),
                    reason="needs dataset-fashion-mnist")
def test_alignment_then_transfer_through_the_trainer(source_bundle,
                                                     tmp_path):
  aligned = tmp_path / "align"
  _stage("hypermod_align.gin", aligned, source_bundle, 2)
  assert events(str(aligned))["train/g/l1"] == [1, 2]
  assert bundle.read_spec(str(aligned / "model"))["architecture"] == (
      "hypermod_stylegan2")
  run = tmp_path / "transfer"
  _stage("hypermod.gin", run, source_bundle, 2,
         [f"ALIGNED = '{aligned}'", "train.samples_per_class = 2"])
  assert events(str(run))["train/d/r1"] == [1, 2]
  generator, discriminator, spec = bundle.load(str(run),
                                               with_discriminator=True)
  assert spec["class_names"] == ["merged", "Bag", "Ankle boot"]
  assert isinstance(generator, hypermod.HyperModStyleGAN2Generator)
  assert isinstance(discriminator, hypermod.HyperModStyleGAN2Discriminator)
  # No old class to score: an unconditional source (the benchmarks' row).
  assert evaluate_lib.old_class_fid(str(run)) is None
  picture, ids, _ = sample_lib.draw_grid(str(run), per_class=2)
  assert ids == [0, 1, 2] and picture.shape[0] >= 3 * 32
  target = export_lib.export(str(run), str(tmp_path / "export"))
  loaded = tf.saved_model.load(target)
  assert_from_z_matches(loaded, generator,
                        tf.random.stateless_normal([3, 8], [5, 6]),
                        tf.constant([0, 1, 2]))
  with tf.compat.v1.Session(graph=tf.Graph()) as session:
    meta = tf.compat.v1.saved_model.load(session, ["serve"], target)
    assert "serving_default" in meta.signature_def
  # GAN Memory from the same source trains too.
  _stage("gan_memory.gin", tmp_path / "memory", source_bundle, 1)
  g, _, _ = bundle.load(str(tmp_path / "memory"))
  assert g.mode == "free"

