"""Assigning a checkpoint's named arrays to tfgt variables, with a report.

Every importer (tfgt.importers.stylegan, tfgt.importers.biggan) reads a file
into (name, array) pairs and gives each a *rule*: a function of (name, array)
that returns the tfgt variable path, the array in tfgt's layout and a note
on the layout change, or None when the name has no place. `assign` applies
the rules and refuses half an import: an array that no rule places (unless
listed as expected, such as optimizer state) and a tfgt variable that no
array fills are both errors that list them.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Sequence

import numpy as np

from tfgt.errors import UserInputError

# (tfgt path relative to the model, array in tfgt's layout, note) or None.
Rule = Callable[[str, np.ndarray], "tuple[str, np.ndarray, str] | None"]


@dataclasses.dataclass
class Assignment:
  """One row of the import report."""
  source: str  # e.g. "Gs/synthesis/8x8/Conv0_up/weight"
  shape: tuple[int, ...]
  target: str | None  # tfgt variable path, or None when unused
  note: str = ""  # the layout change, or why it is unused


@dataclasses.dataclass
class Imported:
  """An imported model: generator, discriminator (or None), class names, the
  report of where every array went, and what --verify measured."""
  generator: Any
  discriminator: Any
  class_names: list[str]
  report: list[Assignment]
  # True when the file has no discriminator and the bundle gets an untrained
  # one (TF-Hub's BigGAN modules).
  fresh_discriminator: bool = False
  # --verify's largest pixel difference against the original, if it ran.
  verified: float | None = None


def assign(model_name: str, variables: Sequence,
           arrays: Sequence[tuple[str, str, np.ndarray, Rule]],
           report: list[Assignment], path: str, what: str,
           expected_unused: dict[str, str] | None = None) -> None:
  """Assigns every array by its rule; refuses unknown or missing ones.

  Args:
    model_name: the model's name, for the report ("generator").
    variables: the tfgt variables to fill, all of them.
    arrays: (source label, name given to the rule, array, rule) per array.
    report: rows are appended here.
    path: the file, for errors.
    what: the format, for errors ("StyleGAN v1 (networks_stylegan.py)").
    expected_unused: {regular expression: reason} of names that have no
      place in tfgt and are no error (reported as unused with the reason).

  Raises:
    UserInputError: a shape that does not fit, an array with no place or a
      variable without an array (nothing is assigned half-way: the caller's
      models are discarded).
  """
  expected_unused = expected_unused or {}
  variables = {v.path.split("/", 1)[1]: v for v in variables}
  filled, unknown = set(), []
  for source, name, value, rule in arrays:
    value = np.asarray(value)
    mapped = rule(name, value)
    if mapped is None:
      reason = next((r for p, r in expected_unused.items()
                     if re.fullmatch(p, name)), None)
      if reason is not None:
        report.append(Assignment(source, value.shape, None, f"unused: {reason}"))
      else:
        unknown.append(f"{source} {list(value.shape)}")
      continue
    target, array, note = mapped
    variable = variables.get(target)
    if variable is None:
      unknown.append(f"{source} {list(value.shape)} (-> {target}, which this "
                     "model does not have)")
      continue
    if target in filled:
      raise UserInputError(
          f"{path}: {source} goes to {target}, which another array of the "
          f"file already filled: is it a {what} checkpoint?")
    if tuple(variable.shape) != array.shape:
      raise UserInputError(
          f"{path}: {source} has shape {list(value.shape)}, but {target} "
          f"needs {list(variable.shape)} (after: {note or 'no change'}): the "
          f"sizes read from the file do not fit; is it a {what} checkpoint?")
    if not np.all(np.isfinite(array)):
      raise UserInputError(f"{path}: {source} holds NaN or infinite values; "
                           "the checkpoint is damaged.")
    variable.assign(array.astype(np.dtype(
        getattr(variable.dtype, "as_numpy_dtype", variable.dtype))))
    filled.add(target)
    report.append(Assignment(source, value.shape,
                             f"{model_name}/{target}", note))
  missing = sorted(set(variables) - filled)
  if unknown or missing:
    raise UserInputError(
        f"{path}: the file does not match tfgt's model: " +
        "; ".join(
            ([f"arrays with no place: {', '.join(unknown)}"] if unknown
             else []) +
            ([f"variables without an array: {', '.join(missing)}"]
             if missing else [])) +
        f". Only {what} checkpoints are supported.")


def format_report(report: Sequence[Assignment]) -> str:
  """The report as a text table: source array, shape, target, note."""
  width = max([len(r.source) for r in report] + [6])
  lines = [f"{'source':<{width}}  {'shape':<18} tfgt variable"]
  for r in report:
    target = r.target or "-"
    lines.append(f"{r.source:<{width}}  {str(list(r.shape)):<18} {target}"
                 + (f"  ({r.note})" if r.note else ""))
  return "\n".join(lines)
