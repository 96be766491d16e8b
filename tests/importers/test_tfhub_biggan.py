"""TF-Hub BigGAN modules into tfgt: the test writes a TF1 Hub module at tiny
width with the variable names, layouts and `default` signature (z, y,
truncation) of DeepMind's deepmind/biggan-* modules, whose graph is the
module's generator written here in TF1 ops from its published definition
(BigGAN-PyTorch's TFHub/biggan.py port: hierarchical z, [z chunk, class
embedding] conditions, spectral norm as one power iteration from u0, batch
norms with epsilon 1e-4 and stored statistics, attention before the block
after 64 px). `hub.load` reads it as it reads the real modules; the import
must draw what the module's own graph draws."""

import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.importers import test_biggan as pytorch_case
from tests.conftest import REPO
from tests.conftest import import_source_cli as _cli
from tfgt import import_source
from tfgt.errors import UserInputError
from tfgt.importers import biggan as pytorch_importer
from tfgt.importers import tfhub_biggan as importer
from tfgt.methods import source
from tfgt.models import biggan

tf1 = tf.compat.v1
EPS = 1e-4  # The modules' batch-norm epsilon.
EMA = "/ema_b999900"


def _normalize(x):
  return x / np.linalg.norm(x)


class _Module:
  """The variables of a stand-in module and its TF1 forward pass."""

  def __init__(self, resolution, ch, num_classes, z_chunk, shared_dim, seed,
               graph_weights=EMA):
    self.rng = np.random.RandomState(seed)
    self.graph_weights = graph_weights  # EMA, or "" for the raw weights.
    self.resolution, self.ch, self.num_classes = resolution, ch, num_classes
    self.z_chunk, self.shared_dim = z_chunk, shared_dim
    self.g_arch = biggan.ARCHITECTURES[resolution][0]
    self.num_blocks = len(self.g_arch) - 1
    self.attention_after = {128: 3, 512: 3}[resolution]  # 64 px.
    self.values = {}  # name -> array, as the module stores them.
    self.vars = {}

  def normal(self, *shape, scale=1.0):
    return np.asarray(self.rng.randn(*shape) * scale, np.float32)

  def weight(self, name, value):
    """A weight, its moving average (which the graph uses) and the raw
    variable (different, so that importing the wrong one is seen)."""
    self.values[name + EMA] = value
    self.values[name] = value + self.normal(*value.shape, scale=0.5)

  def sn_layer(self, scope, shape, bias=True):
    """w [..., out] (TF layout), b, and u0 / u1 [1, out], u0 two power
    iterations from random (a moving average's vector is not a singular
    vector either)."""
    fan_in = int(np.prod(shape[:-1]))
    w = self.normal(*shape, scale=1.0 / np.sqrt(fan_in))
    self.weight(f"{scope}/w", w)
    if bias:
      self.weight(f"{scope}/b", self.normal(shape[-1], scale=0.1))
    mat = w.reshape(-1, shape[-1]).T  # [out, in]
    u = self.normal(1, shape[-1])
    for _ in range(2):
      u = _normalize(_normalize(u @ mat) @ mat.T)
    self.values[f"{scope}/u0"] = u.astype(np.float32)
    self.values[f"{scope}/u1"] = self.normal(1, shape[-1])

  def stats(self, scope, c):
    self.values[f"{scope}/accumulated_mean"] = self.normal(c, scale=0.3)
    self.values[f"{scope}/accumulated_var"] = (
        0.5 + self.rng.rand(c)).astype(np.float32)
    self.values[f"{scope}/accumulation_counter"] = np.float32(1.0)

  def make(self):
    ch, cond = self.ch, self.z_chunk + self.shared_dim
    self.weight("linear/w", self.normal(self.num_classes, self.shared_dim))
    self.sn_layer("Generator/G_Z/G_linear",
                  [self.z_chunk, 16 * self.g_arch[0] * ch])
    for i in range(self.num_blocks):
      scope = "Generator/GBlock" + (f"_{i}" if i else "")
      c_in, c_out = self.g_arch[i] * ch, self.g_arch[i + 1] * ch
      for bn, c in (("", c_in), ("_1", c_out)):
        for part in ("gamma", "beta"):
          self.sn_layer(f"{scope}/HyperBN{bn}/{part}", [cond, c], bias=False)
          self.values[f"{scope}/HyperBN{bn}/{part}/w{EMA}"] *= 0.3
        self.stats(f"{scope}/CrossReplicaBN{bn}", c)
      self.sn_layer(f"{scope}/conv0", [3, 3, c_in, c_out])
      self.sn_layer(f"{scope}/conv1", [3, 3, c_out, c_out])
      self.sn_layer(f"{scope}/conv_sc", [1, 1, c_in, c_out])
    c = self.g_arch[self.attention_after + 1] * ch
    for name, c_o in (("theta", c // 8), ("phi", c // 8), ("g", c // 2)):
      self.sn_layer(f"Generator/attention/{name}", [1, 1, c, c_o], bias=False)
    self.sn_layer("Generator/attention/o_conv", [1, 1, c // 2, c], bias=False)
    self.weight("Generator/attention/gamma", np.float32(0.7))
    c = self.g_arch[-1] * ch
    self.weight("Generator/ScaledCrossReplicaBN/gamma",
                1 + self.normal(c, scale=0.2))
    self.weight("Generator/ScaledCrossReplicaBN/beta", self.normal(c, scale=0.2))
    self.stats("Generator/ScaledCrossReplicaBNbn", c)
    self.sn_layer("Generator/conv_2d", [3, 3, c, 3])
    return self

  # --- The module's generator in TF1 ops (NHWC). --------------------------

  def v(self, name):
    """The variable the graph reads: the moving average where there is one
    (the raw weight with graph_weights="")."""
    chosen = name + self.graph_weights
    return self.vars[chosen] if chosen in self.vars else self.vars[name]

  def sn(self, scope):
    w = self.v(f"{scope}/w")
    w2 = tf.reshape(w, [-1, w.shape[-1]])  # [in, out]
    u = self.v(f"{scope}/u0")  # [1, out]
    v = tf.math.l2_normalize(tf.matmul(u, w2, transpose_b=True))  # [1, in]
    u1 = tf.math.l2_normalize(tf.matmul(v, w2))  # [1, out]
    sigma = tf.reduce_sum(tf.matmul(v, w2) * u1)
    return w / sigma

  def conv(self, x, scope, bias=True):
    out = tf.nn.conv2d(x, self.sn(scope), 1, "SAME")
    return out + self.v(f"{scope}/b") if bias else out

  def bn(self, x, stats):
    mean = self.v(f"{stats}/accumulated_mean")
    var = self.v(f"{stats}/accumulated_var")
    return (x - mean) * tf.math.rsqrt(var + EPS)

  def hyper_bn(self, x, cond, scope, stats):
    gain = 1 + tf.matmul(cond, self.sn(f"{scope}/gamma"))
    shift = tf.matmul(cond, self.sn(f"{scope}/beta"))
    return self.bn(x, stats) * gain[:, None, None] + shift[:, None, None]

  def attention(self, x):
    s = "Generator/attention"
    b, h, w, c = (tf.shape(x)[0], x.shape[1], x.shape[2], x.shape[3])
    pool = lambda t: tf.nn.max_pool2d(t, 2, 2, "VALID")
    theta = tf.reshape(self.conv(x, f"{s}/theta", False), [b, h * w, c // 8])
    phi = tf.reshape(pool(self.conv(x, f"{s}/phi", False)),
                     [b, h * w // 4, c // 8])
    g = tf.reshape(pool(self.conv(x, f"{s}/g", False)),
                   [b, h * w // 4, c // 2])
    beta = tf.nn.softmax(tf.matmul(theta, phi, transpose_b=True))
    o = tf.reshape(tf.matmul(beta, g), [b, h, w, c // 2])
    return x + self.v(f"{s}/gamma") * self.conv(o, f"{s}/o_conv", False)

  def forward(self, z, y):
    up = lambda t: tf.repeat(tf.repeat(t, 2, axis=1), 2, axis=2)
    chunks = tf.split(z, self.num_blocks + 1, axis=1)
    embedding = tf.matmul(y, self.v("linear/w"))
    w = self.sn("Generator/G_Z/G_linear")
    h = tf.matmul(chunks[0], w) + self.v("Generator/G_Z/G_linear/b")
    h = tf.reshape(h, [-1, 4, 4, self.g_arch[0] * self.ch])
    for i in range(self.num_blocks):
      if i == self.attention_after + 1:
        h = self.attention(h)
      s = "Generator/GBlock" + (f"_{i}" if i else "")
      cond = tf.concat([chunks[i + 1], embedding], axis=1)
      out = tf.nn.relu(self.hyper_bn(h, cond, f"{s}/HyperBN",
                                     f"{s}/CrossReplicaBN"))
      out = self.conv(up(out), f"{s}/conv0")
      out = tf.nn.relu(self.hyper_bn(out, cond, f"{s}/HyperBN_1",
                                     f"{s}/CrossReplicaBN_1"))
      h = self.conv(out, f"{s}/conv1") + self.conv(up(h), f"{s}/conv_sc")
    s = "Generator/ScaledCrossReplicaBN"
    h = self.bn(h, s + "bn") * self.v(f"{s}/gamma") + self.v(f"{s}/beta")
    return tf.tanh(self.conv(tf.nn.relu(h), "Generator/conv_2d"))

  def save(self, path, extra=None, hostile=None):
    """Writes the module (TF1 Hub format: saved_model.pb with tags [],
    variables/, tfhub_module.pb); `extra`: more variables, not in the
    graph's computation; `hostile(images)` -> (images, main_op or None):
    ops a hostile module adds to its outputs and to what hub.load runs."""
    graph = tf.Graph()
    with graph.as_default():
      for name, value in {**self.values, **(extra or {})}.items():
        self.vars[name] = tf1.get_variable(name, initializer=value,
                                           use_resource=False)
      dim_z = self.z_chunk * (self.num_blocks + 1)
      z = tf1.placeholder(tf.float32, [None, dim_z], "z")
      y = tf1.placeholder(tf.float32, [None, self.num_classes], "y")
      truncation = tf1.placeholder(tf.float32, [], "truncation")
      images = self.forward(z, y)
      main_op = None
      if hostile is not None:
        images, main_op = hostile(images)
      with tf1.Session(graph=graph) as session:
        session.run(tf1.global_variables_initializer())
        builder = tf1.saved_model.Builder(path)
        signature = tf1.saved_model.predict_signature_def(
            {"z": z, "y": y, "truncation": truncation}, {"default": images})
        builder.add_meta_graph_and_variables(
            session, tags=[], signature_def_map={"default": signature},
            main_op=main_op)
        builder.save()
    # tfhub_module.pb: a ModuleDef with format FORMAT_V3 (field 1 = 1).
    with open(os.path.join(path, "tfhub_module.pb"), "wb") as f:
      f.write(b"\x08\x01")
    return path


def write_module(path, resolution=128, ch=8, num_classes=5, z_chunk=4,
                 shared_dim=8, seed=0, extra=None, graph_weights=EMA,
                 hostile=None):
  return _Module(resolution, ch, num_classes, z_chunk, shared_dim, seed,
                 graph_weights).make().save(str(path), extra, hostile)


@pytest.fixture(scope="module")
def module_128(tmp_path_factory):
  return write_module(tmp_path_factory.mktemp("hub") / "biggan-128")


@pytest.mark.parametrize("resolution,ch", [(128, 8), (512, 4)])
def test_import_draws_what_the_module_draws(resolution, ch, module_128,
                                            tmp_path):
  path = module_128 if resolution == 128 else write_module(
      tmp_path / "biggan-512", resolution=512, ch=ch, z_chunk=2)
  module = importer.load_module(path)
  imported = importer.import_tfhub_biggan(path)
  g = imported.generator.ctor_kwargs
  assert (g["resolution"], g["ch"], g["dim_z"], g["attention_resolution"],
          g["bn_epsilon"]) == (resolution, ch, 24 if resolution == 128 else 16,
                               64, 1e-4)
  assert imported.class_names == [f"class_{i}" for i in range(5)]
  # Every variable of the module is in the report once, used or not.
  sources = [row.source for row in imported.report]
  names = set(tf.train.load_checkpoint(
      os.path.join(path, "variables", "variables")).get_variable_to_shape_map())
  assert len(names) > 100 and names <= set(sources)
  assert len(set(sources)) == len(sources)
  rows = {row.source: row for row in imported.report}
  assert rows["Generator/GBlock/conv0/w" + EMA].target == (
      "generator/block0/conv1/kernel")
  assert "raw weight" in rows["Generator/GBlock/conv0/w"].note
  assert "second spectral-norm vector" in rows["Generator/conv_2d/u1"].note
  assert "batches accumulated: 1; the statistics are used as stored" in rows[
      "Generator/GBlock/CrossReplicaBN/accumulation_counter"].note
  assert "[class embedding, z chunk]" in rows[
      "Generator/GBlock_1/HyperBN_1/gamma/w" + EMA].note
  assert imported.fresh_discriminator
  assert imported.discriminator.resolution == resolution
  gap = importer.verify(module, imported.generator, num_samples=3)
  assert gap < 2e-4, gap


def test_raw_weights_and_what_is_refused(module_128, tmp_path):
  module = importer.load_module(module_128)
  raw = importer.import_tfhub_biggan(module_128, network="G")
  kernel = raw.generator.block0.conv1.variables[0]
  assert kernel.path.endswith("conv1/kernel")
  want = importer.module_arrays(module_128)["Generator/GBlock/conv0/w"]
  np.testing.assert_array_equal(kernel.numpy(), want)
  # The module samples from the moving averages, so G draws otherwise.
  assert importer.verify(module, raw.generator, num_samples=2) > 1e-2
  # A module whose graph draws with its raw weights: the default (G_ema)
  # import differs, and --verify refuses to write it.
  raw_graph = write_module(tmp_path / "raw_graph", graph_weights="")
  with pytest.raises(UserInputError, match="more than one grey level"):
    import_source.run("tfhub_biggan", raw_graph, str(tmp_path / "refused"),
                      verify=True)
  assert not (tmp_path / "refused").exists()
  with pytest.raises(UserInputError, match="G_ema or G"):
    importer.import_tfhub_biggan(module_128, network="Gs")
  with pytest.raises(UserInputError, match="5 classes; 2 class names"):
    importer.import_tfhub_biggan(module_128, class_names=["a", "b"])
  # A variable the import has no place for: nothing is imported half-way.
  extra = write_module(tmp_path / "extra", extra={
      "Generator/GBlock/extra_scale": np.ones([3], np.float32)})
  with pytest.raises(UserInputError, match=r"no place: Generator/GBlock/"
                     r"extra_scale \[3\]"):
    importer.import_tfhub_biggan(extra)
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(UserInputError, match="no saved_model.pb"):
    importer.import_tfhub_biggan(str(empty))
  with pytest.raises(UserInputError, match="no such folder"):
    importer.resolve_handle(str(tmp_path / "missing"))
  archive = tmp_path / "biggan-128_2.tar.gz"
  archive.write_bytes(b"")
  with pytest.raises(UserInputError, match="Unpack it"):
    importer.resolve_handle(str(archive))
  with pytest.raises(UserInputError, match="neither a folder nor a TF-Hub"):
    importer.resolve_handle("biggan")
  # --out and --discriminator are checked before the module is read, and an
  # --out with files in it (a run folder) is never written into.
  run_dir = tmp_path / "run"
  run_dir.mkdir()
  (run_dir / "checkpoint").write_text("model_checkpoint_path: \"ckpt-2\"\n")
  for out, message in ((run_dir, "a folder with files in it"),
                       (run_dir / "checkpoint", "is a file")):
    with pytest.raises(UserInputError, match=message):
      import_source.run("tfhub_biggan", module_128, str(out))
  assert os.listdir(run_dir) == ["checkpoint"]
  with pytest.raises(UserInputError, match="--discriminator=.*no such file"):
    import_source.run("tfhub_biggan", module_128, str(tmp_path / "new"),
                      discriminator=str(tmp_path / "D.pth"))
  assert importer.resolve_handle("deepmind/biggan-128/2") == (
      "https://tfhub.dev/deepmind/biggan-128/2")


def test_discriminator_from_biggan_pytorch(module_128, tmp_path):
  d_path = str(tmp_path / "D.pth")
  pytorch_case.save(pytorch_case.d_state_dict(128, 8, 5, attention_block=0),
                    d_path)
  imported = importer.import_tfhub_biggan(module_128, discriminator=d_path)
  assert not imported.fresh_discriminator
  assert any(row.source == "D/embed.u0" for row in imported.report)
  d_arrays = pytorch_case.d_state_dict(128, 8, 5, attention_block=0)
  images = np.random.RandomState(0).uniform(-1, 1, [2, 128, 128, 3])
  labels = np.array([1, 3])
  want = pytorch_case.discriminator_forward(
      d_arrays, images.transpose(0, 3, 1, 2), labels,
      biggan.ARCHITECTURES[128][2])
  got = imported.discriminator((tf.constant(images, tf.float32), labels),
                               training=False).numpy()
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)
  other = str(tmp_path / "D3.pth")
  pytorch_case.save(pytorch_case.d_state_dict(128, 8, 3), other)
  with pytest.raises(UserInputError, match="has 3 classes"):
    importer.import_tfhub_biggan(module_128, discriminator=other)
  small = str(tmp_path / "D64.pth")
  pytorch_case.save(pytorch_case.d_state_dict(64, 8, 5), small)
  with pytest.raises(UserInputError, match="a discriminator of 64 px, the "
                     "generator .* draws 128 px"):
    importer.import_tfhub_biggan(module_128, discriminator=small)


def test_import_command_writes_a_verified_bundle(module_128, tmp_path,
                                                 caplog, monkeypatch):
  from tfgt.models import bundle  # pylint: disable=g-import-not-at-top
  out = str(tmp_path / "sources" / "biggan")
  done = _cli("--from=tfhub_biggan", f"--input={module_128}", f"--out={out}",
              "--verify", "--class_names=a,b,c,d,e")
  assert done.returncode == 0, done.stderr[-3000:]
  assert "Generator/GBlock_4/conv_sc/w/ema_b999900" in done.stdout
  assert ("biggan 128x128x3, 5 class(es) (a, b, c, d, e), ch 8, dim_z 24, "
          "shared_embedding with hierarchical z, attention at 64, "
          "discriminator fresh (untrained)") in done.stdout
  line = next(l for l in done.stdout.splitlines() if l.startswith("Verify:"))
  assert float(line.rsplit(" ", 1)[1]) < 2e-4
  assert "generator weights G_ema" in done.stdout
  generator, discriminator, spec = bundle.load(out, with_discriminator=True)
  assert spec["class_names"] == list("abcde") and discriminator is not None
  assert spec["discriminator_trained"] is False
  with caplog.at_level(logging.WARNING):
    source.load(out)
  assert "has an untrained discriminator" in caplog.text
  module = importer.load_module(module_128)
  assert importer.verify(module, generator, num_samples=2) < 2e-4
  # A handle whose host refuses at once (the discard port of this machine,
  # so the test never downloads where tfhub.dev is reachable): the error
  # says what to do instead.
  monkeypatch.setattr(importer, "HUB_ROOT", "http://127.0.0.1:9/")
  monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "hub_cache"))
  with pytest.raises(UserInputError, match=r"could not fetch the module .*"
                     r"download http://127.0.0.1:9/deepmind/biggan-128/2\?"
                     r"tf-hub-format=compressed .*TFHUB_CACHE_DIR"):
    import_source.run("tfhub_biggan", "deepmind/biggan-128/2",
                      str(tmp_path / "out2"))
  assert not (tmp_path / "out2").exists()


def test_imagenet_names_are_wordnets_in_label_order(tmp_path):
  """The shipped names are what `tools.imagenet_class_names` makes from
  TFDS's ILSVRC-2012 synsets and WordNet 3.0 (tools/setup.sh --bazel
  installs Debian's wordnet-base)."""
  wordnet = "/usr/share/wordnet/data.noun"
  assert os.path.isfile(wordnet), ("no WordNet: run `bash tools/setup.sh "
                                   "--bazel` (apt-get install wordnet-base)")
  out = tmp_path / "names.txt"
  made = subprocess.run([sys.executable, "-m", "tools.imagenet_class_names",
                         f"--wordnet={wordnet}", f"--out={out}"], cwd=REPO,
                        capture_output=True, text=True, check=False)
  assert made.returncode == 0, made.stderr[-2000:]
  made = out.read_text(encoding="utf-8").splitlines()
  names = pytorch_importer.imagenet_class_names()
  assert pytorch_importer.default_class_names(1000) == names
  assert made == names and len(names) == 1000
  assert names[0] == "tench, Tinca tinca" and names[207] == "golden retriever"


def test_a_missing_source_names_the_import_that_makes_it(tmp_path):
  imagenet = str(tmp_path / "sources" / "biggan_imagenet_128")
  with pytest.raises(UserInputError) as error:
    source.read_info(imagenet)
  for command in ("--from=biggan_pytorch --input=<BigGAN-PyTorch's 138k "
                  f"weights folder> --out={imagenet}`",
                  f"--from=tfhub_biggan --input=deepmind/biggan-128/2 "
                  f"--out={imagenet}`"):
    assert command in str(error.value)
  with pytest.raises(UserInputError, match="--from=<format> --input=<file>"):
    source.read_info(str(tmp_path / "sources" / "mine"))
