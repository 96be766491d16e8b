"""Feature extractors: networks whose activations feed the sample metrics.

Every extractor maps a batch of images, float [B, H, W, C] in [-1, 1] (or
uint8 in [0, 255]), with any size and 1 or 3 channels, to
  "features": float32 [B, D], the activations the distances compare;
  "logits":   float32 [B, K], the classifier's logits (when it has them).
It resizes and converts channels itself (grey images are tiled to three
channels for an RGB network), so callers pass images as the data pipeline or
a generator produce them.

  * `InceptionHub`: Inception v3 as TF-GAN uses it ('pool_3', 2048-d, and
    'logits', 1008-d), a SavedModel loaded with `hub.load` from a TF-Hub
    handle, a local directory, or the TF-Hub cache (TFHUB_CACHE_DIR). Images
    are resized bilinearly to 299x299 as in TF-GAN's examples.
  * `KerasInceptionV3`: `keras.applications.InceptionV3` with weights from a
    local file (2048-d average pool and 1000 logits).
  * `FashionMNISTClassifier`: the small CNN shipped in
    `tfgt/pretrained/fashion_mnist_classifier` (trained on all 10 classes by
    tools.train_fashion_mnist_classifier); its 128-d penultimate layer is
    the offline feature space for Fashion-MNIST, as TF-GAN's MNIST example
    uses an MNIST classifier.
  * `LocalModel`: any image network in a local Keras 3 `.keras` file (loaded
    with safe_mode=True) or TF SavedModel folder, with its input size,
    channels, resize method and input normalisation as settings.

`extract_features` streams any number of images through an extractor in
batches, keeping only the features.

Each extractor has an `identity` (name, settings and a fingerprint of its
weights) that keys the cache of real-image features.
"""

from __future__ import annotations

import abc
import hashlib
import os
from typing import Any, Iterable

from absl import logging
import gin
import keras
import numpy as np
import tensorflow as tf

from tfgt.errors import UserInputError

INCEPTION_TFHUB = "https://tfhub.dev/tensorflow/tfgan/eval/inception/1"
INCEPTION_IMAGE_SIZE = 299
INCEPTION_FEATURES = "pool_3"
INCEPTION_LOGITS = "logits"

PRETRAINED_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pretrained")
CLASSIFIER_DIR = os.path.join(PRETRAINED_DIR, "fashion_mnist_classifier")
CLASSIFIER_WEIGHTS = os.path.join(CLASSIFIER_DIR, "classifier.weights.h5")
CLASSIFIER_RESOLUTION = 32
CLASSIFIER_FEATURES = 128
CLASSIFIER_LAYER = "features"


def file_fingerprint(path: str) -> str:
  """SHA-1 of a file's bytes (weights change -> cached features rebuild)."""
  digest = hashlib.sha1()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      digest.update(chunk)
  return digest.hexdigest()


def to_float_images(images) -> tf.Tensor:
  """uint8 [0, 255] or float [-1, 1] images -> float32 [-1, 1]."""
  images = tf.convert_to_tensor(images)
  if images.dtype == tf.uint8:
    return tf.cast(images, tf.float32) / 127.5 - 1.0
  return tf.cast(images, tf.float32)


def match_channels(images: tf.Tensor, channels: int) -> tf.Tensor:
  """Tiles grey images to RGB, or averages RGB to grey (luma weights).

  Args:
    images: float [B, H, W, 1 or 3].
    channels: 1 or 3, what the network takes.
  """
  have = images.shape[-1]
  if have == channels:
    return images
  if have == 1 and channels == 3:
    return tf.tile(images, [1, 1, 1, 3])
  if have == 3 and channels == 1:
    return tf.image.rgb_to_grayscale(images)
  raise UserInputError(f"Images with {have} channels cannot go into a feature "
                       f"extractor that takes {channels}; use 1 or 3.")


class FeatureExtractor(abc.ABC):
  """Maps images to features [B, D] (and logits [B, K] when available).

  Subclasses set `name`, `channels` (what the network takes) and
  `feature_dim`, and implement `_preprocess` and `_outputs`.
  """

  name: str = "extractor"
  channels: int = 3
  feature_dim: int = 0
  has_logits: bool = True

  @property
  @abc.abstractmethod
  def identity(self) -> dict[str, Any]:
    """JSON-able description that changes whenever the features would."""

  @abc.abstractmethod
  def _preprocess(self, images: tf.Tensor) -> tf.Tensor:
    """float [B, H, W, channels] in [-1, 1] -> the network's input."""

  @abc.abstractmethod
  def _outputs(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
    """Network input -> {"features": [B, D], "logits": [B, K] (optional)}."""

  def _run(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
    images = match_channels(images, self.channels)
    return self._outputs(self._preprocess(images))

  def __call__(self, images) -> dict[str, tf.Tensor]:
    """Features (and logits) of images [B, H, W, C] in [-1, 1] or uint8."""
    images = to_float_images(images)
    if images.shape.rank != 4 or images.shape[-1] not in (1, 3):
      raise UserInputError(f"Feature extractors take images [batch, height, "
                           f"width, 1 or 3], got shape {images.shape}.")
    # Eager on purpose: the networks are Keras models or loaded SavedModel
    # functions, whose ops run batched anyway, and tracing Inception into a
    # tf.function costs more than it saves at evaluation batch sizes.
    return self._run(images)

  def domain(self) -> tuple[np.ndarray, np.ndarray] | None:
    """Real images of the extractor's own training domain, (uint8 [n, H,
    W, C], int labels [n]), which the feature check
    (`tfgt.eval.separability`) measures a class's spread against; None when
    they are not at hand (Inception's ImageNet)."""
    return None

  @property
  def domain_name(self) -> str | None:
    """The name of `domain()`'s data (a key of the spread unit's cache:
    one set of weights may be bound with another domain), or None."""
    return None

  def features(self, images) -> tf.Tensor:
    """float32 [B, D] features of images."""
    return self(images)["features"]


def extract_features(extractor: FeatureExtractor,
                     images: np.ndarray | Iterable[Any],
                     batch_size: int = 256) -> np.ndarray:
  """Streams images through `extractor`, keeping only the features.

  Memory holds one batch of images (at the network's input size) and the
  growing feature matrix, so 50k images through Inception need about
  50k x 2048 x 4 bytes = 400 MB, not the 50k x 299 x 299 x 3 images.

  Args:
    extractor: the feature network.
    images: an array [N, H, W, C] (uint8 or float in [-1, 1]), sliced into
      batches of `batch_size`; or an iterable of such batches (e.g. a
      generator's samples).
    batch_size: images per forward pass when `images` is an array.

  Returns:
    float32 [N, D].
  """
  if isinstance(images, np.ndarray):
    batches = (images[i:i + batch_size]
               for i in range(0, len(images), batch_size))
  else:
    batches = images
  parts = [np.asarray(extractor.features(b), np.float32) for b in batches]
  if not parts:
    return np.zeros([0, extractor.feature_dim], np.float32)
  return np.concatenate(parts)


def _hub_module_path(handle: str) -> str | None:
  """Local directory of a handle, or None for a handle to resolve remotely."""
  if "://" in handle:
    return None
  path = os.path.expanduser(handle)
  if not os.path.isdir(path):
    raise UserInputError(
        f"Inception module directory {handle} does not exist. Give a TF-Hub "
        f"handle (e.g. {INCEPTION_TFHUB}, downloaded into TFHUB_CACHE_DIR) or "
        "a local directory holding the module's saved_model.pb.")
  if not (os.path.exists(os.path.join(path, "saved_model.pb")) or
          os.path.exists(os.path.join(path, "saved_model.pbtxt"))):
    raise UserInputError(
        f"{handle} holds no saved_model.pb: it is not a TF-Hub module or "
        "SavedModel directory.")
  return path


@gin.configurable(allowlist=["handle", "image_size", "features_key",
                             "logits_key"])
class InceptionHub(FeatureExtractor):
  """Inception v3 as TF-GAN uses it, loaded with `hub.load`.

  The module is called on images [B, 299, 299, 3] in [-1, 1] and returns a
  dict with 'pool_3' [B, 1, 1, 2048] and 'logits' [B, 1008] (TF-GAN's
  `classifier_fn_from_tfhub`); the outputs are flattened. `hub.load` is used
  rather than `hub.KerasLayer`, which is a tf_keras layer that cannot sit in a
  Keras 3 model.

  A handle that is a URL is resolved by TF-Hub: offline, it must already be in
  the TF-Hub cache (TFHUB_CACHE_DIR, or <tmp>/tfhub_modules), where a machine
  with a network put it. A local directory is loaded directly.
  """

  name = "inception_hub"
  channels = 3

  def __init__(self, handle: str = INCEPTION_TFHUB,
               image_size: int = INCEPTION_IMAGE_SIZE,
               features_key: str = INCEPTION_FEATURES,
               logits_key: str | None = INCEPTION_LOGITS):
    import tensorflow_hub as hub  # pylint: disable=g-import-not-at-top
    self.handle = handle
    self.image_size = image_size
    self.features_key = features_key
    self.logits_key = logits_key
    local = _hub_module_path(handle)
    try:
      self._module = hub.load(local or handle)
    except Exception as e:  # hub raises many types (URLError, OSError, ...)
      raise UserInputError(
          f"Cannot load the Inception module {handle!r}: {e}. Without a "
          "network, download the module elsewhere and point TFHUB_CACHE_DIR "
          "at the cache that holds it, or give its local directory "
          "(InceptionHub.handle).") from e
    self._call = self._module if callable(self._module) else None
    if self._call is None:
      signatures = getattr(self._module, "signatures", {})
      for key in ("default", "serving_default"):
        if key in signatures:
          self._call = lambda x, f=signatures[key]: f(x)
          break
    if self._call is None:
      raise UserInputError(f"The module {handle!r} is neither callable nor has "
                           "a 'default' signature.")
    probe = self._outputs(tf.zeros([1, image_size, image_size, 3]))
    self.feature_dim = int(probe["features"].shape[-1])
    self.has_logits = "logits" in probe
    if local is not None:
      files = [os.path.join(local, f) for f in
               ("saved_model.pb", "saved_model.pbtxt",
                os.path.join("variables", "variables.index"))]
      self._fingerprint = "".join(file_fingerprint(f) for f in files
                                  if os.path.exists(f))
    else:
      # A published module version never changes.
      self._fingerprint = handle

  @property
  def identity(self) -> dict[str, Any]:
    return dict(name=self.name, module=self._fingerprint,
                image_size=self.image_size, features=self.features_key)

  def _preprocess(self, images):
    # TF-GAN's examples resize bilinearly (no antialiasing) to 299.
    return tf.image.resize(images, [self.image_size, self.image_size],
                           method=tf.image.ResizeMethod.BILINEAR)

  def _outputs(self, images):
    output = self._call(images)
    if not isinstance(output, dict) or self.features_key not in output:
      keys = sorted(output) if isinstance(output, dict) else type(output)
      raise UserInputError(
          f"The module {self.handle!r} does not return a dict with "
          f"{self.features_key!r} (it returns {keys}); set "
          "InceptionHub.features_key.")
    batch = tf.shape(images)[0]
    result = {"features": tf.reshape(tf.cast(output[self.features_key],
                                             tf.float32), [batch, -1])}
    if self.logits_key and self.logits_key in output:
      result["logits"] = tf.reshape(tf.cast(output[self.logits_key],
                                            tf.float32), [batch, -1])
    return result


@gin.configurable(allowlist=["weights", "image_size"])
class KerasInceptionV3(FeatureExtractor):
  """`keras.applications.InceptionV3` with weights from a local file.

  Accepts the full model's weights (features and 1000 logits) or the
  "notop" weights (features only). Images are resized bilinearly to
  `image_size` (299, or at least 75) and stay in [-1, 1], the input range of
  Keras' Inception ("tf" preprocessing). Features: the 2048-d global average
  pool. This is not the TF-GAN/TF-Hub graph, so its FIDs are not comparable
  with published numbers; use `InceptionHub` for those.
  """

  name = "keras_inception_v3"
  channels = 3
  feature_dim = 2048

  def __init__(self, weights: str = gin.REQUIRED,
               image_size: int = INCEPTION_IMAGE_SIZE):
    if not weights or not os.path.isfile(os.path.expanduser(weights)):
      raise UserInputError(
          f"Keras InceptionV3 weights file {weights!r} does not exist. Give a "
          "local copy of Keras' inception_v3 weights (.h5 or .weights.h5), "
          "e.g. KerasInceptionV3.weights='/path/to/inception_v3.weights.h5'.")
    if image_size < 75:
      raise UserInputError(f"InceptionV3 needs images of at least 75 pixels; "
                           f"image_size={image_size}.")
    self.weights = os.path.expanduser(weights)
    self.image_size = image_size
    self._model, self.has_logits = self._build()
    self._fingerprint = file_fingerprint(self.weights)

  def _build(self) -> tuple[keras.Model, bool]:
    shape = (self.image_size, self.image_size, 3)
    errors = []
    for include_top in (True, False):
      net = keras.applications.InceptionV3(
          include_top=include_top, weights=None, input_shape=shape,
          pooling=None if include_top else "avg", classifier_activation=None)
      try:
        net.load_weights(self.weights)
      except Exception as e:  # Keras raises ValueError, KeyError, OSError...
        errors.append(f"{'with' if include_top else 'without'} top: {e}")
        continue
      if include_top:
        outputs = [net.get_layer("avg_pool").output, net.output]
        return keras.Model(net.input, outputs, name="inception_v3"), True
      return net, False
    raise UserInputError(
        f"{self.weights} does not hold InceptionV3 weights (tried the model "
        "with and without its classifier top): " + " | ".join(
            e.splitlines()[0][:300] for e in errors))

  @property
  def identity(self) -> dict[str, Any]:
    return dict(name=self.name, weights=self._fingerprint,
                image_size=self.image_size)

  def _preprocess(self, images):
    return tf.image.resize(images, [self.image_size, self.image_size],
                           method=tf.image.ResizeMethod.BILINEAR)

  def _outputs(self, images):
    if self.has_logits:
      pooled, logits = self._model(images, training=False)
      return {"features": pooled, "logits": logits}
    return {"features": self._model(images, training=False)}


def fashion_mnist_classifier_model() -> keras.Model:
  """The offline evaluator's CNN: [B, 32, 32, 1] in [-1, 1] -> logits [B, 10].

  Three conv-BN-ReLU stages (32, 64, 128 channels) with max pooling, global
  average pooling and a 128-unit ReLU layer named "features", whose
  activations are the feature space of the distances. Small on purpose
  (about 110k parameters) so that it ships inside the package.
  """
  inputs = keras.Input((CLASSIFIER_RESOLUTION, CLASSIFIER_RESOLUTION, 1),
                       name="images")
  x = inputs
  for i, width in enumerate((32, 64, 128)):
    x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False,
                            name=f"conv{i}")(x)
    x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
    x = keras.layers.ReLU(name=f"relu{i}")(x)
    if i < 2:
      x = keras.layers.MaxPooling2D(name=f"pool{i}")(x)
  x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
  x = keras.layers.Dense(CLASSIFIER_FEATURES, activation="relu",
                         name=CLASSIFIER_LAYER)(x)
  logits = keras.layers.Dense(10, name="logits")(x)
  return keras.Model(inputs, logits, name="fashion_mnist_classifier")


# The domains a classifier of `fashion_mnist_classifier_model` can be
# trained on (tools.train_fashion_mnist_classifier --source).
CLASSIFIER_DOMAINS = ("fashion_mnist", "glyphs")


@gin.configurable(allowlist=["weights", "domain"])
class FashionMNISTClassifier(FeatureExtractor):
  """The shipped Fashion-MNIST classifier; features: its 128-d penultimate.

  Takes grey 32x32 images (Fashion-MNIST zero-padded from 28x28, as
  `tfgt.data.sources.fashion_mnist` makes them). 28x28 images are padded;
  other sizes are resized; RGB images are converted to grey.

  `weights` may name the same network trained on another domain
  (tools.train_fashion_mnist_classifier --source=glyphs); `domain` then
  says which (CLASSIFIER_DOMAINS), for the feature check's spread unit.
  """

  name = "fashion_mnist_classifier"
  channels = 1
  feature_dim = CLASSIFIER_FEATURES

  def __init__(self, weights: str | None = None,
               domain: str = "fashion_mnist"):
    if domain not in CLASSIFIER_DOMAINS:
      raise UserInputError(
          f"FashionMNISTClassifier.domain={domain!r}: give the domain its "
          f"weights were trained on, one of {CLASSIFIER_DOMAINS}.")
    self._domain = domain
    self.weights = os.path.expanduser(weights or CLASSIFIER_WEIGHTS)
    if not os.path.isfile(self.weights):
      raise UserInputError(
          f"Fashion-MNIST classifier weights {self.weights} do not exist. "
          "Train them with `python -m tools.train_fashion_mnist_classifier` "
          "or point FashionMNISTClassifier.weights at a copy.")
    classifier = fashion_mnist_classifier_model()
    try:
      classifier.load_weights(self.weights)
    except Exception as e:  # Keras raises ValueError, KeyError, OSError...
      raise UserInputError(
          f"{self.weights} does not hold weights of the Fashion-MNIST "
          f"classifier of tfgt.eval.features ({e}). Retrain it with "
          "`python -m tools.train_fashion_mnist_classifier`.") from e
    self._model = keras.Model(
        classifier.input,
        [classifier.get_layer(CLASSIFIER_LAYER).output, classifier.output])
    self._fingerprint = file_fingerprint(self.weights)
    logging.info("Fashion-MNIST classifier from %s.", self.weights)

  @property
  def identity(self) -> dict[str, Any]:
    return dict(name=self.name, weights=self._fingerprint)

  @property
  def domain_name(self) -> str:
    return self._domain

  def domain(self) -> tuple[np.ndarray, np.ndarray] | None:
    """The test split of the domain the weights learnt (at 32x32x1)."""
    from tfgt.data import sources  # pylint: disable=g-import-not-at-top
    try:
      data = getattr(sources, self._domain)("test", CLASSIFIER_RESOLUTION, 1)
    except UserInputError as e:
      logging.warning("The feature check's spread unit needs %s: %s",
                      self._domain, e)
      return None
    return data.images, data.labels

  def _preprocess(self, images):
    size = CLASSIFIER_RESOLUTION
    if images.shape[1] == 28 and images.shape[2] == 28:
      # Padding with black (-1) reproduces the 32x32 training images exactly.
      return tf.pad(images, [[0, 0], [2, 2], [2, 2], [0, 0]],
                    constant_values=-1.0)
    if images.shape[1] == size and images.shape[2] == size:
      return images
    return tf.image.resize(images, [size, size], antialias=True)

  def _outputs(self, images):
    features, logits = self._model(images, training=False)
    return {"features": features, "logits": logits}


# How LocalModel maps images in [-1, 1] to a network's input range.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NORMALISATIONS = ("minus_one_one", "zero_one", "imagenet", "zero_255")
RESIZE_METHODS = ("bilinear", "bicubic", "area", "clean")


def normalise(images: tf.Tensor, normalisation: str) -> tf.Tensor:
  """Maps float images in [-1, 1] to a network's input range.

  "minus_one_one": unchanged (Inception as TF-GAN, Keras "tf" preprocessing);
  "zero_one": (x + 1) / 2; "zero_255": (x + 1) * 127.5; "imagenet": per
  channel ((x + 1) / 2 - mean) / std with ImageNet's mean (0.485, 0.456,
  0.406) and std (0.229, 0.224, 0.225), as torchvision, timm and DINOv2
  exports expect (RGB only).
  """
  if normalisation == "minus_one_one":
    return images
  if normalisation == "zero_one":
    return (images + 1.0) / 2.0
  if normalisation == "zero_255":
    return (images + 1.0) * 127.5
  if normalisation == "imagenet":
    mean = tf.constant(IMAGENET_MEAN, tf.float32)
    std = tf.constant(IMAGENET_STD, tf.float32)
    return ((images + 1.0) / 2.0 - mean) / std
  raise UserInputError(f"normalisation={normalisation!r}: use one of "
                       f"{NORMALISATIONS}.")


def resize_images(images: tf.Tensor, size: tuple[int, int],
                  method: str) -> tf.Tensor:
  """Resizes float images to `size` (H, W); unchanged when already there.

  "bilinear", "bicubic", "area": `tf.image.resize` without antialiasing
  ("bilinear" is what TF-GAN's examples do; downscaling without antialiasing
  aliases, which changes FIDs). "clean": bicubic with `antialias=True`, close
  to the PIL bicubic resize of clean-fid (Parmar et al., 2022).
  """
  if tuple(images.shape[1:3]) == tuple(size):
    return images
  if method == "clean":
    return tf.image.resize(images, size, method="bicubic", antialias=True)
  if method not in RESIZE_METHODS:
    raise UserInputError(f"resize={method!r}: use one of {RESIZE_METHODS}.")
  return tf.image.resize(images, size, method=method)


def _saved_model_dir(path: str) -> bool:
  return (os.path.exists(os.path.join(path, "saved_model.pb")) or
          os.path.exists(os.path.join(path, "saved_model.pbtxt")))


def _pair(value, what: str) -> tuple[int, int] | None:
  """None, an int or an (H, W) pair of positive ints -> (H, W) or None."""
  if value is None:
    return None
  if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
    value = (value, value)
  try:
    h, w = (int(v) for v in value)
    ok = all(float(v) == int(v) and int(v) > 0 for v in value)
  except (TypeError, ValueError):
    ok = False
  if not ok:
    raise UserInputError(
        f"LocalModel.{what}={value!r}: give the model's input height and "
        f"width as positive whole numbers, e.g. LocalModel.{what} = "
        "(224, 224) (or 224 for a square).")
  return h, w


@gin.configurable(allowlist=["path", "input_size", "channels", "resize",
                             "normalisation", "layer", "signature",
                             "output_key"])
class LocalModel(FeatureExtractor):
  """Any image network in a local file or folder as the feature extractor.

  `path` is either
    * a Keras 3 `.keras` file, loaded with `keras.saving.load_model(path,
      safe_mode=True)`: safe mode is always on, so loading never runs
      Python code stored in the file (a Lambda layer's bytecode is refused;
      custom layers must be registered Keras serializables in the process).
      The features are the output of the layer named `layer`, or of the
      model when `layer` is None; or
    * a TF SavedModel folder (saved_model.pb and variables/), loaded with
      `tf.saved_model.load`; the features are the output `output_key` (None:
      the only output) of the signature `signature` (default
      "serving_default", which `model.export(path)` writes).

  Images in [-1, 1] (any size, 1 or 3 channels) are converted to `channels`,
  resized to `input_size` (H, W) with `resize` ("bilinear" as TF-GAN,
  "bicubic", "area", or "clean": bicubic with antialiasing), then mapped to
  the model's input range by `normalisation` ("minus_one_one": unchanged,
  "zero_one", "imagenet": mean/std of ImageNet on [0, 1] images, as
  torchvision/timm/DINOv2 exports expect, "zero_255"). `input_size` and
  `channels` default to the model's own input shape when it is fixed.

  A 2-D output [B, D] is the feature vector; a 4-D output [B, H, W, D] is
  averaged over H and W; other outputs are refused. The `identity` holds a
  SHA-1 of the file (of saved_model.pb and variables.index for a folder) and
  every setting, so cached real features rebuild whenever either changes.
  There is no logits output and no domain of its own (`domain()` is None).
  """

  name = "local_model"
  has_logits = False

  def __init__(self, path: str = gin.REQUIRED,
               input_size: int | tuple[int, int] | None = None,
               channels: int | None = None,
               resize: str = "bilinear",
               normalisation: str = "minus_one_one",
               layer: str | None = None,
               signature: str = "serving_default",
               output_key: str | None = None):
    if not path or not isinstance(path, str):
      raise UserInputError(
          f"LocalModel.path={path!r}: give a .keras file or a SavedModel "
          "folder, e.g. LocalModel.path = '/models/features.keras'.")
    self.path = os.path.abspath(os.path.expanduser(path))
    if not os.path.exists(self.path):
      raise UserInputError(
          f"The feature model {path} does not exist: give an existing Keras "
          "3 .keras file or a SavedModel folder (holding saved_model.pb).")
    if os.path.isdir(self.path):
      if not _saved_model_dir(self.path):
        raise UserInputError(
            f"The folder {path} holds no saved_model.pb, so it is not a "
            "SavedModel: give the folder that `tf.saved_model.save` or "
            "`model.export` wrote, or a .keras file.")
      self.kind = "saved_model"
    elif self.path.endswith(".keras"):
      self.kind = "keras"
    else:
      hint = ""
      if self.path.endswith((".h5", ".hdf5")):
        hint = (" A .h5 file holds weights (or a legacy model) without a "
                "safe architecture: load it where it was made and save it "
                "again with model.save('features.keras').")
      raise UserInputError(
          f"The feature model {path} is neither a .keras file nor a "
          f"SavedModel folder.{hint} Give a Keras 3 .keras file "
          "(model.save('x.keras')) or a SavedModel folder "
          "(model.export('x') or tf.saved_model.save).")
    self.input_size = _pair(input_size, "input_size")
    if channels is not None and channels not in (1, 3):
      raise UserInputError(
          f"LocalModel.channels={channels!r}: feature models take grey (1) "
          "or RGB (3) images; set LocalModel.channels to 1 or 3.")
    if resize not in RESIZE_METHODS:
      raise UserInputError(
          f"LocalModel.resize={resize!r}: use one of {RESIZE_METHODS} "
          "('bilinear' as TF-GAN).")
    if normalisation not in NORMALISATIONS:
      raise UserInputError(
          f"LocalModel.normalisation={normalisation!r}: use one of "
          f"{NORMALISATIONS} (how the model's training images were scaled).")
    if layer is not None and self.kind != "keras":
      raise UserInputError(
          f"LocalModel.layer={layer!r} applies to .keras files only; for the "
          f"SavedModel {path} choose the output with LocalModel.output_key.")
    self.resize = resize
    self.normalisation = normalisation
    self.layer = layer
    self.signature = signature
    self.output_key = output_key
    if self.kind == "keras":
      shape = self._load_keras()
      self._fingerprint = file_fingerprint(self.path)
    else:
      shape = self._load_saved_model()
      files = [os.path.join(self.path, f) for f in
               ("saved_model.pb", "saved_model.pbtxt",
                os.path.join("variables", "variables.index"))]
      self._fingerprint = "".join(file_fingerprint(f) for f in files
                                  if os.path.exists(f))
    self._settle_input_shape(path, shape, channels)
    if normalisation == "imagenet" and self.channels != 3:
      raise UserInputError(
          f"LocalModel.normalisation='imagenet' needs an RGB model, but "
          f"{path} takes {self.channels} channel(s): choose another "
          "normalisation.")
    probe = self._outputs(self._preprocess(
        tf.zeros([1, *self.input_size, self.channels])))
    self.feature_dim = int(probe["features"].shape[-1])
    logging.info("Feature model %s: %s input %s x %d, %d-d features.",
                 self.kind, path, self.input_size, self.channels,
                 self.feature_dim)

  def _load_keras(self) -> list:
    try:
      model = keras.saving.load_model(self.path, compile=False,
                                      safe_mode=True)
    except Exception as e:  # Keras raises ValueError, TypeError, OSError...
      raise UserInputError(
          f"Cannot load {self.path} as a Keras 3 model ({str(e)[:400]}). "
          "It must be a .keras file saved by Keras 3; it is loaded with "
          "safe_mode=True, so Lambda layers and unregistered custom objects "
          "are refused: rebuild those parts with built-in layers.") from e
    if self.layer is not None:
      try:
        output = model.get_layer(self.layer).output
        model = keras.Model(model.inputs, output)
      except (ValueError, AttributeError) as e:
        names = [l.name for l in model.layers]
        raise UserInputError(
            f"LocalModel.layer={self.layer!r}: {self.path} has no such layer "
            f"with a symbolic output ({e}); its layers: {names}.") from e
    self._model = model
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) != 1:
      raise UserInputError(
          f"{self.path} has {len(inputs)} inputs; a feature model takes one "
          "batch of images [B, H, W, C].")
    return list(inputs[0].shape)

  def _load_saved_model(self) -> list:
    try:
      module = tf.saved_model.load(self.path)
    except Exception as e:  # TF raises OSError, ValueError, ...
      raise UserInputError(
          f"Cannot load the SavedModel {self.path}: {str(e)[:400]}") from e
    signatures = getattr(module, "signatures", {})
    if self.signature not in signatures:
      raise UserInputError(
          f"The SavedModel {self.path} has no signature {self.signature!r}; "
          f"set LocalModel.signature to one of {sorted(signatures)}.")
    function = signatures[self.signature]
    specs = function.structured_input_signature[1]
    if len(specs) != 1:
      raise UserInputError(
          f"The signature {self.signature!r} of {self.path} takes "
          f"{sorted(specs)}; a feature model takes one batch of images.")
    (self._input_name, spec), = specs.items()
    self._input_dtype = spec.dtype
    self._module = module  # Keeps the variables alive.
    self._function = function
    return list(spec.shape) if spec.shape.rank is not None else []

  def _settle_input_shape(self, path: str, shape: list,
                          channels: int | None) -> None:
    """Sets input_size and channels from the settings and the model."""
    if shape and len(shape) != 4:
      raise UserInputError(
          f"{path} takes inputs of shape {shape}, not images [B, H, W, C].")
    h, w, c = (shape[1:4] if shape else (None, None, None))
    if self.input_size is None:
      if h is None or w is None:
        raise UserInputError(
            f"{path} takes images of any size: set LocalModel.input_size to "
            "the size it was trained on, e.g. (224, 224).")
      self.input_size = (int(h), int(w))
    elif (h is not None and h != self.input_size[0]) or (
        w is not None and w != self.input_size[1]):
      raise UserInputError(
          f"LocalModel.input_size={self.input_size} but {path} takes "
          f"{h}x{w} images: set input_size to ({h}, {w}) or leave it unset.")
    if channels is None:
      if c is None:
        channels = 3
      elif c not in (1, 3):
        raise UserInputError(f"{path} takes images with {c} channels; feature "
                             "models must take 1 or 3.")
      else:
        channels = int(c)
    elif c is not None and c != channels:
      raise UserInputError(
          f"LocalModel.channels={channels} but {path} takes {c} channel(s): "
          f"set channels to {c} or leave it unset.")
    self.channels = channels

  @property
  def identity(self) -> dict[str, Any]:
    return dict(name=self.name, kind=self.kind, model=self._fingerprint,
                layer=self.layer,
                signature=None if self.kind == "keras" else self.signature,
                output_key=self.output_key,
                input_size=list(self.input_size), channels=self.channels,
                resize=self.resize, normalisation=self.normalisation)

  def _preprocess(self, images):
    images = resize_images(images, self.input_size, self.resize)
    return normalise(images, self.normalisation)

  def _raw_output(self, images):
    if self.kind == "keras":
      output = self._model(images, training=False)
      if isinstance(output, (list, tuple)) and len(output) == 1:
        output = output[0]
      if not tf.is_tensor(output) and not isinstance(output, np.ndarray):
        raise UserInputError(
            f"{self.path} returns {type(output).__name__} (several outputs): "
            "choose the features with LocalModel.layer.")
      return output
    output = self._function(**{self._input_name: tf.cast(
        images, self._input_dtype)})
    if self.output_key is None:
      if len(output) != 1:
        raise UserInputError(
            f"The signature {self.signature!r} of {self.path} returns "
            f"{sorted(output)}: choose one with LocalModel.output_key.")
      return next(iter(output.values()))
    if self.output_key not in output:
      raise UserInputError(
          f"LocalModel.output_key={self.output_key!r}: the signature "
          f"{self.signature!r} of {self.path} returns {sorted(output)}.")
    return output[self.output_key]

  def _outputs(self, images):
    output = tf.cast(self._raw_output(images), tf.float32)
    if output.shape.rank == 4:
      output = tf.reduce_mean(output, axis=[1, 2])  # Global average pooling.
    elif output.shape.rank != 2:
      raise UserInputError(
          f"The feature model {self.path} outputs shape {output.shape}; "
          "features must be [batch, D] (or [batch, H, W, D], averaged over "
          "H and W). Choose another output (LocalModel.layer for a .keras "
          "file, LocalModel.output_key for a SavedModel) or export a model "
          "that ends in a pooled or flattened layer.")
    return {"features": output}


# --features words (of tfgt.evaluate and tfgt.train) and the extractor each
# names.
FLAG_CHOICES = {"classifier": "@FashionMNISTClassifier()",
                "inception": "@InceptionHub()"}


def flag_bindings(features: str | None) -> list[str]:
  """Gin bindings that make --features the Evaluator's extractor.

  None or "" binds nothing (the config's `Evaluator.extractor` stays);
  "classifier" and "inception" bind those extractors; anything else must be
  a .keras file or a SavedModel folder, bound as `LocalModel.path`.

  Raises:
    UserInputError: a path that does not exist.
  """
  if not features:
    return []
  if features in FLAG_CHOICES:
    return [f"Evaluator.extractor = {FLAG_CHOICES[features]}"]
  path = os.path.abspath(os.path.expanduser(features))
  if not os.path.exists(path):
    raise UserInputError(
        f"--features={features} is neither one of {sorted(FLAG_CHOICES)} "
        "nor an existing .keras file or SavedModel folder: give one of "
        "those.")
  return ["Evaluator.extractor = @LocalModel()",
          f"LocalModel.path = {path!r}"]


# The help of --features, the same in both commands.
FLAG_HELP = ("Feature extractor of the evaluations: 'classifier' (the shipped "
             "Fashion-MNIST classifier), 'inception' (InceptionHub) or the "
             "path of a .keras file or SavedModel folder (LocalModel; "
             "settings as --gin_param='LocalModel.*'). Default: the "
             "config's Evaluator.extractor.")
