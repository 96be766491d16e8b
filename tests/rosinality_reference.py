"""A NumPy reference of rosinality's StyleGAN v1 port, for the importer tests.

rosinality/style-based-gan-pytorch (model.py at commit
d4c04384720aab6c6dc1e7225f0b0d68db8084cc) defines `StyledGenerator` and
`Discriminator` in PyTorch. Real checkpoints cannot be fetched and PyTorch is
not installed, so this module provides, without torch:

- stand-in state dicts at tiny widths, with exactly the names, shapes,
  layouts and order of `state_dict()` (equal-lr `_orig` parameters, Blur
  buffers, FusedUpsample/FusedDownsample kernels), random non-trivial values;
- a train.py-like checkpoint dict around them;
- forward passes of both networks written here from the published
  definition, channels first (NCHW), in float64.

Weights follow PyTorch: conv2d weights are [out, in, kh, kw] and correlate;
conv_transpose2d weights (FusedUpsample) are [in, out, kh, kw]; linear
weights are [out, in].
"""

import numpy as np

BLOCKS = 9  # rosinality's Generator/Discriminator: 4 px .. 1024 px.
LRELU_SLOPE = 0.2
PIXEL_NORM_EPS = 1e-8
INSTANCE_NORM_EPS = 1e-5  # nn.InstanceNorm2d's default.
MBSTD_EPS = 1e-8
FIRST_FUSED_G_BLOCK = 5  # Generator(fused=True): 128 px and above.
LAST_FUSED_D_BLOCK = 3  # Discriminator(fused=True): progression 0..3.


# --- Layer operations (NCHW, float64). -------------------------------------

def equal_lr(weight):
  """EqualLR's runtime weight: weight * sqrt(2 / fan_in), with
  fan_in = weight.shape[1] * prod(weight.shape[2:]) (for a NoiseInjection
  weight [1, C, 1, 1] this is C)."""
  fan_in = weight.shape[1] * int(np.prod(weight.shape[2:]))
  return weight * np.sqrt(2.0 / fan_in)


def conv2d(x, weight, bias=None, stride=1, padding=0):
  """F.conv2d: x [B, C, H, W], weight [O, C, kh, kw] (cross-correlation),
  zero padding on all sides; returns [B, O, Ho, Wo]."""
  b, c, h, w = x.shape
  o, c_w, kh, kw = weight.shape
  if c != c_w:
    raise ValueError(f"conv2d: input has {c} channels, weight {c_w}")
  xp = np.pad(x, [(0, 0), (0, 0), (padding, padding), (padding, padding)])
  ho = (h + 2 * padding - kh) // stride + 1
  wo = (w + 2 * padding - kw) // stride + 1
  out = np.zeros([b, o, ho, wo])
  for i in range(kh):
    for j in range(kw):
      patch = xp[:, :, i:i + stride * (ho - 1) + 1:stride,
                 j:j + stride * (wo - 1) + 1:stride]
      out += np.einsum("bchw,oc->bohw", patch, weight[:, :, i, j])
  if bias is not None:
    out += bias[None, :, None, None]
  return out


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0):
  """F.conv_transpose2d: x [B, I, H, W], weight [I, O, k, k]; returns
  [B, O, (H - 1) * stride - 2 * padding + k, ...]. Zeros inserted between
  the input pixels, then correlation with the spatially flipped, in/out
  swapped kernel and padding k - 1 - padding."""
  b, c, h, w = x.shape
  k = weight.shape[-1]
  if weight.shape[-2] != k or padding > k - 1:
    raise ValueError("conv_transpose2d: square kernel, padding < k only")
  spread = np.zeros([b, c, (h - 1) * stride + 1, (w - 1) * stride + 1])
  spread[:, :, ::stride, ::stride] = x
  kernel = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
  return conv2d(spread, kernel, bias, padding=k - 1 - padding)


def blur(x, kernel):
  """Blur: depthwise 3x3 correlation, zero padding 1; x [B, C, H, W],
  kernel [C, 1, 3, 3] (the module's `weight` buffer)."""
  h, w = x.shape[2:]
  xp = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)])
  out = np.zeros(x.shape)
  for i in range(3):
    for j in range(3):
      out += xp[:, :, i:i + h, j:j + w] * kernel[None, :, 0, i, j, None, None]
  return out


def fused_kernel(weight, multiplier):
  """The 4-shift sum / 4 of FusedUpsample/FusedDownsample: weight
  [a, b, k, k] -> [a, b, k + 1, k + 1]."""
  w = np.pad(weight * multiplier, [(0, 0), (0, 0), (1, 1), (1, 1)])
  return (w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] +
          w[:, :, :-1, :-1]) / 4


def fused_upsample(x, weight, bias, padding=1):
  """FusedUpsample: x [B, I, H, W], weight [I, O, k, k] -> [B, O, 2H, 2W]
  (k = 3, padding 1); multiplier sqrt(2 / (I * k * k))."""
  k = weight.shape[-1]
  multiplier = np.sqrt(2.0 / (weight.shape[0] * k * k))
  return conv_transpose2d(x, fused_kernel(weight, multiplier), bias,
                          stride=2, padding=padding)


def fused_downsample(x, weight, bias, padding=1):
  """FusedDownsample: x [B, I, H, W], weight [O, I, k, k] -> [B, O, H/2,
  W/2] (k = 3, padding 1); multiplier sqrt(2 / (I * k * k))."""
  k = weight.shape[-1]
  multiplier = np.sqrt(2.0 / (weight.shape[1] * k * k))
  return conv2d(x, fused_kernel(weight, multiplier), bias, stride=2,
                padding=padding)


def upsample_nearest(x):
  """nn.Upsample(scale_factor=2, mode='nearest'): [B, C, H, W] -> 2H, 2W."""
  return x.repeat(2, axis=2).repeat(2, axis=3)


def avg_pool2d(x):
  """nn.AvgPool2d(2): [B, C, H, W] -> [B, C, H/2, W/2]."""
  b, c, h, w = x.shape
  return x.reshape(b, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))


def leaky_relu(x):
  return np.where(x >= 0, x, LRELU_SLOPE * x)


def pixel_norm(x):
  """PixelNorm over dim 1."""
  return x / np.sqrt(np.mean(x ** 2, axis=1, keepdims=True) + PIXEL_NORM_EPS)


def instance_norm(x):
  """nn.InstanceNorm2d without affine: per (sample, channel), biased
  variance, eps 1e-5."""
  mean = x.mean(axis=(2, 3), keepdims=True)
  var = x.var(axis=(2, 3), keepdims=True)
  return (x - mean) / np.sqrt(var + INSTANCE_NORM_EPS)


# --- Stand-in state dicts. --------------------------------------------------

class _StateDict:
  """Fills an ordered {name: float32 array} in PyTorch's state_dict order."""

  def __init__(self, seed):
    self.rng = np.random.RandomState(seed)
    self.p = {}

  def normal(self, name, shape, mean=0.0, std=1.0):
    self.p[name] = (mean + std * self.rng.randn(*shape)).astype(np.float32)

  def equal_conv(self, name, c_in, c_out, k):
    """EqualConv2d: nn.Conv2d registers weight then bias; equal_lr deletes
    weight and registers weight_orig, so bias comes first."""
    self.normal(name + ".conv.bias", [c_out], std=0.5)
    self.normal(name + ".conv.weight_orig", [c_out, c_in, k, k])

  def equal_linear(self, name, d_in, d_out):
    self.normal(name + ".linear.bias", [d_out], std=0.5)
    self.normal(name + ".linear.weight_orig", [d_out, d_in])

  def fused(self, name, shape, c_out):
    """FusedUpsample [in, out, k, k] / FusedDownsample [out, in, k, k]:
    plain weight then bias, no equal_lr."""
    self.normal(name + ".weight", shape)
    self.normal(name + ".bias", [c_out], std=0.5)

  def blur(self, name, c):
    kernel = np.outer([1, 2, 1], [1, 2, 1]).astype(np.float32) / 16
    self.p[name + ".weight"] = np.tile(kernel[None, None], [c, 1, 1, 1])
    self.p[name + ".weight_flip"] = np.tile(kernel[None, None, ::-1, ::-1],
                                            [c, 1, 1, 1])

  def noise(self, name, c):
    self.normal(name + ".weight_orig", [1, c, 1, 1], std=0.5)

  def adain(self, name, c, dim):
    """AdaptiveInstanceNorm: only style (EqualLinear dim -> 2C); the bias
    holds gamma (around 1) then beta (around 0)."""
    bias = 0.3 * self.rng.randn(2 * c)
    bias[:c] += 1
    self.p[name + ".style.linear.bias"] = bias.astype(np.float32)
    self.normal(name + ".style.linear.weight_orig", [2 * c, dim])


def _check_widths(widths):
  if len(widths) != BLOCKS:
    raise ValueError(f"widths needs {BLOCKS} entries, got {len(widths)}")


def g_state_dict(widths, dim, n_mlp, seed):
  """`StyledGenerator(code_dim=dim, n_mlp=n_mlp).state_dict()` at tiny width.

  Args:
    widths: BLOCKS output channels of the progression blocks, 4 px first
      (rosinality: [512, 512, 512, 512, 256, 128, 64, 32, 16]).
    dim: code_dim, the width of z, w and of the mapping layers.
    n_mlp: number of mapping layers.
    seed: np.random.RandomState seed.

  Returns:
    An ordered dict {name: float32 array}: `generator.progression.*`,
    `generator.to_rgb.*`, then `style.*`, in module registration order.
  """
  _check_widths(widths)
  s = _StateDict(seed)
  for i in range(BLOCKS):
    pre = f"generator.progression.{i}."
    c_in, c = widths[max(i - 1, 0)], widths[i]
    if i == 0:  # ConstantInput(in_channel).
      s.normal(pre + "conv1.input", [1, c, 4, 4])
    elif i >= FIRST_FUSED_G_BLOCK:  # Sequential(FusedUpsample, Blur).
      s.fused(pre + "conv1.0", [c_in, c, 3, 3], c)
      s.blur(pre + "conv1.1", c)
    else:  # Sequential(Upsample, EqualConv2d, Blur).
      s.equal_conv(pre + "conv1.1", c_in, c, 3)
      s.blur(pre + "conv1.2", c)
    s.noise(pre + "noise1", c)
    s.adain(pre + "adain1", c, dim)
    s.equal_conv(pre + "conv2", c, c, 3)
    s.noise(pre + "noise2", c)
    s.adain(pre + "adain2", c, dim)
  for i in range(BLOCKS):
    s.equal_conv(f"generator.to_rgb.{i}", widths[i], 3, 1)
  for k in range(n_mlp):  # style.0 is PixelNorm, even indices LeakyReLU.
    s.equal_linear(f"style.{2 * k + 1}", dim, dim)
  return s.p


def d_state_dict(widths, seed):
  """`Discriminator(fused=True).state_dict()` mirrored from G's widths.

  progression[j] (j = 0..7, 1024 px down to 8 px) is ConvBlock(widths[8 - j],
  widths[7 - j]), fused for j <= 3; progression[8] is ConvBlock(widths[0] + 1,
  widths[0], 3, 1, 4, 0); from_rgb[j]: 3 -> widths[8 - j];
  linear: widths[0] -> 1.

  Args:
    widths: as for g_state_dict.
    seed: np.random.RandomState seed.

  Returns:
    An ordered dict {name: float32 array}.
  """
  _check_widths(widths)
  s = _StateDict(seed)
  for j in range(BLOCKS):
    pre = f"progression.{j}."
    if j == BLOCKS - 1:
      c_in, c = widths[0] + 1, widths[0]
    else:
      c_in, c = widths[8 - j], widths[7 - j]
    s.equal_conv(pre + "conv1.0", c_in, c, 3)
    if j == BLOCKS - 1:  # Sequential(EqualConv2d 4x4 padding 0, LeakyReLU).
      s.equal_conv(pre + "conv2.0", c, c, 4)
    elif j <= LAST_FUSED_D_BLOCK:  # Blur, FusedDownsample, LeakyReLU.
      s.blur(pre + "conv2.0", c)
      s.fused(pre + "conv2.1", [c, c, 3, 3], c)
    else:  # Blur, EqualConv2d, AvgPool2d, LeakyReLU.
      s.blur(pre + "conv2.0", c)
      s.equal_conv(pre + "conv2.1", c, c, 3)
  for j in range(BLOCKS):
    s.equal_conv(f"from_rgb.{j}", 3, widths[8 - j], 1)
  s.equal_linear("linear", widths[0], 1)
  return s.p


def _adam_state(params, seed):
  """A torch.optim.Adam state_dict holding the state of the first parameter
  of `params` (a state dict; Blur buffers are no parameters)."""
  rng = np.random.RandomState(seed)
  first = next(v for k, v in params.items()
               if not k.endswith(".weight_flip") and
               k[:-len("weight")] + "weight_flip" not in params)
  return {
      "state": {0: {"step": 10,
                    "exp_avg": (0.01 * rng.randn(*first.shape)).astype(
                        np.float32),
                    "exp_avg_sq": (1e-4 * rng.rand(*first.shape)).astype(
                        np.float32)}},
      "param_groups": [{"lr": 0.001, "betas": (0.0, 0.99), "eps": 1e-8,
                        "weight_decay": 0, "amsgrad": False, "params": [0]}],
  }


def checkpoint(widths, dim, n_mlp, seed=0):
  """The dict rosinality's train.py saves: generator, discriminator, their
  Adam states and g_running (the moving average of the generator), as plain
  Python/NumPy objects."""
  g = g_state_dict(widths, dim, n_mlp, seed)
  d = d_state_dict(widths, seed + 1)
  return {"generator": g,
          "discriminator": d,
          "g_optimizer": _adam_state(g, seed + 3),
          "d_optimizer": _adam_state(d, seed + 4),
          "g_running": g_state_dict(widths, dim, n_mlp, seed + 2)}


# --- Forward passes. --------------------------------------------------------

class _Reader:
  """state[prefix + name] as float64."""

  def __init__(self, state, prefix):
    self.state, self.prefix = state, prefix

  def __contains__(self, name):
    return self.prefix + name in self.state

  def __call__(self, name):
    return np.asarray(self.state[self.prefix + name], np.float64)

  def equal_conv(self, x, name, padding):
    return conv2d(x, equal_lr(self(name + ".conv.weight_orig")),
                  self(name + ".conv.bias"), padding=padding)

  def equal_linear(self, x, name):
    return x @ equal_lr(self(name + ".linear.weight_orig")).T + self(
        name + ".linear.bias")


def mapping(state, z, prefix=""):
  """StyledGenerator.style: PixelNorm, then n_mlp x (EqualLinear, LeakyReLU);
  z [B, dim] -> w [B, dim]."""
  p = _Reader(state, prefix)
  w = pixel_norm(np.asarray(z, np.float64))
  k = 1
  while f"style.{k}.linear.weight_orig" in p:
    w = leaky_relu(p.equal_linear(w, f"style.{k}"))
    k += 2
  return w


def _noise_adain(p, x, w, noise, pre, n):
  """noise{n}, LeakyReLU, adain{n} of a StyledConvBlock."""
  x = x + equal_lr(p(f"{pre}noise{n}.weight_orig")) * noise
  x = leaky_relu(x)
  style = p.equal_linear(w, f"{pre}adain{n}.style")
  gamma, beta = np.split(style[:, :, None, None], 2, axis=1)
  return gamma * instance_norm(x) + beta


def generator_forward(state, z, noise, step, prefix=""):
  """`StyledGenerator(z, noise=noise, step=step, alpha=-1)`, one style.

  Args:
    state: g_state_dict's output (or alike), arrays.
    z: [B, dim] latents.
    noise: step + 1 arrays [B, 1, s, s], s = 4 * 2**i; block i adds noise[i]
      in both its noise injections.
    step: 0..8; the output resolution is R = 4 * 2**step.
    prefix: prepended to every key of `state`.

  Returns:
    Images [B, 3, R, R], float64, linear (no tanh, no clipping).
  """
  p = _Reader(state, prefix)
  w = mapping(state, z, prefix)
  if len(noise) < step + 1:
    raise ValueError(f"step {step} needs {step + 1} noise maps")
  x = None
  for i in range(step + 1):
    pre = f"generator.progression.{i}."
    n = np.asarray(noise[i], np.float64)
    if i == 0:
      x = np.repeat(p(pre + "conv1.input"), w.shape[0], axis=0)
    elif pre + "conv1.0.weight" in p:  # FusedUpsample, Blur.
      x = fused_upsample(x, p(pre + "conv1.0.weight"), p(pre + "conv1.0.bias"))
      x = blur(x, p(pre + "conv1.1.weight"))
    else:  # Upsample, EqualConv2d, Blur.
      x = p.equal_conv(upsample_nearest(x), pre + "conv1.1", padding=1)
      x = blur(x, p(pre + "conv1.2.weight"))
    x = _noise_adain(p, x, w, n, pre, 1)
    x = p.equal_conv(x, pre + "conv2", padding=1)
    x = _noise_adain(p, x, w, n, pre, 2)
  return p.equal_conv(x, f"generator.to_rgb.{step}", padding=0)


def _minibatch_std(x):
  """Appends one channel: the mean over (C, H, W) of the batch std
  (biased, + 1e-8 under the root), broadcast to [B, 1, 4, 4]."""
  std = np.sqrt(x.var(axis=0) + MBSTD_EPS).mean()
  return np.concatenate([x, np.full([x.shape[0], 1, 4, 4], std)], axis=1)


def _conv_block(p, x, j):
  """Discriminator.progression[j]."""
  pre = f"progression.{j}."
  x = leaky_relu(p.equal_conv(x, pre + "conv1.0", padding=1))
  if pre + "conv2.1.weight" in p:  # Blur, FusedDownsample, LeakyReLU.
    x = blur(x, p(pre + "conv2.0.weight"))
    x = fused_downsample(x, p(pre + "conv2.1.weight"), p(pre + "conv2.1.bias"))
  elif pre + "conv2.1.conv.weight_orig" in p:  # Blur, conv, AvgPool2d(2).
    x = blur(x, p(pre + "conv2.0.weight"))
    x = avg_pool2d(p.equal_conv(x, pre + "conv2.1", padding=1))
  else:  # The last block: a 4x4 conv without padding.
    x = p.equal_conv(x, pre + "conv2.0", padding=0)
  return leaky_relu(x)


def features(state, images, step, prefix=""):
  """The Discriminator's activations before `linear`.

  Args:
    state: d_state_dict's output (or alike), arrays.
    images: [B, 3, R, R], R = 4 * 2**step.
    step: 0..8.
    prefix: prepended to every key of `state`.

  Returns:
    [B, widths[0]], float64.
  """
  p = _Reader(state, prefix)
  x = np.asarray(images, np.float64)
  if x.shape[2:] != (4 * 2 ** step,) * 2:
    raise ValueError(f"step {step} takes {4 * 2 ** step} px, got {x.shape}")
  for i in range(step, -1, -1):
    j = BLOCKS - 1 - i
    if i == step:  # from_rgb, no activation.
      x = p.equal_conv(x, f"from_rgb.{j}", padding=0)
    if i == 0:
      x = _minibatch_std(x)
    x = _conv_block(p, x, j)
  return x.reshape(x.shape[0], -1)  # [B, C, 1, 1] -> [B, C].


def discriminator_forward(state, images, step, prefix=""):
  """`Discriminator(images, step=step, alpha=-1)`: images [B, 3, R, R],
  R = 4 * 2**step -> scores [B, 1], float64."""
  return _Reader(state, prefix).equal_linear(
      features(state, images, step, prefix), "linear")
