"""BigGAN generator and projection discriminator in Keras 3.

Shapes: the generator maps (z [B, dim_z], y) to images [B, R, R, C] in [-1, 1];
the discriminator maps (images, y) to logits [B]. In both, `y` is either int
labels [B] in [0, num_classes) or float class weights [B, num_classes] (one-hot
rows are labels, soft rows draw between classes).

Channel plans follow BigGAN (Brock et al., 2019) for resolutions 32, 64, 128,
256 and 512. Two ways to condition the generator's batch norms:
  * "table": every class owns a gain and shift per layer (BigGAN on CIFAR);
  * "shared_embedding": one class embedding shared by all layers, concatenated
    with a chunk of z per block when `hierarchical_z` is on, and projected per
    layer to gain and shift (BigGAN on ImageNet).
"""

from __future__ import annotations

from typing import Any

import gin
import keras
import tensorflow as tf

from tfgt import precision
from tfgt.layers import attention
from tfgt.layers import batch_norm
from tfgt.layers import building
from tfgt.layers import spectral_norm
from tfgt.models import architectures
from tfgt.models import inputs as inputs_lib

# resolution -> (G channel multipliers: input of the first block, then the
# output of each block; D channel multipliers per block; D downsampling flags).
ARCHITECTURES = {
    32: ((4, 4, 4, 4), (4, 4, 4, 4), (True, True, False, False)),
    64: ((16, 16, 8, 4, 2), (1, 2, 4, 8, 16), (True, True, True, True, False)),
    128: ((16, 16, 8, 4, 2, 1), (1, 2, 4, 8, 16, 16),
          (True, True, True, True, True, False)),
    256: ((16, 16, 8, 8, 4, 2, 1), (1, 2, 4, 8, 8, 16, 16),
          (True, True, True, True, True, True, False)),
    512: ((16, 16, 8, 8, 4, 2, 1, 1), (1, 1, 2, 4, 8, 8, 16, 16),
          (True, True, True, True, True, True, True, False)),
}
CONDITIONINGS = ("table", "shared_embedding")


def _check_resolution(resolution: int) -> None:
  if resolution not in ARCHITECTURES:
    raise ValueError(f"BigGAN resolution {resolution} is not supported; use one "
                     f"of {sorted(ARCHITECTURES)}.")


def _upsample(x: tf.Tensor) -> tf.Tensor:
  return tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)


def _downsample(x: tf.Tensor) -> tf.Tensor:
  return tf.nn.avg_pool2d(x, 2, 2, "VALID")


class GeneratorBlock(building.BuildsOnCall, keras.layers.Layer):
  """Residual up-block: CBN-ReLU-up-conv3-CBN-ReLU-conv3 + up-conv1 shortcut."""

  def __init__(self, out_channels: int, make_bn, init: str, **kwargs):
    super().__init__(**kwargs)
    self.out_channels = out_channels
    self.bn1 = make_bn("bn1")
    self.conv1 = spectral_norm.SNConv2D(out_channels, 3, init=init, name="conv1")
    self.bn2 = make_bn("bn2")
    self.conv2 = spectral_norm.SNConv2D(out_channels, 3, init=init, name="conv2")
    self.shortcut = spectral_norm.SNConv2D(out_channels, 1, init=init,
                                           name="shortcut")

  def call(self, inputs, cond, training=None):
    h = tf.nn.relu(self.bn1(inputs, cond, training=training))
    h = self.conv1(_upsample(h), training=training)
    h = tf.nn.relu(self.bn2(h, cond, training=training))
    h = self.conv2(h, training=training)
    return h + self.shortcut(_upsample(inputs), training=training)


class DiscriminatorBlock(building.BuildsOnCall, keras.layers.Layer):
  """Residual down-block of the BigGAN discriminator."""

  def __init__(self, out_channels: int, downsample: bool, preactivation: bool,
               init: str, **kwargs):
    super().__init__(**kwargs)
    self.downsample = downsample
    self.preactivation = preactivation
    self.conv1 = spectral_norm.SNConv2D(out_channels, 3, init=init, name="conv1")
    self.conv2 = spectral_norm.SNConv2D(out_channels, 3, init=init, name="conv2")
    self.shortcut = spectral_norm.SNConv2D(out_channels, 1, init=init,
                                           name="shortcut")

  def call(self, inputs, training=None):
    h = tf.nn.relu(inputs) if self.preactivation else inputs
    h = self.conv1(h, training=training)
    h = self.conv2(tf.nn.relu(h), training=training)
    if self.downsample:
      h = _downsample(h)
    if self.preactivation:
      s = self.shortcut(inputs, training=training)
      s = _downsample(s) if self.downsample else s
    else:
      s = _downsample(inputs) if self.downsample else inputs
      s = self.shortcut(s, training=training)
    return h + s


@gin.configurable(denylist=["num_classes", "name"])
class BigGANGenerator(building.BuildsOnCall, keras.Model):
  """Class-conditional BigGAN generator.

  Follows the generator contract of `tfgt.models.architectures`.
  `attention_resolution` places self-attention after the block whose output
  has that resolution (0: none); `bn_epsilon` is the batch norms' epsilon
  (1e-4 as in compare_gan; BigGAN-PyTorch uses 1e-5, which its imports keep).
  Under a mixed precision policy the layers compute in its dtype and the
  images are float32 (`tfgt.precision`).

  Attributes:
    num_classes: number of classes N; labels run over [0, N).
    dim_z: width of the latent z.
    blocks: the residual up-blocks, lowest resolution first.
  """

  architecture = "biggan"

  def __init__(self, num_classes: int, resolution: int = 32, channels: int = 1,
               ch: int = 16, dim_z: int = 128, conditioning: str = "table",
               shared_dim: int = 128, hierarchical_z: bool = False,
               attention_resolution: int = 0, init: str = "orthogonal",
               bn_momentum: float = 0.9, bn_epsilon: float = 1e-4,
               name: str = "generator"):
    # autocast=False: the inputs stay as given; each layer casts its own.
    super().__init__(name=name, autocast=False)
    _check_resolution(resolution)
    if conditioning not in CONDITIONINGS:
      raise ValueError(f"conditioning must be one of {CONDITIONINGS}, got "
                       f"{conditioning!r}.")
    if channels not in (1, 3):
      raise ValueError(f"channels must be 1 or 3, got {channels}.")
    self.ctor_kwargs: dict[str, Any] = dict(
        resolution=resolution, channels=channels, ch=ch, dim_z=dim_z,
        conditioning=conditioning, shared_dim=shared_dim,
        hierarchical_z=hierarchical_z,
        attention_resolution=attention_resolution, init=init,
        bn_momentum=bn_momentum, bn_epsilon=bn_epsilon)
    self.num_classes = num_classes
    self.resolution = resolution
    self.channels = channels
    self.dim_z = dim_z
    self.conditioning = conditioning
    self.hierarchical_z = hierarchical_z
    g_arch = ARCHITECTURES[resolution][0]
    num_blocks = len(g_arch) - 1
    if hierarchical_z and dim_z % (num_blocks + 1):
      raise ValueError(f"With hierarchical z, dim_z ({dim_z}) must divide into "
                       f"{num_blocks + 1} equal chunks.")
    self.z_chunk = dim_z // (num_blocks + 1) if hierarchical_z else dim_z
    self.base_channels = g_arch[0] * ch

    if conditioning == "table":
      make_bn = lambda name: batch_norm.ClassConditionalBatchNorm(
          num_classes, momentum=bn_momentum, epsilon=bn_epsilon, name=name)
      self.shared_embedding = None
    else:
      make_bn = lambda name: batch_norm.ProjectedConditionalBatchNorm(
          momentum=bn_momentum, epsilon=bn_epsilon, init=init, name=name)
      self.shared_embedding = spectral_norm.SNEmbedding(
          num_classes, shared_dim, use_sn=False, init=init,
          name="shared_embedding")
    self.linear = spectral_norm.SNDense(4 * 4 * self.base_channels, init=init,
                                        name="linear")
    self.num_blocks = num_blocks
    self.attention_index = -1
    res = 4
    for i, mult in enumerate(g_arch[1:]):
      setattr(self, f"block{i}", GeneratorBlock(mult * ch, make_bn, init,
                                                name=f"block{i}"))
      res *= 2
      if res == attention_resolution:
        self.attention_index = i
    if attention_resolution and self.attention_index < 0:
      raise ValueError(
          f"attention_resolution={attention_resolution}: no generator block "
          f"outputs that resolution; use 0 or one of "
          f"{[4 * 2 ** (i + 1) for i in range(num_blocks)]}.")
    self.attention = (attention.SelfAttention(init=init, name="attention")
                      if self.attention_index >= 0 else None)
    self.output_bn = batch_norm.SyncBatchNorm(momentum=bn_momentum,
                                              epsilon=bn_epsilon,
                                              name="output_bn")
    self.output_conv = spectral_norm.SNConv2D(channels, 3, init=init,
                                              name="output_conv")

  @property
  def blocks(self) -> list:
    # Blocks are attributes (block0, block1, ...) rather than a list because
    # TF checkpoints do not track Keras 3's list wrappers.
    return [getattr(self, f"block{i}") for i in range(self.num_blocks)]

  def clone(self, num_classes: int | None = None,
            name: str | None = None) -> "BigGANGenerator":
    """A new, unbuilt generator of the same architecture."""
    return BigGANGenerator(num_classes or self.num_classes,
                           name=name or self.name, **self.ctor_kwargs)

  def ema_copies(self, variable) -> bool:
    """Spectral norm's power-iteration vectors are state, not weights: an
    EMA generator copies them (averaged unit vectors would not be unit)."""
    return variable.path.endswith("sn_u")

  def block_conditions(self, z: tf.Tensor, y: tf.Tensor, training=None):
    """(z for the input layer, list of per-block BN conditions)."""
    if self.conditioning == "table":
      return z, [y] * len(self.blocks)
    embedding = self.shared_embedding(y, training=training)
    if not self.hierarchical_z:
      return z, [embedding] * len(self.blocks)
    chunks = tf.split(z, len(self.blocks) + 1, axis=-1)
    return chunks[0], [tf.concat([embedding, c], axis=-1) for c in chunks[1:]]

  def call(self, inputs, training=None):
    z, y = inputs
    z = tf.cast(tf.convert_to_tensor(z), self.compute_dtype)
    if z.shape[-1] is not None and z.shape[-1] != self.dim_z:
      raise ValueError(f"z has width {z.shape[-1]}, the generator expects "
                       f"{self.dim_z}.")
    y = inputs_lib.class_weights(y, self.num_classes)
    z0, conds = self.block_conditions(z, y, training=training)
    h = self.linear(z0, training=training)
    h = tf.reshape(h, [-1, 4, 4, self.base_channels])
    for i, (block, cond) in enumerate(zip(self.blocks, conds)):
      h = block(h, cond, training=training)
      if i == self.attention_index:
        h = self.attention(h, training=training)
    h = tf.nn.relu(self.output_bn(h, training=training))
    return tf.tanh(precision.output(self.output_conv(h, training=training)))


@gin.configurable(denylist=["num_classes", "name"])
class BigGANDiscriminator(building.BuildsOnCall, keras.Model):
  """BigGAN projection discriminator: logits [B] for (images, y).

  `attention_resolution` places self-attention after the first block whose
  output has that resolution (0: none), as BigGAN does. The logits are
  float32 under every precision (`tfgt.precision`).

  Attributes:
    blocks: the residual down-blocks, highest resolution first (FreezeD
      freezes a prefix of them).
    embedding: the class projection table [num_classes, features].
  """

  architecture = "biggan"

  def __init__(self, num_classes: int, resolution: int = 32, channels: int = 1,
               ch: int = 16, attention_resolution: int = 0,
               init: str = "orthogonal", name: str = "discriminator"):
    super().__init__(name=name, autocast=False)
    _check_resolution(resolution)
    self.ctor_kwargs: dict[str, Any] = dict(
        resolution=resolution, channels=channels, ch=ch,
        attention_resolution=attention_resolution, init=init)
    self.num_classes = num_classes
    self.resolution = resolution
    self.channels = channels
    _, d_arch, d_down = ARCHITECTURES[resolution]
    self.num_blocks = len(d_arch)
    self.attention_index = -1
    res = resolution
    for i, (mult, down) in enumerate(zip(d_arch, d_down)):
      setattr(self, f"block{i}", DiscriminatorBlock(
          mult * ch, down, preactivation=i > 0, init=init, name=f"block{i}"))
      res = res // 2 if down else res
      # As in BigGAN: after the first block whose output has this resolution.
      if res == attention_resolution and self.attention_index < 0:
        self.attention_index = i
    if attention_resolution and self.attention_index < 0:
      raise ValueError(
          f"attention_resolution={attention_resolution}: no discriminator "
          "block outputs that resolution; use 0 or a resolution between "
          f"{res} and {resolution // 2}.")
    self.attention = (attention.SelfAttention(init=init, name="attention")
                      if self.attention_index >= 0 else None)
    self.linear = spectral_norm.SNDense(1, init=init, name="linear")
    self.embedding = spectral_norm.SNEmbedding(num_classes, d_arch[-1] * ch,
                                               init=init, name="embedding")

  @property
  def blocks(self) -> list:
    # Blocks are attributes (block0, block1, ...) rather than a list because
    # TF checkpoints do not track Keras 3's list wrappers.
    return [getattr(self, f"block{i}") for i in range(self.num_blocks)]

  def clone(self, num_classes: int | None = None,
            name: str | None = None) -> "BigGANDiscriminator":
    """A new, unbuilt discriminator of the same architecture."""
    return BigGANDiscriminator(num_classes or self.num_classes,
                               name=name or self.name, **self.ctor_kwargs)

  def features(self, images: tf.Tensor, training=None) -> tf.Tensor:
    """Pooled features [B, F] before the output layers."""
    h = images
    for i, block in enumerate(self.blocks):
      h = block(h, training=training)
      if i == self.attention_index:
        h = self.attention(h, training=training)
    return tf.reduce_sum(tf.nn.relu(h), axis=[1, 2])

  def call(self, inputs, training=None):
    images, y = inputs
    y = inputs_lib.class_weights(y, self.num_classes)
    h = self.features(images, training=training)
    projection = tf.reduce_sum(
        precision.float32(self.embedding(y, training=training)) *
        precision.float32(h), axis=-1)
    return (tf.squeeze(precision.output(self.linear(h, training=training)), -1)
            + projection)


def build_models(generator: BigGANGenerator,
                 discriminator: BigGANDiscriminator | None = None) -> None:
  """Creates the variables of the models by calling them on dummy inputs."""
  architectures.build_by_calling(generator, discriminator)


architectures.register(architectures.Architecture(
    name="biggan", generator=BigGANGenerator,
    discriminator=BigGANDiscriminator, build=build_models))
