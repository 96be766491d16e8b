"""Perceptual path length between classes (tfgt.eval.ppl) against paths
whose length is known in closed form, and through the evaluator."""

import math

import gin
import numpy as np
import pytest
import tensorflow as tf

from tests.eval.test_evaluator import PooledPixels, bind_data
from tfgt.errors import UserInputError
from tfgt.eval import evaluator as evaluator_lib
from tfgt.eval import ppl


def _features(images):
  return tf.reshape(images, [tf.shape(images)[0], -1])


def _circle(z, weights):
  # The image turns at a constant angular speed pi/2 per unit of t on the
  # path 0 -> 1: unit features, so d / eps^2 = (pi / 2)^2 everywhere.
  angle = math.pi / 2 * weights[:, 1]
  del z
  return tf.stack([tf.cos(angle), tf.sin(angle)], axis=1)[:, None, None, :]


def _line(z, weights):
  # Features (1, t): after normalisation the angle is atan(t), its speed
  # 1 / (1 + t^2), so d / eps^2 = 1 / (1 + t^2)^2.
  del z
  t = weights[:, 1]
  return tf.stack([tf.ones_like(t), t], axis=1)[:, None, None, :]


def test_path_weights_mix_the_two_classes():
  w = ppl.path_weights(2, 0, tf.constant([0.0, 0.25, 1.0]), 3).numpy()
  np.testing.assert_allclose(w, [[0, 0, 1], [0.25, 0, 0.75], [1, 0, 0]])
  assert ppl.class_pairs([3, 1, 2]) == [(3, 1), (3, 2), (1, 2)]
  with pytest.raises(UserInputError, match="at least two classes, got "
                     r"\[4\]: evaluate a run with two or more"):
    ppl.class_pairs([4, 4])


def test_known_path_lengths():
  args = dict(features=_features, pair=(0, 1), num_classes=2, dim_z=3,
              num_samples=400, batch_size=128, epsilon=1e-3)
  for sampling in ppl.SAMPLINGS:
    values = ppl.path_lengths(_circle, sampling=sampling, **args)
    assert values.shape == (400,)
    np.testing.assert_allclose(values, (math.pi / 2) ** 2, rtol=2e-2)
  full = ppl.path_lengths(_line, sampling="full", **args)
  # The mean over t ~ U(0, 1) of 1 / (1 + t^2)^2 is 1/4 + pi/8.
  assert np.mean(full) == pytest.approx(0.25 + math.pi / 8, rel=0.05)
  end = ppl.path_lengths(_line, sampling="end", **args)
  # Half the steps leave t = 0 (speed 1), half enter t = 1 (speed 1/4).
  near_a, near_b = np.isclose(end, 1.0, rtol=0.01), np.isclose(end, 0.25,
                                                               rtol=0.01)
  assert np.all(near_a | near_b) and near_a.any() and near_b.any()
  assert 0.3 < np.mean(near_a) < 0.7
  # The same seed draws the same values.
  np.testing.assert_array_equal(
      full, ppl.path_lengths(_line, sampling="full", **args))
  result = ppl.class_path_length(_circle, _features, [0, 1], 2, 3, 50,
                                 epsilon=1e-3)
  assert result["ppl_full"] == pytest.approx((math.pi / 2) ** 2, rel=2e-2)
  assert ppl.trimmed_mean(np.array([0.0] + [1.0] * 198 + [1e9])) == 1.0
  with pytest.raises(UserInputError, match="sampling must be one of"):
    ppl.path_lengths(_line, sampling="middle", **args)


class _ClassMixGenerator:
  """The generator contract with class weights: images move with the mix of
  the classes' fixed patterns (a random BigGAN at initialisation may not
  depend on the class at all)."""

  num_classes, resolution, channels, dim_z = 3, 32, 1, 16

  def __init__(self):
    rng = np.random.RandomState(0)
    self.w = tf.constant(rng.normal(size=(16, 32 * 32)) / 4, tf.float32)
    self.patterns = tf.constant(rng.normal(size=(3, 32 * 32)), tf.float32)

  def __call__(self, inputs, training=False):
    del training
    z, y = inputs
    if y.shape.rank == 1:
      y = tf.one_hot(y, self.num_classes)
    x = tf.matmul(z, self.w) + tf.matmul(tf.cast(y, tf.float32),
                                         self.patterns)
    return tf.reshape(tf.tanh(x), [-1, 32, 32, 1])


def test_evaluator_scores_the_path_between_two_classes(tmp_path):
  bind_data(classes=(8, 9))
  generator = _ClassMixGenerator()
  evaluator = evaluator_lib.Evaluator(
      extractor=PooledPixels(), metrics="fid,ppl", num_samples=40,
      ppl_samples=30, cache_dir=str(tmp_path))
  assert evaluator.result_names() >= {"ppl_full", "ppl_end"}
  result = evaluator.evaluate(generator)
  assert result.metrics["ppl_full"] > 0 and result.metrics["ppl_end"] > 0
  assert result.settings["ppl_samples"] == 30
  with pytest.raises(UserInputError, match="ppl_samples must be >= 1"):
    evaluator_lib.Evaluator(metrics="ppl", ppl_samples=0)
  gin.clear_config()
  bind_data(classes=(8,))
  with pytest.raises(UserInputError, match="at least two classes"):
    evaluator_lib.Evaluator(extractor=PooledPixels(), metrics="ppl",
                            cache_dir=str(tmp_path)).prepare()
