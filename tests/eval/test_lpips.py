"""LPIPS from local files: stand-ins of torchvision's VGG16 state dict and
LPIPS's v0.1 linear weights, written as torch.save writes them (without
PyTorch), checked against a NumPy computation of LPIPS written here from
the paper's definition; then the metric mdiversity_lpips through the
evaluator."""

import collections

import gin
import numpy as np
import pytest

from tests import checkpoint_writers as writers
from tests.eval.test_evaluator import PooledPixels, bind_folder
from tests.eval.test_trust import ToneGenerator, _two_tone_folder
from tfgt.errors import UserInputError
from tfgt.eval import evaluator as evaluator_lib
from tfgt.eval import lpips as lpips_lib

# torchvision's vgg16().features: its convolutions' indices (a ReLU after
# each; max pools at 4, 9, 16, 23 and 30), written here, not read from
# tfgt, so that a wrong index in tfgt fails.
TORCHVISION_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
# VGG16's convolution widths (features.<i>), and small ones for the maths.
VGG16 = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)
SMALL = (3, 4, 4, 5, 5, 6, 6, 6, 7, 7, 7, 8, 8)


def _write(root, widths, seed=0, linear_key="lin{}.model.1.weight",
           skip=None, dtype=np.float32):
  """(backbone path, linear path, the arrays) of a VGG16-like network of
  conv widths `widths`."""
  rng = np.random.default_rng(seed)
  state, arrays = collections.OrderedDict(), {}
  channels = 3
  for i, width in zip(TORCHVISION_CONVS, widths):
    kernel = (rng.standard_normal((width, channels, 3, 3)) *
              np.sqrt(2.0 / (9 * channels))).astype(dtype)
    bias = (0.05 * rng.standard_normal(width)).astype(dtype)
    arrays[i] = (kernel, bias)
    if i != skip:
      state[f"features.{i}.weight"] = writers.Tensor.of(kernel)
      state[f"features.{i}.bias"] = writers.Tensor.of(bias)
    channels = width
  # The classifier of vgg16(), not read (one small stand-in).
  state["classifier.0.weight"] = writers.Tensor.of(np.zeros((2, 2), dtype))
  backbone = str(root / "vgg16-397923af.pth")
  writers.save_torch(state, backbone)
  linear_state, weights = collections.OrderedDict(), []
  for k, tap in enumerate((2, 7, 14, 21, 28)):  # relu1_2, ..., relu5_3.
    width = widths[TORCHVISION_CONVS.index(tap)]
    w = np.abs(rng.standard_normal(width)).astype(np.float32) * 0.1
    weights.append(w)
    linear_state[linear_key.format(k)] = writers.Tensor.of(
        w.reshape(1, width, 1, 1))
  linear = str(root / "vgg.pth")
  writers.save_torch(linear_state, linear)
  return backbone, linear, arrays, weights


def _numpy_lpips(x, y, arrays, weights):
  """LPIPS v0.1 by its definition, images float [-1, 1] [N, H, W, 3]."""
  def conv(a, kernel, bias):  # torch layout [out, in, 3, 3], padding 1.
    n, h, w, _ = a.shape
    padded = np.pad(a, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros((n, h, w, kernel.shape[0]))
    for dy in range(3):
      for dx in range(3):
        out += padded[:, dy:dy + h, dx:dx + w] @ kernel[:, :, dy, dx].T
    return np.maximum(out + bias, 0.0)

  def pool(a):
    n, h, w, c = a.shape
    a = a[:, :h // 2 * 2, :w // 2 * 2]
    return a.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))

  def taps(a):
    a = (a - np.array([-0.030, -0.088, -0.188])) / np.array(
        [0.458, 0.448, 0.450])
    out = []
    for i in TORCHVISION_CONVS:
      if i in (5, 10, 17, 24):
        a = pool(a)
      a = conv(a, *arrays[i])
      if i in (2, 7, 14, 21, 28):
        out.append(a / (np.sqrt(np.sum(a ** 2, -1, keepdims=True)) + 1e-10))
    return out

  total = 0.0
  for fx, fy, w in zip(taps(x.astype(np.float64)),
                       taps(y.astype(np.float64)), weights):
    total = total + np.mean(np.sum(w * (fx - fy) ** 2, -1), axis=(1, 2))
  return total


@pytest.fixture(scope="module")
def small(tmp_path_factory):
  return _write(tmp_path_factory.mktemp("lpips"), SMALL)


def test_lpips_matches_the_definition(small):
  backbone, linear, arrays, weights = small
  net = lpips_lib.LPIPS(backbone, linear)
  rng = np.random.default_rng(1)
  x = rng.uniform(-1, 1, (4, 20, 24, 3)).astype(np.float32)
  y = rng.uniform(-1, 1, (4, 20, 24, 3)).astype(np.float32)
  want = _numpy_lpips(x, y, arrays, weights)
  np.testing.assert_allclose(net.distance(x, y), want, rtol=1e-4)
  # Every pair at once (one forward pass per image) gives the same.
  both = np.concatenate([x, y])
  d = net.pairwise(both)
  np.testing.assert_allclose(d[np.arange(4), np.arange(4) + 4], want,
                             rtol=1e-4)
  np.testing.assert_allclose(d, d.T, rtol=1e-10)
  assert np.all(np.diag(d) == 0) and np.all(d[~np.eye(8, dtype=bool)] > 0)
  assert net.mean_pairwise(both) == pytest.approx(d.sum() / 56, rel=1e-12)
  # Grey images [N, H, W, 1] and uint8 are the RGB copy in [-1, 1].
  grey = rng.integers(0, 256, (2, 16, 16, 1)).astype(np.uint8)
  rgb = np.repeat(grey, 3, -1).astype(np.float32) / 127.5 - 1.0
  np.testing.assert_allclose(net.distance(grey[:1], grey[1:]),
                             _numpy_lpips(rgb[:1], rgb[1:], arrays, weights),
                             rtol=1e-4)


def test_vgg16_files_of_the_real_shapes_load(tmp_path):
  # torchvision's VGG16 widths (14.7 million values in float16 here), and
  # LPIPS's linear layers written without dropout (lin<k>.model.0.weight).
  backbone, linear, _, _ = _write(
      tmp_path, VGG16, linear_key="lin{}.model.0.weight", dtype=np.float16)
  net = lpips_lib.LPIPS(backbone, linear)
  assert [w.shape[0] for w in net.weights] == [64, 128, 256, 512, 512]
  assert [k.shape for k, _ in net.convolutions][-1] == (3, 3, 512, 512)
  images = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3))
  assert net.distance(images[:1], images[1:])[0] > 0


def test_files_that_are_not_the_networks_are_refused_in_one_line(tmp_path):
  for name in ("ok", "a", "b"):
    (tmp_path / name).mkdir()
  backbone, linear, _, _ = _write(tmp_path / "ok", SMALL)
  missing, _, _, _ = _write(tmp_path / "a", SMALL, skip=14)
  with pytest.raises(UserInputError, match=r"has no features\.14\.weight"):
    lpips_lib.LPIPS(missing, linear)
  _, other, _, _ = _write(tmp_path / "b", SMALL[:-1] + (9,))
  with pytest.raises(UserInputError, match=r"lin4 is \[1, 9, 1, 1\], where "
                     r"the backbone's relu output 4 has 8 channels"):
    lpips_lib.LPIPS(backbone, other)
  with pytest.raises(UserInputError, match="LPIPS layers"):
    lpips_lib.LPIPS(backbone, backbone)
  (tmp_path / "c").mkdir()
  rng_state = collections.OrderedDict(
      (f"lin{k}.model.1.weight", writers.Tensor.of(
          -np.ones((1, w, 1, 1), np.float32)))
      for k, w in enumerate((4, 5, 6, 7, 8)))
  writers.save_torch(rng_state, str(tmp_path / "c" / "vgg.pth"))
  with pytest.raises(UserInputError, match="lin0 has negative"):
    lpips_lib.LPIPS(backbone, str(tmp_path / "c" / "vgg.pth"))
  text = tmp_path / "notes.pth"
  text.write_text("not a checkpoint")
  with pytest.raises(UserInputError) as error:
    lpips_lib.LPIPS(str(text), linear)
  # One line (the commands drop gin's "In call to configurable" context).
  assert str(text) in str(error.value).splitlines()[0]
  with pytest.raises(UserInputError, match="two weight files that tfgt "
                     "cannot download"):
    lpips_lib.LPIPS()
  net = lpips_lib.LPIPS(backbone, linear)
  with pytest.raises(UserInputError, match="at least 16x16"):
    net.distance(np.zeros((1, 8, 8, 3)), np.zeros((1, 8, 8, 3)))


def test_lpips_diversity_through_the_evaluator(small, tmp_path):
  backbone, linear, _, _ = small
  bind_folder(_two_tone_folder(tmp_path / "images"))
  with pytest.raises(UserInputError, match="mdiversity_lpips needs "
                     "LPIPS.backbone and LPIPS.linear"):
    evaluator_lib.Evaluator(extractor=PooledPixels(),
                            metrics="mdiversity_lpips")
  gin.bind_parameter("LPIPS.backbone", backbone)
  gin.bind_parameter("LPIPS.linear", linear)

  def scores(generator):
    evaluator = evaluator_lib.Evaluator(
        extractor=PooledPixels(), metrics="mdiversity_lpips",
        num_samples=40, cache_dir=str(tmp_path / "cache"))
    return evaluator.evaluate(generator)

  varied = scores(ToneGenerator(dark_class=1))
  collapsed = scores(ToneGenerator(dark_class=1, collapsed=True))
  for result in (varied, collapsed):
    for name in ("bright", "dark"):
      assert result.per_class[name]["diversity_lpips_real"] > 0
  assert varied.metrics["mdiversity_lpips"] > 0.05
  assert collapsed.metrics["mdiversity_lpips"] < 1e-6
  assert (collapsed.metrics["mdiversity_lpips_real"] ==
          varied.metrics["mdiversity_lpips_real"])


def test_the_bound_files_are_loaded_again_when_they_change(tmp_path):
  for name in ("a", "b"):
    (tmp_path / name).mkdir()
  first = _write(tmp_path / "a", SMALL, seed=0)
  second = _write(tmp_path / "b", SMALL, seed=1)
  # Through a macro, as a config would bind them.
  gin.parse_config([f"B = '{first[0]}'", f"L = '{first[1]}'",
                    "LPIPS.backbone = %B", "LPIPS.linear = %L"])
  a = lpips_lib.network()
  assert lpips_lib.network() is a  # Loaded once.
  gin.clear_config()
  gin.parse_config([f"B = '{second[0]}'", f"L = '{second[1]}'",
                    "LPIPS.backbone = %B", "LPIPS.linear = %L"])
  b = lpips_lib.network()
  assert b is not a
  np.testing.assert_array_equal(b.weights[0], second[3][0])
  # Real images all alike: no ratio to them, and the message says so.
  same = np.zeros((3, 16, 16, 1), np.uint8)
  with pytest.raises(UserInputError, match="all alike.*Leave "
                     "mdiversity_lpips out"):
    lpips_lib._lpips_diversity(same, same + 1, None)
