"""Data sources, class selection, few-shot subsets, pipeline and bad input."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.conftest import REPO
from tests.conftest import TINY
from tfgt.data import pipeline
from tfgt.data import sources
from tfgt.errors import UserInputError


def test_fashion_mnist_from_debian_idx_files():
  data = sources.fashion_mnist("train", resolution=32)
  assert data.images.shape == (60000, 32, 32, 1)
  assert data.images.dtype == np.uint8
  assert np.bincount(data.labels).tolist() == [6000] * 10
  # 28x28 padded by 2 on each side.
  assert data.images[:, :2].max() == 0 and data.images[:, 30:].max() == 0
  assert data.class_names[8:] == ["Bag", "Ankle boot"]
  test = sources.fashion_mnist("test", resolution=32, channels=3)
  assert test.images.shape == (10000, 32, 32, 3)


def test_missing_dataset_directory_says_how_to_install(tmp_path):
  with pytest.raises(UserInputError, match="apt-get install dataset-fashion"):
    sources.fashion_mnist(data_dir=str(tmp_path / "nowhere"))


def test_truncated_idx_file_is_named(tmp_path):
  for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
    with open(os.path.join(sources.FASHION_MNIST_DIR, name + ".gz"),
              "rb") as src:
      (tmp_path / (name + ".gz")).write_bytes(src.read())
  import gzip  # pylint: disable=g-import-not-at-top
  with gzip.open(tmp_path / "train-images-idx3-ubyte.gz") as f:
    head = f.read(5000)
  (tmp_path / "train-images-idx3-ubyte.gz").unlink()
  (tmp_path / "train-images-idx3-ubyte").write_bytes(head)
  with pytest.raises(UserInputError, match="train-images-idx3-ubyte is "
                     "truncated"):
    sources.fashion_mnist(data_dir=str(tmp_path))


def test_corrupt_gzip_idx_file_is_named(tmp_path):
  with open(os.path.join(sources.FASHION_MNIST_DIR,
                         "train-images-idx3-ubyte.gz"), "rb") as src:
    data = bytearray(src.read(4096))
  data[100:164] = b"\xff" * 64  # A broken deflate stream: zlib.error.
  (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(bytes(data))
  with pytest.raises(UserInputError, match="train-images-idx3-ubyte.gz.*"
                     "apt-get install --reinstall dataset-fashion-mnist.*"
                     "fashion_mnist.data_dir"):
    sources.fashion_mnist(data_dir=str(tmp_path))


def test_truncated_idx_header_is_named(tmp_path):
  # Three dimensions announced, one and a half given: struct.error before.
  (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\0\0\x08\x03\0\0\xea")
  with pytest.raises(UserInputError, match="train-images-idx3-ubyte is "
                     "truncated.*apt-get install --reinstall"):
    sources.fashion_mnist(data_dir=str(tmp_path))


def _write_folder(root, sizes):
  rng = np.random.RandomState(0)
  for cls, shapes in sizes.items():
    os.makedirs(root / cls, exist_ok=True)
    for i, (h, w) in enumerate(shapes):
      Image.fromarray(rng.randint(0, 255, (h, w, 3), np.uint8)).save(
          root / cls / f"{i}.png")


def test_image_folder_any_size_resized_and_cropped(tmp_path):
  _write_folder(tmp_path, {"cat": [(40, 60), (100, 80)], "dog": [(32, 32)]})
  data = sources.image_folder(root=str(tmp_path), resolution=16, channels=3)
  assert data.images.shape == (3, 16, 16, 3)
  assert data.class_names == ["cat", "dog"]
  assert data.labels.tolist() == [0, 0, 1]
  grey = sources.image_folder(root=str(tmp_path), resolution=8, channels=1)
  assert grey.images.shape == (3, 8, 8, 1)


def test_corrupt_image_is_named(tmp_path):
  _write_folder(tmp_path, {"cat": [(20, 20)]})
  (tmp_path / "cat" / "broken.jpg").write_bytes(b"not a jpeg")
  with pytest.raises(UserInputError, match="broken.jpg"):
    sources.image_folder(root=str(tmp_path), resolution=8)


def test_empty_class_folder(tmp_path):
  _write_folder(tmp_path, {"cat": [(20, 20)]})
  os.makedirs(tmp_path / "dog")
  with pytest.raises(UserInputError, match="dog holds no images"):
    sources.image_folder(root=str(tmp_path), resolution=8)


def test_missing_image_folder(tmp_path):
  with pytest.raises(UserInputError, match="does not exist"):
    sources.image_folder(root=str(tmp_path / "none"), resolution=8)


def _folder_source(root):
  return lambda split, resolution, channels: sources.image_folder(
      root=str(root), resolution=resolution, channels=channels, split=split)


def test_unknown_class_lists_the_available_ones(tmp_path):
  _write_folder(tmp_path, {"cat": [(20, 20)], "dog": [(20, 20)]})
  with pytest.raises(UserInputError, match="'fox' is not in the dataset.*"
                     "cat, dog"):
    pipeline.load_training_data(8, 3, source=_folder_source(tmp_path),
                                classes=["cat", "fox"])
  with pytest.raises(UserInputError, match="out of range"):
    pipeline.load_training_data(8, 3, source=_folder_source(tmp_path),
                                classes=[5])


def test_too_few_images_for_the_subset(tmp_path):
  _write_folder(tmp_path, {"cat": [(20, 20)] * 3})
  with pytest.raises(UserInputError, match="'cat' has 3 images, fewer than "
                     "images_per_class=5"):
    pipeline.load_training_data(8, 3, source=_folder_source(tmp_path),
                                images_per_class=5)


@pytest.mark.parametrize("images_per_class", [0, -3])
def test_images_per_class_must_be_positive(tmp_path, images_per_class):
  _write_folder(tmp_path, {"cat": [(20, 20)] * 3})
  with pytest.raises(UserInputError, match="load_training_data.images_per_"
                     f"class={images_per_class}: give a number of images >= 1"):
    pipeline.load_training_data(8, 3, source=_folder_source(tmp_path),
                                images_per_class=images_per_class)


def test_selection_without_classes_names_the_binding(tmp_path):
  _write_folder(tmp_path, {"cat": [(20, 20)], "dog": [(20, 20)]})
  source = _folder_source(tmp_path)
  with pytest.raises(UserInputError, match="load_training_data.classes is "
                     "empty"):
    pipeline.load_training_data(8, 3, source=source, classes=[])
  with pytest.raises(UserInputError, match=r"random_split=\(2, 0, 'rest'\) "
                     r"leaves no classes.*in \[0, 1\] for 'rest'"):
    pipeline.load_training_data(8, 3, source=source, random_split=(2, 0,
                                                                   "rest"))
  with pytest.raises(UserInputError, match="leaves no classes"):
    pipeline.load_training_data(8, 3, source=source, random_split=(0, 0,
                                                                   "first"))
  with pytest.raises(UserInputError, match="has num_first < 0"):
    pipeline.load_training_data(8, 3, source=source, random_split=(-1, 0,
                                                                   "rest"))


def test_few_shot_subset_is_seeded_and_labels_are_offset():
  kwargs = dict(resolution=32, channels=1, classes=["Bag", "Ankle boot"],
                images_per_class=100, label_offset=8)
  a_images, a_labels, selection = pipeline.load_training_data(
      subset_seed=0, **kwargs)
  b_images, _, _ = pipeline.load_training_data(subset_seed=0, **kwargs)
  c_images, _, _ = pipeline.load_training_data(subset_seed=1, **kwargs)
  assert a_images.shape == (200, 32, 32, 1)
  assert sorted(set(a_labels.tolist())) == [8, 9]
  assert selection.source_ids == [8, 9] and selection.label_offset == 8
  np.testing.assert_array_equal(a_images, b_images)
  assert not np.array_equal(a_images, c_images)


def test_random_split_is_seeded_and_disjoint():
  first, rest = pipeline.split_classes(100, 80, seed=0)
  assert len(first) == 80 and len(rest) == 20 and not set(first) & set(rest)
  assert pipeline.split_classes(100, 80, seed=0) == (first, rest)
  assert pipeline.split_classes(100, 80, seed=1)[1] != rest
  _, labels, selection = pipeline.load_training_data(
      32, 1, random_split=(8, 0, "rest"), images_per_class=2,
      label_offset=8)
  assert selection.source_ids == pipeline.split_classes(10, 8, 0)[1]
  assert sorted(set(labels.tolist())) == [8, 9]


def test_training_dataset_batches_are_deterministic():
  images = np.arange(10 * 4 * 4, dtype=np.uint8).reshape(10, 4, 4, 1)
  labels = np.arange(10)
  a = pipeline.training_dataset(images, labels, 4, seed=1)
  b = pipeline.training_dataset(images, labels, 4, seed=1)
  for (xa, ya), (xb, yb) in zip(a.take(6), b.take(6)):
    np.testing.assert_array_equal(xa.numpy(), xb.numpy())
    np.testing.assert_array_equal(ya.numpy(), yb.numpy())
    assert xa.shape == (4, 4, 4, 1) and xa.dtype == tf.float32
    assert -1.0 <= float(tf.reduce_min(xa)) and float(tf.reduce_max(xa)) <= 1


def test_tfds_dataset_prepared_offline(tmp_path):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  class TinyShapes(tfds.core.GeneratorBasedBuilder):
    """Four 8x8 images in two classes, prepared locally."""
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
      return tfds.core.DatasetInfo(builder=self, features=tfds.features
                                   .FeaturesDict({
                                       "image": tfds.features.Image(
                                           shape=(8, 8, 3)),
                                       "label": tfds.features.ClassLabel(
                                           names=["a", "b"])}))

    def _split_generators(self, dl_manager):
      return {"train": self._generate_examples()}

    def _generate_examples(self):
      for i in range(4):
        yield i, {"image": np.full((8, 8, 3), 60 * i, np.uint8),
                  "label": i % 2}

  TinyShapes(data_dir=str(tmp_path)).download_and_prepare()
  data = sources.tfds_dataset(name="tiny_shapes", data_dir=str(tmp_path),
                              resolution=4, channels=1)
  assert data.images.shape == (4, 4, 4, 1)
  assert data.class_names == ["a", "b"]
  assert sorted(data.labels.tolist()) == [0, 0, 1, 1]
  with pytest.raises(UserInputError, match="not available"):
    sources.tfds_dataset(name="tiny_shapes", data_dir=str(tmp_path / "x"))


def test_cli_reports_bad_input_without_traceback(tmp_path):
  cmd = [sys.executable, "-m", "tfgt.train",
         "--gin_file=gin_configs/fashion_mnist/pretrain_biggan.gin",
         f"--model_dir={tmp_path / 'run'}",
         f"--gin_param=fashion_mnist.data_dir = '{tmp_path / 'none'}'"]
  cmd += [f"--gin_param={p}" for p in TINY]
  result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, PYTHONPATH=REPO))
  assert result.returncode == 2
  assert "apt-get install dataset-fashion-mnist" in result.stderr
  assert "Traceback" not in result.stderr
