"""TF-GAN's Frechet and kernel distances, imported without `tensorflow_gan`.

`import tensorflow_gan` fails on TensorFlow >= 2.16: its package `__init__`
imports the Estimator integration, which needs `tf.estimator`, removed from
TensorFlow (tensorflow/gan#55). The evaluation functions themselves
(`tensorflow_gan/python/eval/classifier_metrics.py`) are plain TensorFlow and
still work. This module loads that one file (and its helper `eval_utils.py`)
from the installed package while the parent packages are replaced by empty
stand-ins, so that their failing `__init__` files never run. The stand-ins are
removed again afterwards: a later `import tensorflow_gan` behaves as before.

The loading happens on first use, so importing tfgt stays fast (TF-GAN's
metrics import TensorFlow Probability).

Both distances want `tf.Tensor` inputs: `kernel_classifier_distance_and_std_
from_activations` reads `.shape` and `.dtype` from its arguments and fails on
NumPy arrays, so the wrappers here convert first.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
import threading
import types

import numpy as np
import tensorflow as tf

_PARENTS = ("tensorflow_gan", "tensorflow_gan.python",
            "tensorflow_gan.python.eval")
_MODULE = "tensorflow_gan.python.eval.classifier_metrics"
_lock = threading.Lock()
_classifier_metrics = None


def _load_classifier_metrics() -> types.ModuleType:
  """Imports TF-GAN's classifier_metrics without running its package inits."""
  if _MODULE in sys.modules:
    return sys.modules[_MODULE]
  spec = importlib.util.find_spec("tensorflow_gan")
  if spec is None or not spec.submodule_search_locations:
    raise ImportError("tensorflow-gan is not installed: pip install "
                      "tensorflow-gan (its evaluation functions compute FID "
                      "and KID).")
  root = list(spec.submodule_search_locations)[0]
  saved = {name: sys.modules.get(name) for name in _PARENTS}
  try:
    path = root
    for name in _PARENTS:
      if name != _PARENTS[0]:
        path = os.path.join(path, name.rsplit(".", 1)[1])
      stand_in = types.ModuleType(name)
      stand_in.__path__ = [path]
      sys.modules[name] = stand_in
    return importlib.import_module(_MODULE)
  finally:
    for name, module in saved.items():
      if module is None:
        sys.modules.pop(name, None)
      else:
        sys.modules[name] = module


def classifier_metrics() -> types.ModuleType:
  """TF-GAN's `classifier_metrics` module (tfgan.eval.* functions)."""
  global _classifier_metrics
  with _lock:
    if _classifier_metrics is None:
      _classifier_metrics = _load_classifier_metrics()
  return _classifier_metrics


def _as_tensor(activations, name: str) -> tf.Tensor:
  activations = tf.convert_to_tensor(activations)
  if activations.shape.rank != 2:
    raise ValueError(f"{name} must be a matrix [samples, features], got shape "
                     f"{activations.shape}.")
  if not activations.dtype.is_floating:
    activations = tf.cast(activations, tf.float32)
  return activations


def frechet_distance(activations1, activations2) -> float:
  """TF-GAN's `frechet_classifier_distance_from_activations`.

  Args:
    activations1: features [n1, d] (NumPy or tensor, any float type).
    activations2: features [n2, d].

  Returns:
    |m1 - m2|^2 + Tr(C1 + C2 - 2 (C1 C2)^(1/2)) with unbiased covariances,
    computed in float64; >= 0 up to rounding.
  """
  a1 = _as_tensor(activations1, "activations1")
  a2 = _as_tensor(activations2, "activations2")
  a1, a2 = tf.cast(a1, tf.float64), tf.cast(a2, tf.float64)
  fid = classifier_metrics().frechet_classifier_distance_from_activations(
      a1, a2)
  return float(fid.numpy())


def kernel_distance(activations1, activations2, max_block_size: int = 1024
                    ) -> tuple[float, float]:
  """TF-GAN's `kernel_classifier_distance_and_std_from_activations` (KID).

  TF-GAN splits both sets into blocks of at most `max_block_size` rows and
  averages the unbiased MMD^2 of the polynomial kernel (x.y / d + 1)^3 over
  the blocks; its docstring warns that the rows must be in random order.
  Callers of this module pass features in class order, so the rows are
  shuffled here with a fixed seed (the result is deterministic).

  Args:
    activations1: features [n1, d] (NumPy or tensor, float32 or float64; the
      computation keeps that type).
    activations2: features [n2, d].
    max_block_size: largest block.

  Returns:
    (KID, its standard error; NaN when there is a single block).
  """
  a1 = _as_tensor(activations1, "activations1")
  a2 = _as_tensor(activations2, "activations2")
  if a1.dtype != a2.dtype:
    a1, a2 = tf.cast(a1, tf.float64), tf.cast(a2, tf.float64)
  rng = np.random.RandomState(0)
  a1 = tf.gather(a1, rng.permutation(int(a1.shape[0])))
  a2 = tf.gather(a2, rng.permutation(int(a2.shape[0])))
  # TF-GAN passes tf.map_fn a deprecated argument (back_prop=False); keep
  # TensorFlow's deprecation notice about it off the user's terminal.
  logger = tf.get_logger()
  level = logger.level
  logger.setLevel(logging.ERROR)
  try:
    kid, std = (classifier_metrics()
                .kernel_classifier_distance_and_std_from_activations(
                    a1, a2, max_block_size=max_block_size))
  finally:
    logger.setLevel(level)
  return float(kid.numpy()), float(std.numpy())
