"""BigGAN-PyTorch checkpoints into tfgt: stand-in state dicts at tiny width
(BigGAN-PyTorch's names, layouts and torch.save formats) are imported, and
both networks are compared with forward passes of BigGAN-PyTorch's published
Generator and Discriminator (BigGAN.py, layers.py) written here in NumPy
from their definitions, channels first, in inference mode."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tests import checkpoint_writers as writers
from tests.conftest import import_source_cli as _cli
from tfgt.errors import UserInputError
from tfgt.importers import biggan as importer
from tfgt.importers import mapping
from tfgt.models import biggan

EPS = 1e-5  # BigGAN-PyTorch's BN_eps.


# --- A BigGAN-PyTorch forward pass (NCHW, weights [out, in, kh, kw]). ------

def _normalize(x):
  return x / max(np.linalg.norm(x), 1e-12)


def sn(weight, u):
  """layers.SN.W_() in eval mode: one power iteration from u, no update."""
  w = weight.reshape(weight.shape[0], -1)
  v = _normalize(u @ w)
  u2 = _normalize(v @ w.T)
  sigma = float(np.squeeze(v @ w.T @ u2.T))
  return weight / sigma


def conv(x, p, prefix):
  w = sn(p[prefix + ".weight"], p[prefix + ".u0"])
  k = w.shape[-1]
  pad = k // 2
  xp = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
  h, wd = x.shape[2], x.shape[3]
  out = np.zeros([x.shape[0], w.shape[0], h, wd])
  for i in range(k):
    for j in range(k):
      out += np.einsum("bchw,oc->bohw", xp[:, :, i:i + h, j:j + wd],
                       w[:, :, i, j])
  if prefix + ".bias" in p:
    out += p[prefix + ".bias"][None, :, None, None]
  return out


def linear(x, p, prefix, use_sn=True):
  w = sn(p[prefix + ".weight"], p[prefix + ".u0"]) if use_sn else (
      p[prefix + ".weight"])
  out = x @ w.T
  return out + p[prefix + ".bias"] if prefix + ".bias" in p else out


def bn(x, mean, var):
  return (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None]
                                                   + EPS)


def ccbn(x, y, p, prefix, shared):
  if shared:  # SNLinear without bias of [embedding, z chunk].
    gain = 1 + linear(y, p, prefix + ".gain")
    bias = linear(y, p, prefix + ".bias")
  else:  # nn.Embedding tables, y are labels.
    gain = 1 + p[prefix + ".gain.weight"][y]
    bias = p[prefix + ".bias.weight"][y]
  out = bn(x, p[prefix + ".stored_mean"], p[prefix + ".stored_var"])
  return out * gain[:, :, None, None] + bias[:, :, None, None]


def relu(x):
  return np.maximum(x, 0)


def up(x):
  return x.repeat(2, axis=2).repeat(2, axis=3)


def pool(x, kind):
  b, c, h, w = x.shape
  x = x.reshape(b, c, h // 2, 2, w // 2, 2)
  return x.max(axis=(3, 5)) if kind == "max" else x.mean(axis=(3, 5))


def attention(x, p, prefix):
  b, c, h, w = x.shape
  theta = conv(x, p, prefix + ".theta").reshape(b, c // 8, h * w)
  phi = pool(conv(x, p, prefix + ".phi"), "max").reshape(b, c // 8, -1)
  g = pool(conv(x, p, prefix + ".g"), "max").reshape(b, c // 2, -1)
  logits = np.einsum("bci,bcj->bij", theta, phi)
  beta = np.exp(logits - logits.max(-1, keepdims=True))
  beta /= beta.sum(-1, keepdims=True)
  o = np.einsum("bcj,bij->bci", g, beta).reshape(b, c // 2, h, w)
  return x + p[prefix + ".gamma"] * conv(o, p, prefix + ".o")


def generator_forward(p, z, labels, num_blocks, hier, shared):
  if shared:
    y = p["shared.weight"][labels]
    if hier:
      chunks = np.split(z, num_blocks + 1, axis=1)
      z, ys = chunks[0], [np.concatenate([y, c], 1) for c in chunks[1:]]
    else:
      ys = [y] * num_blocks
  else:
    ys = [labels] * num_blocks
  h = linear(z, p, "linear")
  h = h.reshape(h.shape[0], -1, 4, 4)
  for i in range(num_blocks):
    pre = f"blocks.{i}.0"
    x = h
    h = relu(ccbn(h, ys[i], p, pre + ".bn1", shared))
    h, x = up(h), up(x)
    h = conv(h, p, pre + ".conv1")
    h = relu(ccbn(h, ys[i], p, pre + ".bn2", shared))
    h = conv(h, p, pre + ".conv2") + conv(x, p, pre + ".conv_sc")
    if f"blocks.{i}.1.gamma" in p:
      h = attention(h, p, f"blocks.{i}.1")
  h = bn(h, p["output_layer.0.stored_mean"], p["output_layer.0.stored_var"])
  h = (h * p["output_layer.0.gain"][None, :, None, None] +
       p["output_layer.0.bias"][None, :, None, None])
  return np.tanh(conv(relu(h), p, "output_layer.2"))


def discriminator_forward(p, images, labels, downsample):
  h = images
  for i, down in enumerate(downsample):
    pre = f"blocks.{i}.0"
    x = h
    h = relu(h) if i > 0 else h
    h = conv(relu(conv(h, p, pre + ".conv1")), p, pre + ".conv2")
    if down:
      h = pool(h, "avg")
    learnable = pre + ".conv_sc.weight" in p
    if i > 0:  # Preactivation: conv, then downsample.
      x = conv(x, p, pre + ".conv_sc") if learnable else x
      x = pool(x, "avg") if down else x
    else:
      x = pool(x, "avg") if down else x
      x = conv(x, p, pre + ".conv_sc") if learnable else x
    h = h + x
    if f"blocks.{i}.1.gamma" in p:
      h = attention(h, p, f"blocks.{i}.1")
  h = relu(h).sum(axis=(2, 3))
  out = linear(h, p, "linear")[:, 0]
  embed = sn(p["embed.weight"], p["embed.u0"])
  return out + (embed[labels] * h).sum(1)


# --- Stand-in state dicts. ------------------------------------------------

class _Params:

  def __init__(self, seed):
    self.rng = np.random.RandomState(seed)
    self.p = {}

  def normal(self, *shape, scale=1.0):
    return (self.rng.randn(*shape) * scale).astype(np.float32)

  def sn_layer(self, name, shape, bias=True, iterations=2):
    """weight, bias, u0 and sv0. u0 is `iterations` power iterations from
    random: not a singular vector, as G_ema's moving averages of G's
    vectors are not."""
    w = self.normal(*shape, scale=1.0 / np.sqrt(np.prod(shape[1:])))
    self.p[name + ".weight"] = w
    if bias:
      self.p[name + ".bias"] = self.normal(shape[0], scale=0.1)
    mat = w.reshape(shape[0], -1)
    u = self.normal(1, shape[0])
    for _ in range(iterations):
      u = _normalize(_normalize(u @ mat) @ mat.T)
    self.p[name + ".u0"] = u.astype(np.float32)
    self.p[name + ".sv0"] = np.ones([1], np.float32)

  def stats(self, name, c):
    self.p[name + ".stored_mean"] = self.normal(c, scale=0.3)
    self.p[name + ".stored_var"] = (0.5 + self.rng.rand(c)).astype(np.float32)


def g_state_dict(resolution, ch, num_classes, dim_z, shared_dim, hier,
                 shared, attention_block=None, seed=0):
  """A BigGAN-PyTorch Generator state dict with random weights."""
  g_arch = biggan.ARCHITECTURES[resolution][0]
  num_blocks = len(g_arch) - 1
  s = _Params(seed)
  cond = shared_dim + dim_z // (num_blocks + 1) if hier else shared_dim
  if shared:
    s.p["shared.weight"] = s.normal(num_classes, shared_dim)
  z_in = dim_z // (num_blocks + 1) if hier else dim_z
  s.sn_layer("linear", [g_arch[0] * ch * 16, z_in])
  for i in range(num_blocks):
    c_in, c_out = g_arch[i] * ch, g_arch[i + 1] * ch
    pre = f"blocks.{i}.0"
    for bn_name, c in (("bn1", c_in), ("bn2", c_out)):
      for part in ("gain", "bias"):
        if shared:
          s.sn_layer(f"{pre}.{bn_name}.{part}", [c, cond], bias=False)
          s.p[f"{pre}.{bn_name}.{part}.weight"] *= 0.3
        else:
          s.p[f"{pre}.{bn_name}.{part}.weight"] = s.normal(num_classes, c,
                                                           scale=0.3)
      s.stats(f"{pre}.{bn_name}", c)
    s.sn_layer(pre + ".conv1", [c_out, c_in, 3, 3])
    s.sn_layer(pre + ".conv2", [c_out, c_out, 3, 3])
    s.sn_layer(pre + ".conv_sc", [c_out, c_in, 1, 1])
    if i == attention_block:
      _attention_params(s, f"blocks.{i}.1", c_out)
  c = g_arch[-1] * ch
  s.p["output_layer.0.gain"] = 1 + s.normal(c, scale=0.2)
  s.p["output_layer.0.bias"] = s.normal(c, scale=0.2)
  s.stats("output_layer.0", c)
  s.sn_layer("output_layer.2", [3, c, 3, 3])
  return s.p


def _attention_params(s, prefix, c):
  s.sn_layer(prefix + ".theta", [c // 8, c, 1, 1], bias=False)
  s.sn_layer(prefix + ".phi", [c // 8, c, 1, 1], bias=False)
  s.sn_layer(prefix + ".g", [c // 2, c, 1, 1], bias=False)
  s.sn_layer(prefix + ".o", [c, c // 2, 1, 1], bias=False)
  s.p[prefix + ".gamma"] = np.float32(0.7)


def d_state_dict(resolution, ch, num_classes, attention_block=None, seed=1):
  """A BigGAN-PyTorch Discriminator state dict; no conv_sc where BigGAN's
  DBlock has none (same width, no downsampling)."""
  _, d_arch, d_down = biggan.ARCHITECTURES[resolution]
  s = _Params(seed)
  c_in = 3
  for i, (mult, down) in enumerate(zip(d_arch, d_down)):
    c_out = mult * ch
    pre = f"blocks.{i}.0"
    s.sn_layer(pre + ".conv1", [c_out, c_in, 3, 3])
    s.sn_layer(pre + ".conv2", [c_out, c_out, 3, 3])
    if c_in != c_out or down:
      s.sn_layer(pre + ".conv_sc", [c_out, c_in, 1, 1])
    if i == attention_block:
      _attention_params(s, f"blocks.{i}.1", c_out)
    c_in = c_out
  s.sn_layer("linear", [1, c_in])
  s.sn_layer("embed", [num_classes, c_in], bias=False)
  return s.p


def save(state_dict, path, legacy=False):
  writers.save_torch({k: writers.Tensor.of(v) for k, v in state_dict.items()},
                     path, legacy=legacy)


CASES = {
    # ImageNet-style: shared embedding, hierarchical z, attention in both.
    "shared_hier_attention": dict(resolution=32, ch=8, hier=True, shared=True,
                                  g_attention=1, d_attention=0),
    # CIFAR-style: per-class tables, no attention.
    "table": dict(resolution=32, ch=8, hier=False, shared=False,
                  g_attention=None, d_attention=None),
    "shared_64": dict(resolution=64, ch=4, hier=False, shared=True,
                      g_attention=1, d_attention=1),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_imported_networks_compute_biggan_pytorch(case, tmp_path):
  c = CASES[case]
  num_classes, shared_dim = 3, 8
  num_blocks = len(biggan.ARCHITECTURES[c["resolution"]][0]) - 1
  dim_z = 4 * (num_blocks + 1)
  g = g_state_dict(c["resolution"], c["ch"], num_classes, dim_z, shared_dim,
                   c["hier"], c["shared"], c["g_attention"])
  d = d_state_dict(c["resolution"], c["ch"], num_classes, c["d_attention"])
  save(g, str(tmp_path / "G_ema.pth"), legacy=case == "table")
  save(d, str(tmp_path / "D.pth"))
  imported = importer.import_biggan_pytorch(str(tmp_path),
                                            class_names=["a", "b", "c"])
  gen, disc = imported.generator, imported.discriminator
  assert gen.dim_z == dim_z and gen.hierarchical_z == c["hier"]
  assert gen.conditioning == ("shared_embedding" if c["shared"] else "table")
  rng = np.random.RandomState(5)
  z = rng.randn(2, dim_z).astype(np.float32)
  labels = np.array([2, 0])
  want = generator_forward(g, z.astype(np.float64), labels, num_blocks,
                           c["hier"], c["shared"])
  got = gen((z, labels), training=False).numpy().transpose(0, 3, 1, 2)
  np.testing.assert_allclose(got, want, atol=2e-4)
  images = rng.uniform(-1, 1, [2, 3, c["resolution"], c["resolution"]])
  want_d = discriminator_forward(d, images, labels,
                                 biggan.ARCHITECTURES[c["resolution"]][2])
  got_d = disc((images.transpose(0, 2, 3, 1).astype(np.float32), labels),
               training=False).numpy()
  np.testing.assert_allclose(got_d, want_d, rtol=1e-4, atol=1e-3)
  # Every array is placed or unused by design (sv0), and identity
  # shortcuts are reported where BigGAN-PyTorch has none.
  table = mapping.format_report(imported.report)
  assert "G_ema/linear.weight" in table and "(C, 4, 4) -> (4, 4, C)" in table
  assert "unused: singular value kept for logging" in table
  assert ("no conv_sc" in table) == (c["resolution"] == 32)


def test_matched_vector_gives_biggan_pytorchs_sigma():
  """tfgt divides by v W^T u for its stored u, BigGAN-PyTorch by v0 W^T u1
  after one more power iteration: match_sigma's vector makes them equal."""
  from tfgt.layers import spectral_norm  # pylint: disable=g-import-not-at-top
  s = _Params(3)
  s.sn_layer("w", [64, 32, 3, 3], iterations=1)
  w, u0 = s.p["w.weight"], s.p["w.u0"]
  kernel = tf.constant(w.transpose(2, 3, 1, 0).reshape(-1, 64))
  theirs = sn(w, u0).transpose(2, 3, 1, 0).reshape(-1, 64)
  raw = spectral_norm.spectral_normalize(kernel, tf.Variable(u0), 0,
                                         False).numpy()
  u, gap = importer.match_sigma(w, u0)
  assert gap > 1e-4  # The stored vector alone would not do.
  assert np.max(np.abs(raw / theirs - 1)) > 1e-4
  ours = spectral_norm.spectral_normalize(kernel, tf.Variable(u), 0,
                                          False).numpy()
  np.testing.assert_allclose(ours, theirs, rtol=2e-6)
  # A converged vector is kept as it is.
  for _ in range(300):
    u0 = _normalize(_normalize(u0 @ w.reshape(64, -1)) @ w.reshape(64, -1).T)
  u, gap = importer.match_sigma(w, u0)
  assert gap < 1e-6


def test_bad_input_says_what_is_wrong(tmp_path):
  g = g_state_dict(32, 8, 3, 16, 8, True, True)
  with pytest.raises(UserInputError, match=r"has no G_ema.pth \(it has no "):
    importer.import_biggan_pytorch(str(tmp_path))
  save(g, str(tmp_path / "G.pth"))
  with pytest.raises(UserInputError, match=r"it has \['G.pth'\].*--network"):
    importer.import_biggan_pytorch(str(tmp_path))
  # A discriminator of another run (class count) is refused.
  save(d_state_dict(32, 8, 5), str(tmp_path / "D.pth"))
  with pytest.raises(UserInputError, match="has 5 classes, the generator"):
    importer.import_biggan_pytorch(str(tmp_path), network="G")
  os.remove(tmp_path / "D.pth")
  with pytest.raises(UserInputError, match="3 classes; 2 class names"):
    importer.import_biggan_pytorch(str(tmp_path / "G.pth"),
                                   class_names=["a", "b"])
  # Without D.pth the bundle has no discriminator.
  assert importer.import_biggan_pytorch(
      str(tmp_path / "G.pth")).discriminator is None
  # A damaged array (NaN) never becomes a weight.
  bad = dict(g)
  bad["blocks.1.0.conv1.weight"] = bad["blocks.1.0.conv1.weight"].copy()
  bad["blocks.1.0.conv1.weight"][0, 0, 0, 0] = np.nan
  save(bad, str(tmp_path / "nan.pth"))
  with pytest.raises(UserInputError, match="blocks.1.0.conv1.weight holds "
                     "NaN"):
    importer.import_biggan_pytorch(str(tmp_path / "nan.pth"))
  # An extra array (e.g. two singular vectors) is no silent loss.
  extra = dict(g, **{"linear.u1": g["linear.u0"]})
  save(extra, str(tmp_path / "extra.pth"))
  with pytest.raises(UserInputError, match=r"arrays with no place: "
                     r"extra/linear.u1"):
    importer.import_biggan_pytorch(str(tmp_path / "extra.pth"))
  # A StyleGAN-like or unrelated state dict is named as such.
  save({"weight": np.zeros([2, 2], np.float32)}, str(tmp_path / "other.pth"))
  with pytest.raises(UserInputError, match="no linear.weight: not a "
                     "BigGAN-PyTorch generator"):
    importer.import_biggan_pytorch(str(tmp_path / "other.pth"))


def test_import_command_writes_a_bundle_that_draws_the_same(tmp_path):
  from tfgt.models import bundle  # pylint: disable=g-import-not-at-top
  weights = tmp_path / "weights"
  weights.mkdir()
  g = g_state_dict(32, 8, 3, 16, 8, True, True, attention_block=1)
  save(g, str(weights / "G_ema.pth"))
  save(d_state_dict(32, 8, 3, attention_block=0), str(weights / "D.pth"))
  names = tmp_path / "names.txt"
  names.write_text("tench\ngoldfish\n\nwhite shark\n")
  out = str(tmp_path / "sources" / "biggan")
  done = _cli("--from=biggan_pytorch", f"--input={weights}", f"--out={out}",
              f"--class_names_file={names}")
  assert done.returncode == 0, done.stderr[-3000:]
  assert "G_ema/blocks.0.0.bn1.gain.weight" in done.stdout
  assert "D/embed.u0" in done.stdout
  assert ("biggan 32x32x3, 3 class(es) (tench, goldfish, white shark), ch 8, "
          "dim_z 16, shared_embedding with hierarchical z, attention at 16, "
          "discriminator imported") in done.stdout
  generator, discriminator, spec = bundle.load(out, with_discriminator=True)
  assert spec["class_names"] == ["tench", "goldfish", "white shark"]
  assert discriminator.attention_index == 0
  want = generator_forward(g, np.ones([1, 16]), np.array([1]), 3, True, True)
  got = generator((tf.ones([1, 16]), tf.constant([1])), training=False)
  np.testing.assert_allclose(got.numpy().transpose(0, 3, 1, 2), want,
                             atol=2e-4)
  bad = _cli("--from=biggan_pytorch", f"--input={tmp_path / 'nothing'}",
             f"--out={tmp_path / 'out2'}")
  assert bad.returncode == 2 and "No checkpoint file" in bad.stderr
  assert "Traceback" not in bad.stderr
