"""Matching and copying weights between models of one architecture.

Variables are matched on their path without the model's name
('block0/bn1/shift'), so that a source, a transfer and a folded generator (or
a model and its EMA copy) line up whatever their names. Per-class tables (the
`CLASS_TABLE_NAMES`, and the tables a model lists in
`equalized_class_tables()`) may grow by M rows from an N-class model to an
N + M-class one: an old class keeps its id and its row, and the new rows
start as `NEW_ROW_INITS` says, the words every method's row options take.

An equalised class table (StyleGAN2's label embedding, a dense layer on the
class weights whose stored weight is multiplied at run time by
lr_multiplier / sqrt(rows), Karras et al. 2018, section 4.1) changes its run
time scale when it grows: its old rows are stored times sqrt((N + M) / N), so
that every old class keeps its effective row (to float32 rounding).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from tfgt.errors import UserInputError

# Variable names (last path component) of per-class tables [num_classes, ...].
CLASS_TABLE_NAMES = ("gain_offset", "shift", "embeddings")
# How the M new rows of a class table (old rows [N, ...], then new rows) start,
# for every method and table (G's BN rows or shared embedding, D's projection):
#   "mean"   each new row is the mean of the N old rows (a new class starts
#            at the average of the old ones);
#   "zeros"  zero rows;
#   "random" the rows the table's own initialiser drew, kept (random for
#            embeddings; BigGAN's BN tables initialise to zero, so for them it
#            gives zero rows). BSA's independent rows, set from the old rows
#            by the transfer generator, do not offer it.
NEW_ROW_INITS = ("mean", "zeros", "random")


def check_row_init(name: str, value: str, random: bool = True) -> None:
  """Checks a new-row initialisation (`NEW_ROW_INITS`).

  Args:
    name: the option, as the user sets it (e.g. "BSA.row_init").
    value: its value.
    random: whether the option offers "random".

  Raises:
    UserInputError: naming the option and the words it takes.
  """
  allowed = NEW_ROW_INITS if random else tuple(
      kind for kind in NEW_ROW_INITS if kind != "random")
  if value not in allowed:
    raise UserInputError(f"{name} must be one of {allowed}, got {value!r}.")


def initial_rows(old_rows: tf.Tensor, num_new: int, kind: str,
                 initialised: tf.Tensor | None = None) -> tf.Tensor:
  """Initial rows [M, ...] of M new classes (`NEW_ROW_INITS`).

  Args:
    old_rows: the N old classes' rows [N, ...].
    num_new: M.
    kind: "mean", "zeros" or "random".
    initialised: the new rows as the table's initialiser drew them [M, ...];
      needed for "random" (returned as they are).

  Returns:
    [M, ...] rows of old_rows' dtype.

  Raises:
    UserInputError: an unknown kind.
    ValueError: "random" without `initialised`.
  """
  check_row_init("new row init", kind)
  old_rows = tf.convert_to_tensor(old_rows)
  if kind == "random":
    if initialised is None:
      raise ValueError("'random' new rows keep the table's initial rows: pass "
                       "them as `initialised`.")
    return tf.convert_to_tensor(initialised)
  if kind == "zeros":
    return tf.zeros([num_new] + list(old_rows.shape[1:]), old_rows.dtype)
  return tf.repeat(tf.reduce_mean(old_rows, axis=0, keepdims=True), num_new,
                   axis=0)


def relative_path(variable) -> str:
  """A variable's path without its model name: 'block0/bn1/shift'."""
  return variable.path.split("/", 1)[-1]


def variables_by_path(model: keras.Model) -> dict:
  """{relative path: variable} of a built model."""
  return {relative_path(v): v for v in model.variables}


def pair_variables(target: keras.Model, source: keras.Model) -> list[tuple]:
  """(target variable, source variable) of two models of one structure.

  Raises:
    ValueError: the models differ in variable paths or shapes.
  """
  pairs = list(zip(target.variables, source.variables))
  if len(target.variables) != len(source.variables) or any(
      relative_path(t) != relative_path(s) or t.shape != s.shape
      for t, s in pairs):
    raise ValueError(f"Models {target.name} and {source.name} differ in "
                     "structure.")
  return pairs


def equalized_class_tables(model: keras.Model) -> frozenset:
  """Relative paths of the model's equalised class tables [num_classes, ...]
  (run-time scale 1 / sqrt(num_classes)); none unless the model has an
  `equalized_class_tables()` method that lists them."""
  tables = getattr(model, "equalized_class_tables", None)
  return frozenset(tables()) if tables is not None else frozenset()


def copy_weights(source: keras.Model, target: keras.Model, num_old: int,
                 new_rows: str = "mean", skip=()) -> list:
  """Copies source variables into the target variables of the same path.

  Class tables (see CLASS_TABLE_NAMES and `equalized_class_tables`) may have
  M more rows in the target: their first N rows are copied (an equalised
  table's times sqrt((N + M) / N), which keeps the old classes' effective
  rows) and the new rows are set by `new_rows` (`NEW_ROW_INITS`: "mean" of
  the old rows, "zeros", or "random": left as the target's initialiser drew
  them).

  Args:
    source: a built model for N classes.
    target: a built model of the same architecture for N + M classes.
    num_old: N.
    new_rows: initialisation of the new rows.
    skip: relative paths not to touch.

  Returns:
    The target variables that have no source counterpart.

  Raises:
    ValueError: when a variable of both models has incompatible shapes.
    UserInputError: an unknown new_rows.
  """
  check_row_init("new_rows", new_rows)
  by_path = variables_by_path(source)
  equalized = equalized_class_tables(target)
  unmatched = []
  for t in target.variables:
    path = relative_path(t)
    if path in skip:
      continue
    s = by_path.get(path)
    if s is None:
      unmatched.append(t)
      continue
    if tuple(s.shape) == tuple(t.shape):
      t.assign(s)
      continue
    is_table = (path.rsplit("/", 1)[-1] in CLASS_TABLE_NAMES or
                path in equalized)
    if not (is_table and s.shape[0] == num_old and t.shape[0] > num_old
            and tuple(s.shape[1:]) == tuple(t.shape[1:])):
      raise ValueError(f"Cannot carry {path} {tuple(s.shape)} from the source "
                       f"into {tuple(t.shape)}.")
    old = tf.convert_to_tensor(s)
    if path in equalized:
      old = old * math.sqrt(t.shape[0] / num_old)
    rest = initial_rows(old, t.shape[0] - num_old, new_rows,
                           initialised=tf.convert_to_tensor(t)[num_old:])
    t.assign(tf.concat([old, rest], axis=0))
  return unmatched
