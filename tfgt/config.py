"""Gin files and bindings, parsed the same way by every command line.

gin-config reports a mistake in a config as a traceback, often with the
whole config in it. `parse` checks each statement before gin binds it and
turns every mistake into a `UserInputError` of one line that names the
binding (with its file and line when it comes from a file) and the fix:

  * a value that is not a gin value, mostly a string without quotes
    (`image_folder.root=/tmp/x`, whose quotes a shell removed): the binding
    with quotes, and how to write it on a command line;
  * a configurable that does not exist (`trian.num_steps`): the nearest
    registered names;
  * a parameter that the configurable does not have (`train.num_step`): its
    parameters, nearest first;
  * a reference `@Name` to no configurable (`@ImageFolder`): the nearest
    names;
  * a macro `%NAME` that no binding defines, a module that does not import,
    and a missing or unreadable file or included file.

With `skip_unknown=True` the bindings that name what the code does not know
(configurables, parameters, references, imports) are skipped with a warning
instead: a run's saved config.gin stays readable after the code dropped or
renamed something it bound.

`isolated()` gives a block an empty gin config and puts the caller's config
back afterwards.

Importing this module registers every gin configurable of the library (data
sources, models, methods, losses, strategies, the evaluator and its feature
extractors), so that any config can be checked. `train` is registered by
`tfgt.train`, which only training programs import.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import difflib
import inspect
import io
import os
import re
import shlex
import tokenize
from typing import Any, Iterator, Sequence

from absl import logging
import gin
from gin import config_parser

from tfgt.errors import UserInputError
# The modules below are imported for their gin registrations.
from tfgt import distribute  # pylint: disable=unused-import,g-bad-import-order
from tfgt import losses  # pylint: disable=unused-import,g-bad-import-order
from tfgt.data import ada  # pylint: disable=unused-import
from tfgt.data import augment  # pylint: disable=unused-import
from tfgt.data import pipeline  # pylint: disable=unused-import
from tfgt.data import sources  # pylint: disable=unused-import
import tfgt.eval  # pylint: disable=unused-import,g-bad-import-order
import tfgt.methods  # pylint: disable=unused-import,g-bad-import-order
from tfgt.models import architectures  # pylint: disable=g-bad-import-order

architectures.import_built_in()

# Nearest configurable names listed in a message.
_NUM_SUGGESTIONS = 5
_DYNAMIC_REGISTRATION = re.compile(r"^\s*from\s+__gin__\s+import", re.M)


# gin-config (pinned to 0.5.0 in setup.cfg) has no public way to list its
# configurables or to save and restore its config: the functions down to
# `isolated` are the only places that touch its internals, and
# tests/test_config.py covers them.
# pylint: disable=protected-access


def _registry():
  return gin.config._REGISTRY


@dataclasses.dataclass
class _GinState:
  """What gin.clear_config() clears, saved to be put back."""
  config: dict
  imports: set
  operative: dict
  singletons: dict
  locked: bool


def _save_state() -> _GinState:
  # Copies of the dicts of bindings, not of the values: values may hold
  # ConfigurableReferences, whose deepcopy calls the configurable.
  g = gin.config
  with g._OPERATIVE_CONFIG_LOCK:
    operative = {k: dict(v) for k, v in g._OPERATIVE_CONFIG.items()}
  return _GinState(config={k: dict(v) for k, v in g._CONFIG.items()},
                   imports=set(g._IMPORTS), operative=operative,
                   singletons=dict(g._SINGLETONS),
                   locked=gin.config_is_locked())


def _restore_state(state: _GinState) -> None:
  g = gin.config
  gin.clear_config()
  g._CONFIG.update(state.config)
  g._IMPORTS.update(state.imports)
  with g._OPERATIVE_CONFIG_LOCK:
    g._OPERATIVE_CONFIG.update(state.operative)
  g._SINGLETONS.update(state.singletons)
  g._set_config_is_locked(state.locked)


def _include_candidates(path: str, including: str | None = None
                        ) -> list[str]:
  """Where an included file is looked for: gin's search path (the working
  directory first), then, for an including file inside a `gin_configs/`
  folder, the folder that holds `gin_configs/` (so that a repository's
  configs, which include each other as "gin_configs/...", parse from any
  working directory)."""
  if os.path.isabs(path):
    return [path]
  prefixes = list(getattr(gin.config, "_LOCATION_PREFIXES", [""]))
  folder = os.path.dirname(including) if including else ""
  while folder and os.path.dirname(folder) != folder:
    if os.path.basename(folder) == "gin_configs":
      prefixes.append(os.path.dirname(folder))
      break
    folder = os.path.dirname(folder)
  return [os.path.join(prefix, path) for prefix in prefixes]


def _defined_macros() -> list[str]:
  return sorted(scope for scope, selector in gin.config._CONFIG
                if selector == "gin.macro")


# pylint: enable=protected-access


@contextlib.contextmanager
def isolated() -> Iterator[None]:
  """Runs the block on an empty gin config, then restores the caller's.

  The caller's bindings, imports, operative config and locked state are put
  back when the block ends, by return or by exception. Configurables that the
  block registers (by importing modules) stay registered, and gin constants
  are left alone, as gin.clear_config() leaves them.

  Yields:
    None, with an empty, unlocked gin config.
  """
  state = _save_state()
  gin.clear_config()
  try:
    yield
  finally:
    _restore_state(state)


@dataclasses.dataclass
class _BadReference:
  """Stands for `@selector` while parsing when no single configurable has
  that name (`matches` lists the configurables it names, if several)."""
  scoped_selector: str
  evaluate: bool
  matches: list[str]

  @property
  def text(self) -> str:
    return "@" + self.scoped_selector + ("()" if self.evaluate else "")


class _Delegate(gin.config.ParserDelegate):
  """gin's parser delegate, but a reference to an unknown or ambiguous
  configurable becomes a `_BadReference`, reported with its binding."""

  def configurable_reference(self, scoped_selector, evaluate):
    selector = scoped_selector.rsplit("/", 1)[-1]
    matches = _registry().matching_selectors(selector)
    if len(matches) != 1:
      return _BadReference(scoped_selector, evaluate, list(matches))
    return super().configurable_reference(scoped_selector, evaluate)


def _configurable_names() -> list[str]:
  registry = _registry()
  return sorted(registry.minimal_selector(s) for s, _ in registry.items()
                if not s.startswith("gin."))


def nearest(name: str, choices: Sequence[str],
            limit: int | None = None) -> list[str]:
  """`choices` ordered by similarity to `name` (difflib), nearest first.

  Case and underscores are ignored (`ImageFolder` is nearest to
  `image_folder`); a dotted name is compared whole and by its last part.
  """
  def keys(text: str) -> tuple[str, str]:
    text = text.lower().replace("_", "")
    return text.replace(".", ""), text.rsplit(".", 1)[-1]

  def similarity(choice: str) -> float:
    return max(difflib.SequenceMatcher(None, a, b).ratio()
               for a, b in zip(keys(name), keys(choice)))

  ordered = sorted(choices, key=lambda c: (-similarity(c), c))
  return ordered[:limit] if limit else ordered


def bindable_parameters(selector: str) -> tuple[list[str], list[str]]:
  """(parameters gin may bind, parameters it refuses) of a configurable.

  Raises:
    KeyError: if `selector` names no single configurable.
  """
  configurable = _registry().get_match(selector)
  if configurable is None:
    raise KeyError(selector)
  kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD,
           inspect.Parameter.KEYWORD_ONLY)
  try:
    signature = inspect.signature(configurable.wrapped)
  except (TypeError, ValueError):
    return [], []
  names = [p.name for p in signature.parameters.values()
           if p.kind in kinds and p.name != "self"]
  allowed = [n for n in names
             if (not configurable.allowlist or n in configurable.allowlist)
             and n not in (configurable.denylist or ())]
  return allowed, [n for n in names if n not in allowed]


def _one_line(text: str) -> str:
  return " ".join(str(text).split())


# gin's report of a value that is no Python literal: ast.literal_eval's
# message, which holds the repr of a syntax tree node (with its memory
# address), then gin's line with the token as written.
_NOT_A_LITERAL = re.compile(
    r"malformed node or string(?: on line \d+)?: <[^<>]*>"
    r"(?:\s*Failed to parse token (?P<token>'.*?'|\".*?\"))?", re.S)
# The form of a binding, for syntax errors.
_BINDING_FORM = ("A binding reads configurable.parameter = value, with "
                 "strings in quotes, references as @name or @name() and "
                 "macros as %NAME.")
# Any other object's repr with its address, e.g. <function f at 0x7f...>.
_ADDRESS = re.compile(r"<([^<>]*?)(?: object)? at 0x[0-9a-fA-F]+>")


def _readable(text: str) -> str:
  """An error message without memory addresses: a value that is no
  literal becomes "<token> is not a gin value" (the source text), and any
  other repr loses its address (`<function f>`)."""
  def not_a_literal(match: re.Match) -> str:
    token = match.group("token")
    return (f"{token[1:-1]} is not a gin value" if token
            else "a value that is not a gin value")

  text = _NOT_A_LITERAL.sub(not_a_literal, text)
  return _ADDRESS.sub(r"<\1>", text)


def _first_line(error: BaseException) -> str:
  """The first line of an error's message, without memory addresses (a
  SyntaxError's without the "(file, line N)" that names where)."""
  text = error.msg if isinstance(error, SyntaxError) and error.msg else error
  lines = _readable(str(text)).strip().splitlines()
  return lines[0].strip() if lines else type(error).__name__


def _is_plain_value(text: str) -> bool:
  """Whether gin reads `text` as it is: a literal, @reference or %macro."""
  text = text.strip()
  if not text or text[0] in "'\"@%" or re.match(r"[-+]?\.?\d", text):
    return True
  try:
    ast.literal_eval(text)
  except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
    return False
  return True


def _parses(text: str) -> bool:
  try:
    for _ in config_parser.ConfigParser(text, _Delegate()):
      pass
  except (SyntaxError, tokenize.TokenError, ValueError):
    return False
  return True


def _quoting_fix(line: str) -> tuple[str, str] | None:
  """(the unquoted word, the binding with quotes) for a binding whose value
  holds words without quotes, or None when quotes do not fix it."""
  match = re.match(r"\s*([\w./%]+)\s*=\s*(.*?)\s*$", line)
  if not match or not match.group(2):
    return None
  key, value = match.groups()
  value = re.sub(r"\s+#.*$", "", value)
  if value[0] in "[(":
    parts = re.split(r"(\s*[\[\](),]\s*)", value)
    bad = [p.strip() for p in parts[::2] if not _is_plain_value(p)]
    parts[::2] = [p if _is_plain_value(p) else repr(p.strip())
                  for p in parts[::2]]
    fixed = "".join(parts)
  elif value[0] in "{" or _is_plain_value(value):
    return None
  else:
    bad, fixed = [value], repr(value)
  binding = f"{key} = {fixed}"
  if not bad or not _parses(binding):
    return None
  return bad[0], binding


def _shell_form(binding: str) -> str:
  """--gin_param with `binding` quoted for a POSIX shell."""
  if re.search(r'["$`\\!]', binding):
    return shlex.quote("--gin_param=" + binding)
  return f'--gin_param="{binding}"'


def _unresolved(text: str, selector: str, matches, missing: str
                ) -> tuple[str, str]:
  """(problem, fix) for a name that matches several configurables or none.

  Args:
    text: the name as written.
    selector: its configurable part, for the nearest names.
    matches: the configurables it matches (not exactly one).
    missing: the problem's wording when it matches none.
  """
  if matches:
    return (f"{text} names several configurables "
            f"({', '.join(sorted(matches))})",
            "write the full name of the one meant.")
  return (missing, "the nearest names are "
          + ", ".join(nearest(selector, _configurable_names(),
                              _NUM_SUGGESTIONS))
          + ". Check the spelling.")


@dataclasses.dataclass
class _Source:
  """Gin text to parse: a file's, or a binding given directly (path None)."""
  text: str
  path: str | None = None

  def line(self, number: int) -> str:
    lines = self.text.splitlines()
    return lines[number - 1] if 0 < number <= len(lines) else ""

  def where(self, line_number: int, line: str | None = None) -> str:
    """Names the binding at `line_number`: its file and line, and its text."""
    line = _one_line(line if line is not None else self.line(line_number))
    if self.path is None:
      return f'Gin binding "{line}"'
    return f'{self.path} line {line_number}, "{line}"'


class _Parser:
  """Checks and binds statements; see `parse`."""

  def __init__(self, skip_unknown: bool, ignore: Sequence[str]):
    self.skip_unknown = skip_unknown
    self.ignore = set(ignore)
    self.skipped: list[str] = []
    self.macro_uses: list[tuple[str, str]] = []  # (name, where)
    self.skipped_macros: set[str] = set()
    self.files: list[str] = []  # the include chain, against cycles

  def parse_file(self, path: str, where: str | None = None) -> None:
    """Parses a gin file; `where` names the include statement, if any."""
    real = os.path.realpath(path)
    if real in self.files:
      raise UserInputError(f"{where}: {path} includes itself (through "
                           f"{' -> '.join(self.files)}); remove the cycle.")
    try:
      with open(path, encoding="utf-8") as f:
        text = f.read()
    except (OSError, UnicodeDecodeError) as e:
      raise UserInputError(
          f"{where + ': ' if where else ''}Cannot read gin file {path} "
          f"({_one_line(e)}); give a readable UTF-8 text file.") from e
    self.files.append(real)
    try:
      self.parse_source(_Source(text, path))
    finally:
      self.files.pop()

  def parse_source(self, source: _Source) -> None:
    if _DYNAMIC_REGISTRATION.search(source.text):
      self._parse_with_gin(source)
      return
    for statement in self._statements(source):
      where = source.where(statement.location.line_num,
                           statement.location.line_content)
      if isinstance(statement, config_parser.BindingStatement):
        self._bind(statement, where)
      elif isinstance(statement, config_parser.ImportStatement):
        self._import(statement, where)
      elif isinstance(statement, config_parser.IncludeStatement):
        self._include(statement, where)
      # A BlockDeclaration only names the selector of the bindings that
      # follow it, which are checked one by one.

  def _statements(self, source: _Source) -> Iterator[Any]:
    """The statements of `source` one by one (an import must run before
    the statements after it are read), then the error of a bad one."""
    last_line = 0
    try:
      parser = config_parser.ConfigParser(source.text, _Delegate())
      while (statement := parser.parse_statement()) is not None:
        last_line = statement.location.line_num
        yield statement
    except SyntaxError as e:
      raise UserInputError(self._syntax_message(source, e)) from e
    except tokenize.TokenError as e:
      raise UserInputError(
          f"{source.where(_next_statement_line(source.text, last_line))}: "
          "the value does not end (a bracket or a quote is not closed); "
          "close it.") from e
    except ValueError as e:  # e.g. an ambiguous constant %NAME
      raise UserInputError(
          f"{source.where(_next_statement_line(source.text, last_line))}: "
          f"{_first_line(e)}") from e

  def _syntax_message(self, source: _Source, error: SyntaxError) -> str:
    line_number = error.lineno or 1
    line = source.line(line_number) or error.text or ""
    # A binding given directly is named whole, even over several lines.
    where = source.where(line_number,
                         line if source.path else source.text)
    fix = _quoting_fix(line)
    if fix:
      word, binding = fix
      if _registry().matching_selectors(word):
        hint = (f"{word} is a configurable: write @{word} to refer to it "
                f"(@{word}() for what it returns), or '{word}' for the "
                "string")
      else:
        hint = f"{word} is not a gin value: put strings in quotes: {binding}"
        if source.path is None:
          hint += f" (in a shell: {_shell_form(binding)})"
      return f"{where}: {hint}."
    value = line.partition("=")[2].strip()
    if value[:1] in ("'", '"') and value.count(value[0]) % 2:
      return (f"{where}: the string's closing quote ({value[0]}) is missing; "
              "add it.")
    return (f"{where}: {_one_line(_readable(str(error.msg))).rstrip('.')}. "
            f"{_BINDING_FORM}")

  def _ignored(self, selector: str) -> bool:
    return selector.rsplit(".", 1)[-1] in self.ignore

  def _skip_or_raise(self, where: str, reason: str, fix: str) -> None:
    if not self.skip_unknown:
      raise UserInputError(f"{where}: {reason}; {fix}")
    message = f"{where}: skipped ({reason})."
    logging.warning("%s", message)
    self.skipped.append(message)

  def _bind(self, statement, where: str) -> None:
    scope, selector, arg_name, value, _ = statement
    if not arg_name:  # A macro definition, NAME = value.
      key = (f"{scope}/{selector}" if scope else selector, "gin.macro",
             "value")
      problem = self._reference_problem(value)
    elif self._ignored(selector):
      return
    else:
      key = (scope, selector, arg_name)
      problem = (self._configurable_problem(selector)
                 or self._parameter_problem(selector, arg_name)
                 or self._reference_problem(value))
    used = [m for m in _macros(value) if m in self.skipped_macros]
    if used and not problem:
      problem = (f"it uses %{used[0]}, whose binding was skipped",
                 f"fix the binding of {used[0]}.")
    if problem:
      self._skip_or_raise(where, *problem)
      if not arg_name:
        self.skipped_macros.add(key[0])
      return
    self.macro_uses += [(name, where) for name in _macros(value)]
    self._bind_checked(where, key, value)
    self.skipped_macros.discard(key[0])

  def _bind_checked(self, where: str, key: tuple[str, str, str],
                    value: Any) -> None:
    try:
      gin.bind_parameter(key, value)
    except ValueError as e:  # A case the checks above do not know.
      raise UserInputError(f"{where}: {_first_line(e)}") from e

  def _configurable_problem(self, selector: str) -> tuple[str, str] | None:
    matches = _registry().matching_selectors(selector)
    if len(matches) == 1:
      return None
    return _unresolved(selector, selector, matches,
                       f"no configurable is named {selector}")

  def _parameter_problem(self, selector: str,
                         arg_name: str) -> tuple[str, str] | None:
    try:
      gin.config.ParsedBindingKey.parse(("", selector, arg_name))
      return None
    except ValueError as e:
      error = e
    allowed, refused = bindable_parameters(selector)
    if arg_name in allowed:  # Refused for another reason than its name.
      return _first_line(error), "fix the binding."
    listed = ", ".join(nearest(arg_name, allowed))
    if not allowed:
      return (f"{selector} takes no parameters from gin",
              "remove the binding.")
    if arg_name in refused:
      return (f"{selector}.{arg_name} is set by the library, not by gin",
              f"remove the binding. The parameters of {selector} that gin "
              f"sets are: {listed}.")
    return (f"{selector} has no parameter {arg_name}",
            f"its parameters, nearest first: {listed}.")

  def _reference_problem(self, value: Any) -> tuple[str, str] | None:
    for item in _flatten(value):
      if isinstance(item, _BadReference):
        return _unresolved(item.text,
                           item.scoped_selector.rsplit("/", 1)[-1],
                           item.matches, f"{item.text} names no configurable")
    return None

  def _import(self, statement, where: str) -> None:
    try:
      gin.parse_config(statement.format())
    except ImportError as e:
      self._skip_or_raise(
          where, f"module {statement.module} cannot be imported "
          f"({_first_line(e)})",
          "install what provides it, or remove the import.")

  def _include(self, statement, where: str) -> None:
    including = self.files[-1] if self.files else None
    for path in _include_candidates(statement.filename, including):
      if os.path.isfile(path):
        self.parse_file(path, where)
        return
    raise UserInputError(
        f"{where}: the included file {statement.filename} does not exist; "
        "include paths are relative to the working directory "
        f"({os.getcwd()}) or, in a file under gin_configs/, to the folder "
        "that holds gin_configs/, not to the including file.")

  def _parse_with_gin(self, source: _Source) -> None:
    """Leaves a config that registers configurables by import (gin's
    dynamic registration) to gin, with its first message line as error."""
    text = io.StringIO(source.text)
    text.name = source.path or "bindings"
    try:
      gin.parse_config(text)
    except (SyntaxError, ValueError, ImportError, OSError, NameError,
            AttributeError) as e:
      name = source.path or f'Gin binding "{_one_line(source.text)}"'
      hint = ""
      if isinstance(e, SyntaxError):
        hint = f". {_BINDING_FORM}"
        if source.path and e.lineno and source.line(e.lineno):
          name = source.where(e.lineno)
      raise UserInputError(
          f"{name}: {_first_line(e).rstrip('.')}{hint}") from e

  def check_macros(self) -> None:
    defined = _defined_macros()
    for name, where in self.macro_uses:
      if name not in defined:
        near = nearest(name, defined, _NUM_SUGGESTIONS)
        raise UserInputError(
            f"{where}: no binding defines the macro %{name}; add one "
            f"({name} = value) or fix the name"
            + (f" (defined: {', '.join(near)})" if near else "") + ".")


def _next_statement_line(text: str, after: int) -> int:
  """The first line after line `after` that starts a statement (a name at
  the start of the line), else the last line."""
  lines = text.splitlines()
  for number in range(after + 1, len(lines) + 1):
    if re.match(r"[A-Za-z_%@]", lines[number - 1]):
      return number
  return max(len(lines), 1)


def _macros(value: Any) -> list[str]:
  """Names of the macros (%NAME) in `value`."""
  return ["/".join(item.scopes) for item in _flatten(value)
          if isinstance(item, gin.config.ConfigurableReference)
          and item.configurable.selector == "gin.macro"]


def _flatten(value: Any) -> Iterator[Any]:
  """`value` and everything nested in its lists, tuples and dicts."""
  yield value
  if isinstance(value, dict):
    for k, v in value.items():
      yield from _flatten(k)
      yield from _flatten(v)
  elif isinstance(value, (list, tuple)):
    for v in value:
      yield from _flatten(v)


def parse(gin_files: Sequence[str] = (), gin_params: Sequence[str] = (), *,
          skip_unknown: bool = False, ignore: Sequence[str] = (),
          finalize: bool = True) -> list[str]:
  """Parses gin files, then bindings, into the global gin config.

  Every statement is checked before it is bound (see the module docstring);
  on an error the gin config is left as it was before the call.

  Args:
    gin_files: paths of gin files, parsed in order (an `include` inside is
      relative to the working directory, as in gin, or, in a file under a
      `gin_configs/` folder, to the folder that holds it).
    gin_params: bindings such as "train.num_steps = 100", parsed after the
      files; each is named alone in an error message.
    skip_unknown: skip, with a warning, each binding that names a
      configurable or parameter that does not exist or refers to one with
      @name, and each import that fails, instead of raising.
    ignore: names of configurables whose bindings are dropped unchecked,
      e.g. ("train",) for a command that accepts training configs but does
      not train.
    finalize: lock the config (gin.finalize) after parsing; its macros must
      then all be defined.

  Returns:
    One message per binding skipped (also logged as warnings).

  Raises:
    UserInputError: a one-line message naming the binding (and its file and
      line) and the fix, for a missing or unreadable file, a syntax error,
      an unknown configurable, parameter or reference, an import that fails,
      or an undefined macro.
    RuntimeError: if the gin config is locked (clear it first).
  """
  if gin.config_is_locked():
    raise RuntimeError("The gin config is locked (gin.finalize ran): call "
                       "gin.clear_config() or use tfgt.config.isolated() "
                       "before parsing another config.")
  for path in gin_files:
    if not os.path.isfile(path):
      what = "is a directory" if os.path.isdir(path) else "does not exist"
      raise UserInputError(
          f"Gin file {path} {what}: give the path of a .gin file (relative "
          f"paths start from {os.getcwd()}).")
  state = _save_state()
  parser = _Parser(skip_unknown, ignore)
  try:
    for path in gin_files:
      parser.parse_file(path)
    for param in gin_params:
      parser.parse_source(_Source(param))
    if finalize:
      parser.check_macros()
      try:
        gin.finalize()
      except ValueError as e:
        raise UserInputError(f"The gin config is incomplete: "
                             f"{_first_line(e)}") from e
  except BaseException:
    _restore_state(state)
    raise
  return parser.skipped
