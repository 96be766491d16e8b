r"""Trains the Fashion-MNIST classifier that tfgt ships as offline evaluator.

    python -m tools.train_fashion_mnist_classifier \
        [--output_dir=tfgt/pretrained/fashion_mnist_classifier] [--epochs=5]

The CNN (`tfgt.eval.features.fashion_mnist_classifier_model`) learns all 10
classes of the 60k training images, zero-padded to 32x32 and scaled to
[-1, 1] exactly as the GANs see them; the 10k test images measure its
accuracy. Seeded: the same command gives the same weights on the same
machine and TensorFlow build. Writes `classifier.weights.h5` and
`metrics.json` (test accuracy, command, seed) to --output_dir.

`--source=glyphs` trains the same CNN on the drawn digits of
`tfgt.data.sources.glyphs` (10 classes, 1000 training and 200 test images
each): the feature extractor of a second domain, made by code
(`FashionMNISTClassifier.weights` then names its weights file):

    python -m tools.train_fashion_mnist_classifier --source=glyphs \
        --output_dir=runs/glyph_classifier
"""

from __future__ import annotations

import json
import os
import time

from absl import app
from absl import flags
from absl import logging
import keras
import numpy as np
import tensorflow as tf

from tfgt import files
from tfgt.data import sources
from tfgt.eval import features

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the flags (only when run as a program, so that tests can
  import several tools)."""
  flags.DEFINE_string("output_dir", None,
                      "Where the weights and metrics.json go (default: the "
                      "shipped classifier's folder for Fashion-MNIST, "
                      "runs/glyph_classifier for the glyphs).")
  flags.DEFINE_integer("epochs", 6, "Training epochs.")
  flags.DEFINE_integer("batch_size", 128, "Batch size.")
  flags.DEFINE_float("learning_rate", 2e-3, "Initial Adam learning rate "
                     "(cosine decay to 0).")
  flags.DEFINE_integer("seed", 0, "Seed of initialisation and data order.")
  flags.DEFINE_string("data_dir", sources.FASHION_MNIST_DIR,
                      "Folder with the Fashion-MNIST IDX files.")
  flags.DEFINE_enum("source", "fashion_mnist", ["fashion_mnist", "glyphs"],
                    "The images: Fashion-MNIST, or the drawn digits of "
                    "tfgt.data.sources.glyphs.")
  flags.DEFINE_integer("images_per_class", None,
                       "Training images per class (default: all of "
                       "Fashion-MNIST's 6,000, or 1,000 drawn digits); the "
                       "test images stay all of the split's.")


def _load(split: str, per_class: int | None = None
          ) -> tuple[np.ndarray, np.ndarray]:
  """Images float32 [n, 32, 32, 1] in [-1, 1] and labels int32 [n]; the
  first `per_class` of each class when given."""
  if FLAGS.source == "glyphs":
    data = sources.glyphs(split=split, resolution=32, channels=1,
                          images_per_class=per_class)
  else:
    data = sources.fashion_mnist(split=split, resolution=32, channels=1,
                                 data_dir=FLAGS.data_dir)
  labels = data.labels.astype(np.int32)
  keep = np.ones(len(labels), bool)
  if per_class is not None:
    keep = np.zeros(len(labels), bool)
    for c in np.unique(labels):
      keep[np.flatnonzero(labels == c)[:per_class]] = True
  images = data.images[keep].astype(np.float32) / 127.5 - 1.0
  return images, labels[keep]


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  keras.utils.set_random_seed(FLAGS.seed)
  if FLAGS.images_per_class is not None and FLAGS.images_per_class < 1:
    raise app.UsageError("--images_per_class must be >= 1.")
  train_x, train_y = _load("train", FLAGS.images_per_class)
  test_x, test_y = _load("test")
  model = features.fashion_mnist_classifier_model()
  steps = FLAGS.epochs * int(np.ceil(len(train_x) / FLAGS.batch_size))
  schedule = keras.optimizers.schedules.CosineDecay(FLAGS.learning_rate, steps)
  model.compile(
      optimizer=keras.optimizers.Adam(schedule),
      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
      metrics=["accuracy"])
  dataset = (tf.data.Dataset.from_tensor_slices((train_x, train_y))
             .shuffle(len(train_x), seed=FLAGS.seed)
             .batch(FLAGS.batch_size).prefetch(2))
  start = time.time()
  model.fit(dataset, epochs=FLAGS.epochs, verbose=2)
  seconds = time.time() - start
  _, accuracy = model.evaluate(test_x, test_y, batch_size=500, verbose=0)
  logging.info("Test accuracy %.4f after %d epochs (%.0f s).", accuracy,
               FLAGS.epochs, seconds)
  output_dir = FLAGS.output_dir or (
      features.CLASSIFIER_DIR if FLAGS.source == "fashion_mnist"
      else os.path.join("runs", "glyph_classifier"))
  os.makedirs(output_dir, exist_ok=True)
  path = os.path.join(output_dir, "classifier.weights.h5")
  # A fresh, uncompiled copy: saving the compiled model would also store the
  # optimizer's moments and triple the file.
  plain = features.fashion_mnist_classifier_model()
  plain.set_weights(model.get_weights())
  plain.save_weights(path)
  command = ("python -m tools.train_fashion_mnist_classifier "
             f"--source={FLAGS.source} --epochs={FLAGS.epochs} "
             f"--batch_size={FLAGS.batch_size} "
             f"--learning_rate={FLAGS.learning_rate} --seed={FLAGS.seed}" +
             (f" --images_per_class={FLAGS.images_per_class}"
              if FLAGS.images_per_class is not None else ""))
  metrics = dict(test_accuracy=round(float(accuracy), 4),
                 train_images=len(train_x), test_images=len(test_x),
                 epochs=FLAGS.epochs, seed=FLAGS.seed,
                 train_seconds=round(seconds), parameters=model.count_params(),
                 weights_bytes=os.path.getsize(path), command=command,
                 tensorflow=tf.__version__, keras=keras.__version__)
  files.write_json(os.path.join(output_dir, "metrics.json"), metrics)
  print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
  define_flags()
  app.run(main)
