"""StyleGAN (v1; Karras et al., CVPR 2019) generator and discriminator in
Keras 3, the source architecture of Hyper-Modulation.

Generator: (z [B, dim_z], y) -> images [B, R, R, C].
  G_mapping   z -> pixel norm -> `mapping_layers` equalised dense layers
              (learning-rate multiplier 0.01) with leaky ReLU 0.2 -> w
              [B, w_dim]; a class-conditional model (num_classes > 1) first
              concatenates a learned embedding of y to z.
  G_synthesis a learned constant 4x4 input, then per resolution r = 4, 8, ..
              two layers (r x r: `Const`/`Conv` at 4x4, `Conv0_up` and
              `Conv1` above), each: [nearest upsampling, 3x3 conv, blur] ->
              per-pixel noise times a learned per-channel strength -> bias ->
              leaky ReLU -> instance norm -> style x * (1 + y_s) + y_b from
              an affine map of that layer's w; a 1x1 `ToRGB_lod0`.
  w_avg       a running mean of w (decay 0.995) kept while training, for the
              truncation trick (`truncated_call`).
Discriminator: (images, y) -> logits [B]; from-RGB 1x1, per resolution above
  4 a 3x3 conv and a blurred, downsampling 3x3 conv; at 4x4 the minibatch
  standard deviation, a 3x3 conv, `Dense0` (the penultimate features, see
  `features`) and `Dense1` with one output per class, read at the label (one
  output for an unconditional model, as StyleGAN's).

Widths follow NVlabs: the feature maps at resolution 2^k have
min(fmap_base / 2^(k - 1), fmap_max) channels (`num_features`). Layer names
follow NVlabs' (`G_mapping/Dense0`, `G_synthesis/8x8_Conv0_up`,
`discriminator/4x4_Dense1`, with `_` where NVlabs writes the resolution's
`/`), so that importing their weights is a table of names.

Randomness: per-pixel noise and style mixing are drawn per sample from
stateless generators seeded by the bits of z[:, :2]. The same z then always
gives the same image (the export's `seeds` signature), the draws do not
depend on the replicas' split of a batch nor on a resume, and there is no
random state to checkpoint. `noise_mode="const"` uses per-layer fixed noise
buffers instead (StyleGAN's `randomize_noise=False`).

An unconditional model has num_classes = 1: y is accepted and ignored by both
networks, and the discriminator has a single output.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import gin
import keras
import numpy as np
import tensorflow as tf

from tfgt import precision
from tfgt.layers import building
from tfgt.layers import style
from tfgt.models import architectures
from tfgt.models import inputs as inputs_lib

NOISE_MODES = ("z", "const")
MIN_RESOLUTION, MAX_RESOLUTION = 8, 1024


def num_features(stage: int, fmap_base: int, fmap_max: int,
                 fmap_decay: float = 1.0) -> int:
  """Channels at stage k (resolution 2^(k + 1)): NVlabs' `nf`."""
  return min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)


def _log2_resolution(resolution: int) -> int:
  log2 = int(round(math.log2(resolution))) if resolution > 0 else 0
  if (2 ** log2 != resolution or not
      MIN_RESOLUTION <= resolution <= MAX_RESOLUTION):
    raise ValueError(f"StyleGAN resolution must be a power of 2 in "
                     f"[{MIN_RESOLUTION}, {MAX_RESOLUTION}], got {resolution}.")
  return log2


def _check_widths(resolution: int, fmap_base: int, fmap_max: int,
                  fmap_decay: float) -> None:
  stage = _log2_resolution(resolution) - 1
  if num_features(stage, fmap_base, fmap_max, fmap_decay) < 1:
    raise ValueError(
        f"fmap_base={fmap_base} leaves no channels at {resolution}x"
        f"{resolution} (fmap_base / 2^{stage * fmap_decay:g} < 1): raise "
        f"fmap_base to at least {2 ** math.ceil(stage * fmap_decay)}.")


def _check_channels(channels: int) -> None:
  if channels not in (1, 3):
    raise ValueError(f"channels must be 1 or 3, got {channels}.")


class MappingNetwork(keras.layers.Layer):
  """z [B, dim_z] (and class weights [B, N]) -> w [B, w_dim]."""

  def __init__(self, num_classes: int, w_dim: int, num_layers: int,
               lr_multiplier: float, **kwargs):
    super().__init__(**kwargs)
    self.num_classes = num_classes
    self.num_layers = num_layers
    for i in range(num_layers):
      setattr(self, f"dense{i}", style.EqualizedDense(
          w_dim, lr_multiplier=lr_multiplier, name=f"Dense{i}"))

  def build(self, input_shape):
    dim_z = int(input_shape[-1])
    # NVlabs' LabelConcat: a plain (not equalised) embedding of the label.
    self.label_embedding = (self.add_weight(
        name="LabelConcat", shape=(self.num_classes, dim_z),
        initializer=keras.initializers.RandomNormal(stddev=1.0))
                            if self.num_classes > 1 else None)

  def call(self, z, y):
    x = z
    if self.label_embedding is not None:
      x = tf.concat([z, tf.matmul(y, self.label_embedding)], axis=-1)
    x = style.pixel_norm(x)
    for i in range(self.num_layers):
      x = style.leaky_relu(getattr(self, f"dense{i}")(x))
    return x


class SynthesisLayer(building.BuildsOnCall, keras.layers.Layer):
  """One layer of G_synthesis: [up, conv, blur], noise, bias, leaky ReLU,
  instance norm, style. x [B, H, W, C_in], w [B, w_dim], noise [B or 1,
  H', W', 1] -> [B, H', W', channels] (H' = 2H when upsampling).

  `bias_before_blur`: an upsampling layer adds its bias (and a modulation's
  bias shift) between the convolution and the blur, as rosinality's port
  does, instead of after the noise as NVlabs' StyleGAN does; with the
  blur's zero padding the two differ at the image border.
  `instance_norm_epsilon`: NVlabs 1e-8, PyTorch's InstanceNorm2d 1e-5."""

  def __init__(self, channels: int, conv: bool = True, up: bool = False,
               bias_before_blur: bool = False,
               instance_norm_epsilon: float = 1e-8, **kwargs):
    super().__init__(**kwargs)
    self.up = up
    self.bias_before_blur = bias_before_blur and up
    self.instance_norm_epsilon = instance_norm_epsilon
    self.conv = (style.EqualizedConv2D(channels, 3, name="conv") if conv
                 else None)
    self.noise_strength = style.NoiseStrength(name="Noise")
    self.bias = style.Bias(name="bias")
    self.style_mod = style.StyleModulation(channels, name="StyleMod")

  def call(self, x, w, noise, modulation: "Modulation | None" = None):
    if self.conv is not None:
      if self.up:
        x = style.upsample_nearest(x)
      x = (self.conv(x) if modulation is None or modulation.conv is None
           else modulation.conv(self.conv, x))
      if self.bias_before_blur:
        x = self._add_bias(x, modulation)
      if self.up:
        x = style.blur(x)
    x = self.noise_strength(x, noise)
    if not self.bias_before_blur:
      x = self._add_bias(x, modulation)
    x = style.leaky_relu(x)
    return self.style_mod(
        style.instance_norm(x, epsilon=self.instance_norm_epsilon), w)

  def _add_bias(self, x, modulation: "Modulation | None"):
    x = self.bias(x)
    if modulation is not None and modulation.bias_shift is not None:
      x += precision.like(modulation.bias_shift[:, None, None, :], x)
    return x


@dataclasses.dataclass(frozen=True)
class Modulation:
  """How a weight-modulating method changes one synthesis layer.

  A dataclass, not a tuple: Keras 3 refuses a nested call() argument that
  mixes tensors and callables, and does not look inside a dataclass.

  Attributes:
    conv: None (the layer's own convolution) or conv(layer, x) -> [B, H, W,
      C]: the convolution to run instead, given the layer's
      `style.EqualizedConv2D` (its kernel and runtime scale) and its input.
    bias_shift: None or float32 [B, C], added to the layer's bias (eq. 5 of
      Hyper-Modulation).
  """
  conv: Callable[[style.EqualizedConv2D, tf.Tensor], tf.Tensor] | None = None
  bias_shift: tf.Tensor | None = None


class SynthesisNetwork(keras.layers.Layer):
  """ws [B, num_layers, w_dim] and noise maps -> images [B, R, R, C]."""

  def __init__(self, resolution: int, channels: int, fmap_base: int,
               fmap_max: int, fmap_decay: float,
               bias_before_blur: bool = False, block_noise: bool = False,
               instance_norm_epsilon: float = 1e-8, **kwargs):
    super().__init__(**kwargs)
    self.log2 = _log2_resolution(resolution)
    self.block_noise = block_noise
    options = dict(bias_before_blur=bias_before_blur,
                   instance_norm_epsilon=instance_norm_epsilon)
    nf = lambda stage: num_features(stage, fmap_base, fmap_max, fmap_decay)
    self.const_channels = nf(1)
    self.layer_names = []
    self.layer_sizes = []
    for k in range(2, self.log2 + 1):
      size = 2 ** k
      if k == 2:
        first = SynthesisLayer(nf(1), conv=False, name="4x4_Const", **options)
        second = SynthesisLayer(nf(1), name="4x4_Conv", **options)
      else:
        first = SynthesisLayer(nf(k - 1), up=True,
                               name=f"{size}x{size}_Conv0_up", **options)
        second = SynthesisLayer(nf(k - 1), name=f"{size}x{size}_Conv1",
                                **options)
      for layer in (first, second):
        setattr(self, f"layer{len(self.layer_names)}", layer)
        self.layer_names.append(layer.name)
        self.layer_sizes.append(size)
    self.to_rgb = style.EqualizedConv2D(channels, 1, gain=1.0, use_bias=True,
                                        name="ToRGB_lod0")

  @property
  def num_layers(self) -> int:
    return len(self.layer_names)

  @property
  def layers_in_order(self) -> list[SynthesisLayer]:
    # Attributes rather than a list: TF checkpoints do not track Keras 3's
    # list wrappers.
    return [getattr(self, f"layer{i}") for i in range(self.num_layers)]

  def build(self, input_shape):
    self.const = self.add_weight(name="const",
                                 shape=(1, 4, 4, self.const_channels),
                                 initializer="ones")
    rng = np.random.RandomState(0)
    for i, size in enumerate(self.layer_sizes):
      setattr(self, f"noise{i}", self.add_weight(
          name=f"noise{i}", shape=(1, size, size, 1), trainable=False,
          initializer=keras.initializers.Constant(
              rng.standard_normal((1, size, size, 1)).astype(np.float32))))

  def const_noise(self) -> list[tf.Tensor]:
    """The fixed noise buffers, [1, H, W, 1] per layer."""
    return [getattr(self, f"noise{i}") for i in range(self.num_layers)]

  def call(self, ws, noise, return_blocks: bool = False, modulation=None):
    """Images [B, R, R, C] (linear, unclipped) and, with `return_blocks`,
    the output of every resolution's second layer, [B, r, r, C_r] each.
    `noise`: a map per layer; with `block_noise` both layers of a resolution
    take the first one's. `modulation`: None or a `Modulation` (or None)
    per layer."""
    batch = tf.shape(ws)[0]
    x = tf.tile(self.const, [batch, 1, 1, 1])
    blocks = []
    modulation = modulation or [None] * self.num_layers
    for i, layer in enumerate(self.layers_in_order):
      layer_noise = noise[i - i % 2] if self.block_noise else noise[i]
      x = layer(x, ws[:, i], layer_noise, modulation=modulation[i])
      if i % 2:
        blocks.append(x)
    images = self.to_rgb(x)
    return (images, blocks) if return_blocks else images


@gin.configurable(denylist=["num_classes", "name"])
class StyleGANGenerator(keras.Model):
  """StyleGAN generator (see the module docstring); the generator contract
  of `tfgt.models.architectures`.

  Args:
    num_classes: 1 for an unconditional model, else N (labels concatenated
      to z as a learned embedding, as NVlabs' conditional StyleGAN).
    resolution: power of 2 in [8, 1024].
    channels: 1 or 3.
    dim_z: latent width (>= 2).
    w_dim: width of w.
    mapping_layers: dense layers of G_mapping (8 in the paper).
    mapping_lr_multiplier: learning-rate multiplier of G_mapping (0.01).
    fmap_base, fmap_max, fmap_decay: widths (`num_features`).
    style_mixing_prob: in [0, 1]; the probability that a training sample
      switches from w to the w of a second latent at a random layer.
    w_avg_decay: in [0, 1); the running mean's decay per training call.
    truncation_cutoff: layers (from the first) that truncation acts on;
      None: all (in NVlabs' G_style, None turns truncation off).
    noise_mode: "z" (per-sample noise seeded by z) or "const" (fixed
      buffers).
    bias_before_blur: upsampling layers add their bias before the blur
      (rosinality's port) instead of after the noise (NVlabs).
    block_noise: both layers of a resolution get the same noise map
      (rosinality's port; NVlabs draws one per layer).
    instance_norm_epsilon: > 0; NVlabs 1e-8, rosinality's port 1e-5
      (PyTorch's InstanceNorm2d).
  The defaults are NVlabs' StyleGAN; `tfgt.importers.rosinality` sets the
  three options above for rosinality's checkpoints.

  The hidden layers of G_mapping have width w_dim (NVlabs: 512 whatever
  the width of w).

  Raises:
    ValueError: an argument out of its range.
  """

  architecture = "stylegan"
  no_truncation = 1.0
  truncation_meaning = (
      "psi > 0: w_avg + psi (w - w_avg) on the first truncation_cutoff "
      "layers of w; z is N(0, 1) (seeds) or as given; 1 = no truncation, "
      "towards 0 = towards the average image")

  def __init__(self, num_classes: int, resolution: int = 32,
               channels: int = 1, dim_z: int = 512, w_dim: int = 512,
               mapping_layers: int = 8, mapping_lr_multiplier: float = 0.01,
               fmap_base: int = 8192, fmap_max: int = 512,
               fmap_decay: float = 1.0, style_mixing_prob: float = 0.9,
               w_avg_decay: float = 0.995, truncation_cutoff: int | None = 8,
               noise_mode: str = "z", bias_before_blur: bool = False,
               block_noise: bool = False,
               instance_norm_epsilon: float = 1e-8,
               name: str = "generator"):
    super().__init__(name=name, autocast=False)
    _check_widths(resolution, fmap_base, fmap_max, fmap_decay)
    _check_channels(channels)
    if dim_z < 2:
      raise ValueError(f"dim_z must be >= 2 (noise is seeded by z), got "
                       f"{dim_z}.")
    if not 0.0 <= style_mixing_prob <= 1.0:
      raise ValueError(f"style_mixing_prob must be in [0, 1], got "
                       f"{style_mixing_prob}.")
    if not 0.0 <= w_avg_decay < 1.0:
      raise ValueError(f"w_avg_decay must be in [0, 1), got {w_avg_decay}.")
    if noise_mode not in NOISE_MODES:
      raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got "
                       f"{noise_mode!r}.")
    if num_classes < 1:
      raise ValueError(f"num_classes must be >= 1, got {num_classes}.")
    if not instance_norm_epsilon > 0:
      raise ValueError(f"instance_norm_epsilon must be > 0, got "
                       f"{instance_norm_epsilon}.")
    if mapping_layers < 0 or (mapping_layers == 0 and dim_z != w_dim):
      raise ValueError(f"mapping_layers must be >= 1, or 0 with dim_z == "
                       f"w_dim; got {mapping_layers} (dim_z {dim_z}, w_dim "
                       f"{w_dim}).")
    self.ctor_kwargs: dict[str, Any] = dict(
        resolution=resolution, channels=channels, dim_z=dim_z, w_dim=w_dim,
        mapping_layers=mapping_layers,
        mapping_lr_multiplier=mapping_lr_multiplier, fmap_base=fmap_base,
        fmap_max=fmap_max, fmap_decay=fmap_decay,
        style_mixing_prob=style_mixing_prob, w_avg_decay=w_avg_decay,
        truncation_cutoff=truncation_cutoff, noise_mode=noise_mode,
        bias_before_blur=bool(bias_before_blur),
        block_noise=bool(block_noise),
        instance_norm_epsilon=float(instance_norm_epsilon))
    self.num_classes = num_classes
    self.resolution = resolution
    self.channels = channels
    self.dim_z = dim_z
    self.w_dim = w_dim
    self.style_mixing_prob = style_mixing_prob
    self.w_avg_decay = w_avg_decay
    self.noise_mode = noise_mode
    self.mapping = MappingNetwork(num_classes, w_dim, mapping_layers,
                                  mapping_lr_multiplier, name="G_mapping")
    self.synthesis = SynthesisNetwork(
        resolution, channels, fmap_base, fmap_max, fmap_decay,
        bias_before_blur=bias_before_blur, block_noise=block_noise,
        instance_norm_epsilon=instance_norm_epsilon, name="G_synthesis")
    self.num_ws = self.synthesis.num_layers
    self.truncation_cutoff = (self.num_ws if truncation_cutoff is None
                              else min(truncation_cutoff, self.num_ws))

  def build(self, input_shape=None):
    # Float32 under every precision: a slow running mean (decay 0.995).
    self.w_avg = self.add_weight(name="dlatent_avg", shape=(self.w_dim,),
                                 initializer="zeros", trainable=False,
                                 aggregation="mean", autocast=False)
    z = tf.zeros([1, self.dim_z])
    self.mapping.build(z.shape)
    w = self.mapping(z, tf.zeros([1, self.num_classes]))
    ws = tf.tile(w[:, None], [1, self.num_ws, 1])
    self.synthesis.build(ws.shape)
    self.synthesis(ws, self.synthesis_noise(z))
    self.built = True

  def clone(self, num_classes: int | None = None,
            name: str | None = None) -> "StyleGANGenerator":
    """A new, unbuilt generator of the same architecture."""
    return StyleGANGenerator(num_classes or self.num_classes,
                             name=name or self.name, **self.ctor_kwargs)

  def ema_copies(self, variable) -> bool:
    """w_avg and the noise buffers are state: the EMA generator copies them
    (as NVlabs' Gs copies its non-trainable variables). `variable` is one of
    this model's own."""
    state = [self.w_avg] + self.synthesis.const_noise()
    return any(variable is v for v in state)

  def _random_draws(self, z: tf.Tensor) -> tuple[list[tf.Tensor], tf.Tensor,
                                                  tf.Tensor]:
    """Per-sample draws seeded by z: (noise maps [B, H, W, 1] per layer,
    a second latent [B, dim_z], uniforms [B, 2])."""
    sizes = self.synthesis.layer_sizes
    total = sum(s * s for s in sizes) + self.dim_z

    def draw(seed):
      normal = tf.random.stateless_normal([total], seed=seed)
      uniform = tf.random.stateless_uniform([2], seed=seed + 1)
      return normal, uniform

    normal, uniform = tf.map_fn(
        draw, inputs_lib.sample_seeds(z),
        fn_output_signature=(tf.float32, tf.float32))
    pieces = tf.split(normal, [s * s for s in sizes] + [self.dim_z], axis=1)
    noise = [tf.reshape(p, [-1, s, s, 1]) for p, s in zip(pieces, sizes)]
    return noise, pieces[-1], uniform

  def synthesis_noise(self, z: tf.Tensor) -> list[tf.Tensor]:
    """The noise maps that the image of z gets, one per synthesis layer."""
    if self.noise_mode == "const":
      return self.synthesis.const_noise()
    return self._random_draws(z)[0]

  def map(self, z: tf.Tensor, y) -> tf.Tensor:
    """w [B, w_dim] (in the compute dtype) of z float32 [B, dim_z] and
    labels [B] or class weights [B, N]."""
    z = tf.convert_to_tensor(z, tf.float32)
    if z.shape[-1] is not None and z.shape[-1] != self.dim_z:
      raise ValueError(f"z has width {z.shape[-1]}, the generator expects "
                       f"{self.dim_z}.")
    return self.mapping(z, inputs_lib.class_weights(y, self.num_classes))

  def synthesize(self, ws: tf.Tensor, z: tf.Tensor, training=None,
                 return_blocks: bool = False, noise=None, modulation=None):
    """Images of per-layer ws with the noise of z.

    Args:
      ws: float32 [B, num_ws, w_dim].
      z: float32 [B, dim_z], the latents whose bits seed the noise.
      training: linear output when true, clipped to [-1, 1] otherwise.
      return_blocks: also return each resolution's output
        (Hyper-Modulation's self-alignment compares them).
      noise: the noise maps if already drawn (`synthesis_noise(z)`).
      modulation: None, or one `Modulation` (or None) per synthesis layer:
        the extension point of weight-modulating methods (Hyper-Modulation,
        GAN Memory), which change the convolutions and biases per sample.

    Returns:
      images float32 [B, R, R, C] (and, with `return_blocks`, a list of
      [B, r, r, C_r], lowest resolution first).
    """
    if noise is None:
      noise = self.synthesis_noise(z)
    out = self.synthesis(ws, noise, return_blocks=return_blocks,
                         modulation=modulation)
    images, blocks = out if return_blocks else (out, None)
    images = precision.output(images)
    if not training:
      images = tf.clip_by_value(images, -1.0, 1.0)
    return (images, blocks) if return_blocks else images

  def _broadcast(self, w: tf.Tensor) -> tf.Tensor:
    return tf.tile(w[:, None], [1, self.num_ws, 1])

  def styles(self, z: tf.Tensor, y, training=None,
             update_w_avg: bool = True):
    """The per-layer ws of z and y, and their noise if already drawn.

    Args:
      z: float32 [B, dim_z].
      y: labels int32 [B] or class weights float32 [B, num_classes].
      training: when true, style mixing (with `style_mixing_prob`) and,
        with `update_w_avg`, one update of the running mean of w.
      update_w_avg: False leaves `w_avg` as it is (a method that keeps the
        mapping network frozen keeps the source's average).

    Returns:
      (ws float32 [B, num_ws, w_dim], noise maps or None), for `synthesize`.
    """
    w = self.map(z, y)
    ws = self._broadcast(w)
    noise = None
    if training:
      if update_w_avg:
        self._update_w_avg(w)
      if self.style_mixing_prob > 0:
        # One draw gives the noise and the mixing values.
        noise, z2, uniform = self._random_draws(z)
        ws = self._mix_styles(ws, self.map(z2, y), uniform)
        if self.noise_mode == "const":
          noise = None
    return ws, noise

  def call(self, inputs, training=None):
    z, y = inputs
    ws, noise = self.styles(z, y, training=training)
    return self.synthesize(ws, z, training=training, noise=noise)

  def _update_w_avg(self, w: tf.Tensor) -> None:
    batch_mean = tf.reduce_mean(precision.float32(w), axis=0)
    self.w_avg.assign(batch_mean + self.w_avg_decay *
                      (self.w_avg - batch_mean))

  def _mix_styles(self, ws: tf.Tensor, w2: tf.Tensor,
                  uniform: tf.Tensor) -> tf.Tensor:
    """Style mixing regularisation (StyleGAN section 3.1): with probability
    `style_mixing_prob` a sample uses w2 (the w of a second latent) from a
    random layer in [1, num_ws) on.

    ws [B, num_ws, w_dim], w2 [B, w_dim], uniform [B, 2] in [0, 1): the
    mixing decision and the crossover layer.
    """
    ws2 = self._broadcast(w2)
    cutoff = 1 + tf.cast(uniform[:, 1] * (self.num_ws - 1), tf.int32)
    cutoff = tf.where(uniform[:, 0] < self.style_mixing_prob, cutoff,
                      self.num_ws)
    keep = tf.range(self.num_ws)[None, :] < cutoff[:, None]
    return tf.where(keep[:, :, None], ws, ws2)

  def truncate(self, ws: tf.Tensor, truncation) -> tf.Tensor:
    """The truncation trick in w (StyleGAN, appendix B):
    w_avg + psi (w - w_avg) on the first `truncation_cutoff` layers.

    ws: [B, num_ws, w_dim]; truncation: psi, a scalar or [B]; 1 leaves w
    as it is, 0 gives the average w, > 1 extrapolates.
    """
    psi = tf.reshape(tf.cast(truncation, tf.float32), [-1, 1, 1])
    layer = tf.range(self.num_ws)[None, :, None]
    psi = tf.where(layer < self.truncation_cutoff, psi, 1.0)
    return self.w_avg + psi * (precision.float32(ws) - self.w_avg)

  def truncated_call(self, inputs, truncation) -> tf.Tensor:
    """Images [B, R, R, C] in [-1, 1] of untruncated z with truncation psi
    (scalar or [B], float32; 1 = no truncation); inference mode."""
    z, y = inputs
    ws = self.truncate(self._broadcast(self.map(z, y)), truncation)
    return self.synthesize(ws, z, training=False)


@gin.configurable(denylist=["num_classes", "name"])
class StyleGANDiscriminator(building.BuildsOnCall, keras.Model):
  """StyleGAN discriminator (see the module docstring): (images, y) ->
  logits [B]; `features(images)` -> `4x4_Dense0`'s output [B, nf(0)].

  Args:
    num_classes: N; one output per class, read at the label.
    resolution, channels, fmap_base, fmap_max, fmap_decay: as the generator.
    mbstd_group_size: the minibatch standard deviation's largest group (4);
      <= 1 leaves the layer out; None takes the whole (per-replica) batch
      as one group (rosinality's port).
    mbstd_num_features: its number of statistics (1).
    from_rgb_activation: a leaky ReLU after from-RGB (NVlabs) or none
      (rosinality's port).
    widen_in_conv0: where a block changes the width: in `Conv1_down`
      (NVlabs: nf(k-1) -> nf(k-1) -> nf(k-2)) or, when true, in `Conv0`
      (rosinality's port: nf(k-1) -> nf(k-2) -> nf(k-2)).
  Raises:
    ValueError: an unsupported resolution, channel count or width, or
      num_classes < 1.
  """

  architecture = "stylegan"

  def __init__(self, num_classes: int, resolution: int = 32,
               channels: int = 1, fmap_base: int = 8192, fmap_max: int = 512,
               fmap_decay: float = 1.0, mbstd_group_size: int | None = 4,
               mbstd_num_features: int = 1,
               from_rgb_activation: bool = True,
               widen_in_conv0: bool = False, name: str = "discriminator"):
    super().__init__(name=name, autocast=False)
    log2 = _log2_resolution(resolution)
    _check_widths(resolution, fmap_base, fmap_max, fmap_decay)
    _check_channels(channels)
    if num_classes < 1:
      raise ValueError(f"num_classes must be >= 1, got {num_classes}.")
    self.ctor_kwargs: dict[str, Any] = dict(
        resolution=resolution, channels=channels, fmap_base=fmap_base,
        fmap_max=fmap_max, fmap_decay=fmap_decay,
        mbstd_group_size=mbstd_group_size,
        mbstd_num_features=mbstd_num_features,
        from_rgb_activation=bool(from_rgb_activation),
        widen_in_conv0=bool(widen_in_conv0))
    self.from_rgb_activation = from_rgb_activation
    self.num_classes = num_classes
    self.resolution = resolution
    self.channels = channels
    nf = lambda stage: num_features(stage, fmap_base, fmap_max, fmap_decay)
    self.from_rgb = style.EqualizedConv2D(nf(log2 - 1), 1, use_bias=True,
                                          name="FromRGB_lod0")
    self.num_blocks = log2 - 2
    for i, k in enumerate(range(log2, 2, -1)):
      size = 2 ** k
      setattr(self, f"block{i}_conv0", style.EqualizedConv2D(
          nf(k - 2) if widen_in_conv0 else nf(k - 1), 3, use_bias=True,
          name=f"{size}x{size}_Conv0"))
      setattr(self, f"block{i}_conv1", style.EqualizedConv2D(
          nf(k - 2), 3, use_bias=True, name=f"{size}x{size}_Conv1_down"))
    # A group size <= 1 turns the layer off, as in NVlabs' StyleGAN.
    self.minibatch_stddev = (style.MinibatchStddev(
        mbstd_group_size, mbstd_num_features, name="4x4_MinibatchStddev")
                             if mbstd_group_size is None
                             or mbstd_group_size > 1 else None)
    self.conv = style.EqualizedConv2D(nf(1), 3, use_bias=True, name="4x4_Conv")
    self.dense0 = style.EqualizedDense(nf(0), name="4x4_Dense0")
    self.dense1 = style.EqualizedDense(num_classes, gain=1.0,
                                       name="4x4_Dense1")

  def clone(self, num_classes: int | None = None,
            name: str | None = None) -> "StyleGANDiscriminator":
    """A new, unbuilt discriminator of the same class and architecture."""
    return type(self)(num_classes or self.num_classes,
                      name=name or self.name, **self.ctor_kwargs)

  def features(self, images: tf.Tensor, training=None) -> tf.Tensor:
    """Penultimate features [B, nf(0)] (after `4x4_Dense0` and its leaky
    ReLU) of images [B, R, R, C]."""
    del training  # No layer behaves differently in training.
    x = self.from_rgb(images)
    if self.from_rgb_activation:
      x = style.leaky_relu(x)
    for i in range(self.num_blocks):
      x = style.leaky_relu(getattr(self, f"block{i}_conv0")(x))
      x = style.blur(x)
      x = style.downsample_box(getattr(self, f"block{i}_conv1")(x))
      x = style.leaky_relu(x)
    if self.minibatch_stddev is not None:
      x = self.minibatch_stddev(x)
    x = style.leaky_relu(self.conv(x))
    x = tf.reshape(x, [-1, 16 * x.shape[-1]])
    return style.leaky_relu(self.dense0(x))

  def call(self, inputs, training=None):
    images, y = inputs
    outputs = precision.output(
        self.dense1(self.features(images, training=training)))
    if self.num_classes == 1:
      return outputs[:, 0]  # Unconditional: y is ignored, as by NVlabs.
    return inputs_lib.read_at_classes(outputs, y, self.num_classes)


# Creates the variables of a generator (and discriminator): (G, D=None).
build_models = architectures.build_by_calling

architectures.register(architectures.Architecture(
    name="stylegan", generator=StyleGANGenerator,
    discriminator=StyleGANDiscriminator, build=build_models))
