"""The metrics the evaluator knows: one registered `Metric` entry each.

A metric is declared once, next to its maths, with `register`:

    registry.register(registry.Metric(
        name="mfid", keys=("fid",), per_class=True, compute=_fid,
        min_rows=(2, 2)))

and everything else reads the entry: `Evaluator` (which metrics
`Evaluator.metrics` may name, what they need and how to compute them),
`tfgt.evaluate` (the table: x100 for KID) and `tfgt.train` (the direction of
`train.best_metric`). The built-in entries are in `metrics.py` (fid, kid,
mfid, mkid, kmmd, prdc, mprdc) and `ppl.py` (ppl); importing `tfgt.eval`
registers them, in that order.

Like NVlabs StyleGAN2-ADA's `metric_main.register_metric`, the registry maps
a name to a function that returns a dict of results; like compare_gan's
`EvalTask`s, an entry says which result keys it produces. The entry also
carries what tfgt's evaluator must know without calling it: per class or
pooled, direction, display scale, minimum sample counts, inputs.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Sequence

import numpy as np

from tfgt.errors import UserInputError

# What a metric's `compute` is given (`Metric.inputs`).
FEATURES = "features"
GENERATOR = "generator"
# Per class, with every evaluated class's real features at hand (a
# classifier of the classes: class consistency).
CLASSES = "classes"
# Per class, the images themselves (pixel-space and LPIPS diversity).
PIXELS = "pixels"
# Images per class a PIXELS metric is given at most: a seeded subset of the
# real images, the first samples of the generated ones (kept as uint8, so
# 100 images of 256x256x3 hold 20 MB per class and side).
MAX_PIXEL_ROWS = 100

_NAME = re.compile(r"[a-z][a-z0-9_]*$")

# (fewest real rows, fewest generated rows), a function of the settings
# giving them, or None (`Metric.min_rows`).
MinRows = tuple[int, int] | Callable[[Any], tuple[int, int]] | None


@dataclasses.dataclass(frozen=True)
class Sampler:
  """The generator, for metrics that draw their own samples (GENERATOR).

  Attributes:
    draw: (z float32 [B, dim_z], labels int32 [B] or class weights float32
      [B, num_classes]) -> images float32 [B, H, W, C] in [-1, 1]; compiled
      once per generator.
    features: images [B, H, W, C] in [-1, 1] -> float32 features [B, D] of
      the evaluator's extractor.
    class_ids: the model ids of the evaluated classes, in order.
    num_classes: the generator's classes.
    dim_z: the latent size.
  """
  draw: Callable[[Any, Any], Any]
  features: Callable[[Any], Any]
  class_ids: list[int]
  num_classes: int
  dim_z: int


@dataclasses.dataclass(frozen=True)
class Metric:
  """One metric: its name, its results, what it needs, how to read it.

  Attributes:
    name: what `Evaluator.metrics` (and --metrics) names: lower case letters,
      digits and "_", e.g. "fid", "mfid".
    compute: the maths, returning {key: float} with keys from `keys` (it may
      leave some out: KID leaves out kid_std when one block gives no spread).
      With inputs=FEATURES, `compute(real, fake, settings)`: real float32
      [n, D] and fake float32 [m, D] are the extractor's features of the
      real images and of the samples, finite, n and m at least `min_rows`:
      of all evaluated classes, or of one class for a per-class metric.
      With inputs=PIXELS (per class only), `compute(real, fake, settings)`
      as for FEATURES, but real and fake are the class's images, uint8
      [n, H, W, C] and [m, H, W, C] (0-255, as a saved PNG holds them), at
      most MAX_PIXEL_ROWS each.
      With inputs=GENERATOR, `compute(sampler, settings)` (a `Sampler`).
      With inputs=CLASSES (per class only), `compute(real, real_ids,
      fake_by_class, settings)`: the real features [n, D] of every
      evaluated class with their model ids int [n], and {model id: the
      class's sample features [m_c, D]}; it returns {model id: {key:
      float}}, every key for every class.
      `settings` is the Evaluator: its attributes seed, batch_size,
      kid_block_size, kmmd_sigma, prdc_k, max_pairwise_samples, ppl_samples
      and ppl_epsilon. Too few rows or bad features may raise
      UserInputError; the evaluator checks the counts first.
    keys: every key `compute` may return (a per-class metric must return
      all of them, for every class). A pooled metric's results are these
      keys; a per-class metric keeps them in each class's entry of the
      per-class table and returns "m" + key, the mean over the classes.
    per_class: compute per class, against that class's real images, and
      average over the classes (Hyper-Modulation's mFID); else one
      computation over all evaluated classes pooled (cGANTransfer's FID).
    higher_is_better: the direction of every result key, used to keep the
      best checkpoint (`train.best_metric`); False for distances.
    target: for ratios to the real images' own value (within-class
      diversity: 1), the value a result is best at: the nearer |value -
      target|, the better, whatever `higher_is_better` says. None: the
      direction is `higher_is_better`'s.
    reference_keys: keys (of `keys`) that describe the real images alone
      (a classifier's accuracy on held-out real images, the real images'
      own spread): the same at every evaluation of one evaluator, shown
      beside the generated value, never a `train.best_metric`.
    scale: display factor of the terminal line and tables (100: KID is
      printed "kid x100" as papers print it); stored values are raw.
    min_rows: the fewest (real, generated) feature rows `compute` is
      defined with, for every class if `per_class`, else for all classes
      together; or a function of the settings returning them (PRDC needs
      prdc_k + 1); None for a metric that draws its own samples.
    inputs: FEATURES (features of real and generated images), CLASSES (the
      same, every class at once: class consistency), PIXELS (the images
      themselves: pixel-space diversity) or GENERATOR (the generator
      itself, as a `Sampler`: PPL).
    check_settings: settings -> None; raises UserInputError, saying the fix,
      for settings with which the metric cannot run (called when the
      Evaluator is built).
    check_classes: evaluated class names -> None; raises UserInputError,
      saying the fix, when the metric cannot score these classes (PPL:
      fewer than two).
    fewer_rows_fix: a setting change that lowers `min_rows`, offered in the
      error for too few images or samples ("lower Evaluator.prdc_k").
  """
  name: str
  compute: Callable[..., dict[str, float]]
  keys: tuple[str, ...]
  per_class: bool = False
  higher_is_better: bool = False
  target: float | None = None
  reference_keys: tuple[str, ...] = ()
  scale: float = 1.0
  min_rows: MinRows = (2, 2)
  inputs: str = FEATURES
  check_settings: Callable[[Any], None] | None = None
  check_classes: Callable[[Sequence[str]], None] | None = None
  fewer_rows_fix: str | None = None

  @property
  def result_keys(self) -> tuple[str, ...]:
    """The keys of the evaluator's results: `keys`, "m"-prefixed if
    per class."""
    return tuple("m" + k if self.per_class else k for k in self.keys)

  def minimum(self, settings: Any) -> tuple[int, int] | None:
    """(fewest real rows, fewest generated rows) under `settings`, or None
    for a metric that draws its own samples."""
    if callable(self.min_rows):
      return self.min_rows(settings)
    return self.min_rows

  def __call__(self, *args) -> dict[str, float]:
    """`compute(*args)`, its keys checked against `keys`.

    Raises:
      ValueError: a key the entry does not declare.
    """
    values = self.compute(*args)
    if self.inputs == CLASSES:
      for by_class in values.values():
        self._check_keys(by_class)
      return values
    self._check_keys(values)
    return values

  def _check_keys(self, values: dict[str, float]) -> None:
    extra = sorted(set(values) - set(self.keys))
    if extra:
      raise ValueError(
          f"Metric {self.name!r} returned {extra}, which its entry does not "
          f"declare (keys={self.keys}): add them to its keys.")


_REGISTRY: dict[str, Metric] = {}


def _validate(metric: Metric) -> None:
  """Raises ValueError, saying the fix, for an entry that cannot work."""
  if not _NAME.match(metric.name):
    raise ValueError(f"Metric name {metric.name!r}: use lower case letters, "
                     "digits and '_', starting with a letter.")
  if metric.name in _REGISTRY:
    raise ValueError(f"A metric named {metric.name!r} is registered already "
                     "(tfgt.eval.registry.names()): choose another name, or "
                     "unregister the old one first.")
  if not callable(metric.compute):
    raise ValueError(f"Metric {metric.name!r}: compute must be a function.")
  if (not metric.keys or isinstance(metric.keys, str)
      or not all(isinstance(k, str) and k for k in metric.keys)):
    raise ValueError(f"Metric {metric.name!r}: keys must be a tuple of "
                     f"result names such as ('fid',), got {metric.keys!r}.")
  if metric.inputs not in (FEATURES, CLASSES, PIXELS, GENERATOR):
    raise ValueError(f"Metric {metric.name!r}: inputs must be "
                     f"{FEATURES!r}, {CLASSES!r}, {PIXELS!r} or "
                     f"{GENERATOR!r}, got {metric.inputs!r}.")
  if metric.per_class and metric.inputs == GENERATOR:
    raise ValueError(f"Metric {metric.name!r}: a per-class metric is "
                     f"computed on each class's features: use inputs="
                     f"{FEATURES!r} or {CLASSES!r}.")
  if metric.inputs in (CLASSES, PIXELS) and not metric.per_class:
    raise ValueError(f"Metric {metric.name!r}: inputs={metric.inputs!r} "
                     "gives results per class: set per_class=True.")
  if not metric.scale > 0:
    raise ValueError(f"Metric {metric.name!r}: scale must be > 0, got "
                     f"{metric.scale}.")
  if metric.target is not None and (
      metric.higher_is_better or not np.isfinite(metric.target)):
    raise ValueError(f"Metric {metric.name!r}: a target ({metric.target}) "
                     "must be finite and replaces the direction: leave "
                     "higher_is_better False.")
  unknown = sorted(set(metric.reference_keys) - set(metric.keys))
  if unknown or isinstance(metric.reference_keys, str):
    raise ValueError(f"Metric {metric.name!r}: reference_keys must be a "
                     f"tuple of some of its keys {metric.keys}, got "
                     f"{metric.reference_keys!r}.")
  taken = {k: m.name for m in _REGISTRY.values() for k in m.result_keys}
  clash = sorted(k for k in metric.result_keys if k in taken)
  if clash:
    raise ValueError(
        f"Metric {metric.name!r} would return {clash}, which "
        f"{sorted({taken[k] for k in clash})} return already: rename its "
        "keys, so that each result names one metric.")


def register(metric: Metric) -> Metric:
  """Adds `metric` to the registry (after the ones already there).

  Returns:
    `metric`, so that a module can keep it: `FID = register(Metric(...))`.

  Raises:
    ValueError: a bad or taken name, keys whose results another metric
      returns, or fields that do not fit together.
  """
  _validate(metric)
  _REGISTRY[metric.name] = metric
  return metric


def unregister(name: str) -> None:
  """Removes a registered metric (e.g. a test's own)."""
  _REGISTRY.pop(name, None)


def names() -> tuple[str, ...]:
  """The registered metrics' names, in registration order (the order of
  `Evaluator.metrics` after parsing)."""
  return tuple(_REGISTRY)


def metrics() -> tuple[Metric, ...]:
  """The registered metrics, in registration order."""
  return tuple(_REGISTRY.values())


def get(name: str) -> Metric:
  """The metric registered as `name` (any case).

  Raises:
    UserInputError: no metric of that name, with the names there are.
  """
  metric = _REGISTRY.get(name.lower())
  if metric is None:
    raise UserInputError(f"Unknown metric {name!r}: choose from "
                         f"{', '.join(names())}.")
  return metric


def for_result(key: str) -> Metric | None:
  """The registered metric whose results include `key` ("kid_std": kid,
  "mprecision": mprdc), or None if none does."""
  for metric in _REGISTRY.values():
    if key in metric.result_keys:
      return metric
  return None


def higher_is_better(key: str) -> bool:
  """Whether a higher value of result `key` is better (as its metric says;
  False, a distance, for results of no registered metric, and for results
  with a `target`)."""
  metric = for_result(key)
  return (metric is not None and metric.target is None and
          metric.higher_is_better)


def target(key: str) -> float | None:
  """The value result `key` is best at (`Metric.target`: 1 for a ratio to
  the real images' own value), or None when it has a direction (or
  describes the real images alone: `is_reference`)."""
  metric = for_result(key)
  if metric is None or is_reference(key):
    return None
  return metric.target


def is_reference(key: str) -> bool:
  """Whether result `key` describes the real images alone
  (`Metric.reference_keys`, "m"-prefixed for a per-class metric): the same
  at every evaluation, never a best checkpoint's measure."""
  metric = for_result(key)
  if metric is None:
    return False
  prefix = "m" if metric.per_class else ""
  return key in {prefix + k for k in metric.reference_keys}


def better(key: str, value: float, old: float) -> bool:
  """Whether `value` of result `key` beats `old` (both finite): higher or
  lower as its metric's direction says, or nearer its `target`."""
  goal = target(key)
  if goal is not None:
    return abs(value - goal) < abs(old - goal)
  return value > old if higher_is_better(key) else value < old


def scale(key: str) -> float:
  """The display factor of result `key` (1 for results of no registered
  metric)."""
  metric = for_result(key)
  return 1.0 if metric is None else metric.scale


def label(key: str, factor: float) -> str:
  """"kid x100" for a key shown `factor` times its value; the key if 1."""
  return key if factor == 1 else f"{key} x{factor:g}"


def mean_over_classes(metric: Metric,
                      per_class: dict[str, dict[str, float]]
                      ) -> dict[str, float]:
  """A per-class metric's results: {"m" + key: mean over the classes}.

  Raises:
    ValueError: a class without one of the metric's keys (a per-class
      `compute` must return all its keys).
  """
  out = {}
  for key in metric.keys:
    missing = [name for name, entry in per_class.items() if key not in entry]
    if missing:
      raise ValueError(f"Per-class metric {metric.name!r} returned no "
                       f"{key!r} for class(es) {missing}: its compute must "
                       "return every key of its entry for every class.")
    out["m" + key] = float(np.mean([entry[key]
                                    for entry in per_class.values()]))
  return out
