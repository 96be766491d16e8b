"""The folder of a training run (its model_dir): every name in it, one place.

    config.gin, operative_config.gin  the gin config given and the one used
    classes.json                      the class selection of the data
    run.json                          what fixes the run's trajectory (method,
                                      seed, batch, data); a resume must match
    best.json, eval_state.json        the best evaluation; the last evaluated
                                      step
    ckpt-*, checkpoint                training checkpoints (models, EMA,
                                      optimizers, step)
    model/                            the bundle: plain EMA generator and D
                                      (`tfgt.models.bundle`)
    model/model.json                  the bundle's spec (MODEL_SPEC)
    model/best/                       the bundle of the best evaluation
    train/                            TensorBoard events
    samples.png                       the final sample grid, one row a class
    train.lock                        held by the trainer at work here
                                      (`tfgt.run_lock`)
    unreadable/                       checkpoint files that could not be
                                      read, moved aside by a resume

The trainer writes all of it; evaluation, sampling, export and methods that
start from another run (`restore_models`) read it. Every JSON file is written
atomically and strictly (no NaN), so a crash leaves the old or the new file.

A folder that holds a checkpoint is never trained again from step 0: the
checkpoints are found from their files (`tfgt.checkpoints`), whatever the
`checkpoint` state file says; a resume starts from the newest one that reads
whole, and refuses when none does. best.json is the record of the best
bundle: the new best bundle is written before it, the old one deleted after.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from typing import Callable

from absl import logging
import tensorflow as tf

from tfgt import checkpoints
from tfgt import files
from tfgt.errors import UserInputError
from tfgt.models import architectures
from tfgt.models import bundle

CONFIG = "config.gin"
OPERATIVE_CONFIG = "operative_config.gin"
CLASSES = "classes.json"
RUN = "run.json"
BEST = "best.json"
EVAL_STATE = "eval_state.json"
BUNDLE = "model"
# The bundle's model spec (architecture, classes, options).
MODEL_SPEC = os.path.join(BUNDLE, bundle.SPEC_FILE)
BEST_BUNDLE = os.path.join("model", "best")
EVENTS = "train"
SAMPLES = "samples.png"
UNREADABLE = "unreadable"


def read_json(path: str) -> dict | None:
  """A JSON file's content, None if it does not exist.

  Raises:
    UserInputError: the file is not valid JSON (torn or edited by hand).
  """
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      return json.load(f)
  except ValueError as e:
    raise UserInputError(f"{path} is not valid JSON ({e}); delete it to "
                         "continue the run without it.") from e


def _same_options(architecture: str, part: str, old: dict | None,
                  new: dict | None) -> bool:
  """Whether two recorded option sets build the same model; an option one
  of them does not name stands at the constructor's default."""
  if old is None or new is None:
    return old == new
  return (architectures.recorded_options(architecture, part, old) ==
          architectures.recorded_options(architecture, part, new))


class RunFolder:
  """A training run's model_dir.

  Args:
    model_dir: the folder; created on the first write.
  """

  def __init__(self, model_dir: str):
    self.model_dir = model_dir

  def path(self, name: str) -> str:
    """The path of one of the module's names (e.g. `run_folder.BEST`)."""
    return os.path.join(self.model_dir, name)

  def read(self, name: str) -> dict | None:
    return read_json(self.path(name))

  def latest_checkpoint(self) -> str | None:
    """The newest training checkpoint on disk (not read), or None."""
    return checkpoints.newest_on_disk(self.model_dir)

  # -------------------------------------------------------------- resume
  def resume_checkpoint(self, repair: bool = True) -> str | None:
    """The training checkpoint a start resumes from, None for a new run.

    The newest checkpoint on disk that reads whole. With `repair` (the one
    writer of the folder, holding its lock): newer unreadable checkpoints are
    moved to `unreadable/` (so that a later save of their step cannot
    overwrite them), and a `checkpoint` state file that is missing, torn or
    names another checkpoint is written again from the files; each with a
    warning.

    Raises:
      UserInputError: the folder holds checkpoints but none can be read, or
        holds a trained bundle (model/ckpt-*) without any training
        checkpoint: a start from step 0 would overwrite trained work.
    """
    steps = checkpoints.steps_on_disk(self.model_dir)
    if not steps:
      bundled = checkpoints.steps_on_disk(self.path(BUNDLE))
      if bundled:
        raise UserInputError(
            f"{self.model_dir} holds no training checkpoint (ckpt-*.index) "
            f"but its model/ holds trained models (steps {bundled}): a new "
            "run would overwrite them. Put the training checkpoints back, or "
            "give another --model_dir (copy model/ elsewhere to keep it).")
      return None
    path, unreadable = checkpoints.newest_readable(self.model_dir)
    if path is None:
      raise UserInputError(
          f"No checkpoint of {self.model_dir} can be read ("
          + "; ".join(unreadable[s] for s in sorted(unreadable, reverse=True))
          + "). Nothing was changed: restore the files from a copy, or give "
          "another --model_dir (or delete the ckpt-* files to train again "
          "from step 0).")
    step = checkpoints.step_of(path)
    if not repair:
      return path
    for bad in sorted(unreadable):
      moved = self._move_aside(checkpoints.prefix(self.model_dir, bad))
      logging.warning("%s. Resuming from %s instead; the unreadable files "
                      "are kept in %s.", unreadable[bad].capitalize(),
                      os.path.basename(path), moved)
    named = checkpoints.state_file_step(self.model_dir)
    if named != step:
      logging.warning(
          "The state file %s %s; resuming from %s, the newest readable "
          "checkpoint on disk, and writing the state file again.",
          self.path(checkpoints.STATE_FILE),
          ("is missing or unreadable" if named is None
           else f"names ckpt-{named}, not the newest readable checkpoint"),
          os.path.basename(path))
      checkpoints.write_state(
          self.model_dir,
          [s for s in checkpoints.steps_on_disk(self.model_dir) if s <= step])
    return path

  def _move_aside(self, prefix: str) -> str:
    """Moves a checkpoint's files into unreadable/ (renamed if a file of that
    name is there already); returns the folder."""
    target = self.path(UNREADABLE)
    os.makedirs(target, exist_ok=True)
    for path in checkpoints.files_of(prefix):
      name = os.path.basename(path)
      destination, n = os.path.join(target, name), 1
      while os.path.exists(destination):
        destination, n = os.path.join(target, f"{name}.{n}"), n + 1
      shutil.move(path, destination)
    return target

  # ------------------------------------------------------------ identity
  def check_identity(self, identity: dict, resuming: bool) -> bool:
    """Refuses to resume a run with another method, seed, batch or data.

    Those decide which batches and latents each step sees; a resumed run with
    other values would silently differ from a straight one. The number of
    steps, intervals, learning rates and evaluation may change between
    sessions. Nothing is written here: see `write_identity`.

    Args:
      identity: this start's values.
      resuming: whether the start resumes from a checkpoint.

    Returns:
      Whether run.json must be written (a new run, or a run from before
      run.json existed), once the start has succeeded.

    Raises:
      UserInputError: a value differs from the recorded one.
    """
    old = self.read(RUN)
    if old is None or not resuming:
      return True
    changed = {k: (old.get(k), v) for k, v in identity.items()
               if old.get(k) != v}
    if changed:
      details = "; ".join(f"{k}: {a!r} before, {b!r} now"
                          for k, (a, b) in sorted(changed.items()))
      raise UserInputError(
          f"{self.model_dir} holds a run that this config would not continue "
          f"as it started ({details}). Use a new --model_dir, or the settings "
          "that made this one.")
    return False

  def write_identity(self, identity: dict) -> None:
    files.write_json(self.path(RUN), identity)

  def check_model(self, spec: dict) -> None:
    """Refuses to resume a run whose classes or models differ from `spec`.

    Raises:
      UserInputError: other classes, architecture, or model options.
    """
    old = self.read(os.path.join(BUNDLE, bundle.SPEC_FILE))
    if old is None:
      return
    if old["class_names"] != spec["class_names"]:
      raise UserInputError(
          f"{self.model_dir} holds a model of {len(old['class_names'])} "
          f"classes ({', '.join(old['class_names'])}) but this config trains "
          f"{len(spec['class_names'])} ({', '.join(spec['class_names'])}). "
          "Use a new --model_dir, or the config that made this one.")
    old_architecture = old.get("architecture",
                               architectures.DEFAULT_ARCHITECTURE)
    if old_architecture != spec["architecture"]:
      raise UserInputError(
          f"{self.model_dir} holds a {old_architecture} model but this config "
          f"builds a {spec['architecture']}. Use a new --model_dir, or the "
          "config that made this one.")
    for part in ("generator", "discriminator"):
      if not _same_options(old_architecture, part, old.get(part),
                           spec.get(part)):
        raise UserInputError(
            f"{self.model_dir} holds a {part} {old.get(part)} but this config "
            f"builds {spec.get(part)}. Use a new --model_dir, or the config "
            "that made it.")

  # ----------------------------------------------------------- evaluation
  def evaluated_step(self) -> int | None:
    """The step of the last finished evaluation, if any."""
    return (self.read(EVAL_STATE) or {}).get("step")

  def is_new_best(self, value: float | None, best_metric: str,
                  better: Callable[[float, float], bool]) -> bool:
    """Whether `value` of `best_metric` beats best.json's.

    `better(value, old)` says whether a finite value beats a finite old one
    (`tfgt.eval.registry.better` for the metric's direction). None, NaN and
    infinities are never the best; a best.json without the metric (or with
    a non-finite value, from older versions) is beaten by any finite value.
    """
    if value is None or not math.isfinite(value):
      if value is not None:
        logging.warning("The evaluation's %s is %s: not a best checkpoint.",
                        best_metric, value)
      return False
    old = (self.read(BEST) or {}).get(best_metric)
    if old is None or not math.isfinite(old):
      return True
    return better(value, old)

  def record_evaluation(self, step: int, results: dict,
                        improved: bool) -> None:
    """Writes best.json (if `improved`) and eval_state.json, in that order.

    With `improved`, the bundle of `step` must be in model/best already;
    `prune_best_bundle` then deletes the older best. Non-finite results are
    written as null (strict JSON).
    """
    if improved:
      files.write_json(self.path(BEST), dict(
          {k: (v if math.isfinite(v) else None) for k, v in results.items()},
          step=step))
      self.prune_best_bundle()
    files.write_json(self.path(EVAL_STATE), {"step": step})

  def prune_best_bundle(self) -> None:
    """Deletes the checkpoints of model/best that best.json does not name.

    The trainer writes a new best bundle before best.json names it and
    deletes the old one after, so that best.json always names a bundle
    that exists; a kill between the two leaves both, and this (called again
    at the next start) finishes the job.
    """
    directory = self.path(BEST_BUNDLE)
    step = (self.read(BEST) or {}).get("step")
    steps = checkpoints.steps_on_disk(directory)
    if not isinstance(step, int) or step not in steps or steps == [step]:
      return
    for old in steps:
      if old != step:
        prefix = checkpoints.prefix(directory, old)
        for path in checkpoints.files_of(prefix):
          os.remove(path)
        # Scores tfgt.evaluate wrote beside it (`<prefix>.eval.json`).
        if os.path.exists(prefix + ".eval.json"):
          os.remove(prefix + ".eval.json")
    checkpoints.write_state(directory, [step])


def restore_models(model_dir: str, class_names: list[str],
                   **models) -> str:
  """Reads models from another run's latest training checkpoint.

  For a method that starts where another run stopped (a second stage): give
  the models under their checkpoint names, e.g.
  `restore_models(d, names, ema_generator=g, discriminator=d)`; the EMA
  generator is what the first stage produced.

  Args:
    model_dir: the earlier run's model_dir.
    class_names: the classes of this run; they must be the earlier run's.
    **models: checkpoint name -> model, built, of the same structure.

  Returns:
    The checkpoint path read.

  Raises:
    UserInputError: no run there, other classes, or models that do not fit.
  """
  folder = RunFolder(model_dir)
  path, unreadable = checkpoints.newest_readable(model_dir)
  if path is None and unreadable:
    raise UserInputError(
        f"No checkpoint of the earlier run {model_dir!r} can be read ("
        + "; ".join(unreadable.values()) + "). Run its first stage again "
        "with that --model_dir: it resumes from a readable checkpoint, if any.")
  for message in unreadable.values():
    logging.warning("%s: starting from %s, the newest readable one.",
                    message.capitalize(), path)
  spec = folder.read(os.path.join(BUNDLE, bundle.SPEC_FILE))
  if path is None or spec is None:
    raise UserInputError(
        f"{model_dir!r} holds no training run to start from. Train the first "
        f"stage with --model_dir={model_dir} first.")
  if spec["class_names"] != list(class_names):
    raise UserInputError(
        f"{model_dir!r} was trained on classes {spec['class_names']}, this "
        f"run has {list(class_names)}. Select the same classes.")
  status = tf.train.Checkpoint(**models).read(path)
  try:
    status.assert_existing_objects_matched()
  except AssertionError as e:
    raise UserInputError(
        f"The checkpoint {path} does not fit the models this config builds "
        f"(were the method's options the same as in that run?): {e}") from e
  status.expect_partial()
  return path
