"""The evaluator: scores a class-conditional generator against real images.

`Evaluator` is gin-configurable and callable on a plain generator, which is
what the trainer expects of `train.evaluator`:

    train.evaluator = @Evaluator()
    train.eval_every = 500
    Evaluator.metrics = ["fid", "kid", "mfid"]

The reference is every training image of the classes the run trains. The
evaluator is given its data: a `tfgt.data.pipeline.DataSpec` (where the
images come from and which classes the run selects, without the few-shot
subset) and the run's `ClassSelection` (its classes and their model ids).
The trainer passes both to `prepare`, for every later evaluation; the
command line (`tfgt.evaluate`) passes its run's, read from the run's
config.gin and classes.json, to `evaluate`. Without a selection, the data's
classes occupy the last model ids of the generator (a transfer appends its
new classes after the N old ones), so class i is sampled with model id
`num_classes - k + i`; without a DataSpec, the evaluator uses the one of
the current gin bindings (`pipeline.configured_data()`).

The metrics are the entries of `tfgt.eval.registry`: fid, kid, mfid, mkid,
kmmd, prdc and mprdc are declared in metrics.py, ppl in ppl.py, and a new
metric is one more entry (docs/EVALUATION.md, "Add a metric"). The evaluator
loops over the entries that `Evaluator.metrics` names: a pooled metric is
computed once on the features of all evaluated classes, a per-class metric
on each class's and averaged ("m" + key), a metric that needs the generator
(ppl) draws its own samples. Generated samples per class match the real
images per class unless `num_samples` (a total, split over the classes in
proportion to their real images) says otherwise. FID is biased by the
sample count: compare numbers computed with the same settings.

Every metric needs a minimum number of real images and of samples (its
entry's `min_rows`), per class for per-class metrics. Counts below it are
refused with a `UserInputError` that names the metric, the class, the count,
the minimum and the fix; `prepare()` runs that check on the data before
training starts.
A class with too few images is refused rather than left out of mfid/mkid
with a warning: the mean over a subset of the classes would be another
metric, not comparable with the runs and checkpoints that scored all
classes, and the best checkpoint would be chosen without looking at that
class at all; a warning in a long training log is easily missed, while the
refusal costs no training. An evaluation whose result holds NaN or infinity
raises `NonFiniteResultError` instead of returning it as a score.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Sequence

from absl import logging
import gin
import numpy as np
import tensorflow as tf

from tfgt import errors
from tfgt.data import pipeline
from tfgt.errors import UserInputError
from tfgt.eval import cache as cache_lib
from tfgt.eval import features as features_lib
# Importing them registers the built-in metrics, in this order.
from tfgt.eval import metrics as metrics_lib  # pylint: disable=unused-import
from tfgt.eval import ppl as ppl_lib
from tfgt.eval import registry
from tfgt.eval import separability
# After metrics and ppl: registers mconsistency and mdiversity.
from tfgt.eval import consistency  # pylint: disable=unused-import,g-bad-import-order
from tfgt.eval import lpips  # pylint: disable=unused-import,g-bad-import-order

DEFAULT_METRICS = ("fid", "kid", "mfid")
# Results are listed metric by metric in registry order, but those of these
# metrics first, in this order: the order in which earlier versions wrote
# them (mprdc's means before mfid's), kept so that tfgt.evaluate's JSON and
# table, best.json and the benchmark records stay as they were.
_FIRST_RESULTS = ("fid", "kid", "mprdc")
# The feature check's results (`Evaluator.check_features`).
FEATURE_CHECK_RESULTS = ("features_separation", "features_min_spread")


def __getattr__(name: str) -> Any:
  """HIGHER_IS_BETTER, the former table of higher-better results, read from
  the registry (`registry.higher_is_better(key)` is the one to use)."""
  if name == "HIGHER_IS_BETTER":
    return frozenset(k for m in registry.metrics() for k in m.result_keys
                     if registry.higher_is_better(k))
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def format_results(results: dict[str, float]) -> str:
  """"fid 9.75, kid x100 0.512, ..." for logs: each value times its metric's
  display scale (KID x100, as `tfgt.evaluate` prints it and the papers
  report it; TensorBoard and best.json keep the raw values)."""
  parts = []
  for key, value in results.items():
    factor = registry.scale(key)
    parts.append(f"{registry.label(key, factor)} {value * factor:.4g}")
  return ", ".join(parts)


# Image size and channels at which `prepare` reads the real images to count
# them: every source accepts it (Fashion-MNIST needs at least 28).
_COUNT_RESOLUTION, _COUNT_CHANNELS = 32, 1


class NonFiniteResultError(UserInputError):
  """An evaluation produced NaN or infinity where a score should be.

  Raised instead of returning such a score, so that no caller can log it,
  store it or compare it with other scores by mistake.
  """


def parse_metrics(metrics: str | Sequence[str]) -> tuple[str, ...]:
  """'fid,kid' or ["fid", "kid"] -> registered names, in registry order.

  Raises:
    UserInputError: an unregistered name, or none at all.
  """
  if isinstance(metrics, str):
    metrics = [m for m in metrics.replace(" ", "").split(",") if m]
  names = [m.lower() for m in metrics]
  known = registry.names()
  unknown = sorted(set(names) - set(known))
  if unknown or not names:
    raise UserInputError(f"Unknown metric(s) {unknown or names}: choose from "
                         f"{', '.join(known)}.")
  return tuple(m for m in known if m in names)


@dataclasses.dataclass
class Reference:
  """Features of the real images of the evaluated classes.

  Attributes:
    features: float32 [n, D].
    model_ids: int32 [n], the generator's class id of each image.
    selection: the classes, with `label_offset` = model id of the first.
    key: what the features depend on (the cache key).
    pixels: {model id: uint8 [k, H, W, C]}, at most
      `registry.MAX_PIXEL_ROWS` real images of each class (a seeded subset),
      when a metric reads pixels (`registry.PIXELS`); else None.
  """
  features: np.ndarray
  model_ids: np.ndarray
  selection: pipeline.ClassSelection
  key: dict[str, Any]
  pixels: dict[int, np.ndarray] | None = None

  def class_ids(self) -> list[int]:
    return [self.selection.label_offset + i
            for i in range(len(self.selection.source_ids))]


@dataclasses.dataclass
class EvalResult:
  """Metrics of one generator.

  Attributes:
    metrics: flat {name: float} (what the trainer logs).
    per_class: {class name: {"model_id", "real", "generated", "fid", "kid"}}
      when a per-class metric was asked for.
    settings: how the numbers were computed (samples, extractor, ...).
  """
  metrics: dict[str, float]
  per_class: dict[str, dict[str, float]]
  settings: dict[str, Any]


def split_counts(num_samples: int, real_counts: Sequence[int]) -> list[int]:
  """Splits a total over classes in proportion to their real counts.

  Largest remainders get the leftover samples, so the counts sum to
  `num_samples` exactly.
  """
  real_counts = np.asarray(real_counts, np.float64)
  shares = num_samples * real_counts / real_counts.sum()
  counts = np.floor(shares).astype(int)
  order = np.argsort(-(shares - counts), kind="stable")
  counts[order[:num_samples - counts.sum()]] += 1
  return counts.tolist()


def num_samples_for(minimum: int, real_counts: Sequence[int]) -> int:
  """The smallest total from which `split_counts` gives every class at least
  `minimum` samples, and so does every larger total.

  Any total >= ceil(minimum x sum / smallest count) does (each class's
  proportional share is then >= minimum); smaller totals are tried downwards
  from there, since the largest remainders may reach the minimum earlier.
  """
  real_counts = list(real_counts)
  bound = max(math.ceil(minimum * sum(real_counts) / min(real_counts)), 2)
  total = bound
  while total > 2 and min(split_counts(total - 1, real_counts)) >= minimum:
    total -= 1
  return total


def _names_and(names: Sequence[str]) -> str:
  names = list(names)
  return (names[0] if len(names) == 1
          else ", ".join(names[:-1]) + " and " + names[-1])


@gin.configurable(allowlist=[
    "extractor", "metrics", "num_samples", "batch_size", "seed", "split",
    "kid_block_size", "kmmd_sigma", "prdc_k", "max_pairwise_samples",
    "ppl_samples", "ppl_epsilon", "cache_dir", "use_cache",
    "check_features"])
class Evaluator:
  """Scores a generator's samples of the trained classes against real images.

  Call it on a plain class-conditional generator (G((z, labels)) -> images
  [B, R, R, C] in [-1, 1], with attributes num_classes, dim_z, resolution and
  channels: the contract of `tfgt.models.architectures`); it returns
  {metric: float}.
  """

  def __init__(self,
               extractor: features_lib.FeatureExtractor | None = None,
               metrics: str | Sequence[str] = DEFAULT_METRICS,
               num_samples: int | None = None,
               batch_size: int = 250,
               seed: int = 0,
               split: str | None = None,
               kid_block_size: int = 1024,
               kmmd_sigma: float = 1.0,
               prdc_k: int = 5,
               max_pairwise_samples: int | None = 10000,
               ppl_samples: int = 1000,
               ppl_epsilon: float = ppl_lib.DEFAULT_EPSILON,
               cache_dir: str | None = None,
               use_cache: bool = True,
               check_features: bool = True):
    """Configures the evaluation.

    Args:
      extractor: feature network; None means the shipped Fashion-MNIST
        classifier (loaded on first use). Use `InceptionHub` or
        `KerasInceptionV3` for RGB datasets.
      metrics: names of registered metrics (`registry.names()`: fid, kid,
        mfid, mkid, kmmd, prdc, mprdc, ppl and any registered since).
      num_samples: generated images in total, split over the classes in
        proportion to their real images; None generates as many as there are
        real images per class.
      batch_size: images per generator and extractor call.
      seed: seed of the latents (the same samples for every evaluation).
      split: dataset split of the reference; None keeps the training
        configuration's split.
      kid_block_size: TF-GAN's KID block size.
      kmmd_sigma: Gaussian kernel width of KMMD, relative to the spread of the
        real features.
      prdc_k: nearest neighbours of precision/recall/density/coverage.
      max_pairwise_samples: KMMD and PRDC, quadratic in the sample count, use
        at most this many samples of each set (None: all).
      ppl_samples: path-length values per class pair and sampling.
      ppl_epsilon: the path-length step, in class-weight units.
      cache_dir: where real features are cached (default $TFGT_CACHE_DIR or
        ~/.cache/tfgt/features).
      use_cache: read and write the on-disk cache.
      check_features: measure whether the extractor's features can tell the
        evaluated classes apart and keep each class's spread
        (`tfgt.eval.separability`), warn when they cannot, and add
        `features_separation` (and `features_min_spread`, when the
        extractor knows its own domain) to the results.
    """
    errors.check_types("Evaluator", dict(locals()), dict(
        num_samples="int?", batch_size="int", seed="int", split="str?",
        kid_block_size="int", kmmd_sigma="real", prdc_k="int",
        max_pairwise_samples="int?", ppl_samples="int", ppl_epsilon="real",
        cache_dir="str?", use_cache="bool", check_features="bool"))
    self.metrics = parse_metrics(metrics)
    self._entries = tuple(registry.get(name) for name in self.metrics)
    if num_samples is not None and num_samples < 2:
      raise UserInputError(f"Evaluator.num_samples must be >= 2, got "
                           f"{num_samples}.")
    if batch_size < 1:
      raise UserInputError(f"Evaluator.batch_size must be >= 1, got "
                           f"{batch_size}.")
    self.ppl_samples = ppl_samples
    self.ppl_epsilon = ppl_epsilon
    self._extractor = extractor
    self.num_samples = num_samples
    self.batch_size = batch_size
    self.seed = seed
    self.split = split
    self.kid_block_size = kid_block_size
    self.kmmd_sigma = kmmd_sigma
    self.prdc_k = prdc_k
    self.max_pairwise_samples = max_pairwise_samples
    for metric in self._entries:
      if metric.check_settings is not None:
        metric.check_settings(self)
    self.cache = cache_lib.FeatureCache(cache_dir) if use_cache else None
    # Images per class kept for the metrics that read pixels (none: 0).
    self._pixel_rows = (registry.MAX_PIXEL_ROWS if any(
        m.inputs == registry.PIXELS for m in self._entries) else 0)
    self._references: dict[str, Reference] = {}
    # _real_features by (resolution, channels, selection): the trainer's
    # prepare() and first evaluation read the same real images once.
    self._real: dict[str, tuple] = {}
    self._real_pixels: dict[str, dict[int, np.ndarray]] = {}
    self.check_features = check_features
    self._feature_checks: dict[str, dict | None] = {}
    self._domain_spread: float | None = None
    self._draw = None
    self._draw_generator = None
    # The data and classes given to `prepare`, for the calls given none.
    self._data: pipeline.DataSpec | None = None
    self._selection: pipeline.ClassSelection | None = None

  def _data_for(self, data: pipeline.DataSpec | None) -> pipeline.DataSpec:
    """`data`, else the one given to `prepare`, else the current gin
    configuration's."""
    if data is not None:
      return data
    if self._data is not None:
      return self._data
    return pipeline.configured_data()

  @property
  def extractor(self) -> features_lib.FeatureExtractor:
    """The feature network; by default the shipped Fashion-MNIST classifier,
    which only Fashion-MNIST data may use (`extractor_for`)."""
    return self.extractor_for(None)

  def extractor_for(self, data: pipeline.DataSpec | None
                    ) -> features_lib.FeatureExtractor:
    """The feature network for images of `data` (None: see `_data_for`).

    Raises:
      UserInputError: no extractor configured and data that are not
        Fashion-MNIST's, which the default extractor cannot see.
    """
    if self._extractor is None:
      source = self._data_for(data).source_name
      if source != "fashion_mnist":
        raise UserInputError(
            f"The data source is {source}, but no Evaluator.extractor is "
            "bound and the default, the Fashion-MNIST classifier, has no "
            "meaningful features for other images. Bind one, e.g. add "
            "gin_configs/cifar100/eval.gin (or places365/, animalface/) for "
            "Inception features, or set Evaluator.extractor = "
            "@FashionMNISTClassifier() to use it anyway.")
      self._extractor = features_lib.FashionMNISTClassifier()
    return self._extractor

  def result_names(self) -> set[str]:
    """The keys the configured metrics can produce (kid adds kid_std, prdc
    gives its four parts)."""
    names = {key for metric in self._entries for key in metric.result_keys}
    if self.check_features:
      names |= set(FEATURE_CHECK_RESULTS)
    return names

  def minimum_counts(self) -> dict[str, tuple[bool, int, int]]:
    """What each configured metric needs.

    Returns:
      {metric: (per class, fewest real images, fewest generated samples)};
      per-class minimums hold for every class, the others for all evaluated
      classes together.
    """
    out = {}
    for metric in self._entries:
      minimum = metric.minimum(self)
      if minimum is not None:  # None: it draws its own samples.
        out[metric.name] = (metric.per_class, *minimum)
    return out

  def sample_counts(self, real_counts: Sequence[int]) -> list[int]:
    """Generated samples per class: `num_samples` split in proportion to
    `real_counts`, or as many as the real images."""
    if self.num_samples is None:
      return [int(c) for c in real_counts]
    return split_counts(self.num_samples, real_counts)

  def check_counts(self, class_names: Sequence[str],
                   real_counts: Sequence[int]) -> list[int]:
    """Refuses counts with which a configured metric is undefined.

    Below its minimum a metric divides by zero (FID's covariance, KID's
    pairs) or asks for neighbours that do not exist (PRDC), and would give
    NaN or fail half-way through an evaluation.

    Args:
      class_names: the evaluated classes.
      real_counts: real images of each class, >= 1.

    Returns:
      The generated samples per class (`sample_counts`).

    Raises:
      UserInputError: naming every metric whose minimum is not met, the
        class and its count for per-class metrics, the minimum, and the fix
        (more images, a larger Evaluator.num_samples, fewer metrics).
    """
    for metric in self._entries:
      if metric.check_classes is not None:
        metric.check_classes(class_names)
    real_counts = [int(c) for c in real_counts]
    counts = self.sample_counts(real_counts)
    # (per class, "real" or "generated", minimum) -> metrics with that need.
    needs: dict[tuple[bool, str, int], list[str]] = {}
    entries = {metric.name: metric for metric in self._entries}
    for metric, (per_class, real_min, fake_min) in (
        self.minimum_counts().items()):
      needs.setdefault((per_class, "real", real_min), []).append(metric)
      if self.num_samples is not None:  # Else the real counts are the same.
        needs.setdefault((per_class, "generated", fake_min), []).append(
            metric)
    problems = []
    for (per_class, kind, minimum), metrics in needs.items():
      what = _names_and(metrics)
      verb = "needs" if len(metrics) == 1 else "need"
      unit = "real images" if kind == "real" else "generated samples"
      fixes = dict.fromkeys(entries[m].fewer_rows_fix for m in metrics)
      extra_fix = "".join(f", or {fix}" for fix in fixes if fix)
      have = real_counts if kind == "real" else counts
      if per_class:
        short = [f"class {n!r} {'has ' if kind == 'real' else ''}{c}"
                 for n, c in zip(class_names, have) if c < minimum]
        if not short:
          continue
        if kind == "real":
          fix = ("Add images to that class (for an image folder, to its "
                 "sub-folder), leave the class out of "
                 f"load_training_data.classes, or remove {what} from "
                 "Evaluator.metrics (--metrics of tfgt.evaluate); fid and kid "
                 "score all "
                 "classes together.")
        else:
          fix = (f"Set Evaluator.num_samples (--num_samples) to at least "
                 f"{num_samples_for(minimum, real_counts)}, or leave it "
                 "unset to generate as many samples as real images.")
          short = [f"Evaluator.num_samples={self.num_samples}, split in "
                   "proportion to the real images, leaves "
                   + ", ".join(short)]
        problems.append(
            f"{what} {verb} at least {minimum} {unit} of every class, but "
            + ", ".join(short) + ". " + fix)
      else:
        total = sum(have)
        if total >= minimum:
          continue
        if kind == "real":
          fix = (f"Add images or classes{extra_fix}, or remove {what} from "
                 "Evaluator.metrics (--metrics of tfgt.evaluate).")
        else:
          fix = (f"Set Evaluator.num_samples (--num_samples) to at least "
                 f"{minimum}{extra_fix}.")
        problems.append(
            f"{what} {verb} at least {minimum} {unit} of the evaluated "
            f"classes together, but there are {total}. {fix}")
    if problems:
      raise UserInputError("Too few images to evaluate: " + " ".join(problems))
    return counts

  def _load_real(self, resolution: int, channels: int,
                 selection: pipeline.ClassSelection | None,
                 data: pipeline.DataSpec
                 ) -> tuple[np.ndarray, np.ndarray, pipeline.ClassSelection]:
    """All real images of the evaluated classes, labels from 0, classes."""
    return data.load(resolution, channels, selection, split=self.split)

  def prepare(self, resolution: int | None = None,
              channels: int | None = None,
              data: pipeline.DataSpec | None = None,
              selection: pipeline.ClassSelection | None = None) -> None:
    """Checks, before any training, that the evaluations can run.

    Loads the feature extractor, then reads the real images of the
    evaluated classes (at a small size, to count them; the trainer calls
    this before its first step) and checks the counts against every
    configured metric (`check_counts`). Given the generator's resolution and
    channels, it also extracts the real features (cached for the
    evaluations) and runs the feature check (`check_features`), so that its
    warnings come before training.

    Args:
      resolution: the generator's image size, or None.
      channels: its image channels, or None.
      data: where the real images come from; None: the current gin
        configuration's (`pipeline.configured_data()`). Kept for the
        evaluations that are given none (the trainer's `evaluator(G)`).
      selection: the run's classes and their model ids (the trainer's
        `load_training_data` result); None: `data`'s classes at the
        generator's last model ids. Kept likewise.

    Raises:
      UserInputError: an unusable extractor or data, or a class with too
        few images (or too few samples from `num_samples`) for a metric.
    """
    self._data, self._selection = data, selection
    data = self._data_for(data)
    _ = self.extractor_for(data)
    _, labels, found = self._load_real(_COUNT_RESOLUTION, _COUNT_CHANNELS,
                                       selection, data)
    self.check_counts(found.names,
                      np.bincount(labels, minlength=len(found.names)))
    if self.check_features and resolution is not None:
      feats, labels, found, key = self._real_features(
          resolution, channels or _COUNT_CHANNELS, selection, data)
      self.feature_check(feats, labels, dict(enumerate(found.names)), key)

  def _real_features(self, resolution: int, channels: int,
                     selection: pipeline.ClassSelection | None,
                     data: pipeline.DataSpec):
    """(features float32 [n, D], labels int [n] from 0, the classes found,
    the cache key) of the real images of the evaluated classes (kept in
    memory per resolution, channels, selection and data; with a metric that
    reads pixels, a seeded subset of the images per label goes to
    `self._real_pixels[memo]`)."""
    memo = repr((resolution, channels, selection, data))
    if memo in self._real:
      return self._real[memo]
    images, labels, found = self._load_real(resolution, channels, selection,
                                            data)
    if self._pixel_rows:
      kept, kept_labels = separability.subset(
          images.reshape(len(images), -1), labels, self._pixel_rows,
          self.seed)
      kept = kept.reshape((-1,) + images.shape[1:])
      self._real_pixels[memo] = {int(c): kept[kept_labels == c]
                                 for c in np.unique(kept_labels)}
    extractor = self.extractor_for(data)
    key = dict(
        kind="real_features", version=1, source=data.source_name,
        split=self.split or str(data.split),
        classes=list(found.source_ids), names=list(found.names),
        resolution=resolution, channels=channels, images=int(len(images)),
        data=cache_lib.array_fingerprint(images, labels),
        extractor=extractor.identity)

    def compute() -> dict[str, np.ndarray]:
      start = time.time()
      feats = features_lib.extract_features(extractor, images,
                                            self.batch_size)
      logging.info("Features of %d real images in %.1f s.", len(images),
                   time.time() - start)
      return {"features": feats}

    if self.cache is not None:
      feats = self.cache.get_or_compute(key, compute)["features"]
    else:
      feats = compute()["features"]
    bad = int(np.sum(~np.all(np.isfinite(feats), axis=1)))
    if bad:
      where = (f" (or its cache file {self.cache.path(key)})"
               if self.cache is not None else "")
      raise UserInputError(
          f"The {extractor.identity.get('name', 'feature')} features of {bad} "
          f"of the {len(feats)} real images hold NaN or infinity: the feature "
          f"extractor{where} is broken. Check its weights; delete the cache "
          "file or set Evaluator.use_cache = False to recompute them.")
    self._real[memo] = (feats, labels, found, key)
    return self._real[memo]

  def reference(self, resolution: int, channels: int, num_classes: int,
                selection: pipeline.ClassSelection | None = None,
                data: pipeline.DataSpec | None = None) -> Reference:
    """Real features of the evaluated classes (cached in memory and on disk).

    Args:
      resolution: image size of the generator.
      channels: image channels of the generator.
      num_classes: classes of the generator.
      selection: the classes to use, as recorded by the trainer in
        classes.json; None: the one given to `prepare`, else `data`'s
        classes, put at the last model ids.
      data: where the real images come from; None: the one given to
        `prepare`, else the current gin configuration's.

    Raises:
      UserInputError: data that do not fit the generator or the selection.
    """
    data = self._data_for(data)
    if selection is None:
      selection = self._selection
    memo = repr((resolution, channels, num_classes, selection, data))
    if memo in self._references:
      return self._references[memo]
    feats, labels, found, key = self._real_features(resolution, channels,
                                                    selection, data)
    if selection is not None:
      if found.names != list(selection.names):
        raise UserInputError(
            f"The dataset's classes {found.source_ids} are now named "
            f"{found.names}, but the run trained {list(selection.names)}: the "
            "data configuration changed since training.")
      offset = selection.label_offset
    else:
      offset = num_classes - len(found.source_ids)
    if offset < 0 or offset + len(found.source_ids) > num_classes:
      raise UserInputError(
          f"The data has {len(found.source_ids)} classes (model ids from "
          f"{offset}) but the generator has {num_classes}: evaluate a model "
          "with the data configuration it was trained with.")
    found = pipeline.ClassSelection(list(found.source_ids), list(found.names),
                                    offset)
    model_ids = (labels + offset).astype(np.int32)
    pixels = self._real_pixels.get(repr((resolution, channels, selection,
                                         data)))
    if pixels is not None:
      pixels = {label + offset: x for label, x in pixels.items()}
    reference = Reference(feats, model_ids, found, key, pixels)
    self._references[memo] = reference
    return reference

  def domain_spread(self) -> float | None:
    """The spread unit of the feature check: `separability.domain_spread`
    of the extractor's own domain (`FeatureExtractor.domain`), computed once
    (and cached on disk), or None when the extractor has no domain at
    hand."""
    if self._domain_spread is None:
      extractor = self.extractor
      key = dict(kind="domain_spread", version=1,
                 extractor=extractor.identity, domain=extractor.domain_name,
                 max_per_class=separability.DOMAIN_PER_CLASS)

      def compute() -> dict[str, np.ndarray]:
        domain = extractor.domain()
        if domain is None:
          return {"spread": np.array(np.nan)}
        images, labels = domain
        images, labels = separability.subset(
            images, labels, separability.DOMAIN_PER_CLASS, 0)
        feats = features_lib.extract_features(extractor, images,
                                              self.batch_size)
        return {"spread": np.array(separability.domain_spread(feats,
                                                              labels))}

      value = float((self.cache.get_or_compute(key, compute)
                     if self.cache is not None else compute())["spread"])
      self._domain_spread = value
    return (self._domain_spread if np.isfinite(self._domain_spread)
            else None)

  def feature_check(self, features: np.ndarray, labels: np.ndarray,
                    names: dict[int, str], key: dict[str, Any]
                    ) -> dict | None:
    """The feature check of real features [n, D] with class ids [n]
    (`separability.measure`), computed and warned about once per set of real
    features (`key`), whatever ids the classes have (labels from 0 before
    training, the generator's model ids after); None with fewer than two
    classes of 2 images.

    Returns:
      `separability.measure`'s dict keyed by these `labels`' ids, plus
      "classes" {id (str): name}, "warnings" (the messages logged, [] when
      the scores can be trusted) and "thresholds" (the limits they used).
    """
    memo = repr(key)
    labels = np.asarray(labels)
    ids = np.unique(labels)
    if memo not in self._feature_checks:
      counts = np.bincount(labels - np.min(labels))
      if np.count_nonzero(counts >= 2) < 2 or np.any((counts > 0) &
                                                      (counts < 2)):
        self._feature_checks[memo] = None
        return None
      # Measured once, on the classes' ranks (0, 1, ...).
      measured = separability.measure(features, np.searchsorted(ids, labels),
                                      self.domain_spread(), seed=self.seed)
      warnings = separability.check(
          measured, {str(i): names[int(c)] for i, c in enumerate(ids)})
      for warning in warnings:
        logging.warning("%s", warning)
      measured["warnings"] = warnings
      measured["thresholds"] = dataclasses.asdict(separability.THRESHOLDS)
      self._feature_checks[memo] = measured
    measured = self._feature_checks[memo]
    if measured is None:
      return None
    return dict(measured,
                per_class={str(int(ids[int(rank)])): v
                           for rank, v in measured["per_class"].items()},
                classes={str(int(c)): names[int(c)] for c in ids})

  def _draw_fn(self, generator):
    # One compiled sampler per generator object: the trainer evaluates the
    # same exported generator again and again.
    if self._draw_generator is not generator:
      self._draw = tf.function(
          lambda z, y: generator((z, y), training=False),
          reduce_retracing=True)
      self._draw_generator = generator
    return self._draw

  def sample_features(self, generator, counts: dict[int, int],
                      pixels: dict[int, np.ndarray] | None = None
                      ) -> dict[int, np.ndarray]:
    """Features of `counts[c]` samples of each class id c, batch by batch.

    Latents come from a NumPy generator seeded with `seed`, so repeated
    evaluations score the same latents. Given a dict `pixels`, it also
    fills pixels[c] with the first `registry.MAX_PIXEL_ROWS` samples of
    class c, uint8 [k, H, W, C] (0-255, rounded as a PNG holds them).
    """
    draw = self._draw_fn(generator)
    rng = np.random.RandomState(self.seed)
    out = {}
    for class_id, count in counts.items():
      kept = []

      def batches(class_id=class_id, count=count, kept=kept):
        for start in range(0, count, self.batch_size):
          b = min(self.batch_size, count - start)
          z = rng.standard_normal((b, generator.dim_z)).astype(np.float32)
          images = draw(tf.constant(z), tf.fill([b], tf.constant(class_id)))
          if pixels is not None and start < registry.MAX_PIXEL_ROWS:
            kept.append(_to_uint8(images[:registry.MAX_PIXEL_ROWS - start]))
          yield images
      out[class_id] = features_lib.extract_features(self.extractor, batches())
      if pixels is not None:
        pixels[class_id] = np.concatenate(kept)
    return out

  def evaluate(self, generator,
               selection: pipeline.ClassSelection | None = None,
               class_names: Sequence[str] | None = None,
               data: pipeline.DataSpec | None = None) -> EvalResult:
    """Computes the configured metrics for `generator`.

    Args:
      generator: plain class-conditional generator (see the class docstring).
      selection: classes to evaluate (from classes.json); None: the one
        given to `prepare`, else `data`'s classes at the last model ids.
      class_names: the generator's class names (a bundle's model.json), if
        known; the evaluated classes must carry the same names at their model
        ids, which catches a data config that does not match the model.
      data: where the real images come from (`pipeline.DataSpec`); None:
        the one given to `prepare`, else the current gin configuration's.

    Returns:
      The metrics (all finite), per-class values and settings.

    Raises:
      UserInputError: data or classes that do not fit the generator, or
        counts that a metric cannot use (`check_counts`, before any sample
        is drawn).
      NonFiniteResultError: samples whose features are not finite (a
        diverged generator), or any other NaN or infinite result.
    """
    for attr in ("num_classes", "dim_z", "resolution", "channels"):
      if not hasattr(generator, attr):
        raise UserInputError(
            f"The evaluator needs a generator with attribute {attr!r} (the "
            "generator contract of tfgt.models.architectures).")
    start = time.time()
    ref = self.reference(generator.resolution, generator.channels,
                         generator.num_classes, selection, data)
    class_ids = ref.class_ids()
    if class_names is not None:
      have = [class_names[c] for c in class_ids]
      if have != list(ref.selection.names):
        raise UserInputError(
            f"The data's classes {list(ref.selection.names)} do not match the "
            f"generator's classes {have} at model ids {class_ids}: evaluate "
            "the model with the data configuration it was trained with.")
    real_counts = [int(np.sum(ref.model_ids == c)) for c in class_ids]
    counts = self.check_counts(ref.selection.names, real_counts)
    fake_pixels = {} if self._pixel_rows else None
    fake_by_class = self.sample_features(
        generator, dict(zip(class_ids, counts)), fake_pixels)
    _check_samples(fake_by_class, class_ids, ref.selection.names)
    results, per_class = self._compute(generator, ref, fake_by_class,
                                       fake_pixels)
    check = (self.feature_check(
        ref.features, ref.model_ids,
        dict(zip(class_ids, ref.selection.names)), ref.key)
             if self.check_features else None)
    if check is not None:
      results.update(separability.summary(check))
    generated, real = sum(counts), len(ref.features)
    _check_finite(results, per_class, generated, real)
    seconds = time.time() - start
    logging.info("Evaluated %d samples of %d classes in %.1f s: %s",
                 generated, len(class_ids), seconds, format_results(results))
    settings = dict(
        metrics=list(self.metrics), seed=self.seed,
        generated=int(generated), real=int(real),
        classes=list(ref.selection.names), model_ids=class_ids,
        extractor=self.extractor.identity, split=ref.key["split"],
        kid_block_size=self.kid_block_size, kmmd_sigma=self.kmmd_sigma,
        prdc_k=self.prdc_k, max_pairwise_samples=self.max_pairwise_samples,
        ppl_samples=self.ppl_samples, ppl_epsilon=self.ppl_epsilon,
        seconds=round(seconds, 1))
    if check is not None:
      settings["feature_check"] = check
    return EvalResult(results, per_class, settings)

  def _compute(self, generator, ref: Reference,
               fake_by_class: dict[int, np.ndarray],
               fake_pixels: dict[int, np.ndarray] | None = None
               ) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Runs every configured metric on the features (or the generator).

    Args:
      generator: as for `evaluate`.
      ref: the real features (and pixels).
      fake_by_class: {model id: float32 features [m_c, D]} of the samples,
        finite, as many as `check_counts` allows.
      fake_pixels: {model id: uint8 [k_c, H, W, C]}, the first samples'
        pixels (`sample_features`), for the metrics that read pixels.

    Returns:
      (results {key: float}, per-class values {class name: {"model_id",
      "real", "generated", and the per-class metrics' keys}}; empty without
      a per-class metric).
    """
    class_ids = ref.class_ids()
    names = ref.selection.names
    per_class: dict[str, dict[str, float]] = {}
    if any(metric.per_class for metric in self._entries):
      per_class = {name: dict(model_id=float(c),
                              real=float(np.sum(ref.model_ids == c)),
                              generated=float(len(fake_by_class[c])))
                   for c, name in zip(class_ids, names)}
    fake = np.concatenate([fake_by_class[c] for c in class_ids])
    sampler = registry.Sampler(
        draw=self._draw_fn(generator),
        features=lambda images: self.extractor(images)["features"],
        class_ids=class_ids, num_classes=generator.num_classes,
        dim_z=generator.dim_z)
    values = {}
    for metric in self._entries:
      if metric.inputs == registry.GENERATOR:
        values[metric.name] = metric(sampler, self)
      elif metric.inputs == registry.CLASSES:
        by_class = metric(ref.features, ref.model_ids, fake_by_class, self)
        for c, name in zip(class_ids, names):
          per_class[name].update(by_class[c])
        values[metric.name] = registry.mean_over_classes(metric, per_class)
      elif metric.inputs == registry.PIXELS:
        for c, name in zip(class_ids, names):
          per_class[name].update(metric(ref.pixels[c], fake_pixels[c], self))
        values[metric.name] = registry.mean_over_classes(metric, per_class)
      elif metric.per_class:
        for c, name in zip(class_ids, names):
          real_c = ref.features[ref.model_ids == c]
          per_class[name].update(metric(real_c, fake_by_class[c], self))
        values[metric.name] = registry.mean_over_classes(metric, per_class)
      else:
        values[metric.name] = metric(ref.features, fake, self)
    results: dict[str, float] = {}
    for name in sorted(values, key=lambda n: _result_rank(n, self.metrics)):
      results.update(values[name])
    return results, per_class

  def __call__(self, generator) -> dict[str, float]:
    """{metric: finite float} for `generator` (the trainer's evaluator
    contract); raises as `evaluate` does."""
    return self.evaluate(generator).metrics


def _result_rank(name: str, metrics: Sequence[str]) -> tuple[int, int]:
  """Sort key of a metric's results: `_FIRST_RESULTS`, then the others in
  the order of `metrics` (registry order)."""
  if name in _FIRST_RESULTS:
    return 0, _FIRST_RESULTS.index(name)
  return 1, list(metrics).index(name)


def _to_uint8(images) -> np.ndarray:
  """Images float [B, H, W, C] in [-1, 1] -> uint8 [B, H, W, C], rounded
  and clipped as a saved PNG holds them."""
  x = np.asarray(images, np.float32)
  return np.clip(np.rint((x + 1.0) * 127.5), 0, 255).astype(np.uint8)


def _check_samples(fake_by_class: dict[int, np.ndarray],
                   class_ids: Sequence[int], names: Sequence[str]) -> None:
  """Raises NonFiniteResultError if samples have non-finite features."""
  diverged = []
  for c, name in zip(class_ids, names):
    bad = int(np.sum(~np.all(np.isfinite(fake_by_class[c]), axis=1)))
    if bad:
      diverged.append(f"{name!r} (model id {c}): {bad} of "
                      f"{len(fake_by_class[c])}")
  if diverged:
    raise NonFiniteResultError(
        "The generator's samples give NaN or infinite features, so no "
        "score can be computed; samples of class " + "; ".join(diverged)
        + ". Its weights or outputs are not finite (training diverged): "
        "evaluate an earlier checkpoint, or train again with lower "
        "learning rates.")


def _check_finite(results: dict[str, float],
                  per_class: dict[str, dict[str, float]], generated: int,
                  real: int) -> None:
  """Raises NonFiniteResultError if any score is NaN or infinite."""
  bad = [f"{k}={v}" for k, v in results.items() if not math.isfinite(v)]
  bad += [f"{k} of class {name!r}={v}" for name, entry in per_class.items()
          for k, v in entry.items() if not math.isfinite(v)]
  if bad:
    raise NonFiniteResultError(
        f"The evaluation gave {', '.join(bad)} from {generated} generated and "
        f"{real} real feature rows, all finite and enough for every metric; "
        "such a value is not a score and is not returned. Features too large "
        "for the metric's arithmetic (e.g. KID's cubic kernel in float32) "
        "can cause it: check the feature extractor, or leave that metric out "
        "of Evaluator.metrics.")
