"""Class ids from what a user asks for: names, ids or "id:N".

Settings and command lines name classes by name (a dataset's folder names,
Fashion-MNIST's "Bag") or by id. `resolve_classes` maps such a request to
ids, refusing any request that could be read in two ways; `class_table` is
the id-to-name table of its messages. The data sources, the training
pipeline, sampling and the Python API all resolve classes here.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from tfgt.errors import UserInputError


class DatasetId(int):
  """A class id that a selection recorded (`pipeline.ClassSelection`): an
  id, never a name.

  `resolve_classes` refuses a plain int that a numeric class name could also
  mean. Ids taken from a selection (the evaluator re-selecting a run's classes
  from its classes.json) were resolved once already and stay ids.
  """
  __slots__ = ()

  def __repr__(self) -> str:
    return int.__repr__(self)


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
