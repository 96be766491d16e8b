r"""One trainer for every GAN of the library.

    python -m tfgt.train --gin_file=gin_configs/fashion_mnist/pretrain_biggan.gin \
        --model_dir=/tmp/run [--gin_param=train.num_steps=100] [--logical_cpus=2]

The method (a `tfgt.methods` class bound to `train.method` in gin) decides what
the models are, which variables train in which optimizer group and what the
losses are (its objective, `tfgt.objectives`); this module only runs the loop:
data, a tf.distribute strategy, the step (`tfgt.steps`: D and G updates, EMA),
checkpoints that resume, TensorBoard summaries and progress on the terminal.
Running the same command again continues from the latest checkpoint. What
the run writes in model_dir is listed in `tfgt.run_folder`; the flow from
this command to the models is drawn in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import signal
import sys
import threading
import time
from typing import Any, Callable, Sequence

from absl import app
from absl import flags
from absl import logging
import gin
import keras
import numpy as np
import tensorflow as tf

from tfgt import checkpoints as checkpoints_lib
from tfgt import cli
from tfgt import config as config_lib
from tfgt import distribute
from tfgt import ema as ema_lib
from tfgt import files
from tfgt import images as image_utils
from tfgt import precision as precision_lib
from tfgt import run_folder
from tfgt import run_lock
from tfgt import steps as steps_lib
from tfgt.data import pipeline
from tfgt import errors
from tfgt.errors import UserInputError
from tfgt.eval import cache as cache_lib
from tfgt.eval import evaluator as evaluator_lib
from tfgt.eval import features as features_lib
from tfgt.eval import registry as metric_registry
from tfgt.methods import base
from tfgt.models import bundle

# Make every configurable of the library known to gin before parsing.
import tfgt.eval  # pylint: disable=unused-import
import tfgt.methods  # pylint: disable=unused-import

FLAGS = flags.FLAGS
# Exit status when a multi-worker run stopped because a worker was lost
# (EX_TEMPFAIL: the same command again resumes).
EXIT_WORKER_LOST = 75


def define_flags() -> None:
  """Defines the command-line flags (only when run as a program, so that
  importing this module next to other tfgt programs defines no flags)."""
  flags.DEFINE_multi_string("gin_file", [], "Gin config files, in order.")
  flags.DEFINE_multi_string("gin_param", [], "Gin bindings, applied last.")
  flags.DEFINE_string("model_dir", None, "Where checkpoints and logs go.")
  flags.DEFINE_integer("seed", None, "Overrides train.seed.")
  flags.DEFINE_integer("logical_cpus", 0,
                       "Split the CPU into this many logical devices (with "
                       "strategy 'auto' this trains with MirroredStrategy on "
                       "them).")
  flags.DEFINE_bool("deterministic", False,
                    "Enable TensorFlow op determinism (slower).")
  flags.DEFINE_string("features", None, features_lib.FLAG_HELP)


def _format_eta(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Interrupted(Exception):
  """SIGTERM arrived; the trainer saves and stops."""


# A worker of a multi-worker run stopped (`tfgt.distribute`).
WorkerLost = distribute.WorkerLost


class _Diverged(UserInputError):
  """A loss became NaN or infinite; nothing of that step is saved."""


_INTEGER_SETTINGS = ("num_steps", "batch_size", "d_steps", "ema_start", "seed",
                     "checkpoint_every", "keep_checkpoints", "log_every",
                     "sample_every", "samples_per_class", "eval_every")
# TensorBoard text summary: the precision of each start (step = its first).
PRECISION_SUMMARY = "run/precision"
_REAL_SETTINGS = ("g_lr", "d_lr", "beta1", "beta2", "ema_decay")
_BOOL_SETTINGS = ("random_flip", "use_xla")


def _check_types(settings: dict) -> None:
  """Raises UserInputError naming every setting of `train` whose value has
  the wrong type (a gin binding such as `train.num_steps = 'abc'`), before
  anything runs."""
  kinds = dict({n: "int" for n in _INTEGER_SETTINGS},
               **{n: "real" for n in _REAL_SETTINGS},
               **{n: "bool" for n in _BOOL_SETTINGS}, best_metric="str",
               precision="str")
  more = []
  if not isinstance(settings["method"], base.Method):
    more.append(f"train.method = {settings['method']!r} (give a method such "
                "as @CGANTransfer())")
  evaluator = settings["evaluator"]
  if evaluator is not None and not callable(evaluator):
    more.append(f"train.evaluator = {evaluator!r} (give an evaluator such as "
                "@Evaluator(), or None)")
  errors.check_types("train", settings, kinds, more)


def _check_arguments(num_steps: int, batch_size: int, d_steps: int,
                     ema_decay: float, log_every: int, intervals: dict,
                     evaluator, best_metric: str) -> None:
  """Raises UserInputError for settings no run can use."""
  if batch_size < 1 or num_steps < 0 or d_steps < 1:
    raise UserInputError("train.batch_size and train.d_steps must be >= 1 and "
                         "train.num_steps >= 0.")
  if not 0.0 <= ema_decay < 1.0:
    raise UserInputError(f"train.ema_decay must be in [0, 1), got "
                         f"{ema_decay}.")
  if log_every < 1:
    raise UserInputError(f"train.log_every must be >= 1, got {log_every}.")
  for name, value in intervals.items():
    if value < 0:
      raise UserInputError(f"train.{name} must be >= 0 (0: never), got "
                           f"{value}.")
  result_names = getattr(evaluator, "result_names", None)
  if result_names is not None and best_metric not in result_names():
    raise UserInputError(
        f"train.best_metric={best_metric!r} is not among the evaluator's "
        f"results {sorted(result_names())}: choose one of them, or add its "
        "metric to Evaluator.metrics.")
  if (metric_registry.is_reference(best_metric) or
      best_metric in evaluator_lib.FEATURE_CHECK_RESULTS):
    counterpart = best_metric.removesuffix("_real")
    raise UserInputError(
        f"train.best_metric={best_metric!r} describes the real images "
        "alone (the same at every evaluation) and cannot choose a best "
        "checkpoint: choose " + (
            f"{counterpart!r} (its generated counterpart) or another result."
            if counterpart != best_metric else "another result."))


def _check_strategy(strategy: tf.distribute.Strategy, batch_size: int,
                    use_xla: bool) -> None:
  replicas = strategy.num_replicas_in_sync
  if batch_size % replicas:
    raise UserInputError(f"train.batch_size={batch_size} does not split over "
                         f"{replicas} replicas.")
  if use_xla and replicas > 1:
    # The synchronised batch norm all-reduces inside the replica step, and
    # collectives inside an XLA cluster hang on a multi-device CPU strategy.
    raise UserInputError(
        f"train.use_xla=True needs a single replica, the strategy has "
        f"{replicas}. Set train.use_xla=False or train on one device.")


@dataclasses.dataclass
class _Data:
  """The training data and the classes of the run."""
  images: np.ndarray
  labels: np.ndarray
  selection: pipeline.ClassSelection
  class_names: list[str]  # All N + M, old ones first.
  train_ids: np.ndarray  # Model ids of the classes in the data, int32.
  spec: pipeline.DataSpec  # Where the images come from (the evaluator's).


def _load_data(method: base.Method) -> _Data:
  info = method.source_info()
  images, labels, selection = pipeline.load_training_data(
      resolution=info.resolution, channels=info.channels,
      label_offset=len(info.class_names))
  pipeline.check_new_class_names(info.class_names, selection)
  logging.info("Training classes: %s (model ids %d-%d), %d images.",
               ", ".join(selection.names), selection.label_offset,
               selection.label_offset + len(selection.names) - 1, len(images))
  return _Data(images, labels, selection, info.class_names + selection.names,
               np.unique(labels).astype(np.int32), pipeline.configured_data())


@dataclasses.dataclass
class _Models:
  """Everything a training checkpoint holds."""
  setup: base.GANSetup
  ema: ema_lib.ExponentialMovingAverage
  optimizers: dict
  step: tf.Variable
  # {"g": ..., "d": ...} under mixed_float16 (`precision.DynamicLossScale`).
  loss_scales: dict = dataclasses.field(default_factory=dict)
  # The objective's variables (`Objective.state`), e.g. ADA's adaptive p.
  objective_state: dict = dataclasses.field(default_factory=dict)

  def optional_parts(self) -> dict:
    """{name: tf.train.Checkpoint} of what a run may or may not have had
    when it was saved (another precision, an objective state switched on
    when resumed): restored when present."""
    parts = {}
    if self.loss_scales:
      parts["loss_scales"] = tf.train.Checkpoint(**self.loss_scales)
    if self.objective_state:
      parts["objective"] = tf.train.Checkpoint(**self.objective_state)
    return parts

  def checkpoint(self, optional: bool = True) -> tf.train.Checkpoint:
    """The training checkpoint; with `optional` also `optional_parts`: the
    loss scales under `loss_scales/`, the objective's state under
    `objective/`."""
    objects = dict(generator=self.setup.generator,
                   ema_generator=self.ema.average, step=self.step,
                   # Nested so that variables are named by their model paths,
                   # not by the optimizers' variable lists; a group's
                   # optimizer is found under the group's name.
                   optimizers=tf.train.Checkpoint(**self.optimizers))
    if self.setup.discriminator is not None:
      objects["discriminator"] = self.setup.discriminator
    if optional:
      objects.update(self.optional_parts())
    return tf.train.Checkpoint(**objects)


def _build_models(strategy: tf.distribute.Strategy, method: base.Method,
                  class_names: list[str], seed: int, g_lr: float, d_lr: float,
                  beta1: float, beta2: float, ema_decay: float,
                  ema_start: int, precision: str = "float32") -> _Models:
  """The method's models under the dtype policy of `precision` (variables
  float32, computation in its compute dtype), their EMA, optimizers, step
  counter and, under mixed_float16, one loss scale per network."""
  with strategy.scope(), precision_lib.policy_scope(precision):
    keras.utils.set_random_seed(seed)
    setup = method.build(class_names)
    average = setup.clone_generator()
    average((tf.zeros([1, setup.generator.dim_z]), tf.zeros([1], tf.int32)))
    ema = ema_lib.ExponentialMovingAverage(average, setup.generator,
                                           ema_decay, ema_start)
    optimizers = steps_lib.make_optimizers(setup.g_groups, g_lr, beta1, beta2)
    optimizers.update(steps_lib.make_optimizers(setup.d_groups, d_lr, beta1,
                                                beta2))
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    loss_scales = {}
    if precision_lib.needs_loss_scaling(precision):
      loss_scales["g"] = precision_lib.DynamicLossScale(name="g_loss_scale")
      if setup.discriminator is not None:
        loss_scales["d"] = precision_lib.DynamicLossScale(name="d_loss_scale")
    objective_state = setup.objective.state()
  return _Models(setup, ema, optimizers, step, loss_scales, objective_state)


def _restore(path: str, checkpoint: tf.train.Checkpoint,
             models: _Models) -> None:
  """Restores the latest checkpoint, with this session's learning rates.

  A Keras optimizer checkpoints its learning rate; the rates of the config
  win, so that a resumed run may change them. The loss scales of a
  mixed_float16 run are restored when the checkpoint has them (it may come
  from a run in another precision) and start afresh otherwise; so is the
  objective's state (ADA's p starts at its initial value in a run that had
  none).
  """
  rates = {name: float(opt.learning_rate.numpy())
           for name, opt in models.optimizers.items()}
  optional = models.optional_parts()
  if optional:
    checkpoint = models.checkpoint(optional=False)
    tf.train.Checkpoint(**optional).restore(path).expect_partial()
  try:
    status = checkpoint.restore(path)
    status.assert_existing_objects_matched()
    if optional:  # Restored above; not "unused" values of this checkpoint.
      status.expect_partial()
  except AssertionError as e:
    raise UserInputError(
        f"The checkpoint {path} does not match the "
        f"models this config builds (another method or its options?): {e}. "
        "Use a new --model_dir, or the config that made this one.") from e
  for name, opt in models.optimizers.items():
    opt.learning_rate.assign(rates[name])


def _make_folder(model_dir: str) -> bool:
  """Creates the run folder if needed; returns whether it was created.

  Raises:
    UserInputError: the path is a file, or cannot be created.
  """
  if os.path.isdir(model_dir):
    return False
  if os.path.lexists(model_dir):
    raise UserInputError(
        f"--model_dir={model_dir} is a file, not a folder. Give the folder "
        "of a run (new or to resume).")
  try:
    os.makedirs(model_dir)
  except OSError as e:
    raise UserInputError(f"Cannot create --model_dir={model_dir} "
                         f"({e.strerror}). Give a folder you can write.") from e
  return True


def _remove_if_unused(model_dir: str) -> None:
  """Removes a run folder that a failed start created, if it holds nothing
  but its lock file."""
  if set(os.listdir(model_dir)) <= {run_lock.LOCK_FILE}:
    shutil.rmtree(model_dir, ignore_errors=True)


def _disk_full(model_dir: str, error: BaseException) -> UserInputError:
  """The one-line error for a write that found the disk full."""
  steps = checkpoints_lib.steps_on_disk(model_dir)
  kept = (f"the newest checkpoint on disk, ckpt-{steps[-1]}, is kept (a "
          "resume checks it and falls back to an older one if it is torn)"
          if steps else "no checkpoint had been written")
  return UserInputError(
      f"The disk is full (no space left) while writing in {model_dir}: "
      f"{kept}. Free space (df -h {model_dir}) and run the same command to "
      "resume.")


def _distributed_batches(strategy: tf.distribute.Strategy, data: _Data,
                         batch_size: int, seed: int, random_flip: bool,
                         dim_z: int, skip: int):
  """An iterator of batch dicts (see `objectives.Batch`) over the replicas.

  Everything random is keyed on (seed, batch index), so a run is the same on
  any number of replicas and a resumed run continues with the batches it
  would have seen (`skip` = batches already used).
  """
  ids = tf.constant(data.train_ids)
  num_ids = len(data.train_ids)

  def add_latents(index, batch):
    batch_images, batch_labels = batch
    b = tf.shape(batch_labels)[0]

    def draw_labels(salt):
      pick = tf.random.stateless_uniform([b], seed=[seed + salt, index],
                                         maxval=num_ids, dtype=tf.int32)
      return tf.gather(ids, pick)

    return dict(
        images=batch_images, labels=batch_labels,
        z_d=tf.random.stateless_normal([b, dim_z], seed=[seed + 1, index]),
        y_d=draw_labels(2),
        z_g=tf.random.stateless_normal([b, dim_z], seed=[seed + 3, index]),
        y_g=draw_labels(4), index=tf.fill([b], index))

  dataset = pipeline.training_dataset(data.images, data.labels, batch_size,
                                      seed, random_flip=random_flip)
  dataset = dataset.enumerate().skip(skip).map(add_latents)
  return iter(strategy.experimental_distribute_dataset(dataset))


class _Outputs:
  """What a run leaves for people and programs: bundles, grids, evaluations.

  The plain generator that bundles, grids and evaluations see is the fold of
  the EMA generator (the EMA generator itself when there is nothing to fold).
  """

  def __init__(self, folder: run_folder.RunFolder, models: _Models,
               class_names: list[str], method_name: str, keep: int,
               grid_ids: list[int], grid_z: tf.Tensor, evaluator,
               best_metric: str, summary_writer):
    self.folder = folder
    self.setup = models.setup
    self.average = models.ema.average
    self.class_names = class_names
    self.method_name = method_name
    self.exported = self.setup.fold(self.average)
    self.bundle = bundle.BundleWriter(
        folder.path(run_folder.BUNDLE), self.exported,
        self.setup.discriminator, class_names, method_name, max_to_keep=keep)
    self._best_bundle = None
    self.grid_ids = grid_ids
    self.grid_z = grid_z
    self.evaluator = evaluator
    self.best_metric = best_metric
    self.summary_writer = summary_writer
    self._draw = tf.function(
        lambda z, y: self.exported((z, y), training=False))

  def refresh(self) -> None:
    folded = self.setup.fold(self.average)
    if folded is not self.exported:
      self.exported.set_weights(folded.get_weights())

  def save_bundle(self, step: int) -> None:
    self.refresh()
    self.bundle.save(step)

  def write_grid(self, step: int) -> np.ndarray:
    self.refresh()
    picture = image_utils.sample_grid(self._draw, self.grid_ids, self.grid_z)
    with self.summary_writer.as_default(step=step):
      tf.summary.image("samples_ema", picture[None], max_outputs=1)
    return picture

  def evaluate(self, step: int) -> None:
    """Scores the exported generator; keeps its bundle if it is the best."""
    self.refresh()
    # The evaluator's feature extractors are float32 whatever the
    # generator's precision (its images are float32).
    with precision_lib.policy_scope("float32"):
      results = self.evaluator(self.exported)
    # The metrics by name, then the feature check's numbers.
    logging.info("Step %d evaluation: %s", step, evaluator_lib.format_results(
        dict(sorted(results.items(), key=lambda kv: (
            kv[0] in evaluator_lib.FEATURE_CHECK_RESULTS, kv[0])))))
    with self.summary_writer.as_default(step=step):
      for k, v in results.items():
        tf.summary.scalar(f"eval/{k}", v)
    value = results.get(self.best_metric)
    if value is None:
      logging.warning("The evaluation has no %r: no best checkpoint kept.",
                      self.best_metric)
    improved = self.folder.is_new_best(
        value, self.best_metric,
        lambda new, old: metric_registry.better(self.best_metric, new, old))
    if improved:
      # The bundle first, beside the old best: best.json, written next, never
      # names a bundle not yet written nor loses the one it names; the old
      # best is deleted after (`RunFolder.record_evaluation`).
      if self._best_bundle is None:
        self._best_bundle = bundle.BundleWriter(
            self.folder.path(run_folder.BEST_BUNDLE), self.exported,
            self.setup.discriminator, self.class_names, self.method_name,
            max_to_keep=2)
      self._best_bundle.save(step)
      logging.info("New best %s %.4g at step %d: kept in %s.",
                   self.best_metric, value, step,
                   self.folder.path(run_folder.BEST_BUNDLE))
    self.folder.record_evaluation(step, results, improved)


class _Progress:
  """Terminal lines and TensorBoard scalars of the training, with the rate.

  The rate counts training steps only: grids, checkpoints and evaluations in
  a window are subtracted (`pause`) and evaluations enter the ETA.
  """

  def __init__(self, summary_writer, num_steps: int, batch_size: int,
               learning_rates: dict, evaluator, eval_every: int):
    self.summary_writer = summary_writer
    self.num_steps = num_steps
    self.batch_size = batch_size
    self.learning_rates = learning_rates
    self.evaluator = evaluator
    self.eval_every = eval_every
    self.eval_seconds = 0.0
    self.restart()

  def restart(self) -> None:
    self.window_start, self.window_steps, self.paused = time.time(), 0, 0.0

  def pause(self, seconds: float) -> None:
    self.paused += seconds

  def log(self, step: int, losses: dict) -> dict:
    """Writes one line and the scalars; returns the metrics logged."""
    now = time.time()
    busy = now - self.window_start - self.paused
    rate = self.window_steps / max(busy, 1e-9) if self.window_steps else 0.0
    metrics = {"step": float(step)}
    metrics.update({k: float(v) for k, v in losses.items()})
    if rate:
      metrics.update(steps_per_sec=rate, images_per_sec=rate * self.batch_size)
    with self.summary_writer.as_default(step=step):
      for k, v in metrics.items():
        if k != "step":
          tf.summary.scalar(f"train/{k}", v)
      for k, v in self.learning_rates.items():
        tf.summary.scalar(f"train/{k}", v)
    remaining_evals = (
        (self.num_steps // self.eval_every - step // self.eval_every)
        if self.evaluator is not None and self.eval_every else 0)
    eta = (_format_eta((self.num_steps - step) / rate +
                       remaining_evals * self.eval_seconds) if rate else "--")
    logging.info(
        "step %d/%d (%.0f%%)  %.2f steps/s  %.0f images/s  ETA %s  %s", step,
        self.num_steps, 100.0 * step / max(self.num_steps, 1), rate,
        rate * self.batch_size, eta,
        "  ".join(f"{k} {float(v):.4f}" for k, v in losses.items()))
    self.restart()
    return metrics


def _timed(fn, *args) -> float:
  start = time.time()
  fn(*args)
  return time.time() - start


def _named_losses(d_loss, g_loss, d_parts: dict, g_parts: dict) -> dict:
  """{"d_loss", "g_loss", "d/<part>", "g/<part>"}: what a step reports.

  A part equal to its whole loss (the only part) is not repeated.
  """
  out = {} if d_loss is None else {"d_loss": d_loss}
  out["g_loss"] = g_loss
  for prefix, parts in (("d", d_parts), ("g", g_parts)):
    if len(parts) > 1:
      out.update({f"{prefix}/{k}": v for k, v in parts.items()})
  return out


def _diverged(step: int, what: str, last_saved: int) -> _Diverged:
  kept = (f"the last checkpoint (step {last_saved}) is kept and the next "
          "run resumes from it" if last_saved
          else "no checkpoint had been written")
  return _Diverged(
      f"Training diverged at step {step}: {what}. Nothing of that step is "
      f"saved; {kept}. Lower the learning rates (train.g_lr, train.d_lr) or "
      "check the data, then run again.")


def _check_finite_losses(step: int, losses: dict, last_saved: int,
                         loss_scales: dict | None = None,
                         skipped_before: int = 0) -> None:
  """Raises _Diverged on a NaN or infinite loss, except in a mixed_float16
  step whose update was skipped for an overflow (`loss_scales`: the run's
  `precision.DynamicLossScale`s; `skipped_before`: their skipped updates
  before the step), unless a loss scale fell below its minimum."""
  bad = {k: float(v) for k, v in losses.items()
         if not math.isfinite(float(v))}
  if loss_scales:
    skipped = sum(int(s.skipped.numpy()) for s in loss_scales.values())
    if skipped > skipped_before:
      scales = {k: float(s.scale.numpy()) for k, s in loss_scales.items()}
      logging.info("Step %d: float16 gradients overflowed, the update was "
                   "skipped; loss scales now %s.", step, scales)
      if min(scales.values()) < precision_lib.DynamicLossScale.MIN_SCALE:
        bad["loss scale"] = min(scales.values())
      else:
        bad = {}
  if bad:
    raise _diverged(step, ", ".join(f"{k} {v}" for k, v in bad.items()),
                    last_saved)


@tf.function
def _all_finite(variables) -> tf.Tensor:
  return tf.reduce_all([tf.reduce_all(tf.math.is_finite(v))
                        for v in variables])


def _check_finite_weights(step: int, models: _Models, last_saved: int) -> None:
  """Refuses to save weights with NaN or infinities (a loss may still have
  been finite in the step whose update broke them)."""
  setup = models.setup
  models_saved = [setup.generator, models.ema.average]
  if setup.discriminator is not None:
    models_saved.append(setup.discriminator)
  variables = [v for m in models_saved for v in m.variables
               if tf.as_dtype(v.dtype).is_floating]
  if not bool(_all_finite(variables)):
    raise _diverged(step, "weights became NaN or infinite", last_saved)


@dataclasses.dataclass
class _Begun:
  """A run ready to train: its data, models (restored when resuming), the
  checkpoint manager and the step it starts from."""
  data: _Data
  models: _Models
  manager: tf.train.CheckpointManager
  start_step: int


def _begin(strategy: tf.distribute.Strategy, method: base.Method,
           evaluator, folder: run_folder.RunFolder, latest: str | None,
           role, model_dir: str, write_dir: str, *, seed: int, g_lr: float,
           d_lr: float, beta1: float, beta2: float, ema_decay: float,
           ema_start: int, precision: str, batch_size: int, d_steps: int,
           random_flip: bool, keep_checkpoints: int) -> _Begun:
  """Loads the data, prepares the evaluator, builds (and restores) the
  models, checks that the folder holds this run, and writes the run's
  identity, classes and config (`train`'s arguments; raises what it
  raises)."""
  # Seeds Python, NumPy, TensorFlow and Keras' initialisers, so that the
  # initial weights do not depend on the strategy.
  keras.utils.set_random_seed(seed)
  data = _load_data(method)
  if hasattr(evaluator, "prepare"):
    # Loads the feature extractor now: a missing or unsuitable one fails
    # before any training, not at the first evaluation; tfgt's evaluator
    # also checks there that its features can see the classes.
    if isinstance(evaluator, evaluator_lib.Evaluator):
      evaluator.prepare(resolution=int(data.images.shape[1]),
                        channels=int(data.images.shape[-1]),
                        data=data.spec, selection=data.selection)
    else:
      evaluator.prepare()
  models = _build_models(strategy, method, data.class_names, seed, g_lr,
                         d_lr, beta1, beta2, ema_decay, ema_start,
                         precision)
  setup = models.setup
  folder.check_model(bundle.spec_of(setup.fold(models.ema.average),
                                    setup.discriminator, data.class_names,
                                    method.name))
  identity = dict(
      method=method.name, seed=seed, batch_size=batch_size, d_steps=d_steps,
      random_flip=random_flip, classes=data.selection.to_json(),
      images=int(len(data.images)),
      data=cache_lib.array_fingerprint(data.images, data.labels))
  new_identity = folder.check_identity(identity, resuming=latest is not None)
  if evaluator is not None:
    folder.read(run_folder.BEST)  # A torn or edited file stops here.

  checkpoint = models.checkpoint()
  if latest:
    _restore(latest, checkpoint, models)
    logging.info("Resumed from %s at step %d.", latest,
                 int(models.step.numpy()))
  # After the resume: it may have written the state file the manager reads.
  manager = tf.train.CheckpointManager(checkpoint, write_dir,
                                       max_to_keep=keep_checkpoints)
  if role.num_workers > 1:
    distribute.check_workers_agree(
        strategy, models.step, distribute.cluster_fingerprint(identity),
        model_dir)
  start_step = int(models.step.numpy())
  # Written once the run is known to continue (a failed start changes nothing).
  if new_identity:
    folder.write_identity(identity)
  files.write_json(folder.path(run_folder.CLASSES), data.selection.to_json())
  files.write_text(folder.path(run_folder.CONFIG), gin.config_str())
  return _Begun(data, models, manager, start_step)


def _make_loop(begun: _Begun, strategy: tf.distribute.Strategy,
               method: base.Method, evaluator, folder: run_folder.RunFolder,
               latest: str | None, role, model_dir: str, *, seed: int,
               precision: str, num_steps: int, batch_size: int,
               d_steps: int, use_xla: bool, random_flip: bool,
               keep_checkpoints: int, samples_per_class: int,
               best_metric: str, g_lr: float, d_lr: float, log_every: int,
               sample_every: int, checkpoint_every: int, eval_every: int
               ) -> tuple["_Loop", _Outputs, Any]:
  """The step function, the batches from the start step, the outputs
  (bundles, grids, evaluations) and the loop over the steps of a begun run;
  writes the bundle of a checkpoint that lacks one. Returns (loop, outputs,
  summary writer)."""
  data, models, manager = begun.data, begun.models, begun.manager
  start_step = begun.start_step
  setup = models.setup
  step_fn = steps_lib.TrainStep(strategy, setup, models.optimizers,
                                models.ema, models.step, d_steps, batch_size,
                                use_xla, loss_scales=models.loss_scales)
  iterator = _distributed_batches(
      strategy, data, batch_size, seed, random_flip, setup.generator.dim_z,
      skip=start_step * step_fn.batches_per_step)
  summary_writer = tf.summary.create_file_writer(
      folder.path(run_folder.EVENTS))
  class_names = data.class_names
  with precision_lib.policy_scope(precision):
    # The plain generator that is exported (a fold may build a new one).
    outputs = _Outputs(
        folder, models, class_names, method.name, keep_checkpoints,
        grid_ids=(list(range(len(class_names))) if len(class_names) <= 16
                  else data.train_ids[:16].tolist()),
        grid_z=tf.random.stateless_normal(
            [samples_per_class, setup.generator.dim_z],
            seed=[seed + 5, 0]),
        evaluator=evaluator, best_metric=best_metric,
        summary_writer=summary_writer)
  # Decided from the chief's folder, so that every worker saves alike.
  bundle_step = tf.train.latest_checkpoint(
      os.path.join(model_dir, run_folder.BUNDLE))
  if start_step and (bundle_step is None or
                     not bundle_step.endswith(f"-{start_step}")):
    # Interrupted between the checkpoint and its bundle: write the bundle the
    # checkpoint stands for, so that sampling and export see this step.
    logging.info("Writing the model bundle of step %d.", start_step)
    outputs.save_bundle(start_step)
  learning_rates = {"g_lr": g_lr}
  if setup.discriminator is not None:
    learning_rates["d_lr"] = d_lr
  progress = _Progress(summary_writer, num_steps, batch_size, learning_rates,
                       evaluator, eval_every)
  loop = _Loop(step_fn, models, iterator, manager, outputs, progress, folder,
               resumed=latest is not None,
               num_steps=num_steps, start_step=start_step,
               log_every=log_every, sample_every=sample_every,
               checkpoint_every=checkpoint_every, eval_every=eval_every)
  # The precision this start trains in ("auto" resolved), for TensorBoard's
  # text tab: a run may change it when it resumes.
  with summary_writer.as_default(step=start_step):
    tf.summary.text(PRECISION_SUMMARY, precision)
  logging.info("Training from step %d to %d, global batch %d on %d "
               "replica(s)%s, in %s.", start_step, num_steps, batch_size,
               strategy.num_replicas_in_sync,
               (f" of {role.num_workers} worker processes"
                if role.num_workers > 1 else ""), precision)
  return loop, outputs, summary_writer


@gin.configurable(denylist=["model_dir", "strategy"])
def train(model_dir: str,
          strategy: tf.distribute.Strategy | None = None,
          method: base.Method = gin.REQUIRED,
          num_steps: int = 1000,
          batch_size: int = 64,
          d_steps: int = 1,
          g_lr: float = 2e-4,
          d_lr: float = 2e-4,
          beta1: float = 0.0,
          beta2: float = 0.999,
          ema_decay: float = 0.999,
          ema_start: int = 0,
          random_flip: bool = True,
          seed: int = 0,
          use_xla: bool = False,
          checkpoint_every: int = 500,
          keep_checkpoints: int = 3,
          log_every: int = 50,
          sample_every: int = 500,
          samples_per_class: int = 8,
          evaluator: Callable[[keras.Model], dict] | None = None,
          eval_every: int = 0,
          best_metric: str = "fid",
          precision: str = precision_lib.DEFAULT) -> dict:
  """Trains `method`'s GAN for `num_steps` G updates, resuming if possible.

  The method's objective gives the losses (`tfgt.objectives`; the R1 penalty
  is `Adversarial.r1_gamma`), its variable groups the optimizers.

  Args:
    model_dir: output folder (`tfgt.run_folder`).
    strategy: tf.distribute strategy; `distribute.make_strategy()` if None.
    method: the transfer method (or `Scratch` for pretraining).
    num_steps: number of G updates (each after `d_steps` D updates).
    batch_size: global batch size, split over the replicas.
    d_steps: D updates per G update (unused by a method without D).
    g_lr: Adam learning rate of G (times a group's learning_rate_scale).
    d_lr: Adam learning rate of D (likewise).
    beta1: Adam beta_1 of every optimizer (unless its group overrides it).
    beta2: Adam beta_2 likewise.
    ema_decay: decay of the EMA generator, in [0, 1).
    ema_start: before this step the EMA generator copies G.
    random_flip: horizontal flips of the real images.
    seed: seed of initialisation, data order and latent samples.
    use_xla: compile the gradient computations with XLA.
    precision: "float32", "mixed_bfloat16" or "mixed_float16"
      (`tfgt.precision`): the models' compute dtype; variables, checkpoints
      and bundles stay float32, so a run may change it when it resumes.
      "auto": mixed_bfloat16 where the hardware computes bfloat16 natively,
      else float32, chosen when the run starts or resumes and logged
      (`tfgt.precision.resolve`).
    checkpoint_every: steps between checkpoints (also saved at the end and on
      interruption).
    keep_checkpoints: checkpoints kept.
    log_every: steps between terminal lines and scalar summaries.
    sample_every: steps between sample grids in TensorBoard.
    samples_per_class: columns of the sample grid.
    evaluator: optional callable(plain generator) -> {metric: float}, run every
      `eval_every` steps; the bundle with the best finite `best_metric` is
      kept in `model/best`.
    eval_every: steps between evaluations (0: only at the end, if an
      evaluator is set).
    best_metric: metric that selects the best checkpoint (lower is better,
      except for precision, recall, density and coverage); an evaluator with
      `result_names()` must produce it.

  Returns:
    The last logged metrics, with "step".

  Raises:
    UserInputError: settings, data or a run folder that cannot be used, and
      a loss that becomes NaN or infinite (the run stops before saving it).
  """
  _check_types(dict(locals()))
  precision = precision_lib.choose(precision)
  _check_arguments(num_steps, batch_size, d_steps, ema_decay, log_every,
                   dict(checkpoint_every=checkpoint_every,
                        sample_every=sample_every, eval_every=eval_every),
                   evaluator, best_metric)
  strategy = strategy or distribute.make_strategy()
  _check_strategy(strategy, batch_size, use_xla)
  role = distribute.worker_role(strategy)
  write_dir = model_dir
  if not role.is_chief:
    # One writer: the chief writes the run folder; this worker only computes
    # its share of every step. What TensorFlow needs written on each worker
    # (checkpoints are saved by all) goes to a private folder, removed at the
    # end; evaluations run on the chief alone.
    write_dir = distribute.private_folder(model_dir, role)
    evaluator = None
    logging.info("This process is %s of %d: the chief writes %s; this one "
                 "writes only to %s, removed at the end.", role.task,
                 role.num_workers, model_dir, write_dir)
  created = _make_folder(write_dir)
  lock = run_lock.RunLock(write_dir)
  started = False
  try:
    folder = run_folder.RunFolder(write_dir)
    if role.is_chief:
      # Before anything is read or written: a second trainer stops here.
      lock.acquire()
      files.remove_temporaries(write_dir)
      folder.prune_best_bundle()
    # Every worker resumes from the chief's checkpoint (the same folder on a
    # single machine); the chief alone repairs the folder. A folder whose
    # checkpoints cannot be read stops here, before any model is built.
    latest = run_folder.RunFolder(model_dir).resume_checkpoint(
        repair=role.is_chief)
    begun = _begin(strategy, method, evaluator, folder, latest, role,
                   model_dir, write_dir, seed=seed, g_lr=g_lr, d_lr=d_lr,
                   beta1=beta1, beta2=beta2, ema_decay=ema_decay,
                   ema_start=ema_start, precision=precision,
                   batch_size=batch_size, d_steps=d_steps,
                   random_flip=random_flip,
                   keep_checkpoints=keep_checkpoints)
    started = True
    loop, outputs, summary_writer = _make_loop(
        begun, strategy, method, evaluator, folder, latest, role, model_dir,
        seed=seed, precision=precision, num_steps=num_steps,
        batch_size=batch_size, d_steps=d_steps, use_xla=use_xla,
        random_flip=random_flip, keep_checkpoints=keep_checkpoints,
        samples_per_class=samples_per_class, best_metric=best_metric,
        g_lr=g_lr, d_lr=d_lr, log_every=log_every, sample_every=sample_every,
        checkpoint_every=checkpoint_every, eval_every=eval_every)
    class_names = begun.data.class_names
    metrics = loop.run()
    summary_writer.flush()
    if role.is_chief:
      picture = outputs.write_grid(loop.current)
      image_utils.save_png(picture, folder.path(run_folder.SAMPLES))
      summary_writer.flush()
      logging.info("Samples (one row per class: %s) in %s.",
                   ", ".join(class_names[i] for i in outputs.grid_ids),
                   folder.path(run_folder.SAMPLES))
    return metrics
  except distribute.CLUSTER_ERRORS as e:
    if role.num_workers == 1:
      raise
    raise distribute.worker_lost(e, model_dir) from e
  except Exception as e:  # pylint: disable=broad-except
    if files.is_disk_full(e):
      raise _disk_full(model_dir, e) from e
    raise
  finally:
    lock.release()
    if write_dir != model_dir:
      shutil.rmtree(write_dir, ignore_errors=True)
    elif created and not started:
      _remove_if_unused(write_dir)


class _Loop:
  """Runs the steps and the periodic work: logs, grids, checkpoints,
  evaluations; saves on SIGTERM or Ctrl-C and stops on a non-finite loss."""

  def __init__(self, step_fn: steps_lib.TrainStep, models: _Models, iterator,
               manager: tf.train.CheckpointManager, outputs: _Outputs,
               progress: _Progress, folder: run_folder.RunFolder, *,
               resumed: bool, num_steps: int, start_step: int, log_every: int,
               sample_every: int, checkpoint_every: int, eval_every: int):
    self.step_fn = step_fn
    self.models = models
    self.iterator = iterator
    self.manager = manager
    self.outputs = outputs
    self.progress = progress
    self.folder = folder
    self.num_steps = num_steps
    self.start_step = start_step
    self.log_every = log_every
    self.sample_every = sample_every
    self.checkpoint_every = checkpoint_every
    self.eval_every = eval_every
    self.current = start_step
    self.last_saved = start_step
    # Whether a checkpoint exists: the run resumed from one, or saved one.
    # Not read from the checkpoint manager, whose folder on a non-chief
    # worker is private and empty: every worker decides alike.
    self.has_checkpoint = resumed

  def save(self, step: int) -> None:
    _check_finite_weights(step, self.models, self.last_saved)
    self.manager.save(checkpoint_number=step)
    self.outputs.save_bundle(step)
    self.last_saved = step
    self.has_checkpoint = True

  def _due_evaluation(self, step: int) -> bool:
    return self.outputs.evaluator is not None and (
        (self.eval_every and step % self.eval_every == 0)
        or step == self.num_steps)

  def _evaluate(self, step: int) -> float:
    seconds = _timed(self.outputs.evaluate, step)
    self.progress.eval_seconds = seconds
    return seconds

  def run(self) -> dict:
    """Trains to num_steps; returns the last logged metrics."""
    # SIGTERM only sets a flag, checked after each step: an exception raised
    # at an arbitrary point could land inside TensorFlow or gin code, which
    # may wrap it into another error, or inside a file write.
    terminate = threading.Event()
    previous_handler = signal.signal(signal.SIGTERM,
                                     lambda signum, frame: terminate.set())
    try:
      if (self.start_step > 0 or self.num_steps == 0) and (
          self._due_evaluation(self.start_step) and
          self.folder.evaluated_step() != self.start_step):
        # An evaluation an interruption cut short, or a finished run.
        logging.info("Evaluating step %d (not evaluated before).",
                     self.start_step)
        self._evaluate(self.start_step)
      metrics = self._steps(terminate)
    except (KeyboardInterrupt, Interrupted):
      # The signal may land between a finished step and the Python counter.
      self.current = int(self.step_fn.step.numpy())
      logging.warning("Interrupted at step %d: saving a checkpoint.",
                      self.current)
      if self.current != self.last_saved:
        self.save(self.current)
      self.outputs.summary_writer.flush()
      raise
    finally:
      signal.signal(signal.SIGTERM, previous_handler)
    if self.current != self.last_saved or not self.has_checkpoint:
      self.save(self.current)
    return metrics

  def _steps(self, terminate: threading.Event) -> dict:
    metrics = {"step": float(self.start_step)}
    run_start = time.time()
    progress = self.progress
    loss_scales = self.models.loss_scales
    while self.current < self.num_steps:
      skipped = sum(int(s.skipped.numpy()) for s in loss_scales.values())
      losses = _named_losses(*self.step_fn(self.iterator))
      _check_finite_losses(self.current + 1, losses, self.last_saved,
                           loss_scales, skipped)
      self.current += 1
      current = self.current
      progress.window_steps += 1
      if current == self.start_step + 1:
        # The first step includes tracing: keep it out of the rate.
        progress.restart()
        if self.start_step == 0:
          files.write_text(self.folder.path(run_folder.OPERATIVE_CONFIG),
                           gin.operative_config_str())
      if current % self.log_every == 0 or current == self.num_steps:
        metrics = progress.log(current, losses)
      if self.sample_every and current % self.sample_every == 0:
        progress.pause(_timed(self.outputs.write_grid, current))
      if self.checkpoint_every and current % self.checkpoint_every == 0:
        progress.pause(_timed(self.save, current))
      if self._due_evaluation(current):
        progress.pause(self._evaluate(current))
      if terminate.is_set():
        raise Interrupted()
    logging.info("Trained %d steps in %s.", self.current - self.start_step,
                 _format_eta(time.time() - run_start))
    return metrics


def parse_config(gin_files: Sequence[str], gin_params: Sequence[str]) -> None:
  """Parses gin files and bindings (`tfgt.config.parse`).

  Raises:
    UserInputError: a missing file or a mistake in a binding, in one line
      that names it and the fix.
  """
  config_lib.parse(gin_files, gin_params)


def main(argv: Sequence[str]) -> None:
  cli.check_arguments(argv, required=("model_dir",))
  if not FLAGS.gin_file:
    raise app.UsageError("At least one --gin_file is required.")
  distribute.split_cpu(FLAGS.logical_cpus)
  if FLAGS.deterministic:
    tf.config.experimental.enable_op_determinism()
  with cli.exit_on_bad_input():
    # --features before --gin_param: a binding given there wins.
    params = features_lib.flag_bindings(FLAGS.features) + list(
        FLAGS.gin_param)
  if FLAGS.seed is not None:
    params.append(f"train.seed = {FLAGS.seed}")
  # TensorFlow's own INFO lines (checkpoint sharding, collective all-reduces
  # at every trace) bury the progress lines; its warnings stay.
  tf.get_logger().setLevel("WARNING")
  with cli.exit_on_bad_input():
    try:
      parse_config(FLAGS.gin_file, params)
      # The strategy first: MultiWorkerMirroredStrategy must be made before
      # any TensorFlow op runs, and gin builds train's arguments (an
      # evaluator loads its feature extractor) before train's body.
      strategy = distribute.make_strategy()
      train(FLAGS.model_dir, strategy=strategy)
    except KeyboardInterrupt:
      sys.exit(130)
    except Interrupted:
      sys.exit(143)
    except WorkerLost as e:
      logging.error("%s", e)
      sys.exit(EXIT_WORKER_LOST)


if __name__ == "__main__":
  define_flags()
  cli.run(main)
