"""The evaluator: scores a class-conditional generator against real images.

`Evaluator` is gin-configurable and callable on a plain generator, which is
what the trainer expects of `train.evaluator`:

    train.evaluator = @Evaluator()
    train.eval_every = 500
    Evaluator.metrics = ["fid", "kid", "mfid"]

The reference is every training image of the classes the run trains. The
evaluator reads them with the trainer's own data configuration: it calls
`tfgt.data.pipeline.load_training_data` under the same gin bindings, only
overriding `images_per_class=None` (all images rather than the few-shot
subset). The selected classes occupy the last model ids of the generator
(a transfer appends its new classes after the N old ones), so class i of the
selection is sampled with model id `num_classes - len(selection) + i`.
The command line (`tfgt.evaluate`) passes the selection recorded in a run's
classes.json instead.

Metrics (keys of the returned dict; lower is better unless noted):
  fid        FID of samples of all selected classes against all their images
             (cGANTransfer's protocol);
  kid        KID (TF-GAN; printed x100), with kid_std its standard error;
  mfid       FID per class, averaged (Hyper-Modulation's mFID);
  mkid       KID per class, averaged;
  kmmd       Gaussian-kernel MMD, sigma = kmmd_sigma (relative width);
  prdc       precision, recall, density, coverage (higher is better, k=5).
Generated samples per class match the real images per class unless
`num_samples` (a total, split over the classes in proportion to their real
images) says otherwise. FID is biased by the sample count: compare numbers
computed with the same settings.
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

from tfgt.data import pipeline
from tfgt.errors import UserInputError
from tfgt.eval import cache as cache_lib
from tfgt.eval import features as features_lib
from tfgt.eval import metrics as metrics_lib

METRICS = ("fid", "kid", "mfid", "mkid", "kmmd", "prdc")
DEFAULT_METRICS = ("fid", "kid", "mfid")
# Metrics printed multiplied by 100, as the papers do.
PERCENT_METRICS = ("kid", "kid_std", "mkid")
# Results for which higher is better (the others are distances).
HIGHER_IS_BETTER = frozenset({"precision", "recall", "density", "coverage"})


def parse_metrics(metrics: str | Sequence[str]) -> tuple[str, ...]:
  """'fid,kid' or ["fid", "kid"] -> validated tuple, in METRICS order."""
  if isinstance(metrics, str):
    metrics = [m for m in metrics.replace(" ", "").split(",") if m]
  names = [m.lower() for m in metrics]
  unknown = sorted(set(names) - set(METRICS))
  if unknown or not names:
    raise UserInputError(f"Unknown metric(s) {unknown or names}: choose from "
                         f"{', '.join(METRICS)}.")
  return tuple(m for m in METRICS if m in names)


@dataclasses.dataclass
class Reference:
  """Features of the real images of the evaluated classes.

  Attributes:
    features: float32 [n, D].
    model_ids: int32 [n], the generator's class id of each image.
    selection: the classes, with `label_offset` = model id of the first.
    key: what the features depend on (the cache key).
  """
  features: np.ndarray
  model_ids: np.ndarray
  selection: pipeline.ClassSelection
  key: dict[str, Any]

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


def _bound_value(selector: str, default: Any) -> str:
  """The gin-bound value of `selector` as text (default if unbound)."""
  try:
    value = gin.query_parameter(selector)
  except ValueError:
    return str(default)
  return str(getattr(value, "selector", value))


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


@gin.configurable(allowlist=[
    "extractor", "metrics", "num_samples", "batch_size", "seed", "split",
    "kid_block_size", "kmmd_sigma", "prdc_k", "max_pairwise_samples",
    "cache_dir", "use_cache"])
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
               cache_dir: str | None = None,
               use_cache: bool = True):
    """Configures the evaluation.

    Args:
      extractor: feature network; None means the shipped Fashion-MNIST
        classifier (loaded on first use). Use `InceptionHub` or
        `KerasInceptionV3` for RGB datasets.
      metrics: names from METRICS ("prdc" adds precision, recall, density and
        coverage).
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
      cache_dir: where real features are cached (default $TFGT_CACHE_DIR or
        ~/.cache/tfgt/features).
      use_cache: read and write the on-disk cache.
    """
    self.metrics = parse_metrics(metrics)
    if num_samples is not None and num_samples < 2:
      raise UserInputError(f"Evaluator.num_samples must be >= 2, got "
                           f"{num_samples}.")
    if batch_size < 1:
      raise UserInputError(f"Evaluator.batch_size must be >= 1, got "
                           f"{batch_size}.")
    self._extractor = extractor
    self.num_samples = num_samples
    self.batch_size = batch_size
    self.seed = seed
    self.split = split
    self.kid_block_size = kid_block_size
    self.kmmd_sigma = kmmd_sigma
    self.prdc_k = prdc_k
    self.max_pairwise_samples = max_pairwise_samples
    self.cache = cache_lib.FeatureCache(cache_dir) if use_cache else None
    self._references: dict[str, Reference] = {}
    self._draw = None
    self._draw_generator = None

  @property
  def extractor(self) -> features_lib.FeatureExtractor:
    """The feature network; by default the shipped Fashion-MNIST classifier,
    which only Fashion-MNIST data may use."""
    if self._extractor is None:
      source = _bound_value("load_training_data.source", "fashion_mnist")
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
    its four parts)."""
    names = set(self.metrics)
    if "kid" in names:
      names.add("kid_std")
    if "prdc" in names:
      names.discard("prdc")
      names.update(("precision", "recall", "density", "coverage"))
    return names

  def prepare(self) -> None:
    """Loads the feature extractor (errors come before any training)."""
    _ = self.extractor

  def reference(self, resolution: int, channels: int, num_classes: int,
                selection: pipeline.ClassSelection | None = None
                ) -> Reference:
    """Real features of the evaluated classes (cached in memory and on disk).

    Args:
      resolution: image size of the generator.
      channels: image channels of the generator.
      num_classes: classes of the generator.
      selection: the classes to use, as recorded by the trainer in
        classes.json; None selects them with the current gin configuration,
        as the trainer does, and puts them at the last model ids.
    """
    memo = repr((resolution, channels, num_classes, selection))
    if memo in self._references:
      return self._references[memo]
    overrides: dict[str, Any] = dict(images_per_class=None, label_offset=0)
    if self.split is not None:
      overrides["split"] = self.split
    if selection is not None:
      overrides.update(classes=list(selection.source_ids), random_split=None)
    images, labels, found = pipeline.load_training_data(
        resolution=resolution, channels=channels, **overrides)
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
    extractor = self.extractor
    key = dict(
        kind="real_features", version=1,
        source=_bound_value("load_training_data.source", "fashion_mnist"),
        split=self.split or _bound_value("load_training_data.split", "train"),
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
    reference = Reference(feats, model_ids, found, key)
    self._references[memo] = reference
    return reference

  def _draw_fn(self, generator):
    # One compiled sampler per generator object: the trainer evaluates the
    # same exported generator again and again.
    if self._draw_generator is not generator:
      self._draw = tf.function(
          lambda z, y: generator((z, y), training=False),
          reduce_retracing=True)
      self._draw_generator = generator
    return self._draw

  def sample_features(self, generator, counts: dict[int, int]
                      ) -> dict[int, np.ndarray]:
    """Features of `counts[c]` samples of each class id c, batch by batch.

    Latents come from a NumPy generator seeded with `seed`, so repeated
    evaluations score the same latents.
    """
    draw = self._draw_fn(generator)
    rng = np.random.RandomState(self.seed)
    out = {}
    for class_id, count in counts.items():
      def batches(class_id=class_id, count=count):
        for start in range(0, count, self.batch_size):
          b = min(self.batch_size, count - start)
          z = rng.standard_normal((b, generator.dim_z)).astype(np.float32)
          yield draw(tf.constant(z), tf.fill([b], tf.constant(class_id)))
      out[class_id] = features_lib.extract_features(self.extractor, batches())
    return out

  def evaluate(self, generator,
               selection: pipeline.ClassSelection | None = None,
               class_names: Sequence[str] | None = None) -> EvalResult:
    """Computes the configured metrics for `generator`.

    Args:
      generator: plain class-conditional generator (see the class docstring).
      selection: classes to evaluate (from classes.json); None derives them
        from the gin data configuration, as the trainer does.
      class_names: the generator's class names (a bundle's model.json), if
        known; the evaluated classes must carry the same names at their model
        ids, which catches a data config that does not match the model.
    """
    for attr in ("num_classes", "dim_z", "resolution", "channels"):
      if not hasattr(generator, attr):
        raise UserInputError(
            f"The evaluator needs a generator with attribute {attr!r} (the "
            "generator contract of tfgt.models.architectures).")
    start = time.time()
    ref = self.reference(generator.resolution, generator.channels,
                         generator.num_classes, selection)
    class_ids = ref.class_ids()
    if class_names is not None:
      have = [class_names[c] for c in class_ids]
      if have != list(ref.selection.names):
        raise UserInputError(
            f"The data's classes {list(ref.selection.names)} do not match the "
            f"generator's classes {have} at model ids {class_ids}: evaluate "
            "the model with the data configuration it was trained with.")
    real_counts = [int(np.sum(ref.model_ids == c)) for c in class_ids]
    if self.num_samples is None:
      counts = real_counts
    else:
      counts = split_counts(self.num_samples, real_counts)
    per_class_wanted = any(m in self.metrics for m in ("mfid", "mkid"))
    if per_class_wanted and min(counts) < 2:
      raise UserInputError(
          f"Evaluator.num_samples={self.num_samples} leaves fewer than 2 "
          f"samples for some of the {len(class_ids)} classes; per-class FID "
          "needs more.")
    fake_by_class = self.sample_features(generator, dict(zip(class_ids,
                                                             counts)))
    real = ref.features
    fake = np.concatenate([fake_by_class[c] for c in class_ids])
    results: dict[str, float] = {}
    per_class: dict[str, dict[str, float]] = {}
    if "fid" in self.metrics:
      results["fid"] = metrics_lib.frechet_distance(real, fake)
    if "kid" in self.metrics:
      kid, std = metrics_lib.kernel_distance(real, fake, self.kid_block_size)
      results["kid"] = kid
      if math.isfinite(std):
        results["kid_std"] = std
    if per_class_wanted:
      for c, name in zip(class_ids, ref.selection.names):
        real_c = real[ref.model_ids == c]
        entry = dict(model_id=float(c), real=float(len(real_c)),
                     generated=float(len(fake_by_class[c])))
        if "mfid" in self.metrics:
          entry["fid"] = metrics_lib.frechet_distance(real_c, fake_by_class[c])
        if "mkid" in self.metrics:
          entry["kid"] = metrics_lib.kernel_distance(
              real_c, fake_by_class[c], self.kid_block_size)[0]
        per_class[name] = entry
      if "mfid" in self.metrics:
        results["mfid"] = float(np.mean([e["fid"] for e in per_class.values()]))
      if "mkid" in self.metrics:
        results["mkid"] = float(np.mean([e["kid"] for e in per_class.values()]))
    if "kmmd" in self.metrics:
      results["kmmd"] = metrics_lib.kernel_mmd(
          real, fake, sigma=self.kmmd_sigma,
          max_samples=self.max_pairwise_samples, seed=self.seed)
    if "prdc" in self.metrics:
      results.update(metrics_lib.prdc(real, fake, k=self.prdc_k,
                                      max_samples=self.max_pairwise_samples,
                                      seed=self.seed))
    seconds = time.time() - start
    logging.info("Evaluated %d samples of %d classes in %.1f s: %s",
                 len(fake), len(class_ids), seconds,
                 ", ".join(f"{k} {v:.4g}" for k, v in results.items()))
    settings = dict(
        metrics=list(self.metrics), seed=self.seed,
        generated=int(len(fake)), real=int(len(real)),
        classes=list(ref.selection.names), model_ids=class_ids,
        extractor=self.extractor.identity, split=ref.key["split"],
        kid_block_size=self.kid_block_size, kmmd_sigma=self.kmmd_sigma,
        prdc_k=self.prdc_k, max_pairwise_samples=self.max_pairwise_samples,
        seconds=round(seconds, 1))
    return EvalResult(results, per_class, settings)

  def __call__(self, generator) -> dict[str, float]:
    """{metric: float} for `generator` (the trainer's evaluator contract)."""
    return self.evaluate(generator).metrics
