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

import tensorflow as tf

from tfgt import files
from tfgt.errors import UserInputError
from tfgt.models import architectures

SPEC_FILE = "model.json"
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


def read_spec(directory: str) -> dict:
  path = os.path.join(directory, SPEC_FILE)
  if not os.path.isdir(directory):
    raise UserInputError(
        f"{directory} does not exist (or is not a folder). Give a training "
        "run's model_dir, its 'model' sub-folder or pretrained:NAME.")
  if not os.path.exists(path):
    raise UserInputError(
        f"{directory} is not a tfgt model: {SPEC_FILE} is missing. Give a "
        "training run's model_dir or its 'model' sub-folder.")
  with open(path) as f:
    return json.load(f)


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


def checkpoint_path(directory: str, checkpoint: str | int = "latest") -> str:
  """The checkpoint prefix for 'latest', 'best' or a step number."""
  checkpoint = parse_checkpoint(checkpoint)
  if checkpoint == "latest":
    path = tf.train.latest_checkpoint(directory)
  elif checkpoint == "best":
    best = os.path.join(directory, "best")
    path = tf.train.latest_checkpoint(best) if os.path.isdir(best) else None
  else:
    path = os.path.join(directory, f"ckpt-{checkpoint}")
    if not tf.io.gfile.exists(path + ".index"):
      path = None
  if path is None:
    available = sorted(
        int(m.group(1)) for m in (re.match(r"ckpt-(\d+)\.index$", f)
                                  for f in os.listdir(directory)) if m)
    raise UserInputError(f"No checkpoint {checkpoint!r} in {directory}; "
                         f"steps available: {available or 'none'}.")
  return path


def load(path: str, checkpoint: str | int = "latest", with_discriminator=False):
  """Loads a bundle.

  Args:
    path: a run's model_dir or a bundle folder.
    checkpoint: "latest", "best" or a step number.
    with_discriminator: also build and restore the discriminator.

  Returns:
    (generator, discriminator or None, spec dict).
  """
  directory = resolve_directory(path)
  spec = read_spec(directory)
  prefix = checkpoint_path(directory, checkpoint)
  generator, discriminator = restore(spec, prefix, with_discriminator)
  return generator, discriminator, spec


def restore(spec: dict, prefix: str, with_discriminator=False):
  """Builds the models of a bundle's spec and reads one checkpoint into them.

  Args:
    spec: the bundle's spec (`read_spec`).
    prefix: a checkpoint prefix, as returned by `checkpoint_path`.
    with_discriminator: also build and restore the discriminator.

  Returns:
    (generator, discriminator or None).

  Raises:
    UserInputError: an unknown architecture, a checkpoint whose variables
      do not fit the models of the spec, or a discriminator asked of a
      bundle that has none.
  """
  arch = architectures.get(spec.get("architecture"))
  if with_discriminator and spec.get("discriminator") is None:
    raise UserInputError(
        f"The model {os.path.dirname(prefix)} has no discriminator (its run "
        "trained the generator alone, or it was imported without one), but "
        "this use needs one. Start from a run or bundle that has one; for an "
        "import, import the discriminator too (biggan_pytorch: "
        "--discriminator=D.pth; docs/IMPORT.md).")
  # Options the entry lacks take their defaults, never gin's bindings.
  generator = arch.generator(**architectures.with_defaults(
      arch.generator, spec["generator"]))
  discriminator = (arch.discriminator(**architectures.with_defaults(
      arch.discriminator, spec["discriminator"]))
                   if with_discriminator else None)
  arch.build(generator, discriminator)
  objects = dict(generator=generator)
  if discriminator is not None:
    objects["discriminator"] = discriminator
  try:
    status = tf.train.Checkpoint(**objects).read(prefix)
    status.assert_existing_objects_matched().expect_partial()
  except (AssertionError, ValueError) as e:
    raise UserInputError(
        f"The checkpoint {prefix} does not fit the {arch.name} models that "
        f"its model.json describes ({e}). Was model.json or the checkpoint "
        "replaced? Use the model.json written with the checkpoint.") from e
  return generator, discriminator
