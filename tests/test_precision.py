"""Mixed precision (tfgt.precision): the policy reaches every layer, the
float32 islands stay float32, training in bfloat16 on two replicas matches
one device, a run changes precision when it resumes, float16's loss scaling
recovers from an overflow."""

import json
import os
from unittest import mock

import gin
import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import PRETRAIN
from tests.conftest import SMALL_DATA
from tests.conftest import TINY
from tests.conftest import model_variables
from tfgt import ema as ema_lib
from tfgt import losses
from tfgt import precision
from tfgt import run_folder
from tfgt import steps as steps_lib
from tfgt import train as train_lib
from tfgt.errors import UserInputError
from tfgt.layers import adafm
from tfgt.layers import attention
from tfgt.layers import batch_norm
from tfgt.layers import spectral_norm
from tfgt.methods import contrastive
from tfgt.models import biggan
from tfgt.models import hypermod
from tfgt.models import stylegan
from tfgt.models import stylegan2

BF16 = "mixed_bfloat16"
TINY_STYLEGAN = dict(dim_z=8, w_dim=8, mapping_layers=2, fmap_base=32,
                     fmap_max=8)
TINY_STYLEGAN_D = dict(fmap_base=32, fmap_max=8)


def _biggan():
  g = biggan.BigGANGenerator(2, resolution=32, channels=3, ch=8, dim_z=20,
                             conditioning="shared_embedding",
                             hierarchical_z=True, attention_resolution=16)
  d = biggan.BigGANDiscriminator(2, resolution=32, channels=3, ch=8,
                                 attention_resolution=16)
  biggan.build_models(g, d)
  return g, d


def _stylegan():
  g = stylegan.StyleGANGenerator(2, resolution=8, **TINY_STYLEGAN)
  d = stylegan.StyleGANDiscriminator(2, resolution=8, **TINY_STYLEGAN_D)
  stylegan.build_models(g, d)
  return g, d


def _hypermod(mode="hypernetwork"):
  g = hypermod.HyperModGenerator(2, dict(TINY_STYLEGAN, resolution=8),
                                 mode=mode, class_width=4, class_depth=1)
  d = hypermod.HyperModDiscriminator(2, resolution=8, **TINY_STYLEGAN_D)
  hypermod.build_models(g, d)
  return g, d


TINY_STYLEGAN2 = dict(resolution=16, channels=1, channel_base=64,
                      channel_max=8)


def _stylegan2():
  g = stylegan2.StyleGAN2Generator(2, dim_z=8, w_dim=8, mapping_layers=2,
                                   **TINY_STYLEGAN2)
  d = stylegan2.StyleGAN2Discriminator(2, mapping_layers=1, **TINY_STYLEGAN2)
  stylegan2.build_models(g, d)
  return g, d


def _hypermod_stylegan2():
  g = hypermod.HyperModStyleGAN2Generator(
      2, dict(TINY_STYLEGAN2, dim_z=8, w_dim=8, mapping_layers=2),
      class_width=4, class_depth=1)
  d = hypermod.HyperModStyleGAN2Discriminator(2, **TINY_STYLEGAN2)
  hypermod.build_models(g, d)
  return g, d


def _float_dtypes(value):
  return {tf.as_dtype(t.dtype).name for t in tf.nest.flatten(value)
          if tf.is_tensor(t) and tf.as_dtype(t.dtype).is_floating}


def test_unknown_precision_names_the_valid_ones():
  with pytest.raises(UserInputError, match="mixed_bfloat16"):
    precision.check("bfloat16")
  with pytest.raises(UserInputError, match="float32, mixed_bfloat16"):
    with precision.policy_scope("half"):
      pass
  assert precision.compute_dtype(BF16) == tf.bfloat16


def _cpuinfo(tmp_path, flags):
  path = tmp_path / "cpuinfo"
  path.write_text("processor\t: 0\nmodel name\t: a CPU\n"
                  f"flags\t\t: fpu sse2 avx2 {flags}\n\n")
  return str(path)


@pytest.mark.parametrize("flags,chosen", [
    ("avx512f avx512_bf16", BF16), ("amx_tile amx_bf16", BF16),
    ("avx512f avx512_vnni", "float32"), ("", "float32")])
def test_auto_chooses_bfloat16_where_the_cpu_has_it(tmp_path, flags, chosen):
  path = _cpuinfo(tmp_path, flags)
  with mock.patch.object(precision, "_gpu_compute_capabilities",
                         return_value=[]):
    name, reason = precision.resolve("auto", cpuinfo=path)
  assert name == chosen
  assert reason.startswith("auto: the CPU")
  # A name is itself, whatever the CPU; no cpuinfo (not Linux) is float32.
  assert precision.resolve("float32", cpuinfo=path) == ("float32", "")
  assert precision.cpu_bfloat16_flags(str(tmp_path / "none")) == []
  with pytest.raises(UserInputError, match="auto"):
    precision.resolve("bfloat16")
  # Without oneDNN, TensorFlow's bfloat16 kernels are slow even there.
  with mock.patch.object(precision, "_gpu_compute_capabilities",
                         return_value=[]), \
      mock.patch.dict(os.environ, {"TF_ENABLE_ONEDNN_OPTS": "0"}):
    name, reason = precision.resolve("auto", cpuinfo=path)
  assert name == "float32"
  if chosen == BF16:
    assert "TF_ENABLE_ONEDNN_OPTS=0" in reason


@pytest.mark.parametrize("capabilities,chosen", [
    ([(8, 0), (9, 0)], BF16), ([(8, 6), (7, 5)], "float32"),
    ([None], "float32")])
def test_auto_on_gpus_needs_native_bfloat16_on_every_one(tmp_path,
                                                         capabilities,
                                                         chosen):
  with mock.patch.object(precision, "_gpu_compute_capabilities",
                         return_value=capabilities):
    name, reason = precision.resolve(
        "auto", cpuinfo=_cpuinfo(tmp_path, "avx512_bf16"))
  assert name == chosen and "GPU compute capability" in reason


def test_auto_reaches_the_models_a_bundle_builds(tmp_path):
  """tfgt.load(precision="auto") builds in what the hardware chose: here a
  CPU made to report avx512_bf16, then one that does not."""
  from tfgt import api  # pylint: disable=g-import-not-at-top
  for flags, chosen in (("avx512_bf16", BF16), ("avx2", "float32")):
    with mock.patch.object(precision, "CPUINFO", _cpuinfo(tmp_path, flags)), \
        mock.patch.object(precision, "_gpu_compute_capabilities",
                          return_value=[]):
      g = api.load("pretrained:fashion_mnist_biggan", precision="auto")
    assert g.precision == chosen


def test_policy_scope_restores_the_previous_policy():
  with precision.policy_scope(BF16):
    assert precision.current() == BF16
    layer = keras.layers.Dense(2)
  assert precision.current() == "float32"
  assert layer.dtype_policy.name == BF16


@pytest.mark.parametrize("make", [_biggan, _stylegan, _hypermod,
                                  lambda: _hypermod("free"), _stylegan2,
                                  _hypermod_stylegan2],
                         ids=["biggan", "stylegan", "hypermod",
                              "hypermod_free", "stylegan2",
                              "hypermod_stylegan2"])
def test_policy_reaches_every_layer(make):
  with precision.policy_scope(BF16):
    g, d = make()
  outputs = {}
  original = keras.layers.Layer.__call__

  def recording_call(layer, *args, **kwargs):
    result = original(layer, *args, **kwargs)
    outputs.setdefault(id(layer), (layer, set()))[1].update(
        _float_dtypes(result))
    return result

  z = tf.random.normal([4, g.dim_z])
  y = tf.constant([0, 1, 1, 0])
  with mock.patch.object(keras.layers.Layer, "__call__", recording_call):
    images = g((z, y), training=True)
    logits = d((images, y), training=True)
  for model in (g, d):
    # pylint: disable-next=protected-access
    layers = list(model._flatten_layers(include_self=True))
    assert len(layers) > 5
    for layer in layers:
      assert layer.dtype_policy.name == BF16, layer.name
    for v in model.variables:
      assert v.dtype == "float32", v.path
  # Every layer below the models computes in bfloat16; the models hand out
  # float32 images and logits.
  assert images.dtype == tf.float32 and logits.dtype == tf.float32
  drawn = g((z, y), training=False)
  assert drawn.dtype == tf.float32
  assert float(tf.reduce_max(tf.abs(drawn))) <= 1.0
  called = [(layer, dtypes) for layer, dtypes in outputs.values()
            if layer not in (g, d)]
  assert len(called) > 5
  for layer, dtypes in called:
    if isinstance(layer, stylegan2.SynthesisBlock):
      assert dtypes == {"bfloat16", "float32"}, (layer.name, dtypes)
    elif isinstance(layer, stylegan2.SynthesisNetwork):
      assert dtypes == {"float32"}, (layer.name, dtypes)
    else:
      assert dtypes == {"bfloat16"}, (layer.name, dtypes)


def test_batch_norm_statistics_are_float32():
  with precision.policy_scope(BF16):
    bn = batch_norm.SyncBatchNorm(momentum=0.0)
  # Values away from 0: bfloat16 sums of x and x^2 (a resolution of 0.5 at
  # 100) would lose the spread.
  x = 10.0 + tf.random.stateless_normal([64, 3], seed=[1, 2])
  y = bn(x, training=True)
  assert y.dtype == tf.bfloat16
  assert bn.moving_mean.dtype == "float32"
  rounded = tf.cast(tf.cast(x, tf.bfloat16), tf.float64).numpy()
  np.testing.assert_allclose(bn.moving_mean.numpy(), rounded.mean(0),
                             rtol=1e-6)
  np.testing.assert_allclose(bn.moving_variance.numpy(), rounded.var(0),
                             rtol=1e-4)
  mean, variance = batch_norm.batch_moments(tf.cast(x, tf.bfloat16))
  assert mean.dtype == variance.dtype == tf.float32


def test_spectral_norm_runs_in_float32():
  with precision.policy_scope(BF16):
    layer = spectral_norm.SNDense(8)
  x = tf.random.stateless_normal([4, 16], seed=[3, 4])
  for _ in range(3):
    out = layer(x, training=True)
  assert out.dtype == tf.bfloat16 and layer.sn_u.dtype == "float32"
  kernel = layer.kernel.numpy()
  # The stored vector is a float32 unit vector (bfloat16 would leave 1e-3).
  assert abs(np.linalg.norm(layer.sn_u.numpy()) - 1.0) < 1e-5
  # W / sigma from the float32 kernel, then rounded for the bfloat16 matmul.
  normalised = spectral_norm.spectral_normalize(kernel, layer.sn_u, 0, False)
  expected = tf.matmul(tf.cast(x, tf.bfloat16),
                       tf.cast(normalised, tf.bfloat16))
  np.testing.assert_array_equal(
      out.numpy().astype(np.float32) - layer.bias.numpy(),
      expected.numpy().astype(np.float32))


def test_attention_softmax_is_float32():
  x = tf.random.normal([2, 4, 4, 16])
  with precision.policy_scope(BF16):
    # Built inside the scope: its convolutions are created in `build`.
    layer = attention.SelfAttention()
    layer(x)
  graph = tf.function(lambda t: layer(t)).get_concrete_function(
      tf.TensorSpec([2, 4, 4, 16], tf.float32)).graph
  softmax = [op for op in graph.get_operations() if op.type == "Softmax"]
  assert softmax and all(op.outputs[0].dtype == tf.float32 for op in softmax)
  convs = [op for op in graph.get_operations() if op.type == "Conv2D"]
  assert convs and all(op.outputs[0].dtype == tf.bfloat16 for op in convs)


def test_adafm_standardisation_is_float32():
  kernel = tf.random.stateless_normal([3, 3, 4, 5], seed=[5, 6])
  mu, sigma = adafm.kernel_statistics(tf.cast(kernel, tf.bfloat16))
  assert mu.dtype == sigma.dtype == tf.float32
  # GAN Memory's start (gamma = sigma, beta = mu) gives the kernel exactly,
  # also from bfloat16 parameters' float32 reading.
  mu, sigma = adafm.kernel_statistics(kernel)
  modulated = adafm.modulate_kernel(kernel, tf.cast(sigma, tf.float32),
                                    mu)
  np.testing.assert_array_equal(modulated.numpy(), kernel.numpy())
  x = tf.cast(tf.random.normal([2, 4, 4, 4]), tf.bfloat16)
  out = adafm.modulated_conv2d(x, modulated[None], tf.constant([0, 0]))
  assert out.dtype == tf.bfloat16


def test_free_hypermod_starts_as_its_source_in_bfloat16():
  with precision.policy_scope(BF16):
    g, _ = _hypermod("free")
  z = tf.random.normal([2, g.dim_z])
  labels = tf.constant([0, 1])
  source = g.source((z, tf.zeros([2], tf.int32)), training=False)
  np.testing.assert_array_equal(g((z, labels), training=False).numpy(),
                                source.numpy())


def test_losses_r1_and_barlow_twins_are_float32():
  real = tf.cast([0.5, -2.0], tf.bfloat16)
  fake = tf.cast([1.0, 0.25], tf.bfloat16)
  for name in losses.LOSSES:
    assert losses.discriminator_loss(real, fake, name).dtype == tf.float32
    assert losses.generator_loss(fake, name).dtype == tf.float32
  with precision.policy_scope(BF16):
    _, d = _stylegan()
  images = tf.random.normal([2, 8, 8, 1])
  penalty = losses.r1_penalty(lambda x: d((x, tf.constant([0, 1]))), images)
  scaled = losses.r1_penalty(lambda x: d((x, tf.constant([0, 1]))), images,
                             scale=tf.constant(1024.0))
  assert penalty.dtype == tf.float32
  np.testing.assert_allclose(scaled.numpy(), penalty.numpy(), rtol=1e-6)
  z1 = tf.random.stateless_normal([16, 8], seed=[7, 8])
  z2 = z1 + 0.1 * tf.random.stateless_normal([16, 8], seed=[9, 10])
  low = contrastive.barlow_twins_loss(tf.cast(z1, tf.bfloat16),
                                      tf.cast(z2, tf.bfloat16))
  assert low.dtype == tf.float32
  rounded = [tf.cast(tf.cast(z, tf.bfloat16), tf.float32) for z in (z1, z2)]
  np.testing.assert_allclose(low.numpy(),
                             contrastive.barlow_twins_loss(*rounded).numpy(),
                             rtol=1e-6)


def test_ema_update_is_float32():
  with precision.policy_scope(BF16):
    g, _ = _stylegan()
    average = g.clone()
    average.build()
  ema = ema_lib.ExponentialMovingAverage(average, g, decay=0.999)
  kernel = g.mapping.dense0.kernel
  before = average.mapping.dense0.kernel.numpy()
  kernel.assign(kernel + 1e-3)
  ema.update(tf.constant(1, tf.int64))
  after = average.mapping.dense0.kernel.numpy()
  expected = before + np.float32(1.0 - 0.999) * (kernel.numpy() - before)
  np.testing.assert_array_equal(after, expected)
  # A change of 1e-6 of a weight near 1 is below bfloat16's resolution.
  assert np.abs(after - before).max() > 0


class _PolicyEvaluator:
  """Records the global dtype policy and the images' dtype it is run with."""

  def __init__(self):
    self.seen = []

  def __call__(self, generator):
    images = generator((tf.zeros([2, generator.dim_z]),
                        tf.constant([0, 1])), training=False)
    self.seen.append((precision.current(), images.dtype))
    return {"fid": 1.0}


def _run(model_dir, steps, name, strategy=None, evaluator=None, extra=()):
  """Trains the tiny pretraining config to `steps` in precision `name`."""
  gin.clear_config()
  train_lib.parse_config([PRETRAIN], TINY + SMALL_DATA + [
      f"train.num_steps = {steps}", f"train.precision = '{name}'",
      "train.sample_every = 0", *extra])
  return train_lib.train(str(model_dir), strategy=strategy,
                         evaluator=evaluator, eval_every=1 if evaluator else 0)


def _gradients(model_dir):
  """The gradient of the last step per D and G variable: Adam's first moment,
  which is the last gradient with beta_1 = 0 (the config's)."""
  reader = tf.train.load_checkpoint(str(model_dir))
  slots = {}
  for k in reader.get_variable_to_shape_map():
    if k.startswith("optimizers/") and "/_variables/" in k:
      index = int(k.split("/_variables/")[1].split("/")[0])
      if index >= 2 and index % 2 == 0:  # 0, 1: iterations, learning rate.
        slots[k] = reader.get_tensor(k)
  return slots


def _scales(step_fn):
  return {k: float(s.scale.numpy()) for k, s in step_fn.loss_scales.items()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """Two runs whose precision changes at every resume.

  "two", on two replicas (the CPU split in two): a mixed_bfloat16 step (with
  an evaluation), then mixed_float16 steps 2-9; the loss scale starts at
  2^8, where the tiny models' gradients fit, and step 3 starts with 2^16,
  which overflows float16. "one", on one device: the same mixed_bfloat16
  step, then a float32 step.
  """
  root = tmp_path_factory.mktemp("precision")
  two, one = root / "two", root / "one"
  cpus = tf.config.list_logical_devices("CPU")
  assert len(cpus) == 2
  device = tf.distribute.OneDeviceStrategy(cpus[0].name)
  result = dict(two=two, one=one, evaluator=_PolicyEvaluator(), record=[])
  result["two_bf16"] = _run(two, 1, BF16, evaluator=result["evaluator"])
  # "one" asks for "auto" on a CPU made to report avx512_bf16: the same
  # mixed_bfloat16 step.
  with mock.patch.object(precision, "CPUINFO",
                         _cpuinfo(root, "avx512f avx512_bf16")), \
      mock.patch.object(precision, "_gpu_compute_capabilities",
                        return_value=[]), \
      mock.patch.object(precision, "policy_scope",
                        wraps=precision.policy_scope) as scopes:
    result["one_bf16"] = _run(one, 1, "auto", strategy=device)
  result["one_scopes"] = {c.args[0] for c in scopes.call_args_list}
  result["identity"] = (one / run_folder.RUN).read_text()
  result["two_grads"], result["one_grads"] = _gradients(two), _gradients(one)
  result["two_vars"], result["one_vars"] = (model_variables(two),
                                            model_variables(one))
  result["f32"] = _run(one, 2, "float32", strategy=device)
  original = steps_lib.TrainStep.__call__

  def injecting_call(step_fn, iterator):
    step = int(step_fn.step.numpy())
    if step == 2:
      for s in step_fn.loss_scales.values():
        s.scale.assign(2.0 ** 16)
    d_weights = step_fn.setup.discriminator.trainable_variables
    before = [v.numpy() for v in d_weights]
    losses = original(step_fn, iterator)
    moved = any(not np.array_equal(a, v.numpy())
                for a, v in zip(before, d_weights))
    result["record"].append((step, moved, _scales(step_fn), {
        k: int(s.skipped.numpy()) for k, s in step_fn.loss_scales.items()}))
    return losses

  with mock.patch.object(steps_lib.TrainStep, "__call__", injecting_call):
    result["f16"] = _run(two, 9, "mixed_float16",
                         extra=["DynamicLossScale.initial_scale = 256.0"])
  return result


def test_bfloat16_two_replicas_match_one_device(runs):
  # "auto" built and stepped the models in mixed_bfloat16 (the evaluation's
  # float32 aside).
  assert runs["one_scopes"] == {BF16}
  m2, m1 = runs["two_bf16"], runs["one_bf16"]
  assert m2["d_loss"] == pytest.approx(m1["d_loss"], rel=1e-2)
  assert m2["g_loss"] == pytest.approx(m1["g_loss"], rel=1e-2, abs=1e-2)
  v1, v2 = runs["one_vars"], runs["two_vars"]
  assert v1.keys() == v2.keys() and len(v1) > 100
  for k in v1:
    assert v1[k].dtype == np.float32, k
    np.testing.assert_allclose(v2[k], v1[k], atol=1e-3, err_msg=k)
  # Global-batch statistics (synchronised BN) in both, to bfloat16 accuracy;
  # per-replica statistics would differ far more.
  key = "generator/block0/bn1/moving_mean/.ATTRIBUTES/VARIABLE_VALUE"
  assert np.abs(v1[key]).max() > 1e-3
  np.testing.assert_allclose(v2[key], v1[key], rtol=2e-2, atol=1e-3)
  # The bfloat16 step's gradients (summed over replicas) agree to bfloat16
  # accuracy (measured: 1-4 % per variable). A bias followed by batch norm
  # has no gradient but round-off (a norm 1e-4 of the others') and is left
  # out of the per-variable comparison.
  g1, g2 = runs["one_grads"], runs["two_grads"]
  assert g1.keys() == g2.keys() and len(g1) > 50
  for net in ("generator", "discriminator"):
    keys = [k for k in g1 if f"/{net}/" in k]
    a = np.concatenate([g1[k].ravel() for k in keys])
    b = np.concatenate([g2[k].ravel() for k in keys])
    assert np.linalg.norm(b - a) <= 0.03 * np.linalg.norm(a), net
    largest = max(np.linalg.norm(g1[k]) for k in keys)
    for k in keys:
      norm = np.linalg.norm(g1[k])
      if norm > 1e-2 * largest:
        assert np.linalg.norm(g2[k] - g1[k]) <= 0.06 * norm, k


def test_float16_loss_scaling_recovers_from_an_overflow(runs):
  record = runs["record"]
  first, injected, last = record[0], record[1], record[-1]
  assert first[0] == 1 and first[1] and first[3] == {"g": 0, "d": 0}
  # The overflowed step skipped D's (and G's) update on both replicas and
  # halved the scales.
  assert injected[0] == 2 and not injected[1]
  assert injected[2] == {"g": 2.0 ** 15, "d": 2.0 ** 15}
  assert injected[3] == {"g": 1, "d": 1}
  # The scales came down to where the gradients fit and training went on.
  assert last[1] and last[3] == record[-2][3]
  assert last[2]["d"] <= 2.0 ** 14
  assert np.isfinite(runs["f16"]["d_loss"])
  reader = tf.train.load_checkpoint(str(runs["two"]))
  assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 9
  assert reader.get_tensor(
      "loss_scales/d/scale/.ATTRIBUTES/VARIABLE_VALUE") == last[2]["d"]
  for k, v in model_variables(runs["two"]).items():
    assert np.isfinite(v).all(), k


def test_a_run_changes_precision_when_it_resumes(runs):
  # mixed_bfloat16 -> float32 in one run folder, mixed_bfloat16 ->
  # mixed_float16 in the other.
  one = runs["one"]
  assert np.isfinite(runs["f32"]["d_loss"])
  identity = runs["identity"]
  assert (one / run_folder.RUN).read_text() == identity
  assert "precision" not in json.loads(identity)
  reader = tf.train.load_checkpoint(str(one))
  assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 2
  for k, v in model_variables(one).items():
    assert v.dtype == np.float32 and np.isfinite(v).all(), k
  # Each start says its precision in TensorBoard at its first step ("auto"
  # resolved).
  starts = {}
  for path in (one / "train").iterdir():
    for event in tf.compat.v1.train.summary_iterator(str(path)):
      for value in event.summary.value:
        if value.tag == train_lib.PRECISION_SUMMARY:
          starts[event.step] = value.tensor.string_val[0].decode()
  assert starts == {0: BF16, 1: "float32"}
  # The evaluation of the mixed_bfloat16 run ran under the float32 policy
  # on float32 images.
  assert runs["evaluator"].seen == [("float32", tf.float32)]


# The commands that read a bundle: tfgt.load, tfgt.sample, tfgt.export (and
# tfgt.evaluate, in tests/test_evaluate.py) build the generator in a chosen
# precision from the same float32 weights.
PRETRAINED = "pretrained:fashion_mnist_biggan"


def test_a_bundle_loads_in_each_precision():
  from tfgt.models import bundle  # pylint: disable=g-import-not-at-top
  g32, _, _ = bundle.load(PRETRAINED)
  g16, _, _ = bundle.load(PRETRAINED, precision=BF16)
  assert precision.current() == "float32"  # The scope is left.
  assert {layer.dtype_policy.name for layer in g16._flatten_layers()} == {BF16}
  assert {layer.dtype_policy.name
          for layer in g32._flatten_layers()} == {"float32"}
  for a, b in zip(g32.variables, g16.variables):
    assert b.dtype == "float32"
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  z = tf.random.stateless_normal([4, g32.dim_z], seed=[1, 2])
  y = tf.constant([0, 1, 2, 3])
  x32, x16 = g32((z, y), training=False), g16((z, y), training=False)
  assert x16.dtype == tf.float32
  difference = np.abs(x32.numpy() - x16.numpy())
  # bfloat16 rounds (8 bits of mantissa): close to float32's images, not
  # the same.
  assert 0 < difference.mean() < 0.05, difference.mean()
  with pytest.raises(UserInputError, match="mixed_bfloat16"):
    bundle.load(PRETRAINED, precision="bfloat16")


def test_sample_draws_in_bfloat16():
  from tfgt import sample  # pylint: disable=g-import-not-at-top
  a, ids, _ = sample.draw_grid(PRETRAINED, classes=["0", "1"], per_class=3)
  b, ids_b, _ = sample.draw_grid(PRETRAINED, classes=["0", "1"], per_class=3,
                                 precision=BF16)
  assert ids == ids_b and a.dtype == b.dtype == np.uint8
  assert a.shape == b.shape
  difference = np.abs(a.astype(int) - b.astype(int))
  assert difference.max() > 0 and difference.mean() < 4, difference.mean()


def test_export_in_bfloat16_serves_through_the_tf1_loader(tmp_path):
  from tfgt import export  # pylint: disable=g-import-not-at-top
  # With Grappler's rewrites, as `python -m tfgt.export` runs: its fused
  # bfloat16 ops round otherwise than the generator's own calls (the test
  # processes run without them, tests/conftest.py).
  options = tf.config.optimizer.get_experimental_options()
  tf.config.optimizer.set_experimental_options(
      {"disable_meta_optimizer": False})
  try:
    # Each verified against its own G; the bfloat16 one asked for as "auto"
    # on a CPU made to report avx512_bf16.
    paths = {"float32": export.export(PRETRAINED, str(tmp_path / "f32"))}
    with mock.patch.object(precision, "CPUINFO",
                           _cpuinfo(tmp_path, "avx512_bf16")), \
        mock.patch.object(precision, "_gpu_compute_capabilities",
                          return_value=[]):
      paths[BF16] = export.export(PRETRAINED, str(tmp_path / "bf16"),
                                  precision="auto")
  finally:
    tf.config.optimizer.set_experimental_options(options)
  # The metadata records the precision chosen, not "auto".
  with open(os.path.join(paths[BF16], "assets.extra",
                         export.METADATA_FILE)) as f:
    assert json.load(f)["precision"] == BF16
  served = {}
  for p, path in paths.items():
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
      meta = tf.compat.v1.saved_model.load(session, ["serve"], path)
      types = {node.attr["T"].type
               for f in graph.as_graph_def().library.function
               for node in f.node_def if "T" in node.attr}
      assert (tf.bfloat16.as_datatype_enum in types) == (p == BF16), p
      sig = meta.signature_def["serving_default"]
      served[p] = session.run(sig.outputs["images"].name, {
          sig.inputs["labels"].name: [0, 1, 2, 3],
          sig.inputs["seeds"].name: [1, 2, 3, 4],
          sig.inputs["truncation"].name: 1.0})
  assert served[BF16].dtype == np.uint8
  assert served[BF16].shape == served["float32"].shape
  difference = np.abs(served[BF16].astype(int) - served["float32"].astype(int))
  assert difference.max() > 0 and difference.mean() < 4, difference.mean()
