"""The exponential moving average (EMA) of a generator's weights.

Samples, evaluations and bundles use the EMA generator (Karras et al. 2018;
BigGAN, Brock et al. 2019, section 4): after every G update,
    ema <- ema + (1 - decay) (g - ema),
and before `start` the EMA copies G. Variables that are state rather than
weights (the architecture's `ema_copies` hook, e.g. spectral norm's
power-iteration vectors) are copied, never averaged.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfgt.models import architectures
from tfgt.models import weights


class ExponentialMovingAverage:
  """Keeps `average` (a built model) the EMA of `model`'s variables.

  Args:
    average: a model of the same structure as `model`; set to `model`'s
      values at construction.
    model: the model that trains.
    decay: in [0, 1); the weight of the old average per update.
    start: before this step (int) the average copies the model.

  Raises:
    ValueError: a decay outside [0, 1), or models of different structure.
  """

  def __init__(self, average: keras.Model, model: keras.Model,
               decay: float = 0.999, start: int = 0):
    if not 0.0 <= decay < 1.0:
      raise ValueError(f"EMA decay must be in [0, 1), got {decay}.")
    self.average = average
    self.decay = decay
    self.start = start
    # (average variable, model variable, whether the average copies it).
    self._pairs = [(a, v, architectures.ema_copies(average, a))
                   for a, v in weights.pair_variables(average, model)]
    for a, v, _ in self._pairs:
      a.assign(v)

  def update(self, step: tf.Tensor) -> None:
    """One update after the G update of `step` (int64 scalar, graph-safe)."""
    warming_up = step < self.start
    for a, v, copied in self._pairs:
      if copied:
        a.assign(v)
      else:
        # a + (1 - decay) (v - a) leaves a value that did not change exactly
        # as it is (decay * x + (1 - decay) * x need not be x in float32), so
        # frozen weights stay bit-identical to the source's.
        a.assign(tf.where(warming_up, tf.convert_to_tensor(v),
                          a + (1.0 - self.decay) * (v - a)))
