"""Labelled image sources, loaded into memory at the model's resolution.

Each loader returns a `LabelledImages`: uint8 images [N, R, R, C], int64 labels
[N] in the source's own class ids, and the class names. Few-shot transfer uses
at most a few thousand images per run, so holding them in memory is cheap and
lets every bad file be reported before training starts.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import struct
import zlib

import gin
import numpy as np

from tfgt.errors import UserInputError

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


@dataclasses.dataclass
class LabelledImages:
  images: np.ndarray  # uint8 [N, R, R, C]
  labels: np.ndarray  # int64 [N], ids into class_names
  class_names: list[str]


# How to replace a damaged Fashion-MNIST file.
_REINSTALL_HINT = (
    "Re-install the data with `apt-get install --reinstall "
    f"dataset-fashion-mnist` (it fills {FASHION_MNIST_DIR}) or point to "
    "another copy with --gin_param=\"fashion_mnist.data_dir='/path/to/dir'\".")


def _read_idx(path: str) -> np.ndarray:
  """Reads an IDX file (optionally gzipped) into a NumPy array.

  Raises:
    UserInputError: naming the file when it is unreadable, not valid gzip, not
      an unsigned-byte IDX file or truncated.
  """
  opener = gzip.open if path.endswith(".gz") else open
  try:
    with opener(path, "rb") as f:
      data = f.read()
  # gzip raises OSError (BadGzipFile, CRC), EOFError or zlib.error.
  except (OSError, EOFError, zlib.error) as e:
    raise UserInputError(f"Cannot read IDX file {path}: {e}. "
                         f"{_REINSTALL_HINT}") from e
  if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 8:
    raise UserInputError(f"{path} is not an unsigned-byte IDX file. "
                         f"{_REINSTALL_HINT}")
  ndim = data[3]
  if len(data) < 4 + 4 * ndim:
    raise UserInputError(f"{path} is truncated: its header is cut short. "
                         f"{_REINSTALL_HINT}")
  dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
  body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
  if body.size != int(np.prod(dims)):
    raise UserInputError(f"{path} is truncated: header says {dims}, found "
                         f"{body.size} values. {_REINSTALL_HINT}")
  return body.reshape(dims)


def _find(directory: str, stem: str) -> str:
  for name in (stem, stem + ".gz"):
    path = os.path.join(directory, name)
    if os.path.exists(path):
      return path
  raise UserInputError(
      f"Fashion-MNIST file {stem}[.gz] not found in {directory}. Install the "
      "data with `apt-get install dataset-fashion-mnist` (it fills "
      f"{FASHION_MNIST_DIR}) or point to another copy with "
      "--gin_param=\"fashion_mnist.data_dir='/path/to/dir'\".")


@gin.configurable(allowlist=["data_dir"])
def fashion_mnist(split: str = "train", resolution: int = 32,
                  channels: int = 1,
                  data_dir: str = FASHION_MNIST_DIR) -> LabelledImages:
  """Fashion-MNIST from its IDX files, zero-padded from 28x28 to `resolution`.

  Args:
    split: "train" (60k images) or "test" (10k).
    resolution: output size, at least 28 (padding) ; 32 by default.
    channels: 1, or 3 to repeat the grey channel.
    data_dir: folder holding the four IDX files (gzipped or not).
  """
  if not os.path.isdir(data_dir):
    raise UserInputError(
        f"Fashion-MNIST directory {data_dir} does not exist. Install it with "
        "`apt-get install dataset-fashion-mnist` or point to a copy with "
        "--gin_param=\"fashion_mnist.data_dir='/path/to/dir'\".")
  prefix = {"train": "train", "test": "t10k"}.get(split)
  if prefix is None:
    raise UserInputError(f"Fashion-MNIST split must be 'train' or 'test', got "
                         f"{split!r}.")
  images = _read_idx(_find(data_dir, f"{prefix}-images-idx3-ubyte"))
  labels = _read_idx(_find(data_dir, f"{prefix}-labels-idx1-ubyte"))
  if images.shape[0] != labels.shape[0]:
    raise UserInputError(f"Fashion-MNIST {split}: {images.shape[0]} images but "
                         f"{labels.shape[0]} labels in {data_dir}.")
  if resolution < 28:
    raise UserInputError(f"Fashion-MNIST needs resolution >= 28, got "
                         f"{resolution}.")
  before = (resolution - 28) // 2
  after = resolution - 28 - before
  images = np.pad(images, ((0, 0), (before, after), (before, after)))
  images = np.repeat(images[..., None], channels, axis=-1)
  return LabelledImages(images, labels.astype(np.int64),
                        list(FASHION_MNIST_CLASSES))


def _load_image(path: str, resolution: int, channels: int) -> np.ndarray:
  """Decodes an image, centre-crops it square and resizes to `resolution`."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  try:
    with Image.open(path) as img:
      img = img.convert("L" if channels == 1 else "RGB")
      w, h = img.size
      side = min(w, h)
      left, top = (w - side) // 2, (h - side) // 2
      img = img.crop((left, top, left + side, top + side))
      img = img.resize((resolution, resolution), Image.Resampling.BICUBIC)
      array = np.asarray(img, dtype=np.uint8)
  except Exception as e:  # PIL raises many types for bad files.
    raise UserInputError(f"Cannot read image {path}: {e}. Remove or replace "
                         "the file.") from e
  return array.reshape(resolution, resolution, channels)


@gin.configurable(allowlist=["root"])
def image_folder(root: str = gin.REQUIRED, resolution: int = 32,
                 channels: int = 3, split: str = "train") -> LabelledImages:
  """Images in `root/<class name>/*.{jpg,png,...}`, one sub-folder per class.

  Any image size is accepted; each image is centre-cropped to a square and
  resized to `resolution`. Class ids follow the sorted sub-folder names. The
  split is ignored (a folder holds one split).
  """
  del split
  if not os.path.isdir(root):
    raise UserInputError(f"Image folder {root} does not exist. Point "
                         "image_folder.root at a folder with one sub-folder "
                         "of images per class.")
  class_names = sorted(d for d in os.listdir(root)
                       if os.path.isdir(os.path.join(root, d)))
  if not class_names:
    raise UserInputError(f"Image folder {root} has no class sub-folders.")
  images, labels = [], []
  for label, name in enumerate(class_names):
    folder = os.path.join(root, name)
    files = sorted(f for f in os.listdir(folder)
                   if f.lower().endswith(_IMAGE_SUFFIXES))
    if not files:
      raise UserInputError(f"Class folder {folder} holds no images (looked for "
                           f"{', '.join(_IMAGE_SUFFIXES)}).")
    for f in files:
      images.append(_load_image(os.path.join(folder, f), resolution, channels))
      labels.append(label)
  return LabelledImages(np.stack(images), np.asarray(labels, np.int64),
                        class_names)


@gin.configurable(allowlist=["name", "data_dir", "download"])
def tfds_dataset(name: str = gin.REQUIRED, resolution: int = 32,
                 channels: int = 3, split: str = "train",
                 data_dir: str | None = None,
                 download: bool = False) -> LabelledImages:
  """A TFDS dataset with 'image' and 'label' features, e.g. 'cifar100'.

  With `download=False` (default) the data must already be prepared in
  `data_dir`, which works offline.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  try:
    builder = tfds.builder(name, data_dir=data_dir)
    if download:
      builder.download_and_prepare()
    ds = builder.as_dataset(split=split, as_supervised=False)
  except Exception as e:  # TFDS raises various errors for missing data.
    raise UserInputError(
        f"TFDS dataset {name!r} (split {split!r}) is not available in data_dir="
        f"{data_dir!r}: {e}. Prepare it there first (tfds build {name} "
        "--data_dir=...) or set tfds_dataset.download=True where there is a "
        "network.") from e
  names = builder.info.features["label"].names

  def convert(example):
    image = tf.image.convert_image_dtype(example["image"], tf.float32)
    if image.shape[-1] != channels:
      image = (tf.image.rgb_to_grayscale(image) if channels == 1
               else tf.image.grayscale_to_rgb(image))
    image = tf.image.resize(image, [resolution, resolution], antialias=True)
    image = tf.cast(tf.round(tf.clip_by_value(image, 0, 1) * 255), tf.uint8)
    return image, example["label"]

  images, labels = [], []
  for image, label in tfds.as_numpy(ds.map(convert).batch(1024)):
    images.append(image)
    labels.append(label)
  return LabelledImages(np.concatenate(images),
                        np.concatenate(labels).astype(np.int64), list(names))
