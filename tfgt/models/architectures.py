"""What every generator and discriminator of tfgt offers, and the registry of
architectures that bundles name.

The trainer, sampling, evaluation and export see models only through this
contract (compare google/compare_gan's `abstract_arch.py`), so that a new
architecture is a new module plus one `register` call. The modules of
tfgt/models are the built-in architectures: `get` imports them
(`import_built_in`) when it meets a name not registered yet, and
`tfgt.config` does for their gin configurables, so that no list names them.

Generator, a `keras.Model` with
  num_classes, dim_z, resolution, channels   ints;
  ctor_kwargs     dict: with num_classes, the keyword arguments that build an
                  identical, unbuilt model (written to a bundle's model.json);
  architecture    str, the registry name of its class;
  call((z, y), training=None)
                  z float32 [B, dim_z]; y int32 labels [B] in [0, num_classes)
                  or float32 class weights [B, num_classes] (one-hot rows are
                  labels, soft rows draw between classes)
                  -> images float32 [B, resolution, resolution, channels] in
                  [-1, 1];
  clone(num_classes=None, name=None)   a new, unbuilt model of the same kind;
  ema_copies(variable) -> bool         optional: True for variables that an
                  EMA generator copies instead of averaging (state that is not
                  a weight, such as a spectral-norm power-iteration vector).
  truncated_call((z, y), truncation)   optional: images drawn with the
                  truncation trick done inside the model, for architectures
                  that truncate something other than z (StyleGAN: w moves
                  towards its running mean, w_avg + truncation (w - w_avg),
                  truncation > 0, 1 = none); z then comes untruncated. Without
                  it, truncation t > 0 is a threshold on every component of z
                  (BigGAN, Brock et al. 2019, section 3.1); see
                  `truncates_z` and `tfgt.export`. Such an architecture
                  also has `no_truncation` (float: the truncation that
                  leaves its images as `call` draws them, 1 for StyleGAN)
                  and `truncation_meaning` (str, for export metadata).
  prepare_serving()                    optional: called by the export before
                  tracing, to precompute what every label draw would repeat
                  (a hyper-modulated StyleGAN's per-class kernels); images
                  must not change.
Discriminator, a `keras.Model` with
  num_classes, resolution, channels, ctor_kwargs, architecture, clone as
  above; call((images, y), training=None) -> logits float32 [B];
  features(images, training=None) -> penultimate features float32 [B, F].

A bundle's model.json names the architecture of its models
(`"architecture": "biggan"`); bundles written before the field existed are
BigGANs.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from typing import Any, Callable, Protocol, runtime_checkable

import tensorflow as tf

from tfgt.errors import UserInputError

# The architecture of bundles whose model.json names none.
DEFAULT_ARCHITECTURE = "biggan"


@runtime_checkable
class Generator(Protocol):
  """A class-conditional generator (see the module docstring)."""

  num_classes: int
  dim_z: int
  resolution: int
  channels: int
  ctor_kwargs: dict[str, Any]
  architecture: str

  def __call__(self, inputs, training=None) -> tf.Tensor:
    ...

  def clone(self, num_classes: int | None = None,
            name: str | None = None) -> "Generator":
    ...


@runtime_checkable
class Discriminator(Protocol):
  """A class-conditional discriminator (see the module docstring)."""

  num_classes: int
  resolution: int
  channels: int
  ctor_kwargs: dict[str, Any]
  architecture: str

  def __call__(self, inputs, training=None) -> tf.Tensor:
    ...

  def features(self, images: tf.Tensor, training=None) -> tf.Tensor:
    ...


@dataclasses.dataclass(frozen=True)
class Architecture:
  """How to build the models of one architecture.

  Attributes:
    name: the registry name, written to model.json.
    generator: class or callable(num_classes, **ctor_kwargs) -> Generator.
    discriminator: class or callable(num_classes, **ctor_kwargs) ->
      Discriminator.
    build: callable(generator, discriminator or None) that creates the
      variables (calls the models once on dummy inputs).
  """
  name: str
  generator: Callable[..., Generator]
  discriminator: Callable[..., Discriminator]
  build: Callable[[Generator, Discriminator | None], None]


_REGISTRY: dict[str, Architecture] = {}
# The package whose modules hold the built-in architectures.
_BUILT_IN_PACKAGE = "tfgt.models"


def register(architecture: Architecture) -> Architecture:
  """Adds an architecture; registering the same name again replaces it."""
  _REGISTRY[architecture.name] = architecture
  return architecture


def import_built_in() -> None:
  """Imports every module of tfgt/models, so that each built-in
  architecture registers itself (and its gin configurables). Idempotent."""
  package = importlib.import_module(_BUILT_IN_PACKAGE)
  for module in pkgutil.iter_modules(package.__path__):
    importlib.import_module(f"{_BUILT_IN_PACKAGE}.{module.name}")


def get(name: str | None) -> Architecture:
  """The architecture registered as `name` (None: the default, BigGAN).

  Raises:
    UserInputError: no architecture of that name, listing the known ones.
  """
  name = name or DEFAULT_ARCHITECTURE
  if name not in _REGISTRY:
    # Built-in modules register themselves on import; imported here, not at
    # the top, since they import this module.
    import_built_in()
  if name not in _REGISTRY:
    raise UserInputError(
        f"Unknown model architecture {name!r}; known: "
        f"{', '.join(names())}. Import the module that registers it "
        "(tfgt.models.architectures.register) first.")
  return _REGISTRY[name]


def build_by_calling(generator, discriminator=None) -> None:
  """Creates the variables of a generator (and discriminator) of the
  contract by calling them once on dummy inputs (z = 0, label 0)."""
  z = tf.zeros([1, generator.dim_z])
  y = tf.zeros([1], tf.int32)
  images = generator((z, y), training=False)
  if discriminator is not None:
    discriminator((images, y), training=False)


def recorded_options(name: str | None, part: str,
                     kwargs: dict[str, Any]) -> dict[str, Any]:
  """A model.json entry (`num_classes` and constructor options) as the
  constructor records it today: every option, defaults included.

  A bundle written before an option existed builds the same model as one
  that names the option's default, so the two compare equal after this.
  Building is cheap: the model is constructed, not built.

  Args:
    name: the architecture (None: the default).
    part: "generator" or "discriminator".
    kwargs: the recorded entry, with num_classes.

  Returns:
    The entry as recorded today, or `kwargs` itself when the constructor
    refuses it (TypeError, ValueError): then it can equal nothing new.

  Raises:
    UserInputError: unknown architecture.
  """
  build = getattr(get(name), part)
  try:
    model = build(**with_defaults(build, kwargs))
  except (TypeError, ValueError):
    return dict(kwargs)
  return dict(num_classes=model.num_classes, **model.ctor_kwargs)


def with_defaults(build: Callable, kwargs: dict[str, Any]) -> dict[str, Any]:
  """`kwargs` with every keyword option of `build` it lacks set to the
  signature's default, so that gin bindings of the moment cannot fill in
  options that a recorded entry (a bundle's model.json) predates.

  A class may declare `unrecorded_defaults` {option: value}: what an entry
  without the option was built with, where that differs from today's
  default (an option added with a new default behaviour)."""
  try:
    parameters = inspect.signature(build).parameters.values()
  except (TypeError, ValueError):  # A callable without a signature.
    return dict(kwargs)
  filled = {p.name: p.default for p in parameters
            if p.default is not inspect.Parameter.empty
            and p.name != "name"
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
  filled.update(getattr(build, "unrecorded_defaults", None) or {})
  filled.update(kwargs)
  return filled


def names() -> list[str]:
  return sorted(_REGISTRY)


def truncates_z(generator) -> bool:
  """Whether truncation acts on z (no `truncated_call` hook)."""
  return getattr(generator, "truncated_call", None) is None


# The truncation that leaves z untruncated when truncation acts on z (a
# threshold far beyond any standard normal draw).
Z_NO_TRUNCATION = 100.0


def no_truncation(generator) -> float:
  """The truncation value that draws the images of `call` unchanged."""
  if truncates_z(generator):
    return Z_NO_TRUNCATION
  return float(generator.no_truncation)


def generate(generator, z: tf.Tensor, y: tf.Tensor,
             truncation: tf.Tensor) -> tf.Tensor:
  """Images in inference mode, truncated as the architecture says.

  Args:
    generator: a built generator of the contract.
    z: float32 [B, dim_z]; already truncated when `truncates_z(generator)`
      (the caller decides how: clipping, or a truncated normal draw).
    y: labels int32 [B] or class weights float32 [B, num_classes].
    truncation: float32 [B], the per-image truncation.

  Returns:
    float32 [B, R, R, C] in [-1, 1].
  """
  if truncates_z(generator):
    return generator((z, y), training=False)
  return generator.truncated_call((z, y), truncation)


def ema_copies(model, variable) -> bool:
  """Whether an EMA of `model` copies `variable` rather than averaging it."""
  hook = getattr(model, "ema_copies", None)
  return bool(hook(variable)) if hook is not None else False
