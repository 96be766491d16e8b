"""The class-conditional generator of Hyper-Modulation and GAN Memory.

Hyper-Modulation (Laria et al., CVPRW 2022, section 3) keeps an
unconditional StyleGAN frozen and makes it class-conditional by modulating
the kernel of every 3x3 synthesis convolution per class (AdaFM,
`tfgt.layers.adafm`, eq. 4-5):

    W_c = gamma_c * (W - mu) / sigma + beta_c,      b_c = b + b_shift_c

Where gamma_c, beta_c and b_shift_c come from decides the mode:

  "hypernetwork"  Hyper-Modulation: a class network C maps the class to v in
                  the class space V, and per modulated layer a modulator
                  (g, g_b) maps v to them (eq. 3, `tfgt.layers.hypernetwork`).
                  All classes share the modulators.
  "free"          GAN Memory (Cong et al., NeurIPS 2020; the paper's "No
                  hypernet."): gamma, beta [classes, in, out] and b_shift
                  [classes, out] are free variables of each layer, set by
                  `match_source()` to the source's sigma, mu and 0, so that
                  every class starts as the source, bit for bit (in
                  float32; StyleGAN v1 also under mixed precision).

Everything else is the source StyleGAN's (`self.source`, an unconditional
`tfgt.models.stylegan.StyleGANGenerator`): mapping network, constant input,
noise, style affines, to-RGB and `w_avg`, which this generator does not
update unless `track_w_avg` (a frozen mapping network keeps the source's
average right). Which variables train is the method's choice
(`tfgt.methods.hypermod`: frozen in Hyper-Modulation and GAN Memory, trained
in Hyper-Mod-FT and -S).

Classes: N + M as every tfgt generator, the source's class(es) first. All
of them are modulated alike; a class whose parameters never train stays
what it was (the source, in "free" mode).

Upsampling layers at 128 px and above (where StyleGAN fuses the nearest
upsampling and the 3x3 convolution into one transposed convolution, and
the official Hyper-Modulation code modulates the fused 4x4 kernel) use the
official fused modulation (`adafm.fused_upsampling_kernel`) in hypernetwork
mode; `fused_modulation` chooses.

Labels draw with per-class kernels (one convolution per class in the batch,
`adafm.conv_partition`); class weights [B, N + M] mix the classes before
the kernels are made (v for the hypernetwork, the parameters themselves in
"free" mode), so every sample has its own kernel (`adafm.conv_patches`):
the class interpolation of the paper's Fig. 3.

Variable names: `generator/source/...` is the StyleGAN (NVlabs names below
it), `generator/C/...` the class network, `generator/<layer>_mod/{g,g_b}/...`
a layer's modulator, `generator/<layer>_mod/{gamma,beta,shift}` the free
parameters.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import keras
import tensorflow as tf

from tfgt import precision
from tfgt.layers import adafm
from tfgt.layers import hypernetwork
from tfgt.layers import stylegan2_ops
from tfgt.models import architectures
from tfgt.models import inputs as inputs_lib
from tfgt.models import stylegan
from tfgt.models import stylegan2

MODES = ("hypernetwork", "free")
# "shift": b + b_shift (eq. 5). "standardized": the official code's
# (b - mean(b)) / std(b) + b_shift, which only the shift restores to scale.
BIAS_MODES = ("shift", "standardized")
# Which upsampling layers modulate the fused 4x4 kernel
# (`adafm.fused_upsampling_kernel`): "auto" those at FUSED_MIN_RESOLUTION
# and above in hypernetwork mode (the official code's `fused=True`, and
# StyleGAN's `fused_scale="auto"`); "always" every one (hypernetwork mode);
# "never" none (eq. 4 of the 3x3 kernel before the upsampling).
FUSED_MODULATION = ("auto", "always", "never")
FUSED_MIN_RESOLUTION = 128


class Convolution(NamedTuple):
  """One modulated convolution of a source generator.

  position: its index in the source's modulation list; layer: the source
  layer; name: the ModulatedLayer's name stem; fan_in, fan_out: channels;
  up: whether it upsamples; size: its output resolution in pixels.
  """
  position: int
  layer: Any
  name: str
  fan_in: int
  fan_out: int
  up: bool
  size: int


class ModulatedLayer(keras.layers.Layer):
  """The per-class parameters of one synthesis convolution.

  In "hypernetwork" mode a `hypernetwork.Modulator` (g, g_b); in "free"
  mode the variables gamma, beta [num_classes, in, out] and shift
  [num_classes, out].

  Args:
    num_classes: classes of the free parameters.
    fan_in, fan_out: the convolution's channels.
    mode: one of MODES.
    hidden: the modulator's hidden width (`hypernetwork.Modulator`).
    scale: the modulator's scale (`hypernetwork.SCALES`).
    fused: whether the layer takes the fused upsampling modulation.
  """

  def __init__(self, num_classes: int, fan_in: int, fan_out: int, mode: str,
               hidden: int | None = None, scale: str = "official",
               fused: bool = False, **kwargs):
    super().__init__(**kwargs)
    self.num_classes = num_classes
    self.fan_in = fan_in
    self.fan_out = fan_out
    self.mode = mode
    self.fused = fused
    self.modulator = (hypernetwork.Modulator(fan_in, fan_out, hidden, scale,
                                             name="modulator")
                      if mode == "hypernetwork" else None)

  def build(self, width: int):
    """Creates the variables; `width`: that of v (the class space)."""
    if self.modulator is not None:
      self.modulator.build((None, width))
    else:
      shape = (self.num_classes, self.fan_in, self.fan_out)
      # Float32 under every precision (no autocast): AdaFM's input.
      self.gamma = self.add_weight(name="gamma", shape=shape,
                                   initializer="ones", autocast=False)
      self.beta = self.add_weight(name="beta", shape=shape,
                                  initializer="zeros", autocast=False)
      self.shift = self.add_weight(name="shift",
                                   shape=(self.num_classes, self.fan_out),
                                   initializer="zeros", autocast=False)
    self.built = True

  def parameters(self, v: tf.Tensor | None, class_weights: tf.Tensor | None):
    """(gamma, beta [K, in, out], shift [K, out]) for K rows: the rows of v
    [K, width] (hypernetwork), or of class weights [K, num_classes] (free;
    None: one row per class)."""
    if self.modulator is not None:
      return self.modulator(v)
    if class_weights is None:
      return self.gamma, self.beta, self.shift
    mix = lambda p: tf.tensordot(class_weights, p, axes=1)
    return mix(self.gamma), mix(self.beta), mix(self.shift)


class _ServingTable(tf.Module):
  """Every class's kernels and bias shifts per modulated layer, as
  non-trainable variables (`HyperModGenerator.prepare_serving`)."""

  def __init__(self, table: list[tuple[tf.Tensor, tf.Tensor]]):
    super().__init__(name="serving_table")
    self.kernels = [tf.Variable(k, trainable=False) for k, _ in table]
    self.shifts = [tf.Variable(s, trainable=False) for _, s in table]

  def rows(self) -> list[tuple[tf.Variable, tf.Variable]]:
    return list(zip(self.kernels, self.shifts))


class HyperModGenerator(keras.Model):
  """A frozen unconditional StyleGAN made class-conditional by AdaFM (see the
  module docstring); the generator contract of `tfgt.models.architectures`.

  Args:
    num_classes: N + M classes, >= 1.
    source: the constructor keyword arguments of the source
      `StyleGANGenerator` (its `ctor_kwargs`); it is built with one class.
    mode: one of MODES.
    class_width: width of the class space V (the paper: 64).
    class_depth: dense layers of the class network (4; 0 = the paper's
      configuration A, the embedding itself is v).
    modulator_hidden: None (the official code: g maps v straight to
      2 * in * out values) or the width of a linear hidden layer (the
      paper's "512").
    bias: one of BIAS_MODES.
    scale: the hypernetwork's parametrisation (`hypernetwork.SCALES`):
      "official" (the official code's equalised embedding and gain sqrt(2))
      or "unit" (tfgt's earlier one). Ignored in "free" mode.
    fused_modulation: one of FUSED_MODULATION.
    formulation: the per-class convolution for labels
      (`adafm.FORMULATIONS`).
    track_w_avg: update the source's `w_avg` in training calls, for methods
      that train the mapping network (Hyper-Mod-FT, -S); False keeps the
      source's.
    name: the model's name.

  Raises:
    ValueError: an argument out of its range.
  """

  architecture = "hypermod"
  # What a recorded model.json entry that lacks these options was built
  # with (`architectures.with_defaults`): the parametrisation of tfgt before
  # the options existed, so that an earlier bundle draws what it drew.
  unrecorded_defaults = {"scale": "unit", "fused_modulation": "never"}
  no_truncation = 1.0
  truncation_meaning = stylegan.StyleGANGenerator.truncation_meaning

  def __init__(self, num_classes: int, source: dict[str, Any],
               mode: str = "hypernetwork", class_width: int = 64,
               class_depth: int = 4, modulator_hidden: int | None = None,
               bias: str = "shift", scale: str = "official",
               fused_modulation: str = "auto", formulation: str = "auto",
               track_w_avg: bool = False, name: str = "generator"):
    super().__init__(name=name, autocast=False)
    if num_classes < 1:
      raise ValueError(f"num_classes must be >= 1, got {num_classes}.")
    if mode not in MODES:
      raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
    if bias not in BIAS_MODES:
      raise ValueError(f"bias must be one of {BIAS_MODES}, got {bias!r}.")
    hypernetwork.check_scale(scale)
    if fused_modulation not in FUSED_MODULATION:
      raise ValueError(f"fused_modulation must be one of {FUSED_MODULATION}, "
                       f"got {fused_modulation!r}.")
    if mode == "free" and fused_modulation == "always":
      raise ValueError(
          'fused_modulation="always" needs mode="hypernetwork": free '
          "parameters start as the source, which the fused form cannot "
          "reproduce.")
    if formulation not in adafm.FORMULATIONS:
      raise ValueError(f"formulation must be one of {adafm.FORMULATIONS}, "
                       f"got {formulation!r}.")
    # Options the recorded source predates take their defaults, not gin's.
    source_class = self._source_class()
    self.source = source_class(
        1, name="source", **architectures.with_defaults(source_class, source))
    # The source's options as its constructor records them (every option,
    # defaults included), so that equal sources compare equal.
    self.ctor_kwargs: dict[str, Any] = dict(
        source=dict(self.source.ctor_kwargs), mode=mode,
        class_width=class_width,
        class_depth=class_depth, modulator_hidden=modulator_hidden,
        bias=bias, scale=scale, fused_modulation=fused_modulation,
        formulation=formulation, track_w_avg=track_w_avg)
    self.num_classes = num_classes
    self.mode = mode
    self.bias_mode = bias
    self.formulation = formulation
    self.track_w_avg = track_w_avg
    self.serving_prepared = False
    self.serving_table = None
    self.resolution = self.source.resolution
    self.channels = self.source.channels
    self.dim_z = self.source.dim_z
    self.class_network = (hypernetwork.ClassNetwork(
        num_classes, class_width, class_depth, scale, name="C")
                          if mode == "hypernetwork" else None)
    self.class_width = class_width
    convolutions = self._convolutions()
    # Positions in the source's modulation list (`synthesize`).
    self.modulated = [c.position for c in convolutions]
    for c in convolutions:
      fused = (mode == "hypernetwork" and c.up and (
          fused_modulation == "always" or (
              fused_modulation == "auto" and
              c.size >= FUSED_MIN_RESOLUTION)))
      setattr(self, f"mod{c.position}", ModulatedLayer(
          num_classes, c.fan_in, c.fan_out, mode, modulator_hidden,
          scale, fused, name=f"{c.name}_mod"))

  # The hooks of a source architecture: StyleGAN's here,
  # `HyperModStyleGAN2Generator` for StyleGAN2.
  @staticmethod
  def _source_class() -> type:
    """The source generator's class."""
    return stylegan.StyleGANGenerator

  def _convolutions(self) -> list["Convolution"]:
    """Every modulated convolution of the source (every synthesis layer
    with a convolution: 4x4_Const has none)."""
    synthesis = self.source.synthesis
    layers = synthesis.layers_in_order
    channels = [layer.style_mod.channels for layer in layers]
    fan_ins = [synthesis.const_channels] + channels[:-1]
    return [Convolution(i, layers[i], synthesis.layer_names[i], fan_ins[i],
                        channels[i], bool(layers[i].up),
                        synthesis.layer_sizes[i])
            for i, layer in enumerate(layers) if layer.conv is not None]

  def _modulation_slots(self) -> int:
    """The length of the source's modulation list."""
    return self.source.num_ws

  @staticmethod
  def _source_kernel(layer) -> tf.Variable:
    """The layer's stored kernel [k, k, in, out] that AdaFM modulates."""
    return layer.conv.kernel

  @staticmethod
  def _source_bias(layer) -> tf.Tensor:
    """The layer's effective bias [out] (learning-rate multiplier applied)."""
    return layer.bias.bias * layer.bias.lr_multiplier

  def _layer_kernels(self, layer, mod: ModulatedLayer, gamma: tf.Tensor,
                     beta: tf.Tensor) -> tf.Tensor:
    """The kernels [K, k, k, in, out] the layer convolves with, its runtime
    scale included, of gamma and beta [K, in, out]."""
    if mod.fused:
      return adafm.fused_upsampling_kernel(layer.conv.kernel, gamma, beta)
    return (adafm.modulate_kernel(layer.conv.kernel, gamma, beta) *
            layer.conv.runtime_scale)

  def _layer_modulation(self, kernels: tf.Tensor, labels: tf.Tensor | None,
                        shift: tf.Tensor):
    """What the source's layer takes in place of its kernel and bias."""
    formulation = self.formulation
    return stylegan.Modulation(
        conv=lambda layer, x: adafm.modulated_conv2d(x, kernels, labels,
                                                     formulation),
        bias_shift=shift)

  @property
  def modulated_layers(self) -> list[tuple[keras.layers.Layer,
                                           ModulatedLayer]]:
    """(source layer, its ModulatedLayer) per modulated convolution."""
    return [(c.layer, getattr(self, f"mod{c.position}"))
            for c in self._convolutions()]

  @property
  def w_avg(self) -> tf.Variable:
    return self.source.w_avg

  def build(self, input_shape=None):
    self.source.build()
    if self.class_network is not None:
      self.class_network.build()
    for _, mod in self.modulated_layers:
      mod.build(self.class_width)
    self.match_source()
    self.built = True

  def clone(self, num_classes: int | None = None,
            name: str | None = None) -> "HyperModGenerator":
    """A new, unbuilt generator of the same architecture."""
    return type(self)(num_classes or self.num_classes,
                      name=name or self.name, **self.ctor_kwargs)

  def ema_copies(self, variable) -> bool:
    """The source's state (w_avg, noise buffers) is copied by an EMA."""
    return self.source.ema_copies(variable)

  def match_source(self) -> None:
    """Free mode: gamma = sigma and beta = mu of the source's current
    kernels and a zero shift for every class, so that every class draws
    the source's images bit for bit (GAN Memory's start). Call it after
    loading the source weights. Nothing to do in hypernetwork mode."""
    if self.mode != "free":
      return
    for layer, mod in self.modulated_layers:
      mu, sigma = adafm.kernel_statistics(self._source_kernel(layer))
      mod.gamma.assign(tf.tile(sigma[None], [self.num_classes, 1, 1]))
      mod.beta.assign(tf.tile(mu[None], [self.num_classes, 1, 1]))
      mod.shift.assign(tf.zeros_like(mod.shift))

  def _kernels_and_shifts(self, weights: tf.Tensor | None
                          ) -> list[tuple[tf.Tensor, tf.Tensor]]:
    """Per modulated layer, the kernels [K, k, k, in, out] (runtime scale
    included) and bias shifts [K, out] of every class (weights None, K =
    num_classes) or of every row of class weights [K, num_classes]."""
    classes = tf.eye(self.num_classes) if weights is None else weights
    v = (self.class_network(classes) if self.class_network is not None
         else None)
    out = []
    for layer, mod in self.modulated_layers:
      gamma, beta, shift = mod.parameters(v, weights)
      out.append((self._layer_kernels(layer, mod, gamma, beta), shift))
    return out

  def prepare_serving(self) -> None:
    """Stores every class's kernels and bias shifts (non-trainable
    variables), so that draws by label read them instead of running the
    hypernetwork and AdaFM per call: the export calls it (the contract's
    optional hook) before tracing. The images stay the same bit for bit;
    class weights still go through the hypernetwork. Call it again after
    the weights change."""
    table = self._kernels_and_shifts(None)
    if self.serving_table is None:
      # A tf.Module, not Keras state: a built Keras model takes no new
      # variables, and these are no weights (no checkpoint or EMA needs
      # them). The export's endpoints capture them.
      self.serving_table = _ServingTable(table)
    else:
      for (k_var, s_var), (kernels, shift) in zip(
          self.serving_table.rows(), table):
        k_var.assign(kernels)
        s_var.assign(shift)
    self.serving_prepared = True

  def modulation(self, y) -> list:
    """The source's modulation list (`synthesize`) of labels int [B] in
    [0, num_classes) (per-class kernels) or class weights float32
    [B, num_classes] (per-sample kernels): per modulated layer a
    `stylegan.Modulation` (StyleGAN) or `KernelModulation` (StyleGAN2),
    None elsewhere."""
    y = tf.convert_to_tensor(y)
    labels = None
    if y.dtype.is_integer:
      labels = tf.cast(y, tf.int32)
      if self.serving_prepared:
        table = self.serving_table.rows()
      else:
        table = self._kernels_and_shifts(None)
    else:
      table = self._kernels_and_shifts(
          inputs_lib.class_weights(y, self.num_classes))
    result = [None] * self._modulation_slots()
    for i, (layer, _), (kernels, shift) in zip(
        self.modulated, self.modulated_layers, table):
      shift = precision.float32(shift)
      if labels is not None:
        shift = tf.gather(shift, labels)
      if self.bias_mode == "standardized":
        bias = self._source_bias(layer)
        shift += adafm.standardize_bias(bias) - bias
      result[i] = self._layer_modulation(kernels, labels, shift)
    return result

  def synthesize(self, ws: tf.Tensor, z: tf.Tensor, y, training=None,
                 return_blocks: bool = False, noise=None):
    """Images of per-layer ws for classes y (`StyleGANGenerator.synthesize`
    with this generator's modulation)."""
    return self.source.synthesize(ws, z, training=training,
                                  return_blocks=return_blocks, noise=noise,
                                  modulation=self.modulation(y))

  def _source_labels(self, z: tf.Tensor) -> tf.Tensor:
    return tf.zeros(tf.shape(z)[:1], tf.int32)

  def call(self, inputs, training=None):
    z, y = inputs
    z = tf.convert_to_tensor(z, tf.float32)
    ws, noise = self.source.styles(z, self._source_labels(z),
                                   training=training,
                                   update_w_avg=self.track_w_avg)
    return self.synthesize(ws, z, y, training=training, noise=noise)

  def truncated_call(self, inputs, truncation) -> tf.Tensor:
    """Images [B, R, R, C] in [-1, 1] of untruncated z with truncation psi
    in w (scalar or [B]; 1 = none); inference mode."""
    z, y = inputs
    z = tf.convert_to_tensor(z, tf.float32)
    ws, _ = self.source.styles(z, self._source_labels(z))
    return self.synthesize(self.source.truncate(ws, truncation), z, y,
                           training=False)


class HyperModDiscriminator(stylegan.StyleGANDiscriminator):
  """The source's StyleGAN discriminator with one output per class, read at
  the label (Hyper-Modulation's conditional D); see
  `StyleGANDiscriminator`."""

  architecture = "hypermod"
  # Variable paths (`weights.relative_path`) of the class head, new in a
  # transfer, and of the from-RGB layer(s) that Hyper-Modulation and GAN
  # Memory keep frozen (the official code's `freeze_layers`).
  head_prefix = "4x4_Dense1/"

  @property
  def from_rgb_prefixes(self) -> tuple[str, ...]:
    return ("FromRGB_lod0/",)


class HyperModStyleGAN2Generator(HyperModGenerator):
  """Hyper-Modulation and GAN Memory on an unconditional StyleGAN2
  (`tfgt.models.stylegan2.StyleGAN2Generator`): as `HyperModGenerator`,
  with AdaFM on the stored base weight of every modulated 3x3 convolution
  of the synthesis network (both of each block), before the style
  modulation and the demodulation: W_c = AdaFM_c(W), then the usual
  s * W_c demodulated per sample (`stylegan2_ops.kernel_modulated_conv2d`).
  The demodulation divides each output channel by its norm, so with beta
  = 0 a gamma that scales all of one output channel's slices alike changes
  nothing; with beta != 0 it shifts the balance between the standardised
  kernel and beta. The 1x1 to-RGB layers are not modulated (AdaFM
  standardises over the taps; the official code modulates only the 3x3
  convolutions too). StyleGAN2 upsamples with an FIR filter, not a fused
  transposed convolution, so `fused_modulation` may be "auto" or "never"
  (the same: eq. 4 of the 3x3 kernel), and `formulation` "auto" or
  "partition" (labels split the batch by class).

  Args: as `HyperModGenerator`, with `source` the options of an
  unconditional `StyleGAN2Generator` (its `ctor_kwargs`).

  Raises:
    ValueError: an argument out of its range, fused_modulation="always" or
      another formulation.
  """

  architecture = "hypermod_stylegan2"
  unrecorded_defaults: dict[str, Any] = {}
  truncation_meaning = stylegan2.StyleGAN2Generator.truncation_meaning

  def __init__(self, num_classes: int, source: dict[str, Any],
               fused_modulation: str = "auto", formulation: str = "auto",
               **kwargs):
    if fused_modulation == "always":
      raise ValueError(
          'fused_modulation="always" has no meaning for StyleGAN2, which '
          'upsamples with an FIR filter: use "auto" or "never".')
    if formulation not in ("auto", "partition"):
      raise ValueError(
          f'formulation {formulation!r} is not implemented for StyleGAN2: '
          'labels split the batch by class ("partition", also "auto"), '
          'class weights take one convolution per sample.')
    super().__init__(num_classes, source, fused_modulation=fused_modulation,
                     formulation=formulation, **kwargs)

  @staticmethod
  def _source_class() -> type:
    return stylegan2.StyleGAN2Generator

  def _convolutions(self) -> list[Convolution]:
    """Both 3x3 convolutions of every synthesis block (`conv_layers`
    order, the source's modulation list)."""
    out = []
    for block in self.source.synthesis.blocks():
      fan_in = block.in_channels
      for layer in block.conv_layers():
        up = layer.up > 1
        out.append(Convolution(
            len(out), layer, f"{block.name}_{layer.name}",
            fan_in if up else block.out_channels, block.out_channels, up,
            block.resolution))
    return out

  def _modulation_slots(self) -> int:
    return self.source.synthesis.num_conv

  @staticmethod
  def _source_kernel(layer) -> tf.Variable:
    return layer.weight

  @staticmethod
  def _source_bias(layer) -> tf.Tensor:
    return layer.bias

  def _layer_kernels(self, layer, mod: ModulatedLayer, gamma: tf.Tensor,
                     beta: tf.Tensor) -> tf.Tensor:
    # No runtime scale: the demodulation normalises the kernel.
    return adafm.modulate_kernel(layer.weight, gamma, beta)

  def _layer_modulation(self, kernels: tf.Tensor, labels: tf.Tensor | None,
                        shift: tf.Tensor):
    return stylegan2_ops.KernelModulation(kernels, labels, shift)


class HyperModStyleGAN2Discriminator(stylegan2.StyleGAN2Discriminator):
  """The source's StyleGAN2 discriminator with one output per class, read
  at the label (Hyper-Modulation's conditional D, as for StyleGAN), in
  place of StyleGAN2-ADA's projection; see `StyleGAN2Discriminator`."""

  architecture = "hypermod_stylegan2"
  conditioning = "heads"
  head_prefix = "b4/out/"

  @property
  def from_rgb_prefixes(self) -> tuple[str, ...]:
    if self.ctor_kwargs["block_architecture"] == "skip":
      return tuple(f"{block.name}/fromrgb/" for block in self.blocks
                   if block.fromrgb is not None)
    return (f"b{self.resolution}/fromrgb/",)


# Per source architecture: (its generator and discriminator classes, the
# hyper-modulated generator and discriminator classes).
_BY_SOURCE = (
    ((stylegan.StyleGANGenerator, stylegan.StyleGANDiscriminator),
     HyperModGenerator, HyperModDiscriminator),
    ((stylegan2.StyleGAN2Generator, stylegan2.StyleGAN2Discriminator),
     HyperModStyleGAN2Generator, HyperModStyleGAN2Discriminator))
# The generators a hyper-modulated generator can take as its source.
SOURCE_GENERATORS = tuple(models[0] for models, _, _ in _BY_SOURCE)


def classes_for(source: keras.Model) -> tuple[type, type]:
  """(generator class, discriminator class) that modulate `source`, a
  StyleGAN or StyleGAN2 generator or discriminator.

  Raises:
    TypeError: a source of another architecture.
  """
  for models, generator, discriminator in _BY_SOURCE:
    if isinstance(source, models):
      return generator, discriminator
  raise TypeError(f"No hyper-modulated generator for a "
                  f"{type(source).__name__} source.")


def build_models(generator, discriminator=None) -> None:
  """Creates the variables (the architecture's `build`)."""
  generator.build()
  if discriminator is not None:
    y = tf.zeros([1], tf.int32)
    images = generator((tf.zeros([1, generator.dim_z]), y), training=False)
    discriminator((images, y), training=False)


architectures.register(architectures.Architecture(
    name="hypermod", generator=HyperModGenerator,
    discriminator=HyperModDiscriminator, build=build_models))
architectures.register(architectures.Architecture(
    name="hypermod_stylegan2", generator=HyperModStyleGAN2Generator,
    discriminator=HyperModStyleGAN2Discriminator, build=build_models))
