"""The model contract and the architecture registry that bundles name."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgt import train as train_lib
from tfgt.errors import UserInputError
from tfgt.models import architectures
from tfgt.models import biggan
from tfgt.models import bundle


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
    h = z + tf.matmul(biggan.class_weights(y, self.num_classes), self.table)
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
    weights = biggan.class_weights(y, self.num_classes)
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
    train_lib._check_model_dir(  # pylint: disable=protected-access
        str(tmp_path), dict(spec, architecture="biggan"))
