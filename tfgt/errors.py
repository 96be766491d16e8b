"""Errors for bad user input, reported by the command lines without traceback."""


class UserInputError(ValueError):
  """Input (data, config, checkpoint) that cannot be used, and how to fix it."""


# gin adds a line per configurable that an exception passes through.
_GIN_TRAILER = "  In call to configurable "


def message(error: BaseException) -> str:
  """The error's message for a person: without gin's "In call to
  configurable ..." lines, which name functions and memory addresses."""
  return "\n".join(line for line in str(error).splitlines()
                   if not line.startswith(_GIN_TRAILER)).strip()
