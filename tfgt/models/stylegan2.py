"""StyleGAN2 (Karras et al., CVPR 2020) as StyleGAN2-ADA (Karras et al.,
NeurIPS 2020) defines it, in Keras 3: the generator and discriminator of
NVlabs' stylegan2-ada-pytorch, registered as "stylegan2".

Generator: (z [B, dim_z], y) -> images [B, R, R, C].
  mapping     z normalised by its second moment; a class-conditional model
              (num_classes > 1) concatenates the embedding of the class
              weights (a dense layer, normalised likewise); then
              `mapping_layers` equalised dense layers with leaky ReLU
              (learning-rate multiplier 0.01) -> w [B, w_dim], broadcast to
              num_ws = 2 log2(R) - 2 per-layer ws (StyleGAN, section 2;
              the conditioning of StyleGAN2-ADA's conditional models).
  synthesis   block b4: a learned constant [4, 4, C4] and one modulated
              3x3 convolution; blocks b8 .. bR: an upsampling modulated
              convolution (FIR [1, 3, 3, 1]) and a second one; each adds
              per-pixel noise times a learned strength, a bias and a leaky
              ReLU with gain sqrt(2) (StyleGAN2, section 2.2, fig. 2).
              `block_architecture` "skip" (default; StyleGAN2, section 4.1,
              fig. 7b) sums every block's ToRGB output into the image,
              upsampled by FIR; "orig" has one ToRGB at the end; "resnet"
              adds an upsampled 1x1 convolution of the block's input, both
              branches times sqrt(0.5) (fig. 7c).
  w_avg       the running mean of w (decay 0.995) for the truncation trick
              (`truncated_call`).
Discriminator: (images, y) -> logits [B].
  Blocks bR .. b8 (`block_architecture` "resnet" by default, "orig" or
  "skip"): FromRGB 1x1 (leaky ReLU), a 3x3 convolution, a 3x3 convolution
  with FIR downsampling, and (resnet) a downsampled 1x1 skip, the branches
  times sqrt(0.5); then the epilogue b4: minibatch standard deviation, a 3x3
  convolution, a dense layer (the penultimate features, `features`) and
  `out`. Unconditional: `out` has one unit. Conditional (StyleGAN2-ADA's
  projection discriminator, after Miyato and Koyama 2018): a mapping
  network of the class weights gives cmap [B, cmap_dim] and the logit is
  sum(out(x) * cmap) / sqrt(cmap_dim).

Widths: resolution r has min(channel_base // r, channel_max) channels.
Layer and variable names follow NVlabs' (`generator/synthesis/b8/conv0/
weight`, `discriminator/b4/fc/bias`, `generator/mapping/fc0/weight`) so that
importing their weights is a table of names; kernels are stored
[kh, kw, in, out], dense weights [in, out], and the epilogue's dense layer
reads its input in NVlabs' channel-major order.

Noise (`noise_mode`): "z" (default) draws each sample's noise maps from a
stateless generator seeded by the bits of z[:, :2], in training and in
inference, as tfgt's StyleGAN does: the same z always gives the same image,
and nothing random is checkpointed. "const" uses each layer's fixed buffer
`noise_const` (NVlabs' noise_mode="const"); "none" adds no noise.

Mixed precision (`train.precision`, `tfgt.precision`): the layers compute
in the policy's compute dtype (bfloat16 or float16) at every resolution,
with the float32 islands of `tfgt.layers.stylegan2_ops`; the image that the
"skip" generator sums over the blocks is kept in float32 (as NVlabs keeps
it), and the models hand out float32 images and logits. `w_avg` and the
truncation are float32. NVlabs' `num_fp16_res` (low precision on the
highest resolutions only) is recorded but not applied: the policy decides
for every layer.

An unconditional model has num_classes = 1 (NVlabs' c_dim = 0): y is
accepted and ignored by both networks.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import gin
import keras
import numpy as np
import tensorflow as tf

from tfgt import precision
from tfgt.layers import stylegan2_ops as ops
from tfgt.models import architectures
from tfgt.models import inputs as inputs_lib

NOISE_MODES = ("z", "const", "none")
G_ARCHITECTURES = ("orig", "skip", "resnet")
D_ARCHITECTURES = ("orig", "skip", "resnet")
MIN_RESOLUTION, MAX_RESOLUTION = 8, 1024
_SQRT_HALF = math.sqrt(0.5)


def num_channels(resolution: int, channel_base: int, channel_max: int) -> int:
  """Channels of the feature maps at a resolution (NVlabs' channels_dict)."""
  return min(channel_base // resolution, channel_max)


def _check_common(resolution: int, channels: int, channel_base: int,
                  channel_max: int, conv_clamp, num_fp16_res: int,
                  resample_filter) -> int:
  """Checks the options both networks share; returns log2(resolution)."""
  log2 = int(round(math.log2(resolution))) if resolution > 0 else 0
  if (2 ** log2 != resolution or not
      MIN_RESOLUTION <= resolution <= MAX_RESOLUTION):
    raise ValueError(f"StyleGAN2 resolution must be a power of 2 in "
                     f"[{MIN_RESOLUTION}, {MAX_RESOLUTION}], got "
                     f"{resolution}.")
  if channels not in (1, 3):
    raise ValueError(f"channels must be 1 or 3, got {channels}.")
  if channel_max < 1 or num_channels(resolution, channel_base,
                                     channel_max) < 1:
    raise ValueError(
        f"channel_base={channel_base}, channel_max={channel_max} leave no "
        f"channels at {resolution}x{resolution} (min(channel_base // "
        f"{resolution}, channel_max) < 1): use channel_base >= {resolution} "
        "and channel_max >= 1.")
  if conv_clamp is not None and not conv_clamp > 0:
    raise ValueError(f"conv_clamp must be None or > 0, got {conv_clamp}.")
  if num_fp16_res < 0:
    raise ValueError(f"num_fp16_res must be >= 0, got {num_fp16_res}.")
  ops.setup_filter(resample_filter)
  return log2


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
  if value not in choices:
    raise ValueError(f"{name} must be one of {tuple(choices)}, got "
                     f"{value!r}.")


class MappingNetwork(ops.StyleGAN2Layer):
  """z [B, dim_z] and class weights [B, N] -> w [B, w_dim] (NVlabs'
  `MappingNetwork`, with StyleGAN2-ADA's conditioning).

  Args:
    num_classes: N; 1 means unconditional (no embedding).
    dim_z: 0 for the discriminator's label mapping (no latent).
    w_dim: output width.
    num_layers: dense layers with leaky ReLU, >= 1 (>= 0 for the
      discriminator's label mapping, whose output is then the normalised
      embedding).
    embed_features: width of the label embedding (None: w_dim).
    layer_features: width of the hidden layers (None: w_dim).
    lr_multiplier: of the dense layers (the embedding learns at 1).
  """

  def __init__(self, num_classes: int, dim_z: int, w_dim: int,
               num_layers: int, embed_features: int | None = None,
               layer_features: int | None = None,
               lr_multiplier: float = 0.01, **kwargs):
    # No autocast: z is normalised in float32 before the dense layers
    # (which cast their inputs) see it.
    super().__init__(autocast=False, **kwargs)
    self.num_classes = num_classes
    self.dim_z = dim_z
    self.num_layers = num_layers
    self.embed = (ops.FullyConnected(embed_features or w_dim, name="embed")
                  if num_classes > 1 else None)
    hidden = layer_features or w_dim
    for i in range(num_layers):
      units = w_dim if i == num_layers - 1 else hidden
      setattr(self, f"fc{i}", ops.FullyConnected(
          units, activation="lrelu", lr_multiplier=lr_multiplier,
          name=f"fc{i}"))

  def build(self, z_shape, c_shape=None):
    width = 0
    if self.dim_z > 0:
      width += self.dim_z
    if self.embed is not None:
      self.embed.build((None, self.num_classes))
      width += self.embed.units
    for i in range(self.num_layers):
      layer = getattr(self, f"fc{i}")
      layer.build((None, width))
      width = layer.units

  def call(self, z, c):
    """z float32 [B, dim_z] (ignored when dim_z = 0), c float32 [B, N]."""
    parts = []
    if self.dim_z > 0:
      parts.append(ops.normalize_2nd_moment(z))
    if self.embed is not None:
      parts.append(ops.normalize_2nd_moment(self.embed(c)))
    # An embedding may compute in float32 (cGANTransfer's propagated one).
    parts = [tf.cast(p, self.compute_dtype) for p in parts]
    x = parts[0] if len(parts) == 1 else tf.concat(parts, axis=-1)
    for i in range(self.num_layers):
      x = getattr(self, f"fc{i}")(x)
    return x


class SynthesisBlock(ops.StyleGAN2Layer):
  """One resolution of the synthesis network (NVlabs' `SynthesisBlock`).

  call(x, img, ws, noise, modulation=None) -> (x [B, R, R, out], img
  [B, R, R, C] or None): x is None for b4 (the constant); ws [B, num_conv +
  num_torgb, w_dim]; noise: a map [B or 1, R, R, 1] per convolution, or
  None (each layer's fixed buffer with `use_const_noise`, else no noise);
  modulation: None, or per convolution an `ops.KernelModulation` or None.
  """

  def __init__(self, in_channels: int, out_channels: int, resolution: int,
               img_channels: int, is_last: bool, architecture: str,
               resample_filter: Sequence[float], conv_clamp,
               use_const_noise: bool, **kwargs):
    # No autocast: the image stays float32 (its layers cast their inputs).
    super().__init__(autocast=False, **kwargs)
    self.in_channels = in_channels
    self.out_channels = out_channels
    self.resolution = resolution
    self.architecture = architecture
    self.filter = ops.setup_filter(resample_filter)
    self.num_conv = 0
    self.num_torgb = 0
    layer = dict(resample_filter=resample_filter, conv_clamp=conv_clamp,
                 use_const_noise=use_const_noise)
    if in_channels:
      self.conv0 = ops.SynthesisLayer(out_channels, resolution, up=2,
                                      name="conv0", **layer)
      self.num_conv += 1
    self.conv1 = ops.SynthesisLayer(out_channels, resolution, name="conv1",
                                    **layer)
    self.num_conv += 1
    self.torgb = None
    if is_last or architecture == "skip":
      self.torgb = ops.ToRGBLayer(img_channels, conv_clamp=conv_clamp,
                                  name="torgb")
      self.num_torgb = 1
    self.skip = None
    if in_channels and architecture == "resnet":
      self.skip = ops.Conv2DLayer(out_channels, 1, use_bias=False, up=2,
                                  resample_filter=resample_filter,
                                  name="skip")

  def build(self, input_shape=None):
    if not self.in_channels:
      self.const = self.add_weight(
          name="const", shape=(4, 4, self.out_channels),
          initializer=keras.initializers.RandomNormal(stddev=1.0))
    self.built = True

  def conv_layers(self) -> list[ops.SynthesisLayer]:
    return ([self.conv0] if self.in_channels else []) + [self.conv1]

  def call(self, x, img, ws, noise, modulation=None):
    mod = modulation or [None] * self.num_conv
    if not self.in_channels:
      x = tf.tile(self.const[None], [tf.shape(ws)[0], 1, 1, 1])
      x = self.conv1(x, ws[:, 0], noise[0], modulation=mod[0])
    elif self.architecture == "resnet":
      y = self.skip(x, gain=_SQRT_HALF)
      x = self.conv0(x, ws[:, 0], noise[0], modulation=mod[0])
      x = self.conv1(x, ws[:, 1], noise[1], gain=_SQRT_HALF,
                     modulation=mod[1])
      x = y + x
    else:
      x = self.conv0(x, ws[:, 0], noise[0], modulation=mod[0])
      x = self.conv1(x, ws[:, 1], noise[1], modulation=mod[1])
    if img is not None:
      img = ops.upsample2d(img, self.filter)
    if self.torgb is not None:
      y = precision.float32(self.torgb(x, ws[:, self.num_conv]))
      img = y if img is None else img + y
    return x, img


class SynthesisNetwork(ops.StyleGAN2Layer):
  """ws [B, num_ws, w_dim] and noise maps -> images [B, R, R, C] (linear,
  unclipped; NVlabs' `SynthesisNetwork`)."""

  def __init__(self, resolution: int, channels: int, channel_base: int,
               channel_max: int, architecture: str,
               resample_filter: Sequence[float], conv_clamp,
               use_const_noise: bool = False, **kwargs):
    super().__init__(**kwargs)
    log2 = int(math.log2(resolution))
    self.resolutions = [2 ** k for k in range(2, log2 + 1)]
    self.num_ws = 0
    for res in self.resolutions:
      nc = lambda r: num_channels(r, channel_base, channel_max)
      block = SynthesisBlock(
          nc(res // 2) if res > 4 else 0, nc(res), res, channels,
          is_last=res == resolution, architecture=architecture,
          resample_filter=resample_filter, conv_clamp=conv_clamp,
          use_const_noise=use_const_noise, name=f"b{res}")
      setattr(self, f"b{res}", block)
      self.num_ws += block.num_conv
    self.num_ws += 1  # The last block's ToRGB.

  def blocks(self) -> list[SynthesisBlock]:
    # Attributes, not a list: TF checkpoints do not track Keras 3's lists.
    return [getattr(self, f"b{res}") for res in self.resolutions]

  @property
  def num_conv(self) -> int:
    return sum(block.num_conv for block in self.blocks())

  def conv_layers(self) -> list[ops.SynthesisLayer]:
    """Every modulated 3x3 convolution, lowest resolution first."""
    return [layer for block in self.blocks() for layer in block.conv_layers()]

  def call(self, ws, noise, return_blocks: bool = False, modulation=None):
    """Images float32 [B, R, R, C] (linear) of ws [B, num_ws, w_dim] and a noise
    map (or None) per convolution; with `return_blocks` also every block's
    features [B, r, r, C_r], lowest resolution first. `modulation`: None,
    or per convolution (`conv_layers` order) an `ops.KernelModulation` or
    None: the extension point of weight-modulating methods."""
    x = img = None
    w_index = noise_index = 0
    features = []
    modulation = modulation or [None] * self.num_conv
    for block in self.blocks():
      block_ws = ws[:, w_index:w_index + block.num_conv + block.num_torgb]
      end = noise_index + block.num_conv
      x, img = block(x, img, block_ws, noise[noise_index:end],
                     modulation=modulation[noise_index:end])
      features.append(x)
      w_index += block.num_conv
      noise_index = end
    return (img, features) if return_blocks else img


@gin.configurable(denylist=["num_classes", "name"])
class StyleGAN2Generator(keras.Model):
  """StyleGAN2(-ADA) generator (see the module docstring); the generator
  contract of `tfgt.models.architectures`.

  Args:
    num_classes: 1 for an unconditional model (NVlabs' c_dim = 0), else N
      (the class weights are embedded in the mapping network).
    resolution: power of 2 in [8, 1024].
    channels: 1 or 3.
    dim_z: latent width, >= 2 (the noise is seeded by z[:, :2]).
    w_dim: width of w.
    mapping_layers: >= 1 dense layers of the mapping network (NVlabs: 8;
      2 in its CIFAR-10 configuration).
    mapping_lr_multiplier: > 0 (0.01).
    embed_features: width of the label embedding (None: w_dim).
    layer_features: width of the mapping's hidden layers (None: w_dim).
    w_avg_decay: in [0, 1), the running mean's decay per training call
      (NVlabs' w_avg_beta 0.995).
    channel_base, channel_max: widths (`num_channels`); NVlabs 32768 (16384
      below 512 px in its automatic configuration) and 512.
    block_architecture: "skip" (NVlabs' G default), "orig" or "resnet"
      (NVlabs' `architecture`).
    conv_clamp: None or > 0: every convolution's output is clamped to
      +-conv_clamp (NVlabs' pickles: 256).
    num_fp16_res: recorded, not applied (float32 throughout).
    resample_filter: FIR taps of up- and downsampling ([1, 3, 3, 1]).
    style_mixing_prob: in [0, 1], the probability that a training sample
      switches from w to a second latent's w at a random layer (NVlabs'
      StyleGAN2Loss: 0.9, 0 in its CIFAR-10 configuration).
    truncation_cutoff: None (every layer, NVlabs' default) or >= 1, the
      layers truncation acts on.
    noise_mode: "z", "const" or "none" (module docstring).
    track_path_length: hold `pl_mean`, the running mean of path lengths
      that path-length regularisation pulls towards
      (`tfgt.objectives.Adversarial.pl_weight`), a state variable
      checkpointed with the generator (NVlabs keeps it in the loss and loses
      it when a run resumes from a pickle). Off by default, so that a model
      recorded without it loads as it was saved.

  Raises:
    ValueError: an option out of its range, naming it.
  """

  architecture = "stylegan2"
  no_truncation = 1.0
  truncation_meaning = (
      "psi > 0: w_avg + psi (w - w_avg) on the first truncation_cutoff "
      "layers of w (all when None); z is N(0, 1) (seeds) or as given; 1 = "
      "no truncation, towards 0 = towards the average image")

  def __init__(self, num_classes: int, resolution: int = 32,
               channels: int = 1, dim_z: int = 512, w_dim: int = 512,
               mapping_layers: int = 8, mapping_lr_multiplier: float = 0.01,
               embed_features: int | None = None,
               layer_features: int | None = None,
               w_avg_decay: float = 0.995, channel_base: int = 32768,
               channel_max: int = 512, block_architecture: str = "skip",
               conv_clamp: float | None = None, num_fp16_res: int = 0,
               resample_filter: Sequence[float] = ops.DEFAULT_FILTER,
               style_mixing_prob: float = 0.9,
               truncation_cutoff: int | None = None,
               noise_mode: str = "z", track_path_length: bool = False,
               name: str = "generator"):
    # Layers follow the dtype policy; the model takes z and hands out
    # images in float32.
    super().__init__(name=name, autocast=False)
    _check_common(resolution, channels, channel_base, channel_max,
                  conv_clamp, num_fp16_res, resample_filter)
    _check_choice("block_architecture", block_architecture, G_ARCHITECTURES)
    _check_choice("noise_mode", noise_mode, NOISE_MODES)
    if num_classes < 1:
      raise ValueError(f"num_classes must be >= 1, got {num_classes}.")
    if dim_z < 2:
      raise ValueError(f"dim_z must be >= 2 (noise is seeded by z), got "
                       f"{dim_z}.")
    if w_dim < 1:
      raise ValueError(f"w_dim must be >= 1, got {w_dim}.")
    if mapping_layers < 1:
      raise ValueError(f"mapping_layers must be >= 1, got {mapping_layers}.")
    if not mapping_lr_multiplier > 0:
      raise ValueError(f"mapping_lr_multiplier must be > 0, got "
                       f"{mapping_lr_multiplier}.")
    for option, value in (("embed_features", embed_features),
                          ("layer_features", layer_features)):
      if value is not None and value < 1:
        raise ValueError(f"{option} must be None or >= 1, got {value}.")
    if not 0.0 <= w_avg_decay < 1.0:
      raise ValueError(f"w_avg_decay must be in [0, 1), got {w_avg_decay}.")
    if not 0.0 <= style_mixing_prob <= 1.0:
      raise ValueError(f"style_mixing_prob must be in [0, 1], got "
                       f"{style_mixing_prob}.")
    if truncation_cutoff is not None and truncation_cutoff < 1:
      raise ValueError(f"truncation_cutoff must be None or >= 1, got "
                       f"{truncation_cutoff}.")
    self.ctor_kwargs: dict[str, Any] = dict(
        resolution=resolution, channels=channels, dim_z=dim_z, w_dim=w_dim,
        mapping_layers=mapping_layers,
        mapping_lr_multiplier=float(mapping_lr_multiplier),
        embed_features=embed_features, layer_features=layer_features,
        w_avg_decay=float(w_avg_decay), channel_base=channel_base,
        channel_max=channel_max, block_architecture=block_architecture,
        conv_clamp=None if conv_clamp is None else float(conv_clamp),
        num_fp16_res=num_fp16_res,
        resample_filter=[float(t) for t in resample_filter],
        style_mixing_prob=float(style_mixing_prob),
        truncation_cutoff=truncation_cutoff, noise_mode=noise_mode,
        track_path_length=bool(track_path_length))
    self.track_path_length = bool(track_path_length)
    self.pl_mean = None
    self.num_classes = num_classes
    self.resolution = resolution
    self.channels = channels
    self.dim_z = dim_z
    self.w_dim = w_dim
    self.w_avg_decay = w_avg_decay
    self.style_mixing_prob = style_mixing_prob
    self.noise_mode = noise_mode
    self.mapping = MappingNetwork(
        num_classes, dim_z, w_dim, mapping_layers,
        embed_features=embed_features, layer_features=layer_features,
        lr_multiplier=mapping_lr_multiplier, name="mapping")
    self.synthesis = SynthesisNetwork(
        resolution, channels, channel_base, channel_max, block_architecture,
        resample_filter, conv_clamp,
        use_const_noise=noise_mode == "const", name="synthesis")
    self.num_ws = self.synthesis.num_ws
    self.truncation_cutoff = (self.num_ws if truncation_cutoff is None
                              else min(truncation_cutoff, self.num_ws))

  def build(self, input_shape=None):
    self.w_avg = self.add_weight(name="w_avg", shape=(self.w_dim,),
                                 initializer="zeros", trainable=False,
                                 aggregation="mean", autocast=False)
    if self.track_path_length:
      self.pl_mean = self.add_weight(name="pl_mean", shape=(),
                                     initializer="zeros", trainable=False,
                                     aggregation="mean", autocast=False)
    z = tf.zeros([1, self.dim_z])
    w = self.mapping(z, tf.zeros([1, self.num_classes]))
    ws = self._broadcast(w)
    self.synthesis(ws, self.synthesis_noise(z))
    self.built = True

  def clone(self, num_classes: int | None = None,
            name: str | None = None) -> "StyleGAN2Generator":
    """A new, unbuilt generator with the same options."""
    return StyleGAN2Generator(num_classes or self.num_classes,
                              name=name or self.name, **self.ctor_kwargs)

  def equalized_class_tables(self) -> tuple[str, ...]:
    """The label embedding's weight [num_classes, embed_features], scaled at
    run time by 1 / sqrt(num_classes) (`tfgt.models.weights`); none in an
    unconditional model."""
    return ("mapping/embed/weight",) if self.num_classes > 1 else ()

  def ema_copies(self, variable) -> bool:
    """w_avg, the fixed noise buffers and pl_mean are state, not weights:
    an EMA generator copies them (NVlabs' G_ema copies its buffers).
    `variable` is one of this model's own."""
    state = [self.w_avg] + [layer.noise_const
                            for layer in self.synthesis.conv_layers()]
    if self.pl_mean is not None:
      state.append(self.pl_mean)
    return any(variable is v for v in state)

  def _random_draws(self, z: tf.Tensor):
    """Per-sample draws seeded by z: (noise maps [B, r, r, 1] per
    convolution, a second latent [B, dim_z], uniforms [B, 2])."""
    sizes = [layer.resolution for layer in self.synthesis.conv_layers()]
    total = sum(s * s for s in sizes) + self.dim_z

    def draw(seed):
      return (tf.random.stateless_normal([total], seed=seed),
              tf.random.stateless_uniform([2], seed=seed + 1))

    normal, uniform = tf.map_fn(
        draw, inputs_lib.sample_seeds(z),
        fn_output_signature=(tf.float32, tf.float32))
    pieces = tf.split(normal, [s * s for s in sizes] + [self.dim_z], axis=1)
    noise = [tf.reshape(p, [-1, s, s, 1]) for p, s in zip(pieces, sizes)]
    return noise, pieces[-1], uniform

  def synthesis_noise(self, z: tf.Tensor) -> list[tf.Tensor | None]:
    """The noise maps of the image of z, one per modulated 3x3 convolution:
    [B, r, r, 1] each (noise_mode "z"), or None each (the layers' fixed
    buffers with "const", no noise with "none")."""
    if self.noise_mode == "z":
      return self._random_draws(z)[0]
    return [None] * self.synthesis.num_conv

  def map(self, z: tf.Tensor, y) -> tf.Tensor:
    """w [B, w_dim] (in the compute dtype) of z float32 [B, dim_z] and
    labels int32 [B] or class weights float32 [B, num_classes].

    Raises:
      ValueError: z of another width.
    """
    z = tf.convert_to_tensor(z, tf.float32)
    if z.shape[-1] is not None and z.shape[-1] != self.dim_z:
      raise ValueError(f"z has width {z.shape[-1]}, the generator expects "
                       f"{self.dim_z}.")
    return self.mapping(z, inputs_lib.class_weights(y, self.num_classes))

  def _broadcast(self, w: tf.Tensor) -> tf.Tensor:
    return tf.tile(w[:, None], [1, self.num_ws, 1])

  def synthesize(self, ws: tf.Tensor, z: tf.Tensor, training=None,
                 noise=None, return_blocks: bool = False, modulation=None):
    """Images of per-layer ws with the noise of z.

    Args:
      ws: float32 [B, num_ws, w_dim].
      z: float32 [B, dim_z], whose bits seed the noise (noise_mode "z").
      training: linear output when true, clipped to [-1, 1] otherwise.
      noise: the noise maps if already drawn (`synthesis_noise(z)`).
      return_blocks: also return every synthesis block's features
        (Hyper-Modulation's self-alignment compares them).
      modulation: None, or per modulated 3x3 convolution
        (`synthesis.conv_layers()` order) an `ops.KernelModulation` or None:
        the extension point of weight-modulating methods (Hyper-Modulation,
        GAN Memory).

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

  def styles(self, z: tf.Tensor, y, training=None,
             update_w_avg: bool = True):
    """The per-layer ws of z and y, and their noise if already drawn.

    Args:
      z: float32 [B, dim_z].
      y: labels int32 [B] or class weights float32 [B, num_classes].
      training: when true, style mixing (`style_mixing_prob`) and, with
        `update_w_avg`, one update of w_avg.
      update_w_avg: False leaves w_avg as it is.

    Returns:
      (ws float32 [B, num_ws, w_dim], noise maps or None).
    """
    w = self.map(z, y)
    ws = self._broadcast(w)
    noise = None
    if training:
      if update_w_avg:
        batch_mean = tf.reduce_mean(precision.float32(w), axis=0)
        self.w_avg.assign(batch_mean + self.w_avg_decay *
                          (self.w_avg - batch_mean))
      if self.style_mixing_prob > 0:
        draws, z2, uniform = self._random_draws(z)
        ws = self._mix_styles(ws, self.map(z2, y), uniform)
        if self.noise_mode == "z":
          noise = draws
    return ws, noise

  def _mix_styles(self, ws: tf.Tensor, w2: tf.Tensor,
                  uniform: tf.Tensor) -> tf.Tensor:
    """Style mixing (StyleGAN, section 3.1): with probability
    `style_mixing_prob` a sample takes w2 from a crossover layer drawn
    uniformly in [1, num_ws) on. NVlabs draws one decision and crossover
    per batch; here each sample has its own, seeded by its z."""
    cutoff = 1 + tf.cast(uniform[:, 1] * (self.num_ws - 1), tf.int32)
    cutoff = tf.where(uniform[:, 0] < self.style_mixing_prob, cutoff,
                      self.num_ws)
    keep = tf.range(self.num_ws)[None, :] < cutoff[:, None]
    return tf.where(keep[:, :, None], ws, self._broadcast(w2))

  def call(self, inputs, training=None):
    """(z float32 [B, dim_z], y labels [B] or class weights [B, N]) ->
    images float32 [B, R, R, C], clipped to [-1, 1] unless training."""
    z, y = inputs
    ws, noise = self.styles(z, y, training=training)
    return self.synthesize(ws, z, training=training, noise=noise)

  def truncate(self, ws: tf.Tensor, truncation) -> tf.Tensor:
    """The truncation trick in W (StyleGAN, appendix B; StyleGAN2-ADA's
    `truncation_psi`): w_avg + psi (w - w_avg) on the first
    `truncation_cutoff` layers.

    ws: [B, num_ws, w_dim]; truncation: psi, a scalar or [B]; 1 leaves w
    as it is, 0 gives w_avg, > 1 extrapolates. Returns float32 ws.
    """
    psi = tf.reshape(tf.cast(truncation, tf.float32), [-1, 1, 1])
    layer = tf.range(self.num_ws)[None, :, None]
    psi = tf.where(layer < self.truncation_cutoff, psi, 1.0)
    return self.w_avg + psi * (precision.float32(ws) - self.w_avg)

  def truncated_call(self, inputs, truncation) -> tf.Tensor:
    """Images float32 [B, R, R, C] in [-1, 1] of untruncated z with
    truncation psi (scalar or [B] float32; 1 = none); inference mode."""
    z, y = inputs
    ws = self.truncate(self._broadcast(self.map(z, y)), truncation)
    return self.synthesize(ws, z, training=False)


class DiscriminatorBlock(ops.StyleGAN2Layer):
  """One resolution of the discriminator (NVlabs' `DiscriminatorBlock`):
  call(x, img) -> (x [B, R/2, R/2, out], img [B, R/2, R/2, C] or None); x
  is None for the first block."""

  def __init__(self, in_channels: int, tmp_channels: int, out_channels: int,
               architecture: str, resample_filter: Sequence[float],
               conv_clamp, **kwargs):
    super().__init__(**kwargs)
    self.in_channels = in_channels
    self.architecture = architecture
    self.filter = ops.setup_filter(resample_filter)
    conv = dict(activation="lrelu", conv_clamp=conv_clamp)
    self.fromrgb = (ops.Conv2DLayer(tmp_channels, 1, name="fromrgb", **conv)
                    if not in_channels or architecture == "skip" else None)
    self.conv0 = ops.Conv2DLayer(tmp_channels, 3, name="conv0", **conv)
    self.conv1 = ops.Conv2DLayer(out_channels, 3, down=2,
                                 resample_filter=resample_filter,
                                 name="conv1", **conv)
    self.skip = (ops.Conv2DLayer(out_channels, 1, use_bias=False, down=2,
                                 resample_filter=resample_filter,
                                 name="skip")
                 if architecture == "resnet" else None)

  def call(self, x, img):
    if self.fromrgb is not None:
      y = self.fromrgb(img)
      x = y if x is None else x + y
      img = (ops.downsample2d(img, self.filter)
             if self.architecture == "skip" else None)
    if self.architecture == "resnet":
      y = self.skip(x, gain=_SQRT_HALF)
      x = self.conv1(self.conv0(x), gain=_SQRT_HALF)
      return y + x, img
    return self.conv1(self.conv0(x)), img


class DiscriminatorEpilogue(ops.StyleGAN2Layer):
  """The 4x4 end of the discriminator (NVlabs' `DiscriminatorEpilogue`):
  [FromRGB (skip)], minibatch std, 3x3 conv, dense (the features), out."""

  def __init__(self, channels: int, out_units: int, architecture: str,
               mbstd_group_size: int | None, mbstd_num_channels: int,
               conv_clamp, **kwargs):
    super().__init__(**kwargs)
    self.fromrgb = (ops.Conv2DLayer(channels, 1, activation="lrelu",
                                    name="fromrgb")
                    if architecture == "skip" else None)
    self.mbstd = (ops.MinibatchStd(mbstd_group_size, mbstd_num_channels,
                                   name="mbstd")
                  if mbstd_num_channels > 0 else None)
    self.conv = ops.Conv2DLayer(channels, 3, activation="lrelu",
                                conv_clamp=conv_clamp, name="conv")
    self.fc = ops.FullyConnected(channels, activation="lrelu", name="fc")
    self.out = ops.FullyConnected(out_units, name="out")

  def call(self, x, img):
    """[B, 4, 4, C4] (and the 4x4 image for skip) -> (features [B, C4],
    out [B, out_units])."""
    if self.fromrgb is not None:
      x = x + self.fromrgb(img)
    if self.mbstd is not None:
      x = self.mbstd(x)
    x = self.conv(x)
    # Flattened channel-major, as NVlabs' NCHW tensors are.
    x = tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [-1, 16 * x.shape[-1]])
    features = self.fc(x)
    return features, self.out(features)


@gin.configurable(denylist=["num_classes", "name"])
class StyleGAN2Discriminator(keras.Model):
  """StyleGAN2(-ADA) discriminator (see the module docstring): (images, y)
  -> logits float32 [B]; `features(images)` -> the epilogue's dense output
  float32 [B, C4].

  Args:
    num_classes: N; 1 means unconditional (one output, y ignored), else
      the projection onto the mapped class weights.
    resolution, channels, channel_base, channel_max, conv_clamp,
      num_fp16_res, resample_filter: as the generator.
    block_architecture: "resnet" (NVlabs' D default), "orig" (its CIFAR-10
      configuration) or "skip".
    cmap_dim: width of the mapped label (None: the 4x4 channels, NVlabs).
    mapping_layers: >= 0 dense layers of the label's mapping network after
      its embedding (8, stylegan2-ada-pytorch's default; 0 in NVlabs'
      TensorFlow StyleGAN2-ADA: the normalised embedding is the mapping).
    mapping_lr_multiplier: > 0, those layers' learning-rate multiplier
      (0.01, stylegan2-ada-pytorch's; 0.1 in the TensorFlow code).
    mbstd_group_size: the minibatch std's largest group (NVlabs: 4; 32 in
      its CIFAR-10 configuration); None: the whole batch.
    mbstd_num_channels: its statistics, 0 leaves the layer out; the 4x4
      channels must divide by it.

  Raises:
    ValueError: an option out of its range, naming it.
  """

  architecture = "stylegan2"
  # How a conditional model reads the class: "projection" (StyleGAN2-ADA's
  # mapped label) or "heads" (one output per class, read at the class
  # weights: Hyper-Modulation's, `tfgt.models.hypermod`).
  conditioning = "projection"

  def __init__(self, num_classes: int, resolution: int = 32,
               channels: int = 1, channel_base: int = 32768,
               channel_max: int = 512, block_architecture: str = "resnet",
               conv_clamp: float | None = None, num_fp16_res: int = 0,
               resample_filter: Sequence[float] = ops.DEFAULT_FILTER,
               cmap_dim: int | None = None, mapping_layers: int = 8,
               mapping_lr_multiplier: float = 0.01,
               mbstd_group_size: int | None = 4,
               mbstd_num_channels: int = 1, name: str = "discriminator"):
    # Layers follow the dtype policy; the model hands out float32 logits.
    super().__init__(name=name, autocast=False)
    log2 = _check_common(resolution, channels, channel_base, channel_max,
                         conv_clamp, num_fp16_res, resample_filter)
    _check_choice("block_architecture", block_architecture, D_ARCHITECTURES)
    if num_classes < 1:
      raise ValueError(f"num_classes must be >= 1, got {num_classes}.")
    nc = lambda r: num_channels(r, channel_base, channel_max)
    if cmap_dim is not None and cmap_dim < 1:
      raise ValueError(f"cmap_dim must be None or >= 1, got {cmap_dim}.")
    if mapping_layers < 0:
      raise ValueError(f"mapping_layers must be >= 0, got {mapping_layers}.")
    if not mapping_lr_multiplier > 0:
      raise ValueError(f"mapping_lr_multiplier must be > 0, got "
                       f"{mapping_lr_multiplier}.")
    if mbstd_group_size is not None and mbstd_group_size < 1:
      raise ValueError(f"mbstd_group_size must be None or >= 1, got "
                       f"{mbstd_group_size}.")
    if mbstd_num_channels < 0 or (mbstd_num_channels and
                                  nc(4) % mbstd_num_channels):
      raise ValueError(f"mbstd_num_channels must be >= 0 and divide the "
                       f"{nc(4)} channels at 4x4, got {mbstd_num_channels}.")
    self.ctor_kwargs: dict[str, Any] = dict(
        resolution=resolution, channels=channels, channel_base=channel_base,
        channel_max=channel_max, block_architecture=block_architecture,
        conv_clamp=None if conv_clamp is None else float(conv_clamp),
        num_fp16_res=num_fp16_res,
        resample_filter=[float(t) for t in resample_filter],
        cmap_dim=cmap_dim, mapping_layers=mapping_layers,
        mapping_lr_multiplier=float(mapping_lr_multiplier),
        mbstd_group_size=mbstd_group_size,
        mbstd_num_channels=mbstd_num_channels)
    self.num_classes = num_classes
    self.resolution = resolution
    self.channels = channels
    self.resolutions = [2 ** k for k in range(log2, 2, -1)]
    for res in self.resolutions:
      setattr(self, f"b{res}", DiscriminatorBlock(
          nc(res) if res < resolution else 0, nc(res), nc(res // 2),
          block_architecture, resample_filter, conv_clamp, name=f"b{res}"))
    self.cmap_dim = 0
    self.mapping = None
    if num_classes > 1 and self.conditioning == "projection":
      self.cmap_dim = cmap_dim or nc(4)
      self.mapping = MappingNetwork(num_classes, 0, self.cmap_dim,
                                    mapping_layers,
                                    lr_multiplier=mapping_lr_multiplier,
                                    name="mapping")
    out_units = (num_classes if self.conditioning == "heads"
                 else self.cmap_dim or 1)
    self.b4 = DiscriminatorEpilogue(
        nc(4), out_units, block_architecture, mbstd_group_size,
        mbstd_num_channels, conv_clamp, name="b4")

  def clone(self, num_classes: int | None = None,
            name: str | None = None) -> "StyleGAN2Discriminator":
    """A new, unbuilt discriminator with the same options."""
    return type(self)(num_classes or self.num_classes,
                      name=name or self.name, **self.ctor_kwargs)

  @property
  def blocks(self) -> list[keras.layers.Layer]:
    """The blocks from the input on: bR, ..., b8, then the epilogue b4 (the
    first K are those FreezeD freezes)."""
    return [getattr(self, f"b{res}") for res in self.resolutions] + [self.b4]

  def equalized_class_tables(self) -> tuple[str, ...]:
    """The label mapping's embedding weight [num_classes, cmap_dim] (see the
    generator's); none in an unconditional model."""
    return ("mapping/embed/weight",) if self.mapping is not None else ()

  def build(self, input_shape=None):
    images = tf.zeros([1, self.resolution, self.resolution, self.channels])
    self._features_and_out(images)
    if self.mapping is not None:
      self.mapping(tf.zeros([1, 0]), tf.zeros([1, self.num_classes]))
    self.built = True

  def _features_and_out(self, images: tf.Tensor):
    x, img = None, tf.convert_to_tensor(images, tf.float32)
    for res in self.resolutions:
      x, img = getattr(self, f"b{res}")(x, img)
    return self.b4(x, img)

  def features(self, images: tf.Tensor, training=None) -> tf.Tensor:
    """Penultimate features float32 [B, C4] (the epilogue's `fc`) of images
    float32 [B, R, R, C]."""
    del training  # No layer behaves differently in training.
    return precision.output(self._features_and_out(images)[0])

  def call(self, inputs, training=None):
    """(images float32 [B, R, R, C], y labels [B] or class weights [B, N])
    -> logits float32 [B]."""
    del training  # No layer behaves differently in training.
    images, y = inputs
    x = precision.output(self._features_and_out(images)[1])
    if self.num_classes == 1:
      return x[:, 0]  # Unconditional: y is ignored, as NVlabs' c_dim = 0.
    if self.mapping is None:  # One output per class.
      return inputs_lib.read_at_classes(x, y, self.num_classes)
    c = inputs_lib.class_weights(y, self.num_classes)
    cmap = precision.output(self.mapping(tf.zeros([tf.shape(c)[0], 0]), c))
    return tf.reduce_sum(x * cmap, axis=-1) / math.sqrt(self.cmap_dim)


# Creates the variables of a generator (and discriminator): (G, D=None).
build_models = architectures.build_by_calling

architectures.register(architectures.Architecture(
    name="stylegan2", generator=StyleGAN2Generator,
    discriminator=StyleGAN2Discriminator, build=build_models))
