"""LocalModel: feature extractors from a local .keras file or SavedModel,
and `tfgt.evaluate --features`."""

import json
import math
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import FASHION_MNIST_DIR, REPO
import tfgt.eval  # pylint: disable=unused-import  (registers Evaluator)
from tfgt import evaluate
from tfgt.errors import UserInputError
from tfgt.eval import features


def tiny_cnn(seed: int = 0, size=(16, 16), channels: int = 3) -> keras.Model:
  """[B, 16, 16, 3] -> 5-d features; its "conv" layer outputs [B, H, W, 4]."""
  keras.utils.set_random_seed(seed)
  inputs = keras.Input((*size, channels))
  x = keras.layers.Conv2D(4, 3, padding="same", activation="relu",
                          name="conv")(inputs)
  x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
  outputs = keras.layers.Dense(5, name="features")(x)
  return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
  """(the model, its .keras file, its SavedModel folder)."""
  root = tmp_path_factory.mktemp("local_models")
  model = tiny_cnn()
  path = str(root / "tiny.keras")
  model.save(path)
  folder = str(root / "tiny_saved_model")
  model.export(folder, verbose=False)
  return model, path, folder


def images(n=3, size=20, channels=1, seed=1):
  rng = np.random.RandomState(seed)
  return rng.uniform(-1, 1, (n, size, size, channels)).astype(np.float32)


def expected_input(x, size=(16, 16)):
  """What the model should see: grey tiled to RGB, bilinear, [0, 1]."""
  x = tf.image.resize(tf.tile(x, [1, 1, 1, 3]), size, method="bilinear")
  return (x + 1.0) / 2.0


def test_keras_file_features_are_the_models_outputs(saved):
  model, path, _ = saved
  ext = features.LocalModel(path, normalisation="zero_one")
  assert (ext.input_size, ext.channels, ext.feature_dim) == ((16, 16), 3, 5)
  assert ext.domain() is None and ext.identity["name"] == "local_model"
  x = images()
  want = model(expected_input(x), training=False)
  np.testing.assert_allclose(ext.features(x), want, rtol=1e-5, atol=1e-5)
  # A 4-D layer output is averaged over height and width.
  conv = features.LocalModel(path, normalisation="zero_one", layer="conv")
  assert conv.feature_dim == 4
  inner = keras.Model(model.inputs, model.get_layer("conv").output)
  want = tf.reduce_mean(inner(expected_input(x)), axis=[1, 2])
  np.testing.assert_allclose(conv.features(x), want, rtol=1e-5, atol=1e-5)
  # uint8 images are mapped to [-1, 1] first, as for every extractor.
  u8 = np.round((x + 1) * 127.5).astype(np.uint8)
  np.testing.assert_allclose(ext.features(u8),
                             model(expected_input(u8 / 127.5 - 1.0)),
                             rtol=1e-4, atol=1e-4)
  with pytest.raises(UserInputError, match="no such layer"):
    features.LocalModel(path, layer="nope")


def test_saved_model_folder_features_are_the_models_outputs(saved):
  model, path, folder = saved
  ext = features.LocalModel(folder, normalisation="zero_one")
  assert (ext.input_size, ext.channels, ext.feature_dim) == ((16, 16), 3, 5)
  x = images()
  np.testing.assert_allclose(ext.features(x), model(expected_input(x)),
                             rtol=1e-5, atol=1e-5)
  assert ext.identity != features.LocalModel(
      path, normalisation="zero_one").identity
  with pytest.raises(UserInputError, match="LocalModel.signature"):
    features.LocalModel(folder, signature="nope")
  with pytest.raises(UserInputError, match="LocalModel.output_key"):
    features.LocalModel(folder, output_key="nope")
  with pytest.raises(UserInputError, match=".keras files only"):
    features.LocalModel(folder, layer="conv")


def test_normalisations_map_minus_one_one_as_documented():
  x = tf.constant([-1.0, 0.0, 1.0])
  np.testing.assert_allclose(features.normalise(x, "minus_one_one"), x)
  np.testing.assert_allclose(features.normalise(x, "zero_one"), [0, .5, 1])
  np.testing.assert_allclose(features.normalise(x, "zero_255"),
                             [0, 127.5, 255])
  rgb = tf.constant([[[[-1.0, 0.0, 1.0]]]])
  mean, std = np.array(features.IMAGENET_MEAN), np.array(features.IMAGENET_STD)
  np.testing.assert_allclose(features.normalise(rgb, "imagenet")[0, 0, 0],
                             (np.array([0, .5, 1]) - mean) / std, rtol=1e-6)


def test_resize_to_input_size(tmp_path):
  # A model that takes any size needs input_size, and gets it.
  keras.utils.set_random_seed(0)
  inputs = keras.Input((None, None, 3))
  out = keras.layers.GlobalAveragePooling2D()(
      keras.layers.Conv2D(2, 3, name="conv")(inputs))
  path = str(tmp_path / "any_size.keras")
  keras.Model(inputs, out).save(path)
  with pytest.raises(UserInputError, match="set LocalModel.input_size"):
    features.LocalModel(path)
  x = tf.constant(images(size=32, channels=3))
  for method in ("bilinear", "bicubic", "area"):
    ext = features.LocalModel(path, input_size=(8, 12), resize=method)
    got = ext._preprocess(x)  # pylint: disable=protected-access
    assert got.shape == (3, 8, 12, 3)
    np.testing.assert_allclose(got, tf.image.resize(x, (8, 12), method))
  clean = features.LocalModel(path, input_size=8, resize="clean")
  np.testing.assert_allclose(
      clean._preprocess(x),  # pylint: disable=protected-access
      tf.image.resize(x, (8, 8), "bicubic", antialias=True))
  assert clean.identity != ext.identity
  # A fixed-size model refuses another input_size.
  fixed = str(tmp_path / "fixed.keras")
  tiny_cnn().save(fixed)
  with pytest.raises(UserInputError, match=r"takes 16x16 images"):
    features.LocalModel(fixed, input_size=32)


def test_identity_changes_with_the_file_and_the_settings(tmp_path):
  path = str(tmp_path / "m.keras")
  tiny_cnn(seed=0).save(path)
  first = features.LocalModel(path).identity
  assert features.LocalModel(path).identity == first
  assert features.LocalModel(path, normalisation="imagenet").identity != first
  assert features.LocalModel(path, layer="conv").identity != first
  tiny_cnn(seed=1).save(path)
  assert features.LocalModel(path).identity["model"] != first["model"]


def test_bad_inputs_name_the_fix(saved, tmp_path):
  _, path, _ = saved
  with pytest.raises(UserInputError, match="does not exist"):
    features.LocalModel(str(tmp_path / "missing.keras"))
  weights = tmp_path / "w.h5"
  weights.write_bytes(b"x")
  with pytest.raises(UserInputError, match=r"model.save\('features.keras'\)"):
    features.LocalModel(str(weights))
  with pytest.raises(UserInputError, match="holds no saved_model.pb"):
    features.LocalModel(str(tmp_path))
  broken = tmp_path / "broken.keras"
  broken.write_bytes(b"not a zip")
  with pytest.raises(UserInputError, match="safe_mode=True"):
    features.LocalModel(str(broken))
  # safe_mode=True: a Lambda layer's Python code is never run on loading.
  inputs = keras.Input((8, 8, 3))
  lam = keras.layers.Lambda(lambda t: keras.ops.mean(t, axis=[1, 2]))(inputs)
  with_lambda = str(tmp_path / "lambda.keras")
  keras.Model(inputs, lam).save(with_lambda)
  with pytest.raises(UserInputError, match="Lambda layers and unregistered"):
    features.LocalModel(with_lambda)
  with pytest.raises(UserInputError, match="channels to 1 or 3"):
    features.LocalModel(path, channels=2)
  with pytest.raises(UserInputError, match="positive whole numbers"):
    features.LocalModel(path, input_size=(0, 16))
  with pytest.raises(UserInputError, match="use one of"):
    features.LocalModel(path, normalisation="0_1")
  with pytest.raises(UserInputError, match="use one of"):
    features.LocalModel(path, resize="nearest")
  with pytest.raises(UserInputError, match="set channels to 3"):
    features.LocalModel(path, channels=1)
  grey = str(tmp_path / "grey.keras")
  tiny_cnn(channels=1).save(grey)
  assert features.LocalModel(grey).channels == 1
  with pytest.raises(UserInputError, match="needs an RGB model"):
    features.LocalModel(grey, normalisation="imagenet")
  # A 3-D output is neither a feature vector nor a feature map.
  inputs = keras.Input((8, 8, 3))
  seq = keras.layers.Reshape((16, 12))(keras.layers.Conv2D(3, 1)(inputs))
  three_d = str(tmp_path / "three_d.keras")
  keras.Model(inputs, seq).save(three_d)
  with pytest.raises(UserInputError, match=r"features must be \[batch, D\]"):
    features.LocalModel(three_d)


def test_features_flag_bindings(saved, tmp_path):
  _, path, _ = saved
  assert features.flag_bindings(None) == []
  assert features.flag_bindings("classifier") == [
      "Evaluator.extractor = @FashionMNISTClassifier()"]
  assert features.flag_bindings("inception") == [
      "Evaluator.extractor = @InceptionHub()"]
  assert features.flag_bindings(path) == [
      "Evaluator.extractor = @LocalModel()", f"LocalModel.path = {path!r}"]
  with pytest.raises(UserInputError, match="neither one of"):
    features.flag_bindings(str(tmp_path / "nope.keras"))


def test_evaluate_with_a_local_extractor(saved, tmp_path):
  """The shipped BigGAN bundle as a run folder, scored on LocalModel
  features chosen by --features."""
  _, path, folder = saved
  model_dir = tmp_path / "run"
  shutil.copytree(os.path.join(REPO, "tfgt", "pretrained",
                               "fashion_mnist_biggan"), model_dir / "model")
  (model_dir / "config.gin").write_text("\n".join([
      f"fashion_mnist.data_dir = '{FASHION_MNIST_DIR}'",
      "load_training_data.source = @fashion_mnist",
      "load_training_data.split = 'test'",
      "load_training_data.classes = [0, 1]",
  ]) + "\n")
  (model_dir / "classes.json").write_text(json.dumps(dict(
      source_ids=[0, 1], names=["T-shirt/top", "Trouser"], label_offset=0)))
  overrides = dict(metrics=("fid",), num_samples=20,
                   cache_dir=str(tmp_path / "cache"))
  result, out = evaluate.run(
      str(model_dir), overrides=overrides, features=path,
      gin_params=["LocalModel.normalisation = 'zero_one'"],
      output=str(tmp_path / "eval.json"))
  identity = result.settings["extractor"]
  assert identity["name"] == "local_model" and identity["kind"] == "keras"
  assert identity["normalisation"] == "zero_one"
  assert math.isfinite(result.metrics["fid"])
  with open(out) as f:
    assert json.load(f)["settings"]["extractor"] == identity
  # The SavedModel gives the same features, so the same FID.
  again, _ = evaluate.run(str(model_dir), overrides=overrides,
                          features=folder,
                          gin_params=["LocalModel.normalisation = 'zero_one'"],
                          output=str(tmp_path / "eval2.json"))
  assert again.settings["extractor"]["kind"] == "saved_model"
  assert again.metrics["fid"] == pytest.approx(result.metrics["fid"],
                                               rel=1e-3, abs=1e-3)
