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
    model/best/                       the bundle of the best evaluation
    train/                            TensorBoard events
    samples.png                       the final sample grid, one row a class

The trainer writes all of it; evaluation, sampling, export and methods that
start from another run (`restore_models`) read it. Every JSON file is written
atomically and strictly (no NaN), so a crash leaves the old or the new file.
"""

from __future__ import annotations

import json
import math
import os

from absl import logging
import tensorflow as tf

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
BEST_BUNDLE = os.path.join("model", "best")
EVENTS = "train"
SAMPLES = "samples.png"


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
    return tf.train.latest_checkpoint(self.model_dir)

  # ------------------------------------------------------------ identity
  def check_identity(self, identity: dict) -> None:
    """Refuses to resume a run with another method, seed, batch or data.

    Those decide which batches and latents each step sees; a resumed run with
    other values would silently differ from a straight one. The number of
    steps, intervals, learning rates and evaluation may change between
    sessions. A new run (or one from before run.json existed) records it.

    Raises:
      UserInputError: a value differs from the recorded one.
    """
    old = self.read(RUN)
    if old is None or self.latest_checkpoint() is None:
      files.write_json(self.path(RUN), identity)
      return
    changed = {k: (old.get(k), v) for k, v in identity.items()
               if old.get(k) != v}
    if changed:
      details = "; ".join(f"{k}: {a!r} before, {b!r} now"
                          for k, (a, b) in sorted(changed.items()))
      raise UserInputError(
          f"{self.model_dir} holds a run that this config would not continue "
          f"as it started ({details}). Use a new --model_dir, or the settings "
          "that made this one.")

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
                  higher_is_better: bool) -> bool:
    """Whether `value` of `best_metric` beats best.json's.

    None, NaN and infinities are never the best; a best.json without the
    metric (or with a non-finite value, from older versions) is beaten by
    any finite value.
    """
    if value is None or not math.isfinite(value):
      if value is not None:
        logging.warning("The evaluation's %s is %s: not a best checkpoint.",
                        best_metric, value)
      return False
    old = (self.read(BEST) or {}).get(best_metric)
    if old is None or not math.isfinite(old):
      return True
    return value > old if higher_is_better else value < old

  def record_evaluation(self, step: int, results: dict,
                        improved: bool) -> None:
    """Writes best.json (if `improved`) and eval_state.json, in that order.

    Non-finite results are written as null (strict JSON).
    """
    if improved:
      files.write_json(self.path(BEST), dict(
          {k: (v if math.isfinite(v) else None) for k, v in results.items()},
          step=step))
    files.write_json(self.path(EVAL_STATE), {"step": step})


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
  path = folder.latest_checkpoint()
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
