"""Errors for bad user input, reported by the command lines without traceback."""


class UserInputError(ValueError):
  """Input (data, config, checkpoint) that cannot be used, and how to fix it."""
