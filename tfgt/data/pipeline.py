"""Class selection, few-shot subsampling and the tf.data training pipeline."""

from __future__ import annotations

import dataclasses
import re
from typing import Callable, Sequence

from absl import logging
import gin
import numpy as np
import tensorflow as tf

from tfgt.data import sources
from tfgt.errors import UserInputError


class DatasetId(int):
  """A class id that a `ClassSelection` recorded: an id, never a name.

  `resolve_classes` refuses a plain int that a numeric class name could also
  mean. Ids taken from a selection (the evaluator re-selecting a run's classes
  from its classes.json) were resolved once already and stay ids.
  """
  __slots__ = ()

  def __repr__(self) -> str:
    return int.__repr__(self)


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
    self.source_ids = [DatasetId(i) for i in self.source_ids]

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


def _numeric_name(name: str) -> int | None:
  """The integer a class name spells ("7", "007"), or None."""
  return int(name) if re.fullmatch(r"[0-9]+", name.strip()) else None


def class_table(class_names: Sequence[str]) -> str:
  """The id-to-name table of messages and logs: "0='cat', 1='dog'"."""
  return ", ".join(f"{i}={n!r}" for i, n in enumerate(class_names))


def resolve_classes(requested: Sequence[int | str] | None,
                    class_names: Sequence[str],
                    setting: str = "load_training_data.classes",
                    where: str = "the dataset",
                    unique: bool = True) -> list[int]:
  """Maps requested class names or ids to ids; None selects all.

  An int is a class id; a str is an exact class name, or "id:N" for the id N.
  No request is read in two ways: an int that is also the number a class name
  spells (folders "1" ... "10") but not that class's id is refused, and so is
  a name that several classes share. A `DatasetId` is always an id.

  Args:
    requested: ints and strs, as above.
    class_names: the names, id i = position i.
    setting: where the request comes from, for messages.
    where: what holds the classes, for messages ("the dataset", "the model").
    unique: refuse a class requested twice.

  Returns:
    The class ids, in the requested order.

  Raises:
    UserInputError: for an unknown or ambiguous class, or a repeated one
      when `unique`.
  """
  names = list(class_names)
  if requested is None:
    return list(range(len(names)))
  table = f"Its classes (id=name) are: {class_table(names)}."
  out_of_range = (f"is out of range: {where} has {len(names)} classes "
                  f"(0-{len(names) - 1}).")
  ids = []
  for c in requested:
    if isinstance(c, DatasetId):
      if not 0 <= c < len(names):
        raise UserInputError(f"{setting}: class id {c} {out_of_range}")
      ids.append(int(c))
    elif isinstance(c, (int, np.integer)) and not isinstance(c, bool):
      c = int(c)
      as_name = [i for i, n in enumerate(names) if _numeric_name(n) == c]
      readings = sorted(set(as_name + ([c] if 0 <= c < len(names) else [])))
      if not readings:
        raise UserInputError(f"{setting}: class id {c} {out_of_range}")
      if len(readings) > 1:
        meanings = ([f"the class with id {c} ({names[c]!r})"]
                    if 0 <= c < len(names) else [])
        meanings += [f"the class named {names[i]!r} (id {i})"
                     for i in as_name]
        choices = " or ".join(f"'id:{i}' for {names[i]!r}" for i in readings)
        raise UserInputError(
            f"{setting}: {c} is ambiguous in {where}: it could mean "
            f"{' or '.join(meanings)}. Write {choices}; in gin, a quoted name "
            f"such as '{names[as_name[0]]}' is always a name. {table}")
      ids.append(readings[0])
    elif isinstance(c, str) and c in names:
      same = [i for i, n in enumerate(names) if n == c]
      if len(same) > 1:
        raise UserInputError(
            f"{setting}: {where} has {len(same)} classes named {c!r} (ids "
            f"{', '.join(map(str, same))}). Select one by id: "
            f"{' or '.join(f'id:{i}' for i in same)}.")
      ids.append(same[0])
    elif isinstance(c, str) and re.fullmatch(r"id:[0-9]+", c.strip()):
      i = int(c.strip()[3:])
      if i >= len(names):
        raise UserInputError(f"{setting}: class id {i} {out_of_range}")
      ids.append(i)
    else:
      hint = ""
      if isinstance(c, str) and _numeric_name(c) is not None:
        hint = (f" To select the class with id {_numeric_name(c)}, write it "
                f"as a number or as 'id:{_numeric_name(c)}'.")
      raise UserInputError(f"Class {c!r} is not in {where}. Its classes are: "
                           f"{', '.join(names)}.{hint}")
  if unique and len(set(ids)) != len(ids):
    raise UserInputError(f"The class list {list(requested)} names a class "
                         "twice.")
  return ids


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
        f"classes (id=name) are: {class_table(old)}.")
  logging.info("Model classes (id=name): %s.",
               class_table(old + list(selection.names)))


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
      could also mean is refused (see `resolve_classes`). Mutually exclusive
      with `random_split`.
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
    ids = resolve_classes(classes, data.class_names)
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
