"""The model contract and the architecture registry that bundles name."""

import json
import os
import subprocess
import sys

import gin
import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import REPO
from tests.conftest import events
from tfgt import evaluate as evaluate_lib
from tfgt import export as export_lib
from tfgt import objectives
from tfgt import run_folder
from tfgt import sample as sample_lib
from tfgt import train as train_lib
from tfgt.data import pipeline
from tfgt.errors import UserInputError
from tfgt.methods import base
from tfgt.models import architectures
from tfgt.models import biggan
from tfgt.models import bundle
from tfgt.models import inputs as inputs_lib


class ToyGenerator(keras.Model):
  """The smallest generator of the contract: z plus a class row, one dense."""

  architecture = "toy"

  def __init__(self, num_classes, resolution=8, channels=1, dim_z=4,
               name="generator"):
    super().__init__(name=name)
    self.ctor_kwargs = dict(resolution=resolution, channels=channels,
                            dim_z=dim_z)
    self.num_classes, self.resolution = num_classes, resolution
    self.channels, self.dim_z = channels, dim_z
    self.table = self.add_weight(shape=(num_classes, dim_z), name="table",
                                 initializer="random_normal")
    self.dense = keras.layers.Dense(resolution * resolution * channels,
                                    name="dense")

  def call(self, inputs, training=None):
    z, y = inputs
    h = z + tf.matmul(inputs_lib.class_weights(y, self.num_classes), self.table)
    return tf.reshape(tf.tanh(self.dense(h)),
                      [-1, self.resolution, self.resolution, self.channels])

  def clone(self, num_classes=None, name=None):
    return ToyGenerator(num_classes or self.num_classes,
                        name=name or self.name, **self.ctor_kwargs)


class ToyDiscriminator(keras.Model):
  architecture = "toy"

  def __init__(self, num_classes, resolution=8, channels=1,
               name="discriminator"):
    super().__init__(name=name)
    self.ctor_kwargs = dict(resolution=resolution, channels=channels)
    self.num_classes, self.resolution = num_classes, resolution
    self.channels = channels
    self.hidden = keras.layers.Dense(6, name="hidden")
    self.table = self.add_weight(shape=(num_classes, 6), name="table",
                                 initializer="random_normal")

  def features(self, images, training=None):
    return tf.nn.relu(self.hidden(tf.reshape(images, [tf.shape(images)[0],
                                                      -1])))

  def call(self, inputs, training=None):
    images, y = inputs
    h = self.features(images)
    weights = inputs_lib.class_weights(y, self.num_classes)
    return tf.reduce_sum(h * tf.matmul(weights, self.table), axis=-1)

  def clone(self, num_classes=None, name=None):
    return ToyDiscriminator(num_classes or self.num_classes,
                            name=name or self.name, **self.ctor_kwargs)


def _build_toy(generator, discriminator=None):
  images = generator((tf.zeros([1, generator.dim_z]), tf.zeros([1], tf.int32)))
  if discriminator is not None:
    discriminator((images, tf.zeros([1], tf.int32)))


@pytest.fixture
def toy_architecture():
  arch = architectures.register(architectures.Architecture(
      name="toy", generator=ToyGenerator, discriminator=ToyDiscriminator,
      build=_build_toy))
  yield arch
  architectures._REGISTRY.pop("toy")  # pylint: disable=protected-access


def _write_bundle(directory, generator, discriminator, names):
  writer = bundle.BundleWriter(str(directory), generator, discriminator,
                               names, "test")
  writer.save(1)


def test_a_registered_architecture_round_trips_through_a_bundle(
    toy_architecture, tmp_path):
  g, d = ToyGenerator(3), ToyDiscriminator(3)
  toy_architecture.build(g, d)
  assert isinstance(g, architectures.Generator)
  assert isinstance(d, architectures.Discriminator)
  _write_bundle(tmp_path, g, d, ["a", "b", "c"])
  spec = json.loads((tmp_path / bundle.SPEC_FILE).read_text())
  assert spec["architecture"] == "toy"
  loaded, loaded_d, _ = bundle.load(str(tmp_path), with_discriminator=True)
  assert isinstance(loaded, ToyGenerator)
  assert isinstance(loaded_d, ToyDiscriminator)
  z, y = tf.random.normal([4, 4]), tf.constant([0, 1, 2, 1])
  np.testing.assert_array_equal(loaded((z, y)), g((z, y)))
  images = g((z, y))
  np.testing.assert_array_equal(loaded_d((images, y)), d((images, y)))


def test_bundles_without_architecture_are_biggan():
  spec = bundle.read_spec(bundle.resolve_directory(
      "pretrained:fashion_mnist_biggan"))
  assert "architecture" not in spec  # Written before the field existed.
  generator, _, _ = bundle.load("pretrained:fashion_mnist_biggan")
  assert isinstance(generator, biggan.BigGANGenerator)
  assert architectures.get(None).generator is biggan.BigGANGenerator


def test_unknown_architecture_names_the_known_ones(toy_architecture,
                                                   tmp_path):
  g, d = ToyGenerator(2), ToyDiscriminator(2)
  toy_architecture.build(g, d)
  _write_bundle(tmp_path, g, d, ["a", "b"])
  spec = json.loads((tmp_path / bundle.SPEC_FILE).read_text())
  spec["architecture"] = "stylegan9"
  (tmp_path / bundle.SPEC_FILE).write_text(json.dumps(spec))
  with pytest.raises(UserInputError, match="'stylegan9'.*biggan.*toy"):
    bundle.load(str(tmp_path))


def test_built_in_architectures_are_found_by_their_registration_alone():
  # No list names them: every module of tfgt/models that registers an
  # architecture is found, in a process that imported none of them.
  registering = sorted(
      name[:-len(".py")] for name in os.listdir(os.path.dirname(
          architectures.__file__))
      if name.endswith(".py") and "architectures.register(" in open(
          os.path.join(os.path.dirname(architectures.__file__), name),
          encoding="utf-8").read() and name != "architectures.py")
  assert registering == ["biggan", "hypermod", "stylegan", "stylegan2"]
  code = ("import sys\n"
          "from tfgt.models import architectures\n"
          "assert not [m for m in sys.modules if m in ("
          + ", ".join(f"'tfgt.models.{m}'" for m in registering) + ")]\n"
          "architectures.get('hypermod')\n"
          "print(' '.join(architectures.names()))\n")
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True,
                       capture_output=True, text=True).stdout
  # hypermod.py registers the hyper-modulated StyleGAN and StyleGAN2.
  assert out.split() == ["biggan", "hypermod", "hypermod_stylegan2",
                         "stylegan", "stylegan2"]


def test_checkpoint_that_does_not_fit_its_spec_is_a_user_error(tmp_path):
  g = biggan.BigGANGenerator(2, ch=4, dim_z=8)
  d = biggan.BigGANDiscriminator(2, ch=4)
  biggan.build_models(g, d)
  _write_bundle(tmp_path, g, d, ["a", "b"])
  spec = json.loads((tmp_path / bundle.SPEC_FILE).read_text())
  assert spec["architecture"] == "biggan"
  spec["generator"]["ch"] = 8
  (tmp_path / bundle.SPEC_FILE).write_text(json.dumps(spec))
  with pytest.raises(UserInputError, match="does not fit the biggan models"):
    bundle.load(str(tmp_path))


def test_ema_copies_power_iteration_vectors_only():
  g = biggan.BigGANGenerator(2, ch=4, dim_z=8)
  biggan.build_models(g)
  copied = [v.path for v in g.variables if architectures.ema_copies(g, v)]
  assert copied and all(p.endswith("sn_u") for p in copied)
  assert len(copied) == sum(v.path.endswith("sn_u") for v in g.variables)
  # A model without the hook averages everything.
  toy = ToyGenerator(2)
  _build_toy(toy)
  assert not any(architectures.ema_copies(toy, v) for v in toy.variables)


def test_resuming_into_another_architecture_is_refused(tmp_path):
  os.makedirs(tmp_path / "model")
  spec = dict(architecture="toy", class_names=["a"], generator={},
              discriminator={}, method="test")
  (tmp_path / "model" / bundle.SPEC_FILE).write_text(json.dumps(spec))
  with pytest.raises(UserInputError, match="holds a toy model.*a biggan"):
    run_folder.RunFolder(str(tmp_path)).check_model(
        dict(spec, architecture="biggan"))


# ---------------------------------------------------------------------------
# A method the library does not know, on the toy architecture: an objective
# that reads the batch, two variable groups at different learning rates, a
# first stage without a discriminator and a second stage that starts from it.

TOY_LR = 1e-2
TABLE_SCALE = 0.01


class MatchAndFool(objectives.Objective):
  """G: mean squared distance of G(z_g, labels) to the batch's real images
  (a loss that needs the real batch), plus the adversarial loss with a D."""

  def __init__(self):
    self.adversarial = objectives.Adversarial()

  def g_loss(self, batch, generator, discriminator):
    fake = generator((batch.z_g, batch.labels), training=True)
    match = batch.mean(tf.reduce_mean(tf.square(fake - batch.images),
                                      axis=[1, 2, 3]))
    if discriminator is None:
      return match, {"match": match}
    fool, _ = self.adversarial.g_loss(batch, generator, discriminator)
    return match + fool, {"match": match, "fool": fool}

  def d_loss(self, batch, generator, discriminator):
    return self.adversarial.d_loss(batch, generator, discriminator)


@gin.configurable
class ToyMethod(base.Method):
  """Two groups: the dense layer at the base rate, the class table at 1/100.

  Args:
    with_discriminator: False trains G alone against the real batch.
    init_from: a finished run whose EMA generator starts this one.
  """

  name = "toy_method"

  def __init__(self, with_discriminator=True, init_from=None):
    self.with_discriminator = with_discriminator
    self.init_from = init_from

  def source_info(self):
    return base.SourceInfo([], 32, 1)

  def build(self, class_names):
    g = ToyGenerator(len(class_names), resolution=32)
    d = (ToyDiscriminator(len(class_names), resolution=32)
         if self.with_discriminator else None)
    _build_toy(g, d)
    if self.init_from:
      run_folder.restore_models(self.init_from, class_names, ema_generator=g)
    groups = [base.VariableGroup("generator", g.dense.trainable_variables),
              base.VariableGroup("class_table", [g.table],
                                 learning_rate_scale=TABLE_SCALE)]
    return base.GANSetup(g, d, groups,
                         [] if d is None else d.trainable_variables,
                         list(class_names), objective=MatchAndFool())


def _train_toy(model_dir, steps, *params):
  gin.clear_config()
  train_lib.parse_config(
      [os.path.join("gin_configs", "fashion_mnist", "base.gin")],
      ["train.method = @ToyMethod()", "load_training_data.classes = [0, 1]",
       "load_training_data.images_per_class = 8", "train.batch_size = 4",
       f"train.g_lr = {TOY_LR}", f"train.d_lr = {TOY_LR}",
       "train.log_every = 1", "train.checkpoint_every = 2",
       "train.sample_every = 2", "train.samples_per_class = 2",
       f"train.num_steps = {steps}"] + list(params))
  return train_lib.train(str(model_dir), strategy=tf.distribute.get_strategy())


def _toy_checkpoint(model_dir):
  reader = tf.train.load_checkpoint(str(model_dir))
  return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
          if not k.startswith(("_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter"))}


def test_a_new_method_trains_in_stages_resumes_and_ships(toy_architecture,
                                                        tmp_path):
  del toy_architecture  # Registered for the bundles' "toy" name.
  stage1 = tmp_path / "stage1"
  # The D-less stage: one step, then resumed to three, against a straight run.
  _train_toy(stage1, 1, "ToyMethod.with_discriminator = False")
  first = _toy_checkpoint(stage1)
  _train_toy(stage1, 3, "ToyMethod.with_discriminator = False")
  straight = tmp_path / "straight"
  _train_toy(straight, 3, "ToyMethod.with_discriminator = False")
  resumed, whole = _toy_checkpoint(stage1), _toy_checkpoint(straight)
  assert resumed.keys() == whole.keys()
  for k in whole:
    np.testing.assert_array_equal(resumed[k], whole[k], err_msg=k)

  # No discriminator anywhere; each group has its optimizer under its name;
  # the class table moved at 1/100 of the dense layer's rate (Adam's first
  # steps move each value by about the learning rate).
  assert not any("discriminator" in k for k in whole)
  assert any(k.startswith("optimizers/class_table/") for k in whole)
  assert any(k.startswith("optimizers/generator/") for k in whole)
  table_key = next(k for k in whole if k.startswith("generator/table/"))
  kernel_key = next(k for k in whole
                    if k.startswith("generator/dense/_kernel/"))
  table_move = np.abs(whole[table_key] - first[table_key]).max()
  kernel_move = np.abs(whole[kernel_key] - first[kernel_key]).max()
  assert 0 < table_move <= 2 * 2 * TOY_LR * TABLE_SCALE
  assert kernel_move >= 0.5 * TOY_LR
  spec = json.loads((stage1 / "model" / bundle.SPEC_FILE).read_text())
  assert spec["architecture"] == "toy" and spec["discriminator"] is None
  tags = events(str(stage1))
  assert "train/d_loss" not in tags and "train/d_lr" not in tags
  assert tags["train/g_loss"] == [1, 2, 3]  # Step 1, then the resume.

  # The second stage starts from the first one's EMA generator, with a D.
  stage2 = tmp_path / "stage2"
  _train_toy(stage2, 2, f"ToyMethod.init_from = '{stage1}'")
  tags = events(str(stage2))
  assert tags["train/d_loss"] == [1, 2]
  assert tags["train/g/match"] == [1, 2] and tags["train/g/fool"] == [1, 2]
  generator, discriminator, _ = bundle.load(str(stage2),
                                            with_discriminator=True)
  assert isinstance(generator, ToyGenerator)
  assert isinstance(discriminator, ToyDiscriminator)
  # The D-less bundle cannot serve where a discriminator is needed.
  with pytest.raises(UserInputError, match="has no discriminator"):
    bundle.load(str(stage1), with_discriminator=True)

  # Sampling, evaluation and export of the toy bundle.
  picture, ids, _ = sample_lib.draw_grid(str(stage2), per_class=3)
  assert ids == [0, 1]
  assert picture.shape[-1] == 1 and picture.ndim == 3
  result, path = evaluate_lib.run(
      str(stage2), checkpoint="latest",
      gin_params=["Evaluator.extractor = @FashionMNISTClassifier()",
                  "Evaluator.metrics = ['fid']",
                  "Evaluator.num_samples = 40"])
  assert np.isfinite(result.metrics["fid"]) and os.path.exists(path)
  target = export_lib.export(str(stage2), str(tmp_path / "export"))
  with tf.compat.v1.Session(graph=tf.Graph()) as session:
    meta = tf.compat.v1.saved_model.load(session, ["serve"], target)
    signature = meta.signature_def["serving_default"]
    images = session.run(signature.outputs["images"].name, {
        signature.inputs["labels"].name: [1, 0],
        signature.inputs["seeds"].name: [3, 4],
        signature.inputs["truncation"].name: 1.0})
  assert images.shape == (2, 32, 32, 1) and images.dtype == np.uint8


class MeanSeekingGenerator(ToyGenerator):
  """Truncates inside the model: images move towards those of z = 0."""

  no_truncation = 1.0
  truncation_meaning = "z scaled by t"

  def truncated_call(self, inputs, truncation):
    z, y = inputs
    return self((z * tf.reshape(truncation, [-1, 1]), y), training=False)


def test_export_hands_truncation_to_an_architecture_that_owns_it(tmp_path):
  g = MeanSeekingGenerator(2, resolution=8)
  _build_toy(g)
  functions = export_lib.make_serving_functions(
      g, tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
          tf.constant([0, 1], tf.int64), tf.constant(["a", "b"])), ""))
  from_z = functions["from_z"][0]
  z = tf.constant([[3.0, -2.0, 0.5, 1.0]] * 2)
  labels = tf.constant([0, 1])
  images = from_z(labels, z, tf.constant(0.5))["images"]
  # z is not clipped to [-0.5, 0.5]: the model scales it by 0.5.
  expected = g((0.5 * z, labels), training=False)
  np.testing.assert_array_equal(images, pipeline.to_uint8(expected))
  assert not np.array_equal(
      images, pipeline.to_uint8(g((tf.clip_by_value(z, -0.5, 0.5), labels))))
  # Seeds give untruncated N(0, 1) latents to the model.
  seeds = tf.constant([1, 2], tf.int64)
  drawn = functions["serving_default"][0](labels, seeds, tf.constant(0.5))
  z_seeds = export_lib.latents_from_seeds(seeds, 4, tf.fill([2], np.inf))
  np.testing.assert_array_equal(
      drawn["images"],
      pipeline.to_uint8(g((0.5 * z_seeds, labels), training=False)))
  assert architectures.truncates_z(ToyGenerator(2))
  assert not architectures.truncates_z(g)


def test_divergence_stops_before_any_broken_weight_is_saved(toy_architecture,
                                                            tmp_path):
  del toy_architecture
  model_dir = tmp_path / "run"
  _train_toy(model_dir, 2)
  with pytest.raises(UserInputError,
                     match=r"diverged at step [3-8]: .*checkpoint \(step 2\) "
                           r"is kept.*train.g_lr"):
    _train_toy(model_dir, 8, "train.g_lr = 1e30", "train.d_lr = 1e30")
  assert tf.train.latest_checkpoint(str(model_dir)).endswith("ckpt-2")
  assert tf.train.latest_checkpoint(
      str(model_dir / "model")).endswith("ckpt-2")
  for name, value in _toy_checkpoint(model_dir).items():
    assert np.all(np.isfinite(value)), name


def test_an_option_added_later_resumes_at_its_default(tmp_path):
  # A run folder written before BigGAN had bn_epsilon resumes under a config
  # that builds the default epsilon, and is refused under another epsilon.
  g = dict(num_classes=2, resolution=32, channels=1, ch=16)
  os.makedirs(tmp_path / "model")
  spec = dict(architecture="biggan", class_names=["a", "b"], generator=g,
              discriminator=dict(num_classes=2, resolution=32, channels=1,
                                 ch=16), method="test")
  (tmp_path / "model" / bundle.SPEC_FILE).write_text(json.dumps(spec))
  folder = run_folder.RunFolder(str(tmp_path))
  folder.check_model(dict(spec, generator=dict(g, bn_epsilon=1e-4)))
  with pytest.raises(UserInputError, match="holds a generator"):
    folder.check_model(dict(spec, generator=dict(g, bn_epsilon=1e-5)))


def test_gin_bindings_do_not_fill_options_a_bundle_predates():
  # An entry written before block_noise existed is an NVlabs-style model,
  # whatever gin binds at the moment.
  from tfgt.models import stylegan  # pylint: disable=g-import-not-at-top
  old = dict(num_classes=1, resolution=8, channels=1, fmap_base=32,
             fmap_max=8)
  gin.clear_config()
  try:
    gin.parse_config(["StyleGANGenerator.block_noise = True"])
    recorded = architectures.recorded_options("stylegan", "generator", old)
    assert recorded["block_noise"] is False
    assert stylegan.StyleGANGenerator(1).ctor_kwargs["block_noise"] is True
  finally:
    gin.clear_config()
