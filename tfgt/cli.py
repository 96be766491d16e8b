"""How tfgt's command lines start: absl's app.run with tfgt's exit codes.

absl's `app.run` exits with code 1 after `--help`, and for a bad flag value
or an `app.UsageError` raised by `main` it prints the whole help text and
exits 1. tfgt's commands exit like this instead:

  * 0 after `--help`, `--helpshort`, `-?`, `--helpfull` or `--helpxml`, which
    print the help as absl does;
  * 2, with one line on stderr that says what is wrong and where the flags
    are listed, for a flag that does not exist, a flag value that does not
    parse (`--from=nonsense` of an enum, `--per_class=x`) and an
    `app.UsageError` of `main` (a required flag missing, extra arguments),
    the code that every other bad input (a `UserInputError`) exits with.

Use `run(main)` in place of `app.run(main)`. A command's `main` starts
with `check_arguments(argv, required=...)` and runs its work under
`exit_on_bad_input()`: a `UserInputError` is logged as one line and the
command exits 2.
"""

from __future__ import annotations

import contextlib
import logging as pylogging
import os
import sys
from typing import Any, Callable, Iterator, NoReturn, Sequence

from absl import app
from absl import flags
from absl import logging

from tfgt import errors

# The exit code of bad input, as for a UserInputError.
EXIT_BAD_INPUT = 2


def program() -> str:
  """The command's name for messages: `python -m <module>` when it runs as
  a module (tfgt.sample), else the script's file name."""
  main = sys.modules.get("__main__")
  spec = getattr(main, "__spec__", None)
  if spec is not None and spec.name:
    return f"python -m {spec.name}"
  return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "tfgt"


def fail(message: str) -> NoReturn:
  """Writes `message` as one line to stderr and exits with code 2.

  Raises:
    SystemExit: always, with code `EXIT_BAD_INPUT`.
  """
  text = " ".join(str(message).split())
  sys.stderr.write(f"{program()}: error: {text}\n")
  sys.stderr.flush()
  sys.exit(EXIT_BAD_INPUT)


def _with_help_hint(message: str) -> str:
  """`message` as a sentence, then where the flags are listed."""
  text = " ".join(str(message).split())
  if not text.endswith((".", "?", "!")):
    text += "."
  return f"{text} See `{program()} --help` for the flags."


def parse_flags(argv: Sequence[str],
                flag_values: flags.FlagValues = flags.FLAGS) -> list[str]:
  """absl's flag parsing, with a bad flag as one line and exit code 2.

  Args:
    argv: the command line, program name first.
    flag_values: the flags to parse into.

  Returns:
    The arguments that are not flags, program name first.

  Raises:
    SystemExit: code 2 for a flag that does not exist or a value that does
      not parse (`flags.Error`); code 0 after a help flag (see `run`).
  """
  try:
    return flag_values(list(argv))
  except flags.Error as e:
    fail(_with_help_hint(str(e)))


def exit_on_usage_errors(main: Callable[[list[str]], Any]
                         ) -> Callable[[list[str]], Any]:
  """`main`, with an `app.UsageError` it raises made one line and exit 2.

  Returns:
    A function of argv that calls `main`.
  """
  def checked_main(argv: list[str]) -> Any:
    try:
      return main(argv)
    except app.UsageError as e:
      fail(_with_help_hint(str(e)))
  checked_main.__doc__ = main.__doc__
  return checked_main


def check_arguments(argv: Sequence[str], required: Sequence[str] = (),
                    flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """What every command checks first: no argument that is not a flag, and
  every flag of `required` given.

  Args:
    argv: the command line after flag parsing, program name first.
    required: names of flags that must have a value.
    flag_values: the parsed flags.

  Raises:
    app.UsageError: "Unexpected arguments: [...]", or "--a is required." /
      "--a and --b are required." naming the required flags without a value.
  """
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {list(argv[1:])}")
  missing = [f"--{name}" for name in required if not flag_values[name].value]
  if missing:
    raise app.UsageError(
        f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
        "required.")


@contextlib.contextmanager
def exit_on_bad_input() -> Iterator[None]:
  """Runs a block in which a `UserInputError` ends the command: its message
  is logged as one error line (`errors.message`) and the exit code is 2.

  Raises:
    SystemExit: code `EXIT_BAD_INPUT` after a UserInputError.
  """
  try:
    yield
  except errors.UserInputError as e:
    logging.error("%s", errors.message(e))
    sys.exit(EXIT_BAD_INPUT)


def _exit_0(flag_class: type[flags.Flag]) -> type[flags.Flag]:
  """A subclass of one of absl's help flags that exits 0 after the help.

  absl's help flags print the help, then call sys.exit(1) from `parse`.
  """

  class ExitZero(flag_class):  # pytype: disable=invalid-base-class

    def __init__(self):
      super().__init__()
      # Replaces absl's flag of the same name (see `define_help_flags`).
      self.allow_override = True

    def parse(self, argument: Any) -> None:
      try:
        super().parse(argument)
      except SystemExit as e:
        if e.code not in (None, 0, 1):
          raise
        sys.stdout.flush()
        raise SystemExit(0) from None

  ExitZero.__name__ = ExitZero.__qualname__ = f"{flag_class.__name__}Exit0"
  return ExitZero


# --help (-?), --helpshort, --helpfull and --helpxml.
_HELP_FLAGS = tuple(_exit_0(c) for c in (app.HelpFlag, app.HelpshortFlag,
                                         app.HelpfullFlag, app.HelpXMLFlag))


def define_help_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines absl's help flags in versions that exit 0. Idempotent.

  absl's own are defined first (`app.define_help_flags`, which `app.run`
  calls again, to no effect), then replaced, under absl.app's name so that
  --helpfull lists them where it always did.
  """
  if flag_values is flags.FLAGS:
    app.define_help_flags()
  for flag_class in _HELP_FLAGS:
    flag = flag_class()
    if (flag.name not in flag_values or
        not isinstance(flag_values[flag.name], flag_class)):
      flags.DEFINE_flag(flag, flag_values, module_name=app.__name__)


class _TensorFlowInfoFilter(pylogging.Filter):
  """Drops the INFO lines that TensorFlow's own Python code logs through
  absl (a checkpoint save's "Sharding callback duration: N microseconds"),
  which would bury tfgt's progress lines; its warnings and errors pass."""

  def filter(self, record: pylogging.LogRecord) -> bool:
    return not (record.levelno < pylogging.WARNING and
                f"{os.sep}tensorflow{os.sep}" in record.pathname)


_TF_INFO_FILTER = _TensorFlowInfoFilter()


def hide_tensorflow_info() -> None:
  """Keeps TensorFlow's own INFO lines off absl's log (idempotent); tfgt's
  INFO lines (progress, evaluations) stay."""
  logger = pylogging.getLogger("absl")
  if _TF_INFO_FILTER not in logger.filters:
    logger.addFilter(_TF_INFO_FILTER)


def run(main: Callable[[list[str]], Any],
        argv: Sequence[str] | None = None) -> NoReturn:
  """Runs `main` as `absl.app.run` does, with tfgt's exit codes (module
  docstring).

  Args:
    main: the command's main(argv).
    argv: the command line (default sys.argv).

  Raises:
    SystemExit: always, as app.run.
  """
  define_help_flags()
  hide_tensorflow_info()
  app.run(exit_on_usage_errors(main), argv=argv, flags_parser=parse_flags)
  sys.exit(0)  # app.run always exits; this line is for type checkers.
