r"""Measures features per second of each feature extractor on this machine.

    python -m tools.benchmark_features \
        [--extractors=classifier,keras_inception,hub_inception] \
        [--batch_size=64] [--num_batches=5] \
        [--keras_weights=...] [--hub_handle=...]

Inputs are grey 32x32 images in [-1, 1] (what the Fashion-MNIST GANs make), so
the timings include each extractor's own resizing (to 299x299x3 for
Inception). Without --keras_weights the Keras InceptionV3 gets random weights,
and without --hub_handle the TF-Hub path loads a stand-in SavedModel: the same
Keras InceptionV3 saved with TF-GAN's calling convention (a dict with 'pool_3'
and 'logits'), so both measure an Inception-sized network through the real
loading and calling code. One warm-up batch is not timed.
"""

from __future__ import annotations

import json
import os
import tempfile
import time

from absl import app
from absl import flags
import keras
import numpy as np
import tensorflow as tf

from tfgt.eval import features

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the flags (only when run as a program, so that tests can
  import several tools)."""
  flags.DEFINE_list("extractors", ["classifier", "keras_inception",
                                   "hub_inception"], "Extractors to time.")
  flags.DEFINE_integer("batch_size", 64, "Images per call (the classifier "
                       "uses 8x this).")
  flags.DEFINE_integer("num_batches", 5, "Timed batches per extractor.")
  flags.DEFINE_string("keras_weights", None, "Keras InceptionV3 weights file "
                      "(default: random weights).")
  flags.DEFINE_string("hub_handle", None, "Inception TF-Hub handle or "
                      "directory (default: a stand-in SavedModel).")


class _HubStandIn(tf.Module):
  """Keras InceptionV3 behind TF-GAN's TF-Hub calling convention."""

  def __init__(self, net: keras.Model):
    super().__init__()
    self.net = net

  @tf.function(input_signature=[
      tf.TensorSpec([None, None, None, 3], tf.float32)])
  def __call__(self, images):
    pooled, logits = self.net(images, training=False)
    return {"pool_3": tf.reshape(pooled, [-1, 1, 1, 2048]), "logits": logits}


def _inception_net() -> keras.Model:
  net = keras.applications.InceptionV3(weights=None,
                                       classifier_activation=None)
  return keras.Model(net.input, [net.get_layer("avg_pool").output, net.output])


def _make_extractor(name: str, workdir: str) -> features.FeatureExtractor:
  if name == "classifier":
    return features.FashionMNISTClassifier()
  if name == "keras_inception":
    path = FLAGS.keras_weights
    if path is None:
      path = os.path.join(workdir, "inception_v3.weights.h5")
      keras.applications.InceptionV3(
          weights=None, classifier_activation=None).save_weights(path)
    return features.KerasInceptionV3(weights=path)
  if name == "hub_inception":
    handle = FLAGS.hub_handle
    if handle is None:
      handle = os.path.join(workdir, "inception_hub")
      tf.saved_model.save(_HubStandIn(_inception_net()), handle)
    return features.InceptionHub(handle=handle)
  raise app.UsageError(f"Unknown extractor {name!r}.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  rng = np.random.RandomState(0)
  results = {}
  with tempfile.TemporaryDirectory() as workdir:
    for name in FLAGS.extractors:
      extractor = _make_extractor(name, workdir)
      batch = FLAGS.batch_size * (8 if name == "classifier" else 1)
      images = rng.uniform(-1, 1, (batch, 32, 32, 1)).astype(np.float32)
      extractor.features(images).numpy()  # Warm-up.
      start = time.perf_counter()
      for _ in range(FLAGS.num_batches):
        extractor.features(images).numpy()
      seconds = time.perf_counter() - start
      rate = FLAGS.num_batches * batch / seconds
      results[name] = dict(images_per_second=round(rate, 1), batch=batch,
                           feature_dim=extractor.feature_dim)
      print(f"{name:<16} {rate:9.1f} images/s  (batch {batch}, "
            f"{extractor.feature_dim}-d features)", flush=True)
  print(json.dumps(dict(results=results, cpus=os.cpu_count(),
                        tensorflow=tf.__version__), indent=2))


if __name__ == "__main__":
  define_flags()
  app.run(main)
