"""Model bundles: a plain generator and discriminator with their spec.

A bundle is the folder a training run keeps up to date in `<model_dir>/model`
and that sampling, evaluation, export and transfer read:

  model.json        the architecture's registry name, the constructor kwargs
                    of G and D (null for a run without D), class names,
                    method
  ckpt-<step>.*     tf.train.Checkpoint(generator=..., discriminator=...)
  checkpoint        the index of checkpoints (tf.train.CheckpointManager)

The generator in a bundle is the EMA generator with any transfer block folded
away: a plain generator of its architecture (`tfgt.models.architectures`) for
N+M classes. A model.json without "architecture" is a BigGAN's.
"""

from __future__ import annotations

import json
import numbers
import os
import re
from typing import Sequence
import warnings

import tensorflow as tf

from tfgt import checkpoints
from tfgt import files
from tfgt import precision as precision_lib
from tfgt.errors import UserInputError
from tfgt.models import architectures

SPEC_FILE = "model.json"
# A run keeps its best bundle in <run>/model/best and names its step in
# <run>/best.json (tfgt.run_folder.BEST_BUNDLE and BEST).
BEST_BUNDLE = "best"
BEST_RECORD = "best.json"
# "pretrained:NAME" names a bundle shipped inside the package.
PRETRAINED_PREFIX = "pretrained:"
PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "pretrained")


def spec_of(generator: architectures.Generator,
            discriminator: architectures.Discriminator | None,
            class_names: list[str], method: str,
            discriminator_trained: bool = True) -> dict:
  """The model.json of a bundle of these models (D may be None).
  `discriminator_trained=False` (an import whose file has no D) is recorded
  as "discriminator_trained": false, which source loading warns about."""
  if len(class_names) != generator.num_classes:
    raise ValueError(f"{len(class_names)} class names for a generator of "
                     f"{generator.num_classes} classes.")
  if (discriminator is not None and
      generator.architecture != discriminator.architecture):
    raise ValueError(f"A {generator.architecture} generator with a "
                     f"{discriminator.architecture} discriminator.")
  spec = {
      "architecture": generator.architecture,
      "generator": dict(num_classes=generator.num_classes,
                        **generator.ctor_kwargs),
      "discriminator": (None if discriminator is None else
                        dict(num_classes=discriminator.num_classes,
                             **discriminator.ctor_kwargs)),
      "class_names": list(class_names),
      "method": method,
  }
  if discriminator is not None and not discriminator_trained:
    spec["discriminator_trained"] = False
  return spec


class BundleWriter:
  """Keeps the bundle folder of a run: spec once, a checkpoint per save.

  Args:
    directory: the bundle folder (created).
    generator: the plain generator whose weights each save writes.
    discriminator: its discriminator, or None for a run without one.
    class_names: the generator's N + M class names.
    method: the method's name, for model.json.
    max_to_keep: checkpoints kept.
    discriminator_trained: False when the discriminator is untrained
      (recorded in model.json).
  """

  def __init__(self, directory: str, generator, discriminator,
               class_names: list[str], method: str, max_to_keep: int = 3,
               discriminator_trained: bool = True):
    os.makedirs(directory, exist_ok=True)
    self.directory = directory
    files.write_json(os.path.join(directory, SPEC_FILE),
                     spec_of(generator, discriminator, class_names, method,
                             discriminator_trained))
    objects = dict(generator=generator)
    if discriminator is not None:
      objects["discriminator"] = discriminator
    self._checkpoint = tf.train.Checkpoint(**objects)
    self._manager = tf.train.CheckpointManager(self._checkpoint, directory,
                                               max_to_keep=max_to_keep)

  def save(self, step: int) -> str:
    return self._manager.save(checkpoint_number=step)


_SPEC_FIX = ("Put back the model.json written with the bundle's checkpoints "
             "(from a copy of the run or bundle).")


def _escaped(name: str) -> str:
  """`name` with what is not valid text (lone surrogates, such as Python
  makes of a file name's undecodable bytes) shown as \\xNN escapes."""
  try:
    raw = name.encode("utf-8", "surrogateescape")
  except UnicodeEncodeError:
    raw = name.encode("utf-8", "backslashreplace")
  return raw.decode("utf-8", "backslashreplace")


def _spec_problem(spec) -> tuple[str, str] | None:
  """(what makes a parsed model.json unusable, the fix), or None."""
  if not isinstance(spec, dict):
    return f"it holds a JSON {type(spec).__name__}, not an object", _SPEC_FIX
  for key in ("class_names", "generator"):
    if key not in spec:
      return f"it has no \"{key}\"", _SPEC_FIX
  names = spec["class_names"]
  if (not isinstance(names, list) or not names or
      not all(isinstance(n, str) for n in names)):
    return "\"class_names\" is not a list of one or more strings", _SPEC_FIX
  for name in names:
    try:
      name.encode("utf-8")
    except UnicodeEncodeError:
      shown = _escaped(name)
      return (f"the class name \"{shown}\" is not valid Unicode text (it "
              "came from a folder name that is not UTF-8)",
              "Edit the file and write that name in plain text (e.g. "
              "\"caf\\xe9\" as \"café\").")
  for part in ("generator", "discriminator"):
    entry = spec.get(part)
    if entry is None and part == "discriminator":
      continue  # A bundle without D.
    if not isinstance(entry, dict):
      return (f"\"{part}\" is not an object of constructor options"
              + (" or null" if part == "discriminator" else ""), _SPEC_FIX)
    num_classes = entry.get("num_classes")
    if (not isinstance(num_classes, int) or isinstance(num_classes, bool)
        or num_classes < 1):
      return (f"\"{part}\".num_classes is {num_classes!r}, not a count",
              _SPEC_FIX)
    if part == "generator" and num_classes != len(names):
      return (f"\"generator\".num_classes is {num_classes}, but there are "
              f"{len(names)} class names", _SPEC_FIX)
  if not isinstance(spec.get("architecture", ""), (str, type(None))):
    return "\"architecture\" is not a string", _SPEC_FIX
  return None


def read_spec(directory: str) -> dict:
  """The model.json of a bundle folder, checked.

  Args:
    directory: the bundle folder.

  Returns:
    The spec: class names, architecture, generator and discriminator
    options (see `spec_of`).

  Raises:
    UserInputError: no such folder (or a file), no model.json, or one that
      cannot be read, is not JSON, or lacks or mistypes what a bundle needs
      (class names, generator and discriminator options that agree on the
      number of classes); one line that names the file.
  """
  path = os.path.join(directory, SPEC_FILE)
  if not os.path.isdir(directory):
    what = ("is a file, not a folder" if os.path.exists(directory)
            else "does not exist")
    raise UserInputError(
        f"{directory} {what}. Give a training run's model_dir, its 'model' "
        "sub-folder or pretrained:NAME.")
  if not os.path.exists(path):
    raise UserInputError(
        f"{directory} is not a tfgt model: {SPEC_FILE} is missing. Give a "
        "training run's model_dir or its 'model' sub-folder.")
  fix = _SPEC_FIX
  try:
    with open(path, encoding="utf-8") as f:
      spec = json.load(f)
  except OSError as e:
    raise UserInputError(f"{path} cannot be read ({e.strerror or e}). "
                         f"{fix}") from e
  except (ValueError, RecursionError) as e:  # Also UnicodeDecodeError.
    detail = " ".join(str(e).split()) or type(e).__name__
    raise UserInputError(f"{path} is not valid JSON ({detail}). {fix}") from e
  problem = _spec_problem(spec)
  if problem:
    raise UserInputError(f"{path} is not a model spec: {problem[0]}. "
                         f"{problem[1]}")
  return spec


def resolve_directory(path: str) -> str:
  """Accepts a run's model_dir, its bundle folder or "pretrained:NAME"."""
  if path.startswith(PRETRAINED_PREFIX):
    path = os.path.join(PRETRAINED_DIR, path[len(PRETRAINED_PREFIX):])
  if os.path.exists(os.path.join(path, "model", SPEC_FILE)):
    return os.path.join(path, "model")
  return path


def parse_checkpoint(value: str | int, name: str = "checkpoint",
                     also: Sequence[str] = ()) -> str | int:
  """Checks a checkpoint choice: "best", "latest" or a step number.

  Args:
    value: the choice, from a flag or a gin binding; a step may be an int or
      a string of digits.
    name: the flag or binding that gave it, for the error message.
    also: other words the caller accepts (such as "auto"), returned as is.

  Returns:
    "best", "latest", a word of `also`, or the step number as an int.

  Raises:
    UserInputError: for any other value.
  """
  words = ("best", "latest") + tuple(also)
  if isinstance(value, str):
    if value in words:
      return value
    if re.fullmatch(r"[0-9]+", value):
      return int(value)
  elif (isinstance(value, numbers.Integral) and not isinstance(value, bool)
        and value >= 0):
    return int(value)
  raise UserInputError(
      f"{name}={value!r} names no checkpoint: use "
      f"{', '.join(repr(w) for w in words)} or a step number.")


def _best_json_step(directory: str) -> int | None:
  """The step that the run's best.json names, for a bundle `directory` =
  `<run>/model`; None without a readable one."""
  path = os.path.join(os.path.dirname(os.path.normpath(directory)),
                      BEST_RECORD)
  try:
    with open(path, encoding="utf-8") as f:
      step = json.load(f).get("step")
  except (OSError, ValueError, AttributeError, RecursionError):
    return None
  if isinstance(step, int) and not isinstance(step, bool) and step >= 0:
    return step
  return None


def _existing(directory: str, step: int | None) -> str | None:
  """The prefix of checkpoint `step` of `directory` if its index exists."""
  if step is None:
    return None
  path = checkpoints.prefix(directory, step)
  return path if os.path.isfile(path + ".index") else None


def checkpoint_path(directory: str, checkpoint: str | int = "latest") -> str:
  """The checkpoint prefix for 'latest', 'best' or a step number.

  The checkpoints are found from their files: "latest" is the checkpoint
  the folder's `checkpoint` state file names when its index file exists,
  else (no state file, a torn one, or one naming a deleted checkpoint) the
  newest `ckpt-<step>.index` on disk. "best" is the checkpoint of
  `<directory>/best` that the run's best.json (beside `directory`) names,
  else the newest there: the trainer writes a new best bundle before
  best.json names it, and deletes the old one after.

  Args:
    directory: a bundle folder (`<run>/model`).
    checkpoint: "latest", "best" or a step number.

  Returns:
    The checkpoint's prefix (`<folder>/ckpt-<step>`), whose index exists.

  Raises:
    UserInputError: a `checkpoint` that is none of these, or no such
      checkpoint (listing the steps there).
  """
  checkpoint = parse_checkpoint(checkpoint)
  if checkpoint == "latest":
    path = (_existing(directory, checkpoints.state_file_step(directory))
            or checkpoints.newest_on_disk(directory))
  elif checkpoint == "best":
    best = os.path.join(directory, BEST_BUNDLE)
    path = (_existing(best, _best_json_step(directory))
            or checkpoints.newest_on_disk(best))
  else:
    path = _existing(directory, checkpoint)
  if path is None:
    available = checkpoints.steps_on_disk(directory)
    raise UserInputError(f"No checkpoint {checkpoint!r} in {directory}; "
                         f"steps available: {available or 'none'}.")
  return path


def load(path: str, checkpoint: str | int = "latest", with_discriminator=False,
         precision: str = precision_lib.DEFAULT):
  """Loads a bundle.

  Args:
    path: a run's model_dir or a bundle folder.
    checkpoint: "latest", "best" or a step number.
    with_discriminator: also build and restore the discriminator.
    precision: the models' compute precision (`tfgt.precision`: float32,
      mixed_bfloat16, mixed_float16); the weights are float32 in every one.

  Returns:
    (generator, discriminator or None, spec dict).

  Raises:
    UserInputError: what `read_spec`, `checkpoint_path` and `restore` raise,
      each in one line that names the file.
  """
  directory = resolve_directory(path)
  spec = read_spec(directory)
  prefix = checkpoint_path(directory, checkpoint)
  generator, discriminator = restore(
      spec, prefix, with_discriminator,
      spec_file=os.path.join(directory, SPEC_FILE), precision=precision)
  return generator, discriminator, spec


def _short(error: BaseException, limit: int = 200) -> str:
  """An error's message in one line of at most `limit` characters, without
  the terminal escapes and the "Exception encountered when calling ..."
  preamble that Keras adds."""
  text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
  text = re.sub(r"^\s*Exception encountered when calling [\w.]+\(\)\.",
                "", text)
  text = " ".join(text.split()) or type(error).__name__
  return text if len(text) <= limit else text[:limit - 3] + "..."


def _damaged_file(prefix: str) -> str | None:
  """The file of an unreadable checkpoint to blame: its index when that does
  not read, else its data file if it has one; None if that is unclear."""
  try:
    tf.train.load_checkpoint(prefix)  # Reads the index alone.
  except (tf.errors.OpError, ValueError, IndexError, RuntimeError):
    return prefix + ".index"
  data = [f for f in checkpoints.files_of(prefix) if ".data-" in f]
  return data[0] if len(data) == 1 else None


def _unreadable(prefix: str, detail: str) -> str:
  """The message of a checkpoint that cannot be read: `detail`, the file to
  blame and the fix."""
  directory = os.path.dirname(prefix)
  step = checkpoints.step_of(prefix)
  others = [s for s in checkpoints.steps_on_disk(directory) if s != step]
  choice = (f"or read another one (steps there: "
            f"{', '.join(map(str, others))})" if others
            else "no other checkpoint is there")
  detail = detail[:1].upper() + detail[1:]
  damaged = _damaged_file(prefix)
  blame = (f" The damaged file is {os.path.basename(damaged)}."
           if damaged else "")
  return (f"{detail.rstrip('.')}.{blame} Replace the checkpoint's files with "
          f"intact copies (from a backup or the machine that wrote them), "
          f"{choice}.")


def restore(spec: dict, prefix: str, with_discriminator=False, *,
            spec_file: str | None = None,
            precision: str = precision_lib.DEFAULT):
  """Builds the models of a bundle's spec and reads one checkpoint into them.

  The whole checkpoint is read first (`tfgt.checkpoints.verify`), so that a
  truncated or altered file is refused before anything is built.

  Args:
    spec: the bundle's spec (`read_spec`).
    prefix: a checkpoint prefix, as returned by `checkpoint_path`.
    with_discriminator: also build and restore the discriminator.
    spec_file: the model.json that `spec` was read from, for messages
      (default: the one beside the checkpoint).
    precision: the dtype policy the models are built under
      (`tfgt.precision`); their variables are float32 whatever it is, so
      every checkpoint reads into every precision, and images and logits
      come out float32.

  Returns:
    (generator, discriminator or None).

  Raises:
    UnreadableCheckpoint: a checkpoint file that is missing, truncated or
      corrupt (a `UserInputError`).
    UserInputError: an unknown architecture or precision, options of the
      spec that build no model, a checkpoint whose variables do not fit the
      models of the spec, or a discriminator asked of a bundle that has none.
  """
  precision_lib.check(precision)
  spec_file = spec_file or os.path.join(os.path.dirname(prefix), SPEC_FILE)
  try:
    checkpoints.verify(prefix)
  except checkpoints.UnreadableCheckpoint as e:
    raise checkpoints.UnreadableCheckpoint(_unreadable(prefix, str(e))) from e
  try:
    arch = architectures.get(spec.get("architecture"))
  except UserInputError as e:
    raise UserInputError(f"{spec_file}: {e}") from e
  if with_discriminator and spec.get("discriminator") is None:
    raise UserInputError(
        f"The model {os.path.dirname(prefix)} has no discriminator (its run "
        "trained the generator alone, or it was imported without one), but "
        "this use needs one. Start from a run or bundle that has one; for an "
        "import, import the discriminator too (biggan_pytorch: "
        "--discriminator=D.pth; docs/IMPORT.md).")
  # Options the entry lacks take their defaults, never gin's bindings.
  # Keras warns while a model that cannot be built fails: the warnings are
  # shown only if it builds.
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
      with precision_lib.policy_scope(precision):
        generator = arch.generator(**architectures.with_defaults(
            arch.generator, spec["generator"]))
        discriminator = (arch.discriminator(**architectures.with_defaults(
            arch.discriminator, spec["discriminator"]))
                         if with_discriminator else None)
        arch.build(generator, discriminator)
    except (TypeError, ValueError, KeyError, AttributeError,
            tf.errors.OpError) as e:
      raise UserInputError(
          f"{spec_file}: its {arch.name} options build no model "
          f"({_short(e)}). {_SPEC_FIX}") from e
  for warning in caught:
    warnings.warn_explicit(warning.message, warning.category,
                           warning.filename, warning.lineno)
  objects = dict(generator=generator)
  if discriminator is not None:
    objects["discriminator"] = discriminator
  reader = tf.train.Checkpoint(**objects)
  mismatch = None
  try:
    status = reader.read(prefix)
    status.assert_existing_objects_matched().expect_partial()
  except (AssertionError, ValueError) as e:
    mismatch = " ".join(str(e).split())
  except (tf.errors.OpError, IndexError, RuntimeError) as e:
    # Damaged or deleted since `verify` read it (a live run prunes old ones).
    detail = (getattr(e, "message", None) or str(e)).strip().splitlines()
    raise checkpoints.UnreadableCheckpoint(_unreadable(prefix, (
        f"the checkpoint {prefix} cannot be read "
        f"({detail[0] if detail else type(e).__name__})"))) from e
  if mismatch is not None:
    # The failed read's pending values each log a warning when TensorFlow
    # collects them (some 80 lines, possibly only at exit), which would bury
    # this message: TensorFlow's warnings stay off from here on.
    tf.get_logger().setLevel("ERROR")
    raise UserInputError(
        f"The checkpoint {prefix} does not fit the {arch.name} models that "
        f"{spec_file} describes ({mismatch}). Was model.json or the "
        "checkpoint replaced? Use the model.json written with the "
        "checkpoint.")
  return generator, discriminator
