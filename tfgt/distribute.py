"""Choice of the tf.distribute strategy."""

from __future__ import annotations

import gin
import tensorflow as tf
from absl import logging

from tfgt.errors import UserInputError

STRATEGIES = ("auto", "mirrored", "multi_worker", "default")


def split_cpu(num_devices: int) -> None:
  """Splits the CPU into `num_devices` logical devices.

  Must run before TensorFlow initialises its devices. With MirroredStrategy on
  the resulting devices, the multi-replica code path runs on a CPU machine.
  """
  if num_devices <= 1:
    return
  cpus = tf.config.list_physical_devices("CPU")
  tf.config.set_logical_device_configuration(
      cpus[0], [tf.config.LogicalDeviceConfiguration()] * num_devices)


@gin.configurable(allowlist=["name"])
def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
  """Builds a strategy by name.

  "auto": MirroredStrategy over the GPUs when there are any, over the logical
  CPUs when the CPU was split, else the default strategy. "multi_worker":
  MultiWorkerMirroredStrategy configured from TF_CONFIG.
  """
  if name not in STRATEGIES:
    raise UserInputError(
        f"make_strategy.name={name!r} is not a strategy: use one of "
        f"{', '.join(repr(s) for s in STRATEGIES)}.")
  if name == "multi_worker":
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
  elif name == "default":
    strategy = tf.distribute.get_strategy()
  else:
    gpus = tf.config.list_logical_devices("GPU")
    cpus = tf.config.list_logical_devices("CPU")
    if gpus:
      strategy = tf.distribute.MirroredStrategy([d.name for d in gpus])
    elif len(cpus) > 1 or name == "mirrored":
      strategy = tf.distribute.MirroredStrategy(
          [d.name for d in cpus],
          cross_device_ops=tf.distribute.ReductionToOneDevice())
    else:
      strategy = tf.distribute.get_strategy()
  logging.info("Strategy %s with %d replica(s).", type(strategy).__name__,
               strategy.num_replicas_in_sync)
  return strategy
