"""Choice of the tf.distribute strategy, and each process's role in it.

Several machines (or several processes on one machine) train one run with
MultiWorkerMirroredStrategy, configured by the TF_CONFIG environment
variable that TensorFlow defines (docs/DISTRIBUTED.md): the chief writes the
run folder, the other workers only compute (`WorkerRole`).
"""

from __future__ import annotations

import dataclasses
import json
import os

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


def cluster_size() -> int:
  """Number of tasks in the cluster that TF_CONFIG names (0 without one).

  Raises:
    UserInputError: TF_CONFIG is not the JSON TensorFlow defines.
  """
  text = os.environ.get("TF_CONFIG", "")
  if not text.strip():
    return 0
  try:
    config = json.loads(text)
    return sum(len(tasks) for tasks in config["cluster"].values())
  except (ValueError, KeyError, TypeError, AttributeError) as e:
    raise UserInputError(
        f"TF_CONFIG is not valid ({e}): it must be JSON like "
        '{"cluster": {"worker": ["host1:port", "host2:port"]}, '
        '"task": {"type": "worker", "index": 0}} (docs/DISTRIBUTED.md).'
    ) from e


@dataclasses.dataclass(frozen=True)
class WorkerRole:
  """What this process is in its strategy's cluster.

  Attributes:
    is_chief: whether it writes the run folder (the only process of a
      single-machine run; task "chief", or worker 0 when the cluster has no
      chief, under MultiWorkerMirroredStrategy).
    task: e.g. "worker 1" ("" outside a cluster).
    num_workers: processes that train together (1 outside a cluster).
  """
  is_chief: bool = True
  task: str = ""
  num_workers: int = 1


def worker_role(strategy: tf.distribute.Strategy) -> WorkerRole:
  """The role of this process in `strategy`'s cluster."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or (
      resolver is None or not resolver.task_type):
    return WorkerRole()
  spec = resolver.cluster_spec().as_dict()
  task_type, task_id = resolver.task_type, int(resolver.task_id)
  if "chief" in spec:
    chief = task_type == "chief"
  else:
    chief = task_type == "worker" and task_id == 0
  return WorkerRole(chief, f"{task_type} {task_id}",
                    sum(len(v) for v in spec.values()))


@gin.configurable(allowlist=["name"])
def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
  """Builds a strategy by name.

  "auto": MultiWorkerMirroredStrategy when TF_CONFIG names a cluster of
  several tasks; else MirroredStrategy over the GPUs when there are any, over
  the logical CPUs when the CPU was split, else the default strategy.
  "multi_worker": MultiWorkerMirroredStrategy configured from TF_CONFIG.
  """
  if name not in STRATEGIES:
    raise UserInputError(
        f"make_strategy.name={name!r} is not a strategy: use one of "
        f"{', '.join(repr(s) for s in STRATEGIES)}.")
  if name == "multi_worker" or (name == "auto" and cluster_size() > 1):
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
