"""Feature extractors: TF-Hub, Keras InceptionV3, the shipped classifier."""

import hashlib
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import FASHION_MNIST_DIR
from tfgt.data import sources
from tfgt.errors import UserInputError
from tfgt.eval import features
from tfgt.eval import metrics


class TinyInception(tf.Module):
  """Stands in for TF-GAN's Inception module: same call and output format.

  Called on float images [B, H, W, 3] in [-1, 1], returns 'pool_3'
  [B, 1, 1, 6] and 'logits' [B, 4]; the last two logits report the input
  height and channel count, so tests can see what the module received.
  """

  def __init__(self):
    super().__init__()
    rng = np.random.RandomState(0)
    self.w = tf.Variable(rng.normal(size=(3, 6)).astype(np.float32))
    self.v = tf.Variable(rng.normal(size=(6, 2)).astype(np.float32))

  @tf.function(input_signature=[
      tf.TensorSpec([None, None, None, 3], tf.float32)])
  def __call__(self, images):
    pooled = tf.nn.relu(tf.reduce_mean(images, axis=[1, 2]) @ self.w)
    shape = tf.cast(tf.shape(images), tf.float32)
    size = tf.fill([tf.shape(images)[0], 1], shape[1])
    channels = tf.fill([tf.shape(images)[0], 1], shape[3])
    return {"pool_3": tf.reshape(pooled, [-1, 1, 1, 6]),
            "logits": tf.concat([pooled @ self.v, size, channels], axis=1)}


@pytest.fixture(scope="module")
def hub_module_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("hub") / "inception")
  tf.saved_model.save(TinyInception(), path)
  return path


def grey_batch(n=5, size=32):
  rng = np.random.RandomState(1)
  return rng.uniform(-1, 1, size=(n, size, size, 1)).astype(np.float32)


def test_inception_hub_from_local_directory(hub_module_dir):
  extractor = features.InceptionHub(handle=hub_module_dir)
  assert extractor.feature_dim == 6 and extractor.has_logits
  images = grey_batch()
  out = extractor(images)
  assert out["features"].shape == (5, 6)
  logits = out["logits"].numpy()
  # Resized to TF-GAN's 299 and the grey channel tiled to 3.
  np.testing.assert_array_equal(logits[:, 2], 299)
  np.testing.assert_array_equal(logits[:, 3], 3)
  # The same numbers as calling the module on the resized RGB images.
  module = tf.saved_model.load(hub_module_dir)
  rgb = tf.image.resize(np.repeat(images, 3, axis=-1), [299, 299])
  np.testing.assert_allclose(
      out["features"].numpy(),
      tf.reshape(module(rgb)["pool_3"], [5, 6]).numpy(), rtol=1e-5)
  assert extractor.identity["module"] != hub_module_dir  # a file hash


def test_inception_hub_from_tfhub_cache(hub_module_dir, tmp_path,
                                        monkeypatch):
  # Where TF-Hub keeps a downloaded module: <cache>/<sha1 of the handle>.
  handle = features.INCEPTION_TFHUB
  cached = tmp_path / hashlib.sha1(handle.encode()).hexdigest()
  shutil.copytree(hub_module_dir, cached)
  monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path))
  extractor = features.InceptionHub(image_size=64)
  assert extractor(grey_batch(2))["logits"].numpy()[0, 2] == 64
  assert extractor.identity["module"] == handle


def test_inception_hub_bad_handles(tmp_path):
  with pytest.raises(UserInputError, match="does not exist"):
    features.InceptionHub(handle=str(tmp_path / "missing"))
  with pytest.raises(UserInputError, match="saved_model.pb"):
    features.InceptionHub(handle=str(tmp_path))


def test_inception_hub_wrong_output_key(hub_module_dir):
  with pytest.raises(UserInputError, match="features_key"):
    features.InceptionHub(handle=hub_module_dir, features_key="pool_4")


def test_keras_inception_v3_from_weights_file(tmp_path):
  # Random weights stand in for Keras' downloaded file; the smallest input
  # InceptionV3 accepts (75) keeps the test quick. Weights do not depend on
  # the input size.
  net = keras.applications.InceptionV3(weights=None, input_shape=(75, 75, 3),
                                       classifier_activation=None)
  path = str(tmp_path / "inception_v3.weights.h5")
  net.save_weights(path)
  extractor = features.KerasInceptionV3(weights=path, image_size=75)
  images = grey_batch(3, 40)
  out = extractor(images)
  assert out["features"].shape == (3, 2048)
  assert out["logits"].shape == (3, 1000)
  rgb = tf.image.resize(np.repeat(images, 3, axis=-1), [75, 75])
  np.testing.assert_allclose(out["logits"].numpy(), net(rgb).numpy(),
                             rtol=1e-4, atol=1e-4)


def test_keras_inception_v3_bad_files(tmp_path):
  with pytest.raises(UserInputError, match="does not exist"):
    features.KerasInceptionV3(weights=str(tmp_path / "none.h5"))
  small = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
  path = str(tmp_path / "small.weights.h5")
  small.save_weights(path)
  with pytest.raises(UserInputError, match="at least 75"):
    features.KerasInceptionV3(weights=path, image_size=32)


def test_classifier_rejects_weights_of_another_shape(tmp_path):
  other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
  path = str(tmp_path / "other.weights.h5")
  other.save_weights(path)
  with pytest.raises(UserInputError, match="does not hold weights"):
    features.FashionMNISTClassifier(weights=path)
  with pytest.raises(UserInputError, match="do not exist"):
    features.FashionMNISTClassifier(weights=str(tmp_path / "missing.h5"))


def test_channel_matching():
  grey = tf.constant(grey_batch(2, 8))
  rgb = features.match_channels(grey, 3)
  assert rgb.shape == (2, 8, 8, 3)
  np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])
  np.testing.assert_allclose(features.match_channels(rgb, 1), grey, atol=1e-3)


@pytest.fixture(scope="module")
def classifier():
  return features.FashionMNISTClassifier()


@pytest.fixture(scope="module")
def test_split():
  return sources.fashion_mnist("test", 32, 1, FASHION_MNIST_DIR)


def test_shipped_classifier_accuracy(classifier, test_split):
  logits = np.concatenate([
      classifier(test_split.images[i:i + 1000])["logits"].numpy()
      for i in range(0, 10000, 1000)])
  accuracy = np.mean(np.argmax(logits, 1) == test_split.labels)
  assert accuracy > 0.9
  # 28x28 input is padded to the 32x32 the classifier was trained on.
  raw = test_split.images[:8, 2:30, 2:30]
  np.testing.assert_allclose(classifier(raw)["logits"],
                             logits[:8], rtol=1e-4, atol=1e-4)


def test_streaming_extraction_matches_one_pass(classifier, test_split):
  images = test_split.images[:300]
  whole = classifier.features(images).numpy()
  streamed = features.extract_features(classifier, images, batch_size=64)
  batches = (images[i:i + 100] for i in range(0, 300, 100))
  from_iterable = features.extract_features(classifier, batches)
  assert streamed.shape == (300, features.CLASSIFIER_FEATURES)
  np.testing.assert_allclose(streamed, whole, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(from_iterable, whole, rtol=1e-4, atol=1e-4)


def test_classifier_fid_separates_classes(classifier, test_split):
  train = sources.fashion_mnist("train", 32, 1, FASHION_MNIST_DIR)
  boot, bag = 9, 8
  train_boot = features.extract_features(
      classifier, train.images[train.labels == boot])
  test_boot = features.extract_features(
      classifier, test_split.images[test_split.labels == boot])
  test_bag = features.extract_features(
      classifier, test_split.images[test_split.labels == bag])
  same_class = metrics.frechet_distance(train_boot, test_boot)
  other_class = metrics.frechet_distance(train_boot, test_bag)
  print(f"FID Ankle boot train/test {same_class:.3f}, Ankle boot train / Bag "
        f"test {other_class:.3f}")
  assert same_class < 1.0
  assert other_class > 50 * same_class


@pytest.mark.parametrize("dataset", ["cifar100", "places365", "animalface"])
def test_rgb_eval_configs_bind_inception(dataset, hub_module_dir, monkeypatch):
  import gin  # pylint: disable=g-import-not-at-top
  from tests.conftest import REPO  # pylint: disable=g-import-not-at-top
  from tfgt import train as train_lib  # pylint: disable=g-import-not-at-top
  monkeypatch.chdir(REPO)
  gin.clear_config()
  try:
    train_lib.parse_config(
        [f"gin_configs/{dataset}/cgantransfer.gin",
         f"gin_configs/{dataset}/eval.gin"],
        [f"InceptionHub.handle = '{hub_module_dir}'"])
    assert gin.query_parameter("train.best_metric") == "fid"
    evaluator = gin.query_parameter("train.evaluator").scoped_configurable_fn()
    assert isinstance(evaluator.extractor, features.InceptionHub)
    assert evaluator.extractor.handle == hub_module_dir
    assert "fid" in evaluator.metrics
  finally:
    gin.clear_config()
