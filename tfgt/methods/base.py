"""The contract between methods and the trainer.

A method (`Method`) says what it starts from (`source_info`) and builds a
`GANSetup`: the models, which of their variables train in which optimizer
group, the objective, how the EMA copy is made and how a trained generator
becomes a plain one for export. The trainer (`tfgt.train`) knows nothing
else about it; docs/ARCHITECTURE.md shows the flow.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import Callable, Sequence

import keras

from tfgt import objectives as objectives_lib


@dataclasses.dataclass
class SourceInfo:
  """What a method starts from, known before any model is built.

  Attributes:
    class_names: names of the N old classes (empty when training from scratch).
    resolution: image size of the models.
    channels: image channels of the models.
  """
  class_names: list[str]
  resolution: int
  channels: int


@dataclasses.dataclass
class VariableGroup:
  """Variables that one optimizer trains.

  The trainer gives each group its own Adam optimizer with learning rate
  `train.g_lr` (or `train.d_lr`) times `learning_rate_scale` and the trainer's
  betas, overridden by `optimizer`. The optimizer's state is checkpointed
  under `name`: keep names stable, or old checkpoints stop resuming.

  Attributes:
    name: unique among the setup's groups; a Python identifier.
    variables: the variables trained.
    learning_rate_scale: > 0.
    optimizer: keyword arguments of `keras.optimizers.Adam` that replace the
      trainer's (e.g. {"beta_1": 0.5}); not `learning_rate`.
  """
  name: str
  variables: list
  learning_rate_scale: float = 1.0
  optimizer: dict = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    if not self.name.isidentifier():
      raise ValueError(f"Variable group name {self.name!r} is not an "
                       "identifier.")
    if not self.learning_rate_scale > 0:
      raise ValueError(f"Variable group {self.name!r}: learning_rate_scale "
                       f"must be > 0, got {self.learning_rate_scale}.")
    if "learning_rate" in self.optimizer:
      raise ValueError(f"Variable group {self.name!r}: set "
                       "learning_rate_scale, not optimizer['learning_rate'].")


def _groups(variables: Sequence, default_name: str) -> list[VariableGroup]:
  """A list of variables as one group, or the groups as given."""
  variables = list(variables)
  if variables and all(isinstance(v, VariableGroup) for v in variables):
    return variables
  if any(isinstance(v, VariableGroup) for v in variables):
    raise ValueError("Give either variables or VariableGroups, not both.")
  return [VariableGroup(default_name, variables)]


@dataclasses.dataclass
class GANSetup:
  """The target models and how they train.

  Attributes:
    generator: maps (z, y) to images; y are labels in [0, N+M) or class
      weights (contract: `tfgt.models.architectures.Generator`).
    discriminator: maps (images, y) to logits [B]; None for a method that
      trains G without one (no D step is run and no D is saved).
    g_variables: the generator variables that train: a list of variables
      (one group named "generator") or of `VariableGroup`s. After
      construction: all of them, flattened.
    d_variables: the same for D (one group named "discriminator").
    class_names: names of all N+M classes, old ones first.
    objective: the losses (`tfgt.objectives`); None: `Adversarial()`.
    clone_generator: returns a new generator of the same structure as
      `generator` (it holds the EMA weights); built by the trainer.
    fold: maps a (trained) generator to a plain generator of its
      architecture (`tfgt.models.architectures`) for export and sampling,
      with every training-only parameter removed. It may return its argument
      when there is nothing to fold.
    g_groups, d_groups: set from g_variables and d_variables.
  """
  generator: keras.Model
  discriminator: keras.Model | None
  g_variables: list
  d_variables: list
  class_names: list[str]
  objective: objectives_lib.Objective | None = None
  clone_generator: Callable[[], keras.Model] | None = None
  fold: Callable[[keras.Model], keras.Model] = lambda g: g
  g_groups: list[VariableGroup] = dataclasses.field(init=False)
  d_groups: list[VariableGroup] = dataclasses.field(init=False)

  def __post_init__(self):
    if self.clone_generator is None:
      self.clone_generator = lambda: self.generator.clone()
    if self.objective is None:
      self.objective = objectives_lib.Adversarial()
    self.g_groups = _groups(self.g_variables, "generator")
    self.d_groups = ([] if self.discriminator is None else
                     _groups(self.d_variables, "discriminator"))
    names = [g.name for g in self.g_groups + self.d_groups]
    if len(set(names)) != len(names):
      raise ValueError(f"Variable group names repeat: {names}.")
    self.g_variables = [v for g in self.g_groups for v in g.variables]
    self.d_variables = [v for g in self.d_groups for v in g.variables]


class Method(abc.ABC):
  """A way to obtain a conditional GAN for the classes of a data set."""

  name: str = "method"

  @abc.abstractmethod
  def source_info(self) -> SourceInfo:
    """The old classes and image shape; cheap, builds no model."""

  @abc.abstractmethod
  def build(self, class_names: list[str]) -> GANSetup:
    """Builds the target models (called under the strategy's scope).

    Args:
      class_names: all N + M class names: the source's N old classes (those
        of `source_info()`), then the M classes of the training data.
    """


def trainable_values(method: Method, class_names: list[str]) -> dict:
  """How many values of G a method trains, for a run's classes.

  Builds the method's models (under the current strategy's scope) to count
  them.

  Args:
    method: the method of the run.
    class_names: the run's N + M class names (the bundle's model spec).

  Returns:
    {"g_trainable": all trained G values, "g_per_new_class": that over M,
    "g_class_specific": the values of one row of every trained variable
    with a row per class (one per new class, as cGANTransfer's, or one per
    class, as Hyper-Modulation's class embedding)}.
  """
  num_new = len(class_names) - len(method.source_info().class_names)
  setup = method.build(class_names)
  total = sum(math.prod(v.shape) for v in setup.g_variables)
  specific = sum(math.prod(v.shape[1:]) for v in setup.g_variables
                 if _class_rows(v.shape, num_new, len(class_names)))
  return {"g_trainable": int(total), "g_per_new_class": total / num_new,
          "g_class_specific": int(specific)}


def _class_rows(shape, num_new: int, num_classes: int) -> bool:
  """A variable with one row per new class or per class: a matrix or more
  whose first dimension is one of those counts, and not a k x k
  convolution kernel [k, k, in, out]."""
  shape = tuple(shape)
  return (len(shape) >= 2 and shape[0] in (num_new, num_classes) and
          not (len(shape) == 4 and shape[0] == shape[1]))
