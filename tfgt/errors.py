"""Errors for bad user input, reported by the command lines without traceback."""

from typing import Sequence


class UserInputError(ValueError):
  """Input (data, config, checkpoint) that cannot be used, and how to fix it."""


# gin adds a line per configurable that an exception passes through.
_GIN_TRAILER = "  In call to configurable "


def message(error: BaseException) -> str:
  """The error's message for a person: without gin's "In call to
  configurable ..." lines, which name functions and memory addresses."""
  return "\n".join(line for line in str(error).splitlines()
                   if not line.startswith(_GIN_TRAILER)).strip()


_KINDS = {
    "int": "a whole number",
    "real": "a number",
    "bool": "True or False",
    "str": "a string in quotes",
}


def _is_kind(value, kind: str) -> bool:
  import numbers  # pylint: disable=g-import-not-at-top
  if kind == "bool":
    return isinstance(value, bool)
  if isinstance(value, bool):
    return False
  if kind == "int":
    return isinstance(value, numbers.Integral)
  if kind == "real":
    return isinstance(value, numbers.Real)
  return isinstance(value, str)


def wrong_types(owner: str, values: dict, kinds: dict) -> list[str]:
  """The settings among `values` whose type is not their kind.

  Args:
    owner: the configurable's name for the message (e.g. "train").
    values: setting name -> value, as gin bound it.
    kinds: setting name -> "int", "real", "bool" or "str"; a trailing "?"
      also accepts None.

  Returns:
    One phrase per wrong setting, e.g. "train.num_steps = 'abc' (give a
    whole number)"; [] when every value fits.
  """
  problems = []
  for name, kind in kinds.items():
    value = values[name]
    if kind.endswith("?"):
      if value is None:
        continue
      kind = kind[:-1]
    if not _is_kind(value, kind):
      problems.append(f"{owner}.{name} = {value!r} (give {_KINDS[kind]})")
  return problems


def check_types(owner: str, values: dict, kinds: dict,
                more: Sequence[str] = ()) -> None:
  """Raises UserInputError naming every setting of `wrong_types` (and the
  phrases of `more`), so that a gin binding of the wrong type
  (`train.num_steps = 'abc'`) stops before anything runs, in one line."""
  problems = wrong_types(owner, values, kinds) + list(more)
  if problems:
    raise UserInputError("Settings of the wrong type: " + "; ".join(problems)
                         + ". Fix them in the gin file or --gin_param.")
