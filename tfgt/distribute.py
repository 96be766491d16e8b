"""Choice of the tf.distribute strategy, and each process's role in it.

Several machines (or several processes on one machine) train one run with
MultiWorkerMirroredStrategy, configured by the TF_CONFIG environment
variable that TensorFlow defines (docs/DISTRIBUTED.md): the chief writes the
run folder, the other workers only compute (`WorkerRole`) and write what
TensorFlow needs written to a private folder (`private_folder`). The
workers check that they train one run (`check_workers_agree`), and a lost
worker stops the others (`WorkerLost`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile

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


class WorkerLost(Exception):
  """A process of a multi-worker run stopped; the others stop too, without
  saving (the step in flight is incomplete), and the same command on every
  worker resumes from the chief's last checkpoint."""


# Errors of collective operations when a peer of the cluster is gone
# (MultiWorkerMirroredStrategy's health check aborts them as UNAVAILABLE).
CLUSTER_ERRORS = (tf.errors.UnavailableError, tf.errors.CancelledError,
                  tf.errors.DeadlineExceededError)


def worker_lost(error: BaseException, model_dir: str) -> WorkerLost:
  """The `WorkerLost` of a collective operation that failed with `error`
  (one of `CLUSTER_ERRORS`): what stopped, the run's last checkpoint and
  how to resume."""
  latest = tf.train.latest_checkpoint(model_dir)
  first = str(error).strip().splitlines()[0] if str(error).strip() else ""
  return WorkerLost(
      f"A process of the cluster stopped ({type(error).__name__}: "
      f"{first}). The last checkpoint in {model_dir} is "
      f"{os.path.basename(latest) if latest else 'none yet'}: start every "
      "worker again with the same command to resume from it "
      "(docs/DISTRIBUTED.md).")


def private_folder(model_dir: str, role: WorkerRole) -> str:
  """A new empty folder for a non-chief worker's writes, in the system's
  temporary folder. Its name starts with the run and the task, so that a
  worker restarted after a crash removes what its killed predecessor left
  (only folders of this user)."""
  run = hashlib.sha1(os.path.abspath(model_dir).encode()).hexdigest()[:12]
  prefix = f"tfgt_{run}_{role.task.replace(' ', '')}_"
  tmp = tempfile.gettempdir()
  for name in os.listdir(tmp):
    stale = os.path.join(tmp, name)
    if (name.startswith(prefix) and os.path.isdir(stale) and
        not os.path.islink(stale) and os.stat(stale).st_uid == os.getuid()):
      shutil.rmtree(stale, ignore_errors=True)
  return tempfile.mkdtemp(prefix=prefix)


def check_workers_agree(strategy: tf.distribute.Strategy, step: tf.Variable,
                        fingerprint: str, model_dir: str) -> None:
  """Stops a multi-worker run whose workers restored different steps (the
  run folder is not on a file system that every worker reads) or run
  different configurations or data.

  Args:
    strategy: the run's MultiWorkerMirroredStrategy.
    step: the step this worker restored.
    fingerprint: hex digest of what fixes the run (config, data, settings;
      `cluster_fingerprint`).
    model_dir: the run folder, for messages.

  Raises:
    UserInputError: the workers differ.
  """
  # Small integers, so that float64 sums of their squares are exact: the
  # variance over workers is zero exactly when they all agree.
  values = [float(int(step.numpy()))] + [
      float(int(fingerprint[i:i + 5], 16)) for i in range(0, 20, 5)]
  local = tf.constant(values, tf.float64)
  per_replica = strategy.run(lambda: (local, local * local))
  mean, mean_square = (
      strategy.reduce(tf.distribute.ReduceOp.MEAN, t, axis=None).numpy()
      for t in per_replica)
  differs = mean_square - mean * mean > 1e-6
  if differs[0]:
    raise UserInputError(
        f"The workers resumed from different steps (this one from "
        f"{int(values[0])}, the mean over workers is {mean[0]:g}): every "
        f"worker must read the chief's {model_dir}. Put --model_dir on a file "
        "system that every machine mounts at the same path "
        "(docs/DISTRIBUTED.md).")
  if differs[1:].any():
    raise UserInputError(
        "The workers do not train the same run: their gin configs, settings "
        "or training data differ. Start every worker with the same command, "
        "the same config files and the same data (docs/DISTRIBUTED.md).")


def cluster_fingerprint(identity: dict) -> str:
  """Hex digest of the run's identity (run.json) and its gin config."""
  text = json.dumps(identity, sort_keys=True) + gin.config_str()
  return hashlib.sha1(text.encode()).hexdigest()


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
