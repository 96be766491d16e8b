"""The contract between transfer methods and the trainer."""

from __future__ import annotations

import abc
import dataclasses
from typing import Callable

import keras
import tensorflow as tf


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
class GANSetup:
  """The target models and how they train.

  Attributes:
    generator: maps (z, y) to images; y are labels in [0, N+M) or class weights.
    discriminator: maps (images, y) to logits [B].
    g_variables: the generator variables that train.
    d_variables: the discriminator variables that train.
    class_names: names of all N+M classes, old ones first.
    extra_g_loss: optional scalar regulariser added to the G loss of each step
      (computed per replica and averaged over replicas).
    extra_d_loss: the same for D.
    clone_generator: returns a new generator of the same structure as
      `generator` (it holds the EMA weights); built by the trainer.
    fold: maps a (trained) generator to a plain generator of its
      architecture (`tfgt.models.architectures`) for export and sampling,
      with every training-only parameter removed. It may return its argument
      when there is nothing to fold.
  """
  generator: keras.Model
  discriminator: keras.Model
  g_variables: list
  d_variables: list
  class_names: list[str]
  extra_g_loss: Callable[[], tf.Tensor] | None = None
  extra_d_loss: Callable[[], tf.Tensor] | None = None
  clone_generator: Callable[[], keras.Model] | None = None
  fold: Callable[[keras.Model], keras.Model] = lambda g: g


  def __post_init__(self):
    if self.clone_generator is None:
      self.clone_generator = lambda: self.generator.clone()


class Method(abc.ABC):
  """A way to obtain a conditional GAN for the classes of a data set."""

  name: str = "method"

  @abc.abstractmethod
  def source_info(self) -> SourceInfo:
    """The old classes and image shape; cheap, builds no model."""

  @abc.abstractmethod
  def build(self, new_class_names: list[str]) -> GANSetup:
    """Builds the target models (called under the strategy's scope)."""
