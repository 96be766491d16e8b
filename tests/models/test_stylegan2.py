"""StyleGAN2(-ADA): the FIR resampling, the generator and discriminator
against a NumPy forward pass written here from the published definitions
(StyleGAN2 and StyleGAN2-ADA papers, NVlabs' stylegan2-ada-pytorch), the
truncation trick, class weights and the checks of the options."""

import json
import math
import os

import gin
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import FASHION_MNIST_DIR
from tfgt import train as train_lib
from tfgt.layers import stylegan2_ops as ops
from tfgt.models import architectures
from tfgt.models import bundle
from tfgt.models import stylegan2

NUM_CLASSES = 3
TINY_G = dict(resolution=16, channels=3, dim_z=6, w_dim=5, mapping_layers=2,
              channel_base=64, channel_max=6, style_mixing_prob=0.0,
              noise_mode="const")
TINY_D = dict(resolution=16, channels=3, channel_base=64, channel_max=6,
              mapping_layers=2, mbstd_group_size=2, mbstd_num_channels=2)
LRELU_GAIN = math.sqrt(2.0)


# ---------------------------------------------------------------------------
# The NumPy reference, NCHW and NVlabs' weight layouts ([out, in, kh, kw],
# [out, in]), float64. Resampling follows the definition of upfirdn2d
# (zero insertion, padding, FIR convolution, decimation) and the generic
# (unfused) order of conv2d_resample: upsample and filter, convolve, filter
# and decimate.


def np_filter(taps=(1, 3, 3, 1)):
  f = np.outer(taps, taps).astype(np.float64)
  return f / f.sum()


def np_upfirdn2d(x, f, up=1, down=1, pad=(0, 0, 0, 0), gain=1.0):
  """x [N, C, H, W]; pad (x0, x1, y0, y1), negative crops."""
  n, c, h, w = x.shape
  if up > 1:
    u = np.zeros([n, c, h * up, w * up])
    u[:, :, ::up, ::up] = x
    x = u
  x0, x1, y0, y1 = pad
  x = np.pad(x, [(0, 0), (0, 0), (max(y0, 0), max(y1, 0)),
                 (max(x0, 0), max(x1, 0))])
  x = x[:, :, max(-y0, 0):x.shape[2] - max(-y1, 0),
        max(-x0, 0):x.shape[3] - max(-x1, 0)]
  fh, fw = f.shape
  kernel = (f * gain)[::-1, ::-1]  # Convolution = flipped correlation.
  windows = np.lib.stride_tricks.sliding_window_view(x, (fh, fw),
                                                     axis=(2, 3))
  x = np.einsum("nchwij,ij->nchw", windows, kernel)
  return x[:, :, ::down, ::down]


def np_correlate(x, w):
  """Valid cross-correlation: x [N, I, H, W], w [O, I, kh, kw]."""
  windows = np.lib.stride_tricks.sliding_window_view(
      x, w.shape[2:], axis=(2, 3))
  return np.einsum("nihwab,oiab->nohw", windows, w)


def np_conv2d_resample(x, w, f, up=1, down=1):
  """NVlabs' layers: padding k // 2; a true convolution when up > 1 (their
  flip_weight = (up == 1)), a correlation otherwise."""
  k = w.shape[-1]
  fw = f.shape[0]
  p0 = p1 = k // 2
  if up > 1:
    p0 += (fw + up - 1) // 2
    p1 += (fw - up) // 2
  if down > 1:
    p0 += (fw - down + 1) // 2
    p1 += (fw - down) // 2
  x = np_upfirdn2d(x, f if up > 1 else np.ones([1, 1]), up=up,
                   pad=(p0, p1, p0, p1), gain=up * up)
  x = np_correlate(x, w[:, :, ::-1, ::-1] if up > 1 else w)
  if down > 1:
    x = np_upfirdn2d(x, f, down=down)
  return x


def np_bias_act(x, b, act="linear", gain=None, clamp=None):
  if b is not None:
    x = x + b.reshape([1, -1] + [1] * (x.ndim - 2))
  if act == "lrelu":
    x = np.where(x >= 0, x, 0.2 * x)
    gain = LRELU_GAIN if gain is None else gain
  if gain is not None:
    x = x * gain
  if clamp is not None:
    x = np.clip(x, -clamp, clamp)
  return x


def np_fc(p, name, x, act="linear", lr=1.0):
  w, b = p[f"{name}/weight"], p[f"{name}/bias"]
  return np_bias_act(x @ (w * lr / np.sqrt(w.shape[1])).T, b * lr, act)


def np_norm(x):
  return x / np.sqrt(np.mean(x ** 2, axis=1, keepdims=True) + 1e-8)


def np_mapping(p, prefix, z, c, num_layers, lr=0.01):
  parts = []
  if z is not None:
    parts.append(np_norm(z))
  if c is not None:
    parts.append(np_norm(np_fc(p, f"{prefix}/embed", c)))
  x = np.concatenate(parts, axis=1)
  for i in range(num_layers):
    x = np_fc(p, f"{prefix}/fc{i}", x, "lrelu", lr)
  return x


def np_modulated_conv(x, weight, styles, f, up=1, demodulate=True):
  """The fused form: one kernel per sample (StyleGAN2, eq. 1-3)."""
  out = []
  for n in range(x.shape[0]):
    w = weight * styles[n][None, :, None, None]
    if demodulate:
      w = w / np.sqrt(np.sum(w ** 2, axis=(1, 2, 3), keepdims=True) + 1e-8)
    out.append(np_conv2d_resample(x[n:n + 1], w, f, up=up))
  return np.concatenate(out)


def np_synthesis_layer(p, name, x, w, f, up=1, gain=1.0, clamp=None):
  styles = np_fc(p, f"{name}/affine", w)
  x = np_modulated_conv(x, p[f"{name}/weight"], styles, f, up=up)
  x = x + p[f"{name}/noise_const"][None, None] * p[f"{name}/noise_strength"]
  return np_bias_act(x, p[f"{name}/bias"], "lrelu", LRELU_GAIN * gain,
                     None if clamp is None else clamp * gain)


def np_torgb(p, name, x, w, clamp=None):
  weight = p[f"{name}/weight"]
  styles = np_fc(p, f"{name}/affine", w) / np.sqrt(weight.shape[1])
  x = np_modulated_conv(x, weight, styles, np.ones([1, 1]), demodulate=False)
  return np_bias_act(x, p[f"{name}/bias"], clamp=clamp)


def np_conv_layer(p, name, x, f, act="lrelu", down=1, up=1, gain=1.0,
                  clamp=None):
  w = p[f"{name}/weight"]
  w = w / np.sqrt(np.prod(w.shape[1:]))
  x = np_conv2d_resample(x, w, f, up=up, down=down)
  act_gain = (LRELU_GAIN if act == "lrelu" else 1.0) * gain
  return np_bias_act(x, p.get(f"{name}/bias"), act, act_gain,
                     None if clamp is None else clamp * gain)


def np_generator(p, z, c, resolution, num_mapping, architecture="skip",
                 clamp=None):
  """NVlabs' Generator.forward in NumPy: images [N, C, R, R], ws."""
  f = np_filter()
  w = np_mapping(p, "mapping", z, c, num_mapping)
  x = img = None
  w_index = 0
  for res in [2 ** k for k in range(2, int(math.log2(resolution)) + 1)]:
    b = f"synthesis/b{res}"
    is_last = res == resolution
    if res == 4:
      x = np.repeat(p[f"{b}/const"][None], z.shape[0], axis=0)
      x = np_synthesis_layer(p, f"{b}/conv1", x, w, f, clamp=clamp)
      w_index += 1
    elif architecture == "resnet":
      y = np_conv_layer(p, f"{b}/skip", x, f, act="linear", up=2,
                        gain=math.sqrt(0.5))
      x = np_synthesis_layer(p, f"{b}/conv0", x, w, f, up=2, clamp=clamp)
      x = np_synthesis_layer(p, f"{b}/conv1", x, w, f, gain=math.sqrt(0.5),
                             clamp=clamp)
      x = y + x
      w_index += 2
    else:
      x = np_synthesis_layer(p, f"{b}/conv0", x, w, f, up=2, clamp=clamp)
      x = np_synthesis_layer(p, f"{b}/conv1", x, w, f, clamp=clamp)
      w_index += 2
    if img is not None:
      fw = f.shape[0]
      img = np_upfirdn2d(img, f, up=2, pad=((fw + 1) // 2, (fw - 2) // 2) * 2,
                         gain=4)
    if is_last or architecture == "skip":
      y = np_torgb(p, f"{b}/torgb", x, w, clamp=clamp)
      img = y if img is None else img + y
  return img, w, w_index + 1


def np_minibatch_std(x, group_size, num_channels):
  n, c, h, w = x.shape
  g = min(group_size, n)
  y = x.reshape(g, -1, num_channels, c // num_channels, h, w)
  y = y - y.mean(axis=0)
  y = np.sqrt((y ** 2).mean(axis=0) + 1e-8)
  y = y.mean(axis=(2, 3, 4)).reshape(-1, num_channels, 1, 1)
  y = np.tile(y, (g, 1, h, w))
  return np.concatenate([x, y], axis=1)


def np_discriminator(p, img, c, resolution, num_mapping, group_size,
                     mbstd_channels, architecture="resnet", clamp=None,
                     mapping_lr=0.01):
  """NVlabs' Discriminator.forward in NumPy: (logits [N], features)."""
  f = np_filter()
  x = None
  for res in [2 ** k for k in range(int(math.log2(resolution)), 2, -1)]:
    b = f"b{res}"
    if x is None or architecture == "skip":
      y = np_conv_layer(p, f"{b}/fromrgb", img, f, clamp=clamp)
      x = y if x is None else x + y
      if architecture == "skip":
        img = np_upfirdn2d(img, f, down=2, pad=(1, 1, 1, 1))
    if architecture == "resnet":
      y = np_conv_layer(p, f"{b}/skip", x, f, act="linear", down=2,
                        gain=math.sqrt(0.5))
      x = np_conv_layer(p, f"{b}/conv0", x, f, clamp=clamp)
      x = np_conv_layer(p, f"{b}/conv1", x, f, down=2, gain=math.sqrt(0.5),
                        clamp=clamp)
      x = y + x
    else:
      x = np_conv_layer(p, f"{b}/conv0", x, f, clamp=clamp)
      x = np_conv_layer(p, f"{b}/conv1", x, f, down=2, clamp=clamp)
  if architecture == "skip":
    x = x + np_conv_layer(p, "b4/fromrgb", img, f)
  x = np_minibatch_std(x, group_size, mbstd_channels)
  x = np_conv_layer(p, "b4/conv", x, f, clamp=clamp)
  features = np_fc(p, "b4/fc", x.reshape(x.shape[0], -1), "lrelu")
  out = np_fc(p, "b4/out", features)
  if c is None:
    return out[:, 0], features
  cmap = np_mapping(p, "mapping", None, c, num_mapping, mapping_lr)
  return (out * cmap).sum(axis=1) / np.sqrt(cmap.shape[1]), features


def nvlabs_params(model, rng):
  """Randomises every variable of `model` (biases and noise strengths
  included, which start at 0) and returns them keyed by their path without
  the model's name, in NVlabs' layouts, float64."""
  params = {}
  for v in model.variables:
    if v.path.endswith("w_avg"):
      continue
    value = rng.standard_normal(v.shape).astype(np.float32) * 0.5
    if v.path.endswith("affine/bias"):
      value += 1.0
    v.assign(value)
    value = value.astype(np.float64)
    name = v.path.split("/", 1)[1]
    if value.ndim == 4:  # [kh, kw, in, out] -> [out, in, kh, kw]
      value = value.transpose(3, 2, 0, 1)
    elif value.ndim == 2 and not name.endswith("noise_const"):
      value = value.T  # [in, out] -> [out, in]
    elif name.endswith("const") and value.ndim == 3:
      value = value.transpose(2, 0, 1)  # [4, 4, C] -> [C, 4, 4]
    params[name] = value
  return params


def relative_error(actual, expected):
  return np.abs(actual - expected).max() / np.abs(expected).max()


def _build(num_classes=NUM_CLASSES, g_options=None, d_options=None):
  tf.keras.utils.set_random_seed(0)
  g = stylegan2.StyleGAN2Generator(num_classes, **{**TINY_G,
                                                   **(g_options or {})})
  d = stylegan2.StyleGAN2Discriminator(num_classes, **{**TINY_D,
                                                       **(d_options or {})})
  stylegan2.build_models(g, d)
  return g, d


def _latents(batch=4, dim=6, seed=0):
  return np.random.RandomState(seed).randn(batch, dim).astype(np.float32)


# ---------------------------------------------------------------------------
# FIR resampling.


def test_filter_is_the_normalised_outer_product():
  f = ops.setup_filter([1, 3, 3, 1])
  np.testing.assert_allclose(f, np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64)
  assert f.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("up,down,pad", [(1, 1, (1, 2, 2, 1)),
                                         (2, 1, (2, 1, 2, 1)),
                                         (1, 2, (1, 1, 1, 1)),
                                         (2, 1, (-1, 3, 0, -1))])
def test_upfirdn2d_matches_its_definition(up, down, pad):
  x = np.random.RandomState(1).randn(2, 8, 8, 3).astype(np.float32)
  f = ops.setup_filter([1, 3, 3, 1])
  actual = ops.upfirdn2d(tf.constant(x), f, up=up, down=down, padding=pad,
                         gain=up * up).numpy()
  expected = np_upfirdn2d(x.transpose(0, 3, 1, 2).astype(np.float64),
                          np_filter(), up, down, pad, gain=up * up)
  np.testing.assert_allclose(actual, expected.transpose(0, 2, 3, 1),
                             rtol=1e-5, atol=1e-6)


def _smooth(size, period):
  t = np.arange(size) / period * 2 * np.pi
  return (np.sin(t)[:, None] * np.cos(t)[None, :])[None, :, :, None]


def test_up_and_down_keep_constants_and_smooth_signals():
  f = ops.setup_filter([1, 3, 3, 1])
  ones = tf.ones([1, 16, 16, 2])
  # Gain 4 makes up for the inserted zeros; away from the zero padding a
  # constant keeps its value both ways.
  np.testing.assert_allclose(ops.upsample2d(ones, f)[:, 2:-2, 2:-2], 1.0,
                             rtol=1e-6)
  np.testing.assert_allclose(ops.downsample2d(ones, f)[:, 1:-1, 1:-1], 1.0,
                             rtol=1e-6)
  assert ops.upsample2d(ones, f).shape == (1, 32, 32, 2)
  assert ops.downsample2d(ones, f).shape == (1, 8, 8, 2)
  # Up then down gives back a smooth signal (period 16 px): in the interior
  # within the filters' passband droop, (cos(pi/16)^3)^2 ~ 0.94 at most.
  x = tf.constant(_smooth(32, 16), tf.float32)
  back = ops.downsample2d(ops.upsample2d(x, f), f).numpy()
  inner = (slice(None), slice(4, -4), slice(4, -4))
  assert np.abs(back[inner] - x.numpy()[inner]).max() < 0.1
  ratio = np.sum(back[inner] * x.numpy()[inner]) / np.sum(
      x.numpy()[inner] ** 2)
  assert 0.9 < ratio <= 1.0


@pytest.mark.parametrize("up,down,k", [(2, 1, 3), (1, 2, 3), (2, 1, 1),
                                       (1, 2, 1), (1, 1, 3)])
def test_conv2d_resample_matches_the_unfused_order(up, down, k):
  rng = np.random.RandomState(2)
  x = rng.randn(2, 8, 8, 3).astype(np.float32)
  w = rng.randn(k, k, 3, 4).astype(np.float32)
  actual = ops.conv2d_resample(tf.constant(x), tf.constant(w),
                               ops.setup_filter([1, 3, 3, 1]), up, down)
  expected = np_conv2d_resample(x.transpose(0, 3, 1, 2).astype(np.float64),
                                w.transpose(3, 2, 0, 1).astype(np.float64),
                                np_filter(), up, down)
  np.testing.assert_allclose(actual, expected.transpose(0, 2, 3, 1),
                             rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------
# The networks against the NumPy reference.


@pytest.mark.parametrize("architecture,clamp", [("skip", 0.9), ("orig", None),
                                                ("resnet", None)])
def test_generator_matches_the_numpy_forward_pass(architecture, clamp):
  g, _ = _build(g_options=dict(block_architecture=architecture,
                               conv_clamp=clamp))
  p = nvlabs_params(g, np.random.RandomState(3))
  z = _latents()
  weights = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.3, 0.2, 0.5]],
                     np.float32)
  expected, w, num_ws = np_generator(p, z.astype(np.float64),
                                     weights.astype(np.float64), 16, 2,
                                     architecture, clamp)
  assert g.num_ws == num_ws == 6
  actual_w = g.map(z, weights)
  assert relative_error(actual_w.numpy(), w) < 1e-5
  ws = tf.tile(actual_w[:, None], [1, g.num_ws, 1])
  actual = g.synthesize(ws, z, training=True).numpy()
  assert actual.shape == (4, 16, 16, 3)
  assert relative_error(actual, expected.transpose(0, 2, 3, 1)) < 1e-5
  # The contract's call: the same images, clipped to [-1, 1].
  np.testing.assert_allclose(g((z, weights), training=False),
                             np.clip(actual, -1, 1), atol=1e-6)


@pytest.mark.parametrize("architecture", ["resnet", "orig", "skip"])
def test_discriminator_matches_the_numpy_forward_pass(architecture):
  _, d = _build(d_options=dict(block_architecture=architecture,
                               conv_clamp=1.5))
  p = nvlabs_params(d, np.random.RandomState(4))
  images = np.random.RandomState(5).uniform(-1, 1, [4, 16, 16, 3]).astype(
      np.float32)
  labels = np.array([0, 1, 2, 1], np.int32)
  expected, features = np_discriminator(
      p, images.transpose(0, 3, 1, 2).astype(np.float64),
      np.eye(NUM_CLASSES)[labels], 16, 2, group_size=2, mbstd_channels=2,
      architecture=architecture, clamp=1.5)
  logits = d((images, labels))
  assert logits.dtype == tf.float32 and logits.shape == (4,)
  assert relative_error(logits.numpy(), expected) < 1e-5
  assert relative_error(d.features(images).numpy(), features) < 1e-5
  # One-hot class weights are the labels.
  np.testing.assert_allclose(d((images, np.eye(NUM_CLASSES)[labels])),
                             logits, atol=1e-6)


@pytest.mark.parametrize("layers,lr", [(0, 0.1), (1, 0.1)])
def test_discriminator_label_mapping_of_the_tensorflow_code(layers, lr):
  """NVlabs' TensorFlow StyleGAN2-ADA maps D's label with no layer after
  the normalised embedding by default, and at learning rate x0.1."""
  _, d = _build(d_options=dict(mapping_layers=layers,
                               mapping_lr_multiplier=lr))
  assert d.ctor_kwargs["mapping_lr_multiplier"] == lr
  p = nvlabs_params(d, np.random.RandomState(6))
  images = np.random.RandomState(7).uniform(-1, 1, [4, 16, 16, 3]).astype(
      np.float32)
  labels = np.array([0, 1, 2, 1], np.int32)
  expected, _ = np_discriminator(
      p, images.transpose(0, 3, 1, 2).astype(np.float64),
      np.eye(NUM_CLASSES)[labels], 16, layers, group_size=2,
      mbstd_channels=2, mapping_lr=lr)
  assert relative_error(d((images, labels)).numpy(), expected) < 1e-5


def test_unconditional_models_ignore_the_labels():
  g, d = _build(num_classes=1)
  assert g.mapping.embed is None and d.mapping is None
  p_g = nvlabs_params(g, np.random.RandomState(6))
  p_d = nvlabs_params(d, np.random.RandomState(7))
  z = _latents(2)
  expected, _, _ = np_generator(p_g, z.astype(np.float64), None, 16, 2)
  ws = tf.tile(g.map(z, tf.zeros([2], tf.int32))[:, None], [1, g.num_ws, 1])
  assert relative_error(g.synthesize(ws, z, training=True).numpy(),
                        expected.transpose(0, 2, 3, 1)) < 1e-5
  images = np.clip(expected.transpose(0, 2, 3, 1), -1, 1).astype(np.float32)
  logits, _ = np_discriminator(p_d, images.transpose(0, 3, 1, 2), None, 16,
                               2, group_size=2, mbstd_channels=2)
  assert relative_error(d((images, tf.zeros([2], tf.int32))).numpy(),
                        logits) < 1e-5


# ---------------------------------------------------------------------------
# Generator behaviour.


def test_class_weights_one_hot_rows_are_labels_and_soft_rows_differ():
  g, _ = _build()
  z = _latents()
  labels = tf.constant([0, 1, 2, 0])
  images = g((z, labels), training=False)
  np.testing.assert_allclose(g((z, tf.one_hot(labels, NUM_CLASSES))),
                             images, atol=1e-6)
  soft = tf.fill([4, NUM_CLASSES], 1.0 / NUM_CLASSES)
  assert np.abs(g((z, soft)).numpy() - images.numpy()).max() > 1e-4


def test_truncation_one_is_none_and_zero_is_the_average_image():
  g, _ = _build()
  z = _latents()
  labels = tf.constant([0, 1, 2, 0])
  g.w_avg.assign(np.random.RandomState(8).randn(g.w_dim))
  images = g((z, labels), training=False)
  np.testing.assert_allclose(g.truncated_call((z, labels), 1.0), images,
                             atol=1e-6)
  average = g.truncated_call((z, labels), tf.zeros([4]))
  expected = g.synthesize(tf.tile(g.w_avg[None, None], [4, g.num_ws, 1]), z,
                          training=False)
  np.testing.assert_allclose(average, expected, atol=1e-6)
  # Const noise: every latent and class gives the one average image.
  np.testing.assert_allclose(average, tf.repeat(average[:1], 4, axis=0),
                             atol=1e-6)
  assert architectures.no_truncation(g) == 1.0
  assert not architectures.truncates_z(g)


def test_training_calls_track_w_avg_with_decay_0995():
  g, _ = _build()
  z = _latents()
  labels = tf.constant([0, 1, 2, 0])
  w = g.map(z, labels).numpy()
  g((z, labels), training=True)
  np.testing.assert_allclose(g.w_avg, 0.005 * w.mean(axis=0), rtol=1e-5,
                             atol=1e-7)
  g((z, labels), training=False)
  np.testing.assert_allclose(g.w_avg, 0.005 * w.mean(axis=0), rtol=1e-5,
                             atol=1e-7)


def test_noise_seeded_by_z_is_reproducible_and_per_sample():
  g, _ = _build(g_options=dict(noise_mode="z", style_mixing_prob=0.9))
  for layer in g.synthesis.conv_layers():
    layer.noise_strength.assign(1.0)
  z = _latents()
  labels = tf.constant([0, 1, 2, 0])
  images = g((z, labels), training=False).numpy()
  # A sample's image does not depend on its batch.
  np.testing.assert_allclose(g((z[2:], labels[2:]), training=False),
                             images[2:], atol=1e-5)
  # Same z, other noise seed: another image.
  other = z.copy()
  other[:, 0] += 1e-3
  assert np.abs(g((other, labels)).numpy() - images).max() > 1e-3
  # Training: style mixing and noise both from z, also reproducible.
  np.testing.assert_allclose(g((z, labels), training=True),
                             g((z, labels), training=True), atol=1e-6)


def test_ema_copies_w_avg_and_noise_buffers_and_averages_weights():
  g, _ = _build()
  copied = {v.path for v in g.variables if g.ema_copies(v)}
  assert "generator/w_avg" in copied
  assert "generator/synthesis/b16/conv0/noise_const" in copied
  assert not any(v.trainable for v in g.variables if g.ema_copies(v))
  assert len(copied) == 1 + 5  # w_avg and one buffer per 3x3 convolution.


def test_variable_names_and_recorded_options_follow_nvlabs():
  g, d = _build()
  g_paths = {v.path for v in g.variables}
  assert {"generator/mapping/embed/weight", "generator/mapping/fc1/bias",
          "generator/synthesis/b4/const",
          "generator/synthesis/b16/conv0/affine/weight",
          "generator/synthesis/b16/torgb/weight"} <= g_paths
  d_paths = {v.path for v in d.variables}
  assert {"discriminator/b16/fromrgb/weight", "discriminator/b16/skip/weight",
          "discriminator/b4/fc/weight", "discriminator/b4/out/bias",
          "discriminator/mapping/fc1/weight"} <= d_paths
  for key in ("channel_base", "channel_max", "mapping_layers", "conv_clamp",
              "block_architecture", "num_fp16_res", "resample_filter"):
    assert key in g.ctor_kwargs and key in d.ctor_kwargs
  assert d.ctor_kwargs["mbstd_group_size"] == 2
  assert g.clone().ctor_kwargs == g.ctor_kwargs
  # Widths: min(channel_base // r, channel_max).
  assert d.cmap_dim == 6
  assert g.synthesis.b16.conv1.filters == 4


def test_r1_and_generator_gradients_exist_on_the_cpu():
  g, d = _build()
  z = tf.constant(_latents())
  labels = tf.constant([0, 1, 2, 0])
  images = tf.random.stateless_uniform([4, 16, 16, 3], [0, 1], -1, 1)
  with tf.GradientTape() as outer:
    with tf.GradientTape() as inner:
      inner.watch(images)
      logits = tf.reduce_sum(d((images, labels), training=True))
    grad = inner.gradient(logits, images)
    penalty = tf.reduce_sum(tf.square(grad))
  d_grads = outer.gradient(penalty, d.trainable_variables)
  for v, grad in zip(d.trainable_variables, d_grads):
    # The logits' gradient with respect to the images is the same whatever
    # the last bias.
    if v.path != "discriminator/b4/out/bias":
      assert grad is not None and np.all(np.isfinite(grad)), v.path
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(d((g((z, labels), training=True), labels)))
  g_grads = tape.gradient(loss, g.trainable_variables)
  assert all(x is not None for x in g_grads)


# ---------------------------------------------------------------------------
# Options.


@pytest.mark.parametrize("options,message", [
    (dict(resolution=12), "power of 2"),
    (dict(resolution=4), "power of 2"),
    (dict(channels=2), "channels must be 1 or 3"),
    (dict(channel_base=8), "leave no channels"),
    (dict(block_architecture="residual"), "block_architecture"),
    (dict(noise_mode="random"), "noise_mode"),
    (dict(conv_clamp=0), "conv_clamp"),
    (dict(num_fp16_res=-1), "num_fp16_res"),
    (dict(resample_filter=[]), "resample_filter"),
    (dict(dim_z=1), "dim_z"),
    (dict(mapping_layers=0), "mapping_layers"),
    (dict(w_avg_decay=1.0), "w_avg_decay"),
    (dict(style_mixing_prob=1.5), "style_mixing_prob"),
    (dict(truncation_cutoff=0), "truncation_cutoff"),
])
def test_bad_generator_options_raise(options, message):
  with pytest.raises(ValueError, match=message):
    stylegan2.StyleGAN2Generator(NUM_CLASSES, **{**TINY_G, **options})


@pytest.mark.parametrize("options,message", [
    (dict(block_architecture="skip2"), "block_architecture"),
    (dict(cmap_dim=0), "cmap_dim"),
    (dict(mbstd_num_channels=5), "mbstd_num_channels"),
    (dict(mbstd_group_size=0), "mbstd_group_size"),
    (dict(mapping_layers=-1), "mapping_layers"),
    (dict(mapping_lr_multiplier=0.0), "mapping_lr_multiplier"),
    (dict(channel_max=0), "leave no channels"),
])
def test_bad_discriminator_options_raise(options, message):
  with pytest.raises(ValueError, match=message):
    stylegan2.StyleGAN2Discriminator(NUM_CLASSES, **{**TINY_D, **options})


def test_num_classes_below_one_raises():
  with pytest.raises(ValueError, match="num_classes"):
    stylegan2.StyleGAN2Generator(0, **TINY_G)
  with pytest.raises(ValueError, match="num_classes"):
    stylegan2.StyleGAN2Discriminator(0, **TINY_D)


# ---------------------------------------------------------------------------
# Through the trainer.

CONFIG = os.path.join("gin_configs", "fashion_mnist", "pretrain_stylegan2.gin")
UNCONDITIONAL = os.path.join("gin_configs", "fashion_mnist",
                             "pretrain_stylegan2_unconditional.gin")
# A StyleGAN2 small enough to train a few steps in a test: z and w of 8, 4
# channels at every resolution, batch 8, no periodic work but logging.
TINY_TRAINING = [
    "StyleGAN2Generator.dim_z = 8", "StyleGAN2Generator.w_dim = 8",
    "StyleGAN2Generator.channel_base = 64",
    "StyleGAN2Generator.channel_max = 4",
    "StyleGAN2Discriminator.channel_base = 64",
    "StyleGAN2Discriminator.channel_max = 4", "train.batch_size = 8",
    "train.ema_start = 0", "train.eval_every = 0", "train.log_every = 1",
    "train.sample_every = 0"]


def train_tiny_stylegan2(model_dir, steps, extra=(), config=CONFIG,
                         replicas=1):
  """Trains a tiny StyleGAN2 (`TINY_TRAINING`) with `config` and the gin
  bindings `extra` for `steps` steps (resuming what `model_dir` holds), on
  one device or (replicas=2) MirroredStrategy over the two logical CPUs."""
  gin.clear_config()
  train_lib.parse_config([config], TINY_TRAINING + [
      f"train.num_steps = {steps}", *extra])
  strategy = tf.distribute.get_strategy()
  if replicas == 2:
    cpus = [c.name for c in tf.config.list_logical_devices("CPU")][:2]
    assert len(cpus) == 2
    strategy = tf.distribute.MirroredStrategy(
        cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())
  try:
    train_lib.train(str(model_dir), strategy=strategy)
  finally:
    gin.clear_config()


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR),
                    reason="needs dataset-fashion-mnist")
def test_a_tiny_conditional_stylegan2_trains_two_steps(tmp_path):
  # One replica keeps the test short (the two-replica step, with w_avg
  # averaged across replicas, trains too, as StyleGAN v1's test checks).
  train_tiny_stylegan2(tmp_path, 2, [
      "StyleGAN2Generator.style_mixing_prob = 0.9",
      "StyleGAN2Discriminator.mapping_layers = 1",
      "load_training_data.images_per_class = 4",
      "train.checkpoint_every = 2", "Adversarial.r1_every = 2"])
  spec = json.loads((tmp_path / "model" / bundle.SPEC_FILE).read_text())
  assert spec["architecture"] == "stylegan2"
  g, d, _ = bundle.load(str(tmp_path), with_discriminator=True)
  assert isinstance(g, stylegan2.StyleGAN2Generator)
  assert g.num_classes == d.num_classes == 8
  # The EMA generator has w_avg, copied from G, which moved it.
  assert np.abs(g.w_avg.numpy()).sum() > 0
  images = g((tf.random.stateless_normal([8, 8], [0, 2]), tf.range(8)))
  assert images.shape == (8, 32, 32, 1)
  assert np.all(np.isfinite(images.numpy()))


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR),
                    reason="needs dataset-fashion-mnist")
def test_a_tiny_stylegan2_trains_in_bfloat16(tmp_path):
  """Mixed precision: G's and D's layers compute in bfloat16 (R1 and the
  path-length penalty included), the weights stay float32 and finite."""
  train_tiny_stylegan2(tmp_path, 2, [
      "StyleGAN2Generator.track_path_length = True",
      "StyleGAN2Discriminator.mapping_layers = 1",
      "Adversarial.pl_weight = 2.0", "Adversarial.pl_every = 1",
      "Adversarial.r1_every = 1", "train.precision = 'mixed_bfloat16'",
      "load_training_data.images_per_class = 4",
      "train.checkpoint_every = 2"])
  g, d, _ = bundle.load(str(tmp_path), with_discriminator=True)
  for v in g.variables + d.variables:
    assert v.dtype == "float32" and np.all(np.isfinite(v.numpy())), v.path
  assert float(g.pl_mean) > 0.0
