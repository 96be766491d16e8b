"""Class selection, few-shot subsampling and the tf.data training pipeline."""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

from absl import logging
import gin
import numpy as np
import tensorflow as tf

from tfgt.data import class_lookup
from tfgt.data import sources
from tfgt.errors import UserInputError


@dataclasses.dataclass
class ClassSelection:
  """Which classes of a source dataset a run uses, and their model ids.

  Attributes:
    source_ids: class ids in the dataset, in model-id order.
    names: their names.
    label_offset: model id of the first selected class (new classes of a
      transfer are appended after the N old ones, so offset = N).
  """
  source_ids: list[int]
  names: list[str]
  label_offset: int = 0

  def __post_init__(self):
    self.source_ids = [class_lookup.DatasetId(i) for i in self.source_ids]

  def to_json(self) -> dict:
    return dict(dataclasses.asdict(self),
                source_ids=[int(i) for i in self.source_ids])


def split_classes(num_total: int, num_first: int, seed: int
                  ) -> tuple[list[int], list[int]]:
  """A seeded random split of class ids, e.g. CIFAR-100 into 80 and 20.

  Returns:
    (first, rest): `num_first` ids and the remaining ids, each sorted.
  """
  order = np.random.RandomState(seed).permutation(num_total)
  return sorted(order[:num_first].tolist()), sorted(order[num_first:].tolist())


def check_new_class_names(old_names: Sequence[str],
                          selection: ClassSelection) -> None:
  """Refuses new classes named like old ones, and logs the model's classes.

  A transfer appends the selected classes after the source model's; a second
  class of the same name could not be told apart when sampling or evaluating
  by name.

  Args:
    old_names: the source model's class names (model ids 0..N-1).
    selection: the new classes, from `load_training_data`.

  Raises:
    UserInputError: naming the clashing classes and how to avoid them.
  """
  old = list(old_names)
  clashes = [n for n in selection.names if n in old]
  if clashes:
    raise UserInputError(
        f"load_training_data.classes selects {', '.join(map(repr, clashes))}, "
        f"which the source model already has (model id "
        f"{', '.join(str(old.index(n)) for n in clashes)}); a model cannot "
        "have two classes of one name. Train only classes the source does "
        "not have (it already draws its own), or give the new class another "
        "name (for an image folder, rename its sub-folder). The source's "
        f"classes (id=name) are: {class_lookup.class_table(old)}.")
  logging.info("Model classes (id=name): %s.",
               class_lookup.class_table(old + list(selection.names)))


@gin.configurable(denylist=["resolution", "channels"])
def load_training_data(
    resolution: int, channels: int,
    source: Callable[..., sources.LabelledImages] = sources.fashion_mnist,
    split: str = "train",
    classes: Sequence[int | str] | None = None,
    random_split: tuple[int, int, str] | None = None,
    images_per_class: int | None = None,
    subset_seed: int = 0,
    label_offset: int = 0,
) -> tuple[np.ndarray, np.ndarray, ClassSelection]:
  """Loads, selects and subsamples the labelled images a run trains on.

  Args:
    resolution: image size the model wants.
    channels: 1 or 3.
    source: a loader from `tfgt.data.sources` (configure its own arguments,
      such as `image_folder.root`, in gin).
    split: dataset split.
    classes: class names (str) or ids (int, or str "id:N") to keep, in the
      order of their new ids; None keeps all. An id that a numeric class name
      could also mean is refused (see `class_lookup.resolve_classes`).
      Mutually exclusive with `random_split`.
    random_split: (num_first, seed, part) picks a seeded random split of all
      classes into `num_first` and the rest, and keeps part "first" or "rest"
      (e.g. CIFAR-100 80/20: (80, 0, "first") to pretrain, (80, 0, "rest") to
      transfer).
    images_per_class: keep this many images per class, drawn with
      `subset_seed` (the same subset on every run); None keeps all.
    subset_seed: seed of the few-shot subset.
    label_offset: id of the first selected class in the model.

  Returns:
    (uint8 images [n, R, R, C], int32 labels [n] in [offset, offset + k),
    the ClassSelection).
  """
  if images_per_class is not None and (
      isinstance(images_per_class, bool)
      or not isinstance(images_per_class, (int, np.integer))
      or images_per_class < 1):
    raise UserInputError(
        f"load_training_data.images_per_class={images_per_class!r}: give a "
        "number of images >= 1, or None to keep all images of each class.")
  data = source(split=split, resolution=resolution, channels=channels)
  num_classes = len(data.class_names)
  if random_split is not None:
    if classes is not None:
      raise UserInputError("Set either `classes` or `random_split`, not both.")
    num_first, seed, part = random_split
    if part not in ("first", "rest"):
      raise UserInputError(f"random_split part must be 'first' or 'rest', got "
                           f"{part!r}.")
    first, rest = split_classes(num_classes, max(num_first, 0), seed)
    ids = first if part == "first" else rest
    if not ids or num_first < 0:
      raise UserInputError(
          f"load_training_data.random_split={tuple(random_split)!r} "
          f"{'leaves no classes' if not ids else 'has num_first < 0'}: part "
          f"'first' keeps num_first of the dataset's {num_classes} classes "
          f"and 'rest' the others, so num_first must be in [1, {num_classes}] "
          f"for 'first' and in [0, {num_classes - 1}] for 'rest'.")
  else:
    ids = class_lookup.resolve_classes(classes, data.class_names)
    if not ids:
      raise UserInputError(
          "load_training_data.classes is empty: list the classes to train on "
          f"(names or ids), or leave it unset to use all {num_classes}.")
  rng = np.random.RandomState(subset_seed)
  keep_images, keep_labels = [], []
  for new_id, class_id in enumerate(ids):
    (index,) = np.nonzero(data.labels == class_id)
    name = data.class_names[class_id]
    if index.size == 0:
      raise UserInputError(f"Class {name!r} (id {class_id}) has no images in "
                           f"split {split!r}.")
    if images_per_class is not None:
      if images_per_class > index.size:
        raise UserInputError(
            f"Class {name!r} has {index.size} image"
            f"{'' if index.size == 1 else 's'}, fewer than "
            f"images_per_class={images_per_class} (load_training_data). Lower "
            "it (None uses every image of each class), add "
            "images to the class, or leave it out of "
            "load_training_data.classes.")
      index = np.sort(rng.choice(index, images_per_class, replace=False))
    keep_images.append(data.images[index])
    keep_labels.append(np.full(index.size, label_offset + new_id, np.int32))
  selection = ClassSelection(ids, [data.class_names[i] for i in ids],
                             label_offset)
  logging.info("Selected classes (model id=name [dataset id]): %s.",
               ", ".join(f"{label_offset + k}={data.class_names[i]!r} [{i}]"
                         for k, i in enumerate(ids)))
  return (np.concatenate(keep_images), np.concatenate(keep_labels), selection)


@dataclasses.dataclass(frozen=True)
class DataSpec:
  """Where a run's labelled images come from: the settings of
  `load_training_data` that select its classes, without the few-shot subset.

  An evaluator is given one to read every real image of the classes it
  scores (`tfgt.eval.evaluator.Evaluator`); `configured_data()` makes the
  one that the gin configuration of a run describes.

  Attributes:
    source: the loader, called as source(split=..., resolution=...,
      channels=...) -> `sources.LabelledImages` (its own settings, such as
      `image_folder.root`, come from gin).
    source_name: the loader as the configuration names it ("fashion_mnist",
      "image_folder"), for cache keys and messages.
    split: the dataset split.
    classes: the requested classes, as `load_training_data.classes`; None
      selects all (or `random_split`'s).
    random_split: as `load_training_data.random_split`.
  """
  source: Callable[..., sources.LabelledImages] = sources.fashion_mnist
  source_name: str = "fashion_mnist"
  split: str = "train"
  classes: Sequence[int | str] | None = None
  random_split: tuple[int, int, str] | None = None

  def load(self, resolution: int, channels: int,
           selection: ClassSelection | None = None,
           split: str | None = None
           ) -> tuple[np.ndarray, np.ndarray, ClassSelection]:
    """Every image of the selected classes, labelled from 0.

    Args:
      resolution: image size.
      channels: 1 or 3.
      selection: classes selected before (a run's classes.json): its
        dataset ids, in its order, instead of `classes` or `random_split`.
      split: a split other than `split`.

    Returns:
      (uint8 images [n, R, R, C], int32 labels [n] in [0, k), the
      ClassSelection with label_offset 0).

    Raises:
      UserInputError: as `load_training_data`.
    """
    classes, random_split = self.classes, self.random_split
    if selection is not None:
      classes, random_split = list(selection.source_ids), None
    return load_training_data(
        resolution=resolution, channels=channels, source=self.source,
        split=self.split if split is None else split, classes=classes,
        random_split=random_split, images_per_class=None, subset_seed=0,
        label_offset=0)


def _bound_text(selector: str, default: str) -> str:
  """The gin-bound value of `selector` as text (a reference by its name;
  `default` if unbound)."""
  try:
    value = gin.query_parameter(selector)
  except ValueError:
    return default
  return str(getattr(value, "selector", value))


def configured_data() -> DataSpec:
  """The `DataSpec` of the current gin bindings of `load_training_data`
  (its defaults where unbound): the data a run of this configuration trains
  on."""
  bound = gin.get_bindings(load_training_data)
  return DataSpec(
      source=bound.get("source", sources.fashion_mnist),
      source_name=_bound_text("load_training_data.source", "fashion_mnist"),
      split=bound.get("split", "train"), classes=bound.get("classes"),
      random_split=bound.get("random_split"))


def to_float(images: tf.Tensor) -> tf.Tensor:
  """uint8 [0, 255] -> float32 [-1, 1]."""
  return tf.cast(images, tf.float32) / 127.5 - 1.0


def to_uint8(images: tf.Tensor) -> tf.Tensor:
  """float [-1, 1] -> uint8 [0, 255], rounded and clipped."""
  return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0, 255),
                 tf.uint8)


def training_dataset(images: np.ndarray, labels: np.ndarray,
                     global_batch_size: int, seed: int,
                     random_flip: bool = True) -> tf.data.Dataset:
  """An endless, deterministic stream of shuffled batches.

  The order depends only on `seed`, so a resumed run can skip the batches it
  has already seen and continue with the same data.

  Returns:
    Dataset of (images float32 [B, R, R, C] in [-1, 1], labels int32 [B]).
  """
  ds = tf.data.Dataset.from_tensor_slices((images, labels)).cache()
  ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
  ds = ds.repeat().enumerate()

  def prepare(index, example):
    image, label = example
    image = to_float(image)
    if random_flip:
      flip = tf.random.stateless_uniform([], seed=[seed, index]) < 0.5
      image = tf.where(flip, tf.reverse(image, axis=[1]), image)
    return image, tf.cast(label, tf.int32)

  ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return ds.batch(global_batch_size, drop_remainder=True).prefetch(2)
