"""The Evaluator: reference selection like the trainer's, feature caching."""

import os

import gin
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import FASHION_MNIST_DIR
from tfgt.errors import UserInputError
from tfgt.eval import cache as cache_lib
from tfgt.eval import evaluator as evaluator_lib
from tfgt.eval import features
from tfgt.models import biggan


class PooledPixels(features.FeatureExtractor):
  """A real (if weak) extractor: 4x4 average-pooled pixels, 64-d.

  Counts the images it has seen, so tests can tell cached from recomputed
  features.
  """

  name = "pooled_pixels"
  channels = 1
  feature_dim = 64
  has_logits = False

  def __init__(self, salt: str = ""):
    self.salt = salt
    self.images_seen = 0

  @property
  def identity(self):
    return dict(name=self.name, salt=self.salt)

  def _preprocess(self, images):
    self.images_seen += int(images.shape[0])
    return tf.image.resize(images, [32, 32])

  def _outputs(self, images):
    pooled = tf.nn.avg_pool2d(images, 4, 4, "VALID")
    return {"features": tf.reshape(pooled, [-1, 64])}


def bind_data(classes=(8, 9), split="test", images_per_class=10):
  gin.parse_config([
      "load_training_data.source = @fashion_mnist",
      f"fashion_mnist.data_dir = '{FASHION_MNIST_DIR}'",
      f"load_training_data.split = '{split}'",
      f"load_training_data.classes = {list(classes)}",
      f"load_training_data.images_per_class = {images_per_class}",
  ])


def test_cache_roundtrip_and_key_check(tmp_path):
  cache = cache_lib.FeatureCache(str(tmp_path))
  key = dict(data="abc", classes=[1, 2])
  assert cache.load(key) is None
  cache.save(key, {"features": np.arange(6.0).reshape(2, 3)})
  np.testing.assert_array_equal(cache.load(key)["features"],
                                np.arange(6.0).reshape(2, 3))
  other = dict(data="abc", classes=[1, 3])
  assert cache.path(other) != cache.path(key)
  assert cache.load(other) is None
  # A file whose stored key differs (hand-copied, or a hash collision) is
  # not used.
  os.replace(cache.path(key), cache.path(other))
  assert cache.load(other) is None
  calls = []
  result = cache.get_or_compute(other, lambda: calls.append(1) or
                                {"features": np.ones(2)})
  assert calls == [1] and cache.load(other) is not None
  np.testing.assert_array_equal(result["features"], np.ones(2))


def test_reference_uses_all_images_of_the_trained_classes(tmp_path):
  bind_data(images_per_class=10)
  evaluator = evaluator_lib.Evaluator(extractor=PooledPixels(),
                                      cache_dir=str(tmp_path))
  # A transfer generator: 3 old classes + the 2 selected ones at ids 3 and 4.
  ref = evaluator.reference(32, 1, num_classes=5)
  assert ref.features.shape == (2000, 64)  # all test images, not 10 a class
  assert ref.class_ids() == [3, 4]
  np.testing.assert_array_equal(np.unique(ref.model_ids), [3, 4])
  assert ref.selection.names == ["Bag", "Ankle boot"]
  with pytest.raises(UserInputError, match="generator has 1"):
    evaluator.reference(32, 1, num_classes=1)


def test_reference_cache_rebuilds_when_anything_changes(tmp_path):
  extractor = PooledPixels()

  def reference(**kwargs):
    return evaluator_lib.Evaluator(extractor=extractor,
                                   cache_dir=str(tmp_path)).reference(
                                       32, 1, num_classes=2, **kwargs)

  bind_data(classes=(8, 9))
  first = reference()
  assert extractor.images_seen == 2000
  again = reference()  # a new evaluator: read from disk
  assert extractor.images_seen == 2000
  np.testing.assert_array_equal(first.features, again.features)

  gin.clear_config()
  bind_data(classes=(7, 9))  # other classes
  reference()
  assert extractor.images_seen == 4000

  gin.clear_config()
  bind_data(classes=(8, 9), split="train", images_per_class=None)
  gin.parse_config("load_training_data.classes = [8]")
  reference()  # other split (6000 train images of one class)
  assert extractor.images_seen == 10000

  gin.clear_config()
  bind_data(classes=(8, 9))
  extractor.salt = "new weights"  # other extractor identity
  reference()
  assert extractor.images_seen == 12000
  assert len(os.listdir(tmp_path)) == 4


def test_reference_cache_follows_the_image_bytes(tmp_path):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  root = tmp_path / "images"
  for name in ("a", "b"):
    (root / name).mkdir(parents=True)
    for i in range(3):
      Image.fromarray(np.full((8, 8), 40 * i + (name == "b") * 100,
                              np.uint8)).save(root / name / f"{i}.png")
  gin.parse_config(["load_training_data.source = @image_folder",
                    f"image_folder.root = '{root}'"])
  extractor = PooledPixels()
  make = lambda: evaluator_lib.Evaluator(
      extractor=extractor, cache_dir=str(tmp_path / "cache")).reference(
          32, 1, num_classes=2)
  make()
  make()
  assert extractor.images_seen == 6
  Image.fromarray(np.full((8, 8), 7, np.uint8)).save(root / "a" / "0.png")
  make()
  assert extractor.images_seen == 12


def test_evaluator_scores_a_generator(tmp_path):
  bind_data(classes=(8, 9))
  generator = biggan.BigGANGenerator(3, ch=4, dim_z=16)
  generator((tf.zeros([1, 16]), tf.zeros([1], tf.int32)))
  evaluator = evaluator_lib.Evaluator(
      extractor=PooledPixels(), metrics="fid,kid,mfid,mkid,kmmd,prdc",
      num_samples=301, batch_size=64, cache_dir=str(tmp_path))
  result = evaluator.evaluate(generator)
  assert set(result.metrics) >= {"fid", "kid", "mfid", "mkid", "kmmd",
                                 "precision", "recall", "density",
                                 "coverage"}
  assert result.metrics["fid"] > 0 and result.metrics["mfid"] > 0
  assert list(result.per_class) == ["Bag", "Ankle boot"]
  assert [e["model_id"] for e in result.per_class.values()] == [1, 2]
  assert sum(e["generated"] for e in result.per_class.values()) == 301
  # The trainer's contract: a flat dict of floats, the same latents each time.
  again = evaluator(generator)
  assert all(isinstance(v, float) for v in again.values())
  assert again["fid"] == pytest.approx(result.metrics["fid"], rel=1e-5)


def test_evaluator_settings_are_checked():
  with pytest.raises(UserInputError, match="Unknown metric"):
    evaluator_lib.Evaluator(metrics="fid,is")
  with pytest.raises(UserInputError, match="num_samples"):
    evaluator_lib.Evaluator(num_samples=1)
  assert evaluator_lib.split_counts(10, [6000, 6000, 3000]) == [4, 4, 2]
  assert sum(evaluator_lib.split_counts(101, [7, 5, 3])) == 101


def test_default_extractor_is_for_fashion_mnist_only():
  bind_data()
  assert isinstance(evaluator_lib.Evaluator().extractor,
                    features.FashionMNISTClassifier)
  gin.clear_config()
  gin.parse_config(["load_training_data.source = @image_folder",
                    "image_folder.root = '/nowhere'"])
  with pytest.raises(UserInputError, match="image_folder.*eval.gin"):
    evaluator_lib.Evaluator().prepare()
  # Chosen explicitly, it is allowed.
  evaluator_lib.Evaluator(extractor=features.FashionMNISTClassifier()).prepare()
