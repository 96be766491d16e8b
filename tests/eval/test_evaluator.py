"""The Evaluator: reference selection like the trainer's, feature caching,
sample counts that every metric can use, scores that are always finite."""

import math
import os

import gin
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import FASHION_MNIST_DIR, PRETRAIN, TINY
from tfgt import evaluate as evaluate_lib
from tfgt import train as train_lib
from tfgt.data import pipeline
from tfgt.errors import UserInputError
from tfgt.eval import cache as cache_lib
from tfgt.eval import evaluator as evaluator_lib
from tfgt.eval import features
from tfgt.eval import metrics as metrics_lib
from tfgt.eval import registry
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


def test_mprdc_is_the_mean_of_each_class_prdc(tmp_path):
  # Hyper-Modulation's Table 5 protocol: precision, recall, density and
  # coverage of each class against that class's images, then averaged.
  bind_data(classes=(8, 9))
  generator = biggan.BigGANGenerator(3, ch=4, dim_z=16)
  generator((tf.zeros([1, 16]), tf.zeros([1], tf.int32)))
  evaluator = evaluator_lib.Evaluator(
      extractor=PooledPixels(), metrics="mprdc,prdc", num_samples=200,
      cache_dir=str(tmp_path))
  assert evaluator.result_names() >= {"mprecision", "mcoverage", "recall"}
  result = evaluator.evaluate(generator)
  ref = evaluator.reference(32, 1, 3)
  fake = evaluator.sample_features(generator, {1: 100, 2: 100})
  for part in registry.get("prdc").keys:
    per_class = []
    for name, c in (("Bag", 1), ("Ankle boot", 2)):
      want = metrics_lib.prdc(ref.features[ref.model_ids == c], fake[c], k=5,
                          max_samples=10000, seed=0)[part]
      assert result.per_class[name][part] == pytest.approx(want, abs=1e-6)
      per_class.append(want)
    assert result.metrics["m" + part] == pytest.approx(np.mean(per_class),
                                                       abs=1e-6)
  assert registry.higher_is_better("mprecision")
  # The per-class table of `tfgt.evaluate` shows the four columns.
  head = [line for line in evaluate_lib.format_table(result).splitlines()
          if line.startswith("class ")]
  assert head and all(p in head[0] for p in metrics_lib.PRDC_KEYS)


def test_evaluator_settings_are_checked():
  with pytest.raises(UserInputError, match="Unknown metric"):
    evaluator_lib.Evaluator(metrics="fid,is")
  with pytest.raises(UserInputError, match="num_samples"):
    evaluator_lib.Evaluator(num_samples=1)
  with pytest.raises(UserInputError, match="kid_block_size must be >= 2"):
    evaluator_lib.Evaluator(metrics="mkid", kid_block_size=1)
  with pytest.raises(UserInputError,
                     match="max_pairwise_samples=5 .* at least 6"):
    evaluator_lib.Evaluator(metrics="prdc", max_pairwise_samples=5)
  with pytest.raises(UserInputError, match="prdc_k must be >= 1"):
    evaluator_lib.Evaluator(metrics="prdc", prdc_k=0)
  assert evaluator_lib.split_counts(10, [6000, 6000, 3000]) == [4, 4, 2]
  assert sum(evaluator_lib.split_counts(101, [7, 5, 3])) == 101


def test_default_extractor_is_for_fashion_mnist_only(tmp_path):
  bind_data()
  assert isinstance(evaluator_lib.Evaluator().extractor,
                    features.FashionMNISTClassifier)
  gin.clear_config()
  bind_folder(make_folder(tmp_path / "images", {"a": 3, "b": 3}))
  with pytest.raises(UserInputError, match="image_folder.*eval.gin"):
    evaluator_lib.Evaluator().prepare()
  # Chosen explicitly, it is allowed.
  evaluator_lib.Evaluator(extractor=features.FashionMNISTClassifier(),
                          use_cache=False).prepare()
  # Given data, the evaluator looks at their source, not at gin's.
  with pytest.raises(UserInputError, match="data source is image_folder"):
    evaluator_lib.Evaluator().extractor_for(
        pipeline.DataSpec(source_name="image_folder"))


def test_the_evaluator_scores_against_the_data_it_is_given(tmp_path):
  # No data bindings in gin: the DataSpec and the run's classes given to
  # prepare() hold for the trainer's later calls, evaluator(G).
  gin.parse_config(f"fashion_mnist.data_dir = '{FASHION_MNIST_DIR}'")
  data = pipeline.DataSpec(split="test", classes=["Bag", "Ankle boot"])
  selection = pipeline.ClassSelection([8, 9], ["Bag", "Ankle boot"], 1)
  extractor = PooledPixels()
  evaluator = evaluator_lib.Evaluator(extractor=extractor, metrics="fid",
                                      num_samples=60, cache_dir=str(tmp_path))
  evaluator.prepare(32, 1, data=data, selection=selection)
  generator = biggan.BigGANGenerator(4, ch=4, dim_z=16)
  generator((tf.zeros([1, 16]), tf.zeros([1], tf.int32)))
  result = evaluator.evaluate(generator)
  # Ids 1 and 2 as the selection says, not the last two of four.
  assert result.settings["model_ids"] == [1, 2]
  assert result.settings["split"] == "test" and result.settings["real"] == 2000
  assert evaluator(generator)["fid"] == result.metrics["fid"]
  assert extractor.images_seen == 2000 + 2 * 60
  # The bindings that describe the same data give the same DataSpec, and
  # so the same cached real features.
  bind_data(classes=("Bag", "Ankle boot"))
  assert pipeline.configured_data() == data
  again = evaluator_lib.Evaluator(extractor=extractor,
                                  cache_dir=str(tmp_path))
  assert again.reference(32, 1, 4, selection).key == (
      evaluator.reference(32, 1, 4).key)
  assert extractor.images_seen == 2000 + 2 * 60


def make_folder(root, counts):
  """An image folder with counts[name] random 8x8 grey PNGs per class."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rng = np.random.RandomState(0)
  for name, count in counts.items():
    (root / name).mkdir(parents=True)
    for i in range(count):
      Image.fromarray(rng.randint(0, 256, (8, 8), dtype=np.uint8)).save(
          root / name / f"{i}.png")
  return root


def bind_folder(root):
  gin.parse_config(["load_training_data.source = @image_folder",
                    f"image_folder.root = '{root}'"])


class LinearGenerator:
  """The generator contract at almost no cost: images [B, 32, 32, 1] in
  [-1, 1] from a fixed linear map of the latents, shifted per class."""

  resolution, channels, dim_z = 32, 1, 16

  def __init__(self, num_classes):
    self.num_classes = num_classes
    self.weights = tf.Variable(
        np.random.RandomState(0).normal(size=(16, 32 * 32)) / 4,
        dtype=tf.float32)

  def __call__(self, inputs, training=False):
    del training
    z, labels = inputs
    shift = tf.cast(labels, tf.float32)[:, None] / self.num_classes
    return tf.reshape(tf.tanh(tf.matmul(z, self.weights) + shift),
                      [-1, 32, 32, 1])


def test_prepare_refuses_a_class_with_one_image(tmp_path):
  # One class folder with a single image beside two of 30: mfid and mkid
  # need a covariance and pairs within every class.
  bind_folder(make_folder(tmp_path / "images",
                          {"cat": 30, "dog": 30, "one": 1}))
  extractor = PooledPixels()
  evaluator = evaluator_lib.Evaluator(
      extractor=extractor, metrics="fid,kid,mfid,mkid",
      cache_dir=str(tmp_path / "cache"))
  with pytest.raises(UserInputError,
                     match=r"mfid and mkid need at least 2 real images of "
                     r"every class, but class 'one' has 1\. Add images.*"
                     r"remove mfid and mkid from Evaluator\.metrics"):
    evaluator.prepare()
  # `tfgt.evaluate` calls no prepare(): the evaluation refuses the same way,
  # after the real features and before drawing a single sample.
  with pytest.raises(UserInputError, match="class 'one' has 1"):
    evaluator.evaluate(LinearGenerator(3))
  assert extractor.images_seen == 61
  # Pooled metrics have their 61 images and score all three classes.
  pooled = evaluator_lib.Evaluator(extractor=extractor, metrics="fid,kid",
                                   cache_dir=str(tmp_path / "cache"))
  pooled.prepare()
  result = pooled(LinearGenerator(3))
  # (61 samples make one KID block, which has no standard error.)
  assert set(result) == {"fid", "kid"}
  assert all(math.isfinite(v) for v in result.values())


def test_trainer_stops_before_its_first_step_on_a_class_with_one_image(
    tmp_path):
  root = make_folder(tmp_path / "images", {"cat": 30, "dog": 30, "one": 1})
  model_dir = tmp_path / "run"
  train_lib.parse_config([PRETRAIN], TINY + [
      "load_training_data.source = @image_folder",
      f"image_folder.root = '{root}'",
      "load_training_data.classes = None",
      "train.num_steps = 2",
      "train.evaluator = @Evaluator()",
      "Evaluator.extractor = @FashionMNISTClassifier()",
      "Evaluator.metrics = ['fid', 'mfid']",
      f"Evaluator.cache_dir = '{tmp_path / 'cache'}'",
  ])
  with pytest.raises(UserInputError, match="mfid needs .* class 'one' has 1"):
    train_lib.train(str(model_dir), strategy=tf.distribute.get_strategy())
  assert not tf.train.latest_checkpoint(str(model_dir))


def test_prepare_names_the_samples_each_metric_needs(tmp_path):
  bind_folder(make_folder(tmp_path / "images", {"a": 30, "b": 10}))
  make = lambda **kwargs: evaluator_lib.Evaluator(
      extractor=PooledPixels(), cache_dir=str(tmp_path / "cache"), **kwargs)
  # 4 samples split 3 : 1; the smallest total that gives every class 2 is 7
  # (6 splits 5 : 1 on the tied remainders).
  with pytest.raises(UserInputError,
                     match=r"mfid needs at least 2 generated samples of every "
                     r"class, but Evaluator\.num_samples=4, split in "
                     r"proportion to the real images, leaves class 'b' 1\. "
                     r"Set Evaluator\.num_samples \(--num_samples\) to at "
                     r"least 7"):
    make(metrics="mfid", num_samples=4).prepare()
  assert evaluator_lib.split_counts(6, [30, 10]) == [5, 1]
  make(metrics="mfid", num_samples=7).prepare()
  assert evaluator_lib.num_samples_for(2, [30, 10]) == 7
  assert all(min(evaluator_lib.split_counts(n, [30, 10])) >= 2
             for n in range(7, 200))
  # PRDC pools the classes, and needs k + 1 rows of each set.
  with pytest.raises(UserInputError,
                     match=r"prdc needs at least 6 generated samples of the "
                     r"evaluated classes together, but there are 4\. Set "
                     r"Evaluator\.num_samples.*at least 6, or lower "
                     r"Evaluator\.prdc_k"):
    make(metrics="prdc", num_samples=4).prepare()
  with pytest.raises(UserInputError,
                     match=r"prdc needs at least 51 real images of the "
                     r"evaluated classes together, but there are 40"):
    make(metrics="prdc", prdc_k=50).prepare()
  make(metrics="fid,kid,mfid,mkid,kmmd,prdc").prepare()


def test_kid_and_mkid_of_a_few_samples_against_many_images_are_finite(
    tmp_path):
  # 20 samples against the 12,000 training images of Bag and Ankle boot:
  # TF-GAN's blocks of 1024 would leave some blocks one sample (NaN).
  bind_data(classes=(8, 9), split="train")
  evaluator = evaluator_lib.Evaluator(
      extractor=PooledPixels(), metrics="kid,mkid", num_samples=20,
      cache_dir=str(tmp_path))
  evaluator.prepare()
  result = evaluator.evaluate(LinearGenerator(2))
  assert result.settings["real"] == 12000
  assert set(result.metrics) == {"kid", "kid_std", "mkid",
                                 "features_separation"}
  assert all(math.isfinite(v) for v in result.metrics.values())
  assert all(math.isfinite(e["kid"]) for e in result.per_class.values())


class NaNPixels(PooledPixels):
  """A broken extractor: NaN features."""

  def _outputs(self, images):
    return {"features": super()._outputs(images)["features"] * np.nan}


def test_non_finite_values_are_never_returned_as_scores(tmp_path,
                                                         monkeypatch):
  bind_folder(make_folder(tmp_path / "images", {"a": 12, "b": 12}))
  evaluator = evaluator_lib.Evaluator(
      extractor=PooledPixels(), metrics="fid,kid,mfid,mkid,kmmd,prdc",
      cache_dir=str(tmp_path / "cache"))
  generator = LinearGenerator(2)
  # A diverged generator: NaN weights give NaN images and features.
  weights = generator.weights.numpy()
  generator.weights.assign(tf.fill(weights.shape, np.nan))
  with pytest.raises(evaluator_lib.NonFiniteResultError,
                     match=r"NaN or infinite features.*class 'a' \(model id "
                     r"0\): 12 of 12.*earlier checkpoint"):
    evaluator(generator)
  generator.weights.assign(weights)
  # A metric that fails numerically on finite features.
  monkeypatch.setattr(metrics_lib, "frechet_distance",
                      lambda real, fake: float("nan"))
  with pytest.raises(evaluator_lib.NonFiniteResultError,
                     match=r"fid=nan, fid of class 'a'=nan, fid of class "
                     r"'b'=nan"):
    evaluator(generator)
  monkeypatch.undo()
  assert all(math.isfinite(v) for v in evaluator(generator).values())
  assert isinstance(evaluator_lib.NonFiniteResultError("x"), UserInputError)
  # An extractor that gives NaN for real images.
  broken = evaluator_lib.Evaluator(extractor=NaNPixels(), use_cache=False)
  with pytest.raises(UserInputError,
                     match="features of 24 of the 24 real images hold NaN"):
    broken(generator)


def test_settings_of_the_wrong_type_are_named():
  with pytest.raises(UserInputError) as e:
    evaluator_lib.Evaluator(num_samples="x", use_cache=1)
  message = str(e.value).splitlines()[0]
  assert "Evaluator.num_samples = 'x' (give a whole number)" in message
  assert "Evaluator.use_cache = 1 (give True or False)" in message
