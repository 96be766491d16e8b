"""Loading a source bundle and carrying its weights into target models.

Every transfer method starts from a bundle (`tfgt.models.bundle`): a plain
generator and discriminator for N old classes, of any registered
architecture (`tfgt.models.architectures`; a method that needs one kind says
so in `TransferMethod.check_source`). The target models have N + M classes;
their class tables (conditional BN rows, class embeddings, the
discriminator's projection embedding) grow by M rows after the N old ones, so
an old class keeps its id.
"""

from __future__ import annotations

import dataclasses
import os
import random

from absl import logging
import numpy as np
import tensorflow as tf

from tfgt.errors import UserInputError
from tfgt.methods import base
from tfgt.models import architectures
from tfgt.models import bundle
from tfgt.models import weights


@dataclasses.dataclass
class SourceModel:
  """A loaded source bundle.

  Attributes:
    generator: the plain generator for the N old classes, of the bundle's
      architecture (the contract of `tfgt.models.architectures`).
    discriminator: its discriminator (untrained when the bundle held none).
    class_names: the N old class names.
    directory: the bundle folder.
  """
  generator: architectures.Generator
  discriminator: architectures.Discriminator
  class_names: list[str]
  directory: str


def import_commands(folder: str) -> tuple[tuple[str, str], ...]:
  """The imports that make the shipped configs' source `folder`
  ("biggan_imagenet_128"), as (import_source arguments before --out,
  remark), preferred first: what the importers' entries declare
  (`tfgt.importers.registry.Importer.sources`, docs/IMPORT.md)."""
  from tfgt.importers import registry  # pylint: disable=g-import-not-at-top
  return registry.source_commands().get(folder, ())


def _import_hint(path: str) -> str:
  """How to make the missing source `path`: the import commands of a known
  source's folder name, else the general form."""
  commands = import_commands(os.path.basename(os.path.normpath(path)))
  if commands:
    made = " or ".join(
        f"`python -m tfgt.import_source {args} --out={path}` ({remark})"
        for args, remark in commands)
    return (f" Make it with {made} (docs/IMPORT.md); or point the method's "
            "`source` at a training run's model_dir.")
  return (" A public pretrained model becomes a source bundle with "
          "`python -m tfgt.import_source --from=<format> --input=<file> "
          f"--out={path}` (formats and files: docs/IMPORT.md); or point the "
          "method's `source` at a training run's model_dir.")


def _directory(path: str) -> str:
  directory = bundle.resolve_directory(path)
  if not os.path.exists(os.path.join(directory, bundle.SPEC_FILE)):
    hint = _import_hint(path)
    if path.startswith(bundle.PRETRAINED_PREFIX):
      hint = (f" The shipped model {path!r} is not installed in "
              f"{bundle.PRETRAINED_DIR}: run the set-up if it is one of the "
              "shipped models (tfgt/pretrained/), else set the source to the "
              "folder of an imported model (docs/IMPORT.md) or of a training "
              "run.")
    raise UserInputError(f"Source model {path!r} not found: {directory} has no "
                         f"{bundle.SPEC_FILE}.{hint}")
  return directory


def read_info(path: str) -> tuple[base.SourceInfo, dict]:
  """(SourceInfo, spec) of a bundle, without building any model."""
  spec = bundle.read_spec(_directory(path))
  g = spec["generator"]
  return base.SourceInfo(list(spec["class_names"]), g["resolution"],
                         g["channels"]), spec


# Loaded sources by (checkpoint file, its modification time, the random state
# the load started from), with the strategy whose scope created their
# variables and the random state the load left. Methods only read the source
# models, so a process that builds several targets from one source under one
# strategy (benchmark, tests, tools) loads and builds it once per seed.
_LOADED: dict[tuple, tuple[tf.distribute.Strategy, SourceModel, tuple]] = {}
_MAX_LOADED = 4


def _random_state() -> tuple:
  """(Python's, NumPy's) global random state."""
  return random.getstate(), np.random.get_state()


def _state_key(state: tuple) -> tuple:
  """A hashable fingerprint of a `_random_state()`."""
  python_state, (kind, keys, pos, has_gauss, gauss) = state
  return python_state, kind, keys.tobytes(), pos, has_gauss, gauss


def load(path: str, checkpoint: str | int = "latest") -> SourceModel:
  """Loads the generator and discriminator of a bundle (read-only use).

  Building the models draws from Python's random state (Keras seeds each
  unseeded initializer from it), so what a method builds next (the new
  classes' random rows) depends on it. A load served from the process's
  cache sets the state that loading left, as if it had loaded: a run starts
  from the same values whatever the process trained before it.
  """
  directory = _directory(path)
  ckpt = bundle.checkpoint_path(directory, checkpoint)
  key = (os.path.realpath(ckpt), os.path.getmtime(ckpt + ".index"),
         _state_key(_random_state()))
  strategy = tf.distribute.get_strategy()
  if key in _LOADED and _LOADED[key][0] is strategy:
    _, model, (python_state, numpy_state) = _LOADED[key]
    random.setstate(python_state)
    np.random.set_state(numpy_state)
    return model
  generator, discriminator, spec = bundle.load(directory, checkpoint,
                                               with_discriminator=True)
  logging.info("Source model %s (%s checkpoint): %d classes.", directory,
               checkpoint, len(spec["class_names"]))
  if spec.get("discriminator_trained") is False:
    logging.warning(
        "Source model %s has an untrained discriminator (%s: the file held "
        "none); a method that trains D starts it from scratch "
        "(docs/IMPORT.md).", directory, spec.get("method"))
  model = SourceModel(generator, discriminator, list(spec["class_names"]),
                      directory)
  _LOADED.pop(key, None)
  if len(_LOADED) >= _MAX_LOADED:
    _LOADED.pop(next(iter(_LOADED)))
  _LOADED[key] = (strategy, model, _random_state())
  return model


def extend_discriminator(source_d: architectures.Discriminator,
                         num_classes: int, new_rows: str = "random"
                         ) -> architectures.Discriminator:
  """The source D for `num_classes` classes: new class rows appended.

  The new D is built as the source's architecture builds it (a BigGAN D
  gets M new projection rows); every variable but the class tables' new
  rows is the source's.

  Args:
    source_d: built discriminator for N classes.
    num_classes: N + M.
    new_rows: `weights.NEW_ROW_INITS`: "random" (the layer's
      initialiser, as the official cGANTransfer code's new embedding), "mean"
      or "zeros".

  Returns:
    The built discriminator for N + M classes.

  Raises:
    ValueError: a source variable that the new D lacks or cannot hold.
    UserInputError: an unknown new_rows.
  """
  architecture = architectures.get(source_d.architecture)
  d = architecture.discriminator(num_classes, **source_d.ctor_kwargs)
  d((tf.zeros([1, d.resolution, d.resolution, d.channels]),
     tf.zeros([1], tf.int32)), training=False)
  unmatched = weights.copy_weights(source_d, d, source_d.num_classes,
                                   new_rows)
  if unmatched:
    raise ValueError("Discriminator variables missing from the source: "
                     f"{[v.path for v in unmatched]}")
  return d


def refuse_unconditional_stylegan(method: "TransferMethod",
                                  src: SourceModel) -> None:
  """The `check_source` of the methods that learn new classes in a source's
  class tables (cGANTransfer, TransferGAN, FreezeD): an unconditional
  StyleGAN or StyleGAN2 has none.

  Raises:
    UserInputError: such a source, naming the methods that take it.
  """
  g = src.generator
  if g.num_classes == 1 and g.architecture in ("stylegan", "stylegan2"):
    raise UserInputError(
        f"{type(method).__name__} learns the new classes in the class tables "
        "of a class-conditional source (a BigGAN's conditional BN, a "
        "class-conditional StyleGAN2's label embedding), and "
        f"{method.source!r} is an unconditional {g.architecture}: start "
        "from a class-conditional source (HyperModulation and GANMemory "
        "make an unconditional StyleGAN conditional, docs/HYPERMOD.md).")


class TransferMethod(base.Method):
  """Base of the methods that start from a source bundle.

  Args:
    source: a bundle folder, a training run's model_dir, or
      "pretrained:NAME" for a model shipped in tfgt/pretrained.
    checkpoint: "latest", "best" or a step number of the bundle.
  """

  def __init__(self, source: str, checkpoint: str | int = "latest"):
    if not isinstance(source, str) or not source:
      raise UserInputError(f"{type(self).__name__}.source must name a source "
                           f"model, got {source!r}.")
    self.source = source
    self.checkpoint = bundle.parse_checkpoint(
        checkpoint, f"{type(self).__name__}.checkpoint")

  def source_info(self) -> base.SourceInfo:
    info, _ = read_info(self.source)
    return info

  def check_source(self, src: SourceModel) -> None:
    """Refuses a source this method cannot start from (any, by default).

    Raises:
      UserInputError: in a method that needs another kind of source.
    """
    del src

  def load_source(self, class_names: list[str]) -> tuple[SourceModel, int]:
    """Loads the source, checks it (`check_source`) and that `class_names`
    = old names + new names.

    Returns:
      (source model, M = number of new classes).

    Raises:
      UserInputError: a missing source, one that `check_source` refuses, or
        no new class.
      ValueError: class names that do not start with the source's.
    """
    src = load(self.source, self.checkpoint)
    self.check_source(src)
    num_old = len(src.class_names)
    if list(class_names[:num_old]) != src.class_names:
      raise ValueError("The class list must start with the source classes.")
    num_new = len(class_names) - num_old
    if num_new < 1:
      raise UserInputError(
          f"{type(self).__name__} needs at least one new class; select the "
          "target classes with load_training_data.classes.")
    return src, num_new
