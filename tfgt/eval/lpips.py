"""LPIPS, the learned perceptual image patch similarity, from local files.

Zhang et al., "The Unreasonable Effectiveness of Deep Features as a
Perceptual Metric" (CVPR 2018), version 0.1 with the VGG16 backbone: the
distance few-shot GAN papers average over pairs of generated images of a
class ("intra-LPIPS") to measure within-class diversity. Between images x
and y:

    d(x, y) = sum_l 1 / (H_l W_l) sum_{h, w} sum_c w_lc (f_lc(x) - f_lc(y))^2

where f_l are VGG16's ReLU outputs relu1_2, relu2_2, relu3_3, relu4_3 and
relu5_3 of the input scaled by the LPIPS "scaling layer" ((x - shift) /
scale per RGB channel, x in [-1, 1]), each unit-normalised over its
channels at every position (plus 1e-10), and w_l >= 0 the learned weights of
one channel each (the "lin" layers).

Nothing of it can be downloaded here, and tfgt ships neither network: the
weights are two files a user has, read by tfgt's restricted PyTorch reader
(`tfgt.importers.checkpoint_files.load_torch`: no PyTorch, no code run):

  backbone  torchvision's VGG16 ImageNet weights, `vgg16-397923af.pth`
            (state dict "features.<i>.weight"/".bias" for the 13
            convolutions; the classifier's tensors are read, checked and
            dropped)
  linear    the LPIPS package's `weights/v0.1/vgg.pth` ("lin<k>.model.
            <0|1>.weight", [1, C_k, 1, 1])

Bind them in gin (`LPIPS.backbone`, `LPIPS.linear`: `bound_files`); the
metric
`mdiversity_lpips` (per class: the mean LPIPS between two generated samples
over that between two real images, best at 1, with the real value beside
it) then runs like the other diversity scores (docs/EVALUATION.md). The
channel widths are read from the files (VGG16's are 64, 128, 256, 512,
512), so the tests run the same code on small stand-in files.
"""

from __future__ import annotations

import os
import re
from typing import Sequence

import gin
import numpy as np
import tensorflow as tf

from tfgt.errors import UserInputError
from tfgt.eval import registry

# The LPIPS scaling layer (x in [-1, 1] -> roughly ImageNet-standardised).
SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)
SCALE = np.array([0.458, 0.448, 0.450], np.float32)
# torchvision's vgg16().features: the indices of its 13 convolutions, the
# convolutions a 2x2 max pool comes before, and those whose ReLU output
# LPIPS compares (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3).
CONVOLUTIONS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
POOL_BEFORE = (5, 10, 17, 24)
TAPS = (2, 7, 14, 21, 28)
EPSILON = 1e-10
# The smallest image side: four 2x2 pools leave relu5_3 at least 1x1.
MIN_SIZE = 16
# Images per forward pass, and columns per float64 block of `pairwise`.
BATCH = 50
_GRAM_COLUMNS = 1 << 16

_LINEAR_KEY = re.compile(r"lin(\d+)\.model\.(\d+)\.weight$")
_FIX = ("Give LPIPS.backbone torchvision's VGG16 weights (vgg16-397923af.pth) "
        "and LPIPS.linear the LPIPS package's weights/v0.1/vgg.pth "
        "(docs/EVALUATION.md, \"LPIPS\").")


def _load(path: str, what: str) -> dict[str, np.ndarray]:
  from tfgt.importers import checkpoint_files  # pylint: disable=g-import-not-at-top
  state = checkpoint_files.load_torch(path)
  if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
    state = state["state_dict"]
  arrays = checkpoint_files.flatten(state)
  if not arrays:
    raise UserInputError(f"{path} holds no tensors: it is not {what}. "
                         + _FIX)
  return arrays


def read_backbone(path: str) -> list[tuple[np.ndarray, np.ndarray]]:
  """The 13 convolutions of a torchvision VGG16 state dict, as (kernel
  float32 [3, 3, in, out], bias float32 [out]), checked to chain from 3
  input channels.

  Raises:
    UserInputError: a missing tensor or a shape that does not chain, in
      one line naming it.
  """
  arrays = _load(path, "torchvision's VGG16")
  out, channels = [], 3
  for i in CONVOLUTIONS:
    kernel = arrays.get(f"features.{i}.weight")
    bias = arrays.get(f"features.{i}.bias")
    if kernel is None or bias is None:
      raise UserInputError(f"{path} has no features.{i}.weight/.bias: it is "
                           "not torchvision's VGG16 state dict. " + _FIX)
    if (kernel.ndim != 4 or kernel.shape[1:] != (channels, 3, 3)
        or bias.shape != (kernel.shape[0],)):
      raise UserInputError(
          f"{path}: features.{i}.weight is {list(kernel.shape)} and its bias "
          f"{list(bias.shape)}, where [out, {channels}, 3, 3] and [out] "
          "chain VGG16's convolutions. " + _FIX)
    out.append((np.transpose(kernel, (2, 3, 1, 0)).astype(np.float32),
                bias.astype(np.float32)))
    channels = kernel.shape[0]
  return out


def read_linear(path: str, widths: Sequence[int]) -> list[np.ndarray]:
  """The 5 LPIPS channel weights, float32 [C_k], for taps of `widths`.

  Raises:
    UserInputError: missing layers, or widths other than the backbone's.
  """
  arrays = _load(path, "LPIPS's linear layers")
  found = {}
  for key, value in arrays.items():
    match = _LINEAR_KEY.match(key)
    if match:
      found[int(match.group(1))] = value
  if sorted(found) != list(range(len(widths))):
    raise UserInputError(
        f"{path} has LPIPS layers {sorted(found)} (lin<k>.model.<i>.weight), "
        f"not 0 to {len(widths) - 1}. " + _FIX)
  out = []
  for k, width in enumerate(widths):
    weight = found[k]
    if weight.shape != (1, width, 1, 1):
      raise UserInputError(
          f"{path}: lin{k} is {list(weight.shape)}, where the backbone's "
          f"relu output {k} has {width} channels ([1, {width}, 1, 1]). "
          "The two files are of different networks. " + _FIX)
    weight = weight.reshape(width).astype(np.float32)
    if not np.all(np.isfinite(weight)) or np.any(weight < 0):
      raise UserInputError(
          f"{path}: lin{k} has negative or non-finite weights; LPIPS's are "
          "non-negative (a distance). " + _FIX)
    out.append(weight)
  return out


class LPIPS:
  """LPIPS v0.1 (VGG16) of the files a user has; see the module docstring.

  Args:
    backbone: path of torchvision's VGG16 weights (`vgg16-397923af.pth`).
    linear: path of LPIPS's `weights/v0.1/vgg.pth`.

  Raises:
    UserInputError: a path not given or not such a file (one line with the
      fix; nothing in the files is run).
  """

  def __init__(self, backbone: str | None = None, linear: str | None = None):
    if not backbone or not linear:
      raise UserInputError("LPIPS needs two weight files that tfgt cannot "
                           "download. " + _FIX)
    self.convolutions = read_backbone(backbone)
    widths = [self.convolutions[CONVOLUTIONS.index(t)][1].shape[0]
              for t in TAPS]
    self.weights = read_linear(linear, widths)
    self._features = tf.function(self._tapped, reduce_retracing=True)
    self.files = {"backbone": _fingerprint(backbone),
                  "linear": _fingerprint(linear)}

  def _tapped(self, images: tf.Tensor) -> list[tf.Tensor]:
    x = (images - SHIFT) / SCALE
    taps = []
    for i, (kernel, bias) in zip(CONVOLUTIONS, self.convolutions):
      if i in POOL_BEFORE:
        x = tf.nn.max_pool2d(x, 2, 2, "VALID")
      x = tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME") + bias)
      if i in TAPS:
        norm = tf.sqrt(tf.reduce_sum(tf.square(x), -1, keepdims=True))
        taps.append(x / (norm + EPSILON))
    return taps

  def features(self, images) -> list[np.ndarray]:
    """The unit-normalised taps of images (uint8 [0, 255] or float [-1, 1],
    [N, H, W, 1 or 3], H and W >= MIN_SIZE), float32 [N, h_l, w_l, C_l]
    each."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
      raise UserInputError(f"LPIPS takes images [N, H, W, 1 or 3], got "
                           f"shape {list(images.shape)}.")
    if min(images.shape[1:3]) < MIN_SIZE:
      raise UserInputError(
          f"LPIPS needs images of at least {MIN_SIZE}x{MIN_SIZE} (VGG16 "
          f"halves them four times), got {images.shape[1]}x"
          f"{images.shape[2]}: leave mdiversity_lpips out of "
          "Evaluator.metrics for these images.")
    if images.dtype == np.uint8:
      images = images.astype(np.float32) / 127.5 - 1.0
    images = images.astype(np.float32)
    if images.shape[-1] == 1:
      images = np.repeat(images, 3, axis=-1)
    parts = [self._features(tf.constant(images[s:s + BATCH]))
             for s in range(0, len(images), BATCH)]
    return [np.concatenate([p[l].numpy() for p in parts])
            for l in range(len(TAPS))]

  def distance(self, x, y) -> np.ndarray:
    """LPIPS between x[i] and y[i]: float64 [N] (images as `features`)."""
    total = 0.0
    for fx, fy, w in zip(self.features(x), self.features(y), self.weights):
      total = total + np.mean(np.sum(w * np.square(fx - fy), -1,
                                     dtype=np.float64), axis=(1, 2))
    return np.asarray(total)

  def pairwise(self, images) -> np.ndarray:
    """LPIPS between every two images: float64 [N, N], 0 on the diagonal.

    Each image goes through VGG16 once. Per tap, sum_c w_c (a_c - b_c)^2
    summed over positions is |a'|^2 + |b'|^2 - 2 a'.b' with a' = sqrt(w) a
    (w >= 0): a Gram matrix of the flattened, weighted taps, accumulated in
    float64 over column blocks (the taps stay float32: about 122 H W
    values per image).
    """
    total = 0.0
    for f, w in zip(self.features(images), self.weights):
      n, h, width = f.shape[:3]
      flat = (f * np.sqrt(w)).reshape(n, -1)
      gram = np.zeros((n, n))
      for start in range(0, flat.shape[1], _GRAM_COLUMNS):
        block = flat[:, start:start + _GRAM_COLUMNS].astype(np.float64)
        gram += block @ block.T
      own = np.diag(gram)
      total = total + (own[:, None] + own[None, :] - 2.0 * gram) / (h * width)
    total = np.maximum(total, 0.0)
    np.fill_diagonal(total, 0.0)
    return total

  def mean_pairwise(self, images) -> float:
    """The mean LPIPS between two different images of `images` (N >= 2)."""
    d = self.pairwise(images)
    n = len(d)
    if n < 2:
      raise ValueError(f"A mean pairwise LPIPS needs 2 images, got {n}.")
    return float(d.sum() / (n * (n - 1)))


@gin.configurable("LPIPS")
def bound_files(backbone: str | None = None,
                linear: str | None = None) -> tuple[str | None, str | None]:
  """The two weight files as gin binds them (`LPIPS.backbone`,
  `LPIPS.linear`): paths, or None when not bound."""
  return backbone, linear


def _fingerprint(path: str) -> dict:
  st = os.stat(path)
  return dict(path=os.path.realpath(path), bytes=st.st_size,
              mtime_ns=st.st_mtime_ns)


_NETWORK: dict[str, LPIPS] = {}


def network() -> LPIPS:
  """The LPIPS of the gin bindings, loaded once per pair of files (a file
  replaced in place, or other files bound, loads again).

  Raises:
    UserInputError: the bindings missing, or files that are not the
      networks.
  """
  backbone, linear = bound_files()
  if not backbone or not linear:
    raise UserInputError("mdiversity_lpips needs LPIPS.backbone and "
                         "LPIPS.linear bound in gin. " + _FIX)
  key = repr([_fingerprint(p) if os.path.isfile(p) else p
              for p in (backbone, linear)])
  if key not in _NETWORK:
    _NETWORK.clear()
    _NETWORK[key] = LPIPS(backbone, linear)
  return _NETWORK[key]


def _check_bound(settings) -> None:
  """Loads the files when the Evaluator is built: a missing or wrong file
  stops a run before its first step."""
  del settings  # The weights are LPIPS's own bindings.
  network()


def _lpips_diversity(real: np.ndarray, fake: np.ndarray,
                     settings) -> dict[str, float]:
  # Pixels uint8 [k, H, W, C] (registry.PIXELS: up to MAX_PIXEL_ROWS each).
  del settings
  lpips = network()
  real_distance = lpips.mean_pairwise(real)
  fake_distance = lpips.mean_pairwise(fake)
  if not real_distance > 0:
    raise UserInputError(
        "The real images of an evaluated class are all alike (mean pairwise "
        "LPIPS 0): a diversity relative to them is undefined. Leave "
        "mdiversity_lpips out of Evaluator.metrics for these classes.")
  return dict(diversity_lpips=fake_distance / real_distance,
              diversity_lpips_real=real_distance)


registry.register(registry.Metric(
    name="mdiversity_lpips", keys=("diversity_lpips", "diversity_lpips_real"),
    per_class=True, inputs=registry.PIXELS, compute=_lpips_diversity,
    target=1.0, reference_keys=("diversity_lpips_real",), min_rows=(2, 2),
    check_settings=_check_bound))
