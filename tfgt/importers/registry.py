"""The formats of `python -m tfgt.import_source --from=...`, one entry each.

A format is one `Importer`: its name, its reader (the function that turns
the input into tfgt models), its default network, the format-specific
options it accepts, whether `--verify` applies, an example command, a
one-line description and the shipped configs' sources it makes. Each of
tfgt's formats declares its entry as `IMPORTER` in its importer's module
(`BUILTIN_MODULES`); any other is added with one call, `register(entry)`,
before the command line defines its flags. From the entries the command
line takes its `--from` choices and help, the option checks and the
"source not found, make it with ..." messages of tfgt.methods.source
(docs/IMPORT.md, "Add an importer").
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from typing import Callable, Mapping, Sequence

from tfgt.errors import UserInputError
from tfgt.importers.mapping import Imported

# tfgt's own importers, each with an `IMPORTER` entry, in the order that
# --from lists them; registered formats follow.
BUILTIN_MODULES = ("tfgt.importers.stylegan", "tfgt.importers.rosinality",
                   "tfgt.importers.stylegan2_ada",
                   "tfgt.importers.stylegan2_ada_tf", "tfgt.importers.biggan",
                   "tfgt.importers.tfhub_biggan")

# The options that only some formats accept, in the order they are checked,
# each with the error for a format that does not accept it ({name}: the
# format; {takers}: the formats that accept it). `Importer.refusals`
# overrides one for its format.
REFUSALS = {
    "verify": (
        "--verify runs the original framework beside the import; for {name} "
        "that is not installed here (PyTorch and the original code, or "
        "TensorFlow 1 and dnnlib). The tests compare this format with a "
        "NumPy forward pass of the original (docs/IMPORT.md)."),
    "resolution": ("--resolution is for {takers}; a {name} file holds its "
                   "resolution."),
    "discriminator": ("--discriminator is for {takers}; a {name} file holds "
                      "its discriminator."),
}


@dataclasses.dataclass(frozen=True)
class Request:
  """What the command line asks a reader for.

  Attributes:
    input: the file, folder or handle given as --input.
    network: the generator to import (the format's default when --network
      is not given).
    class_names: the names given, or None for the reader's default.
    noise_mode: a StyleGAN's noise, "z" or "const" (other readers ignore it).
    resolution: --resolution, or None (only for formats that accept it).
    discriminator: --discriminator, or None (only for formats that accept
      it).
  """
  input: str
  network: str
  class_names: Sequence[str] | None = None
  noise_mode: str = "z"
  resolution: int | None = None
  discriminator: str | None = None


@dataclasses.dataclass(frozen=True)
class Source:
  """A source folder of the shipped configs that a format's import makes.

  Attributes:
    folder: the folder's name ("biggan_imagenet_128").
    args: import_source's arguments after --from and before --out.
    remark: what this import gives ("the papers' source").
    preferred: listed before other formats' imports of the folder.
  """
  folder: str
  args: str
  remark: str
  preferred: bool = False


@dataclasses.dataclass(frozen=True)
class Importer:
  """One format of --from.

  Attributes:
    name: the --from value ("stylegan_nvlabs").
    description: one line for --help: what the format's files are.
    read: `Request` -> `mapping.Imported`; raises UserInputError for input
      it cannot import (import_source reports any other exception it raises
      as one, in one line).
    default_network: the generator imported without --network.
    example: an example command's arguments after --from (for --help).
    other_networks: what else --network may name (for --help; the reader
      checks it).
    options: {option of REFUSALS: what it means for this format (--help)}
      for each one the format accepts; "verify" with `verify` only.
    required: {option: the error when it is missing} for the options of
      `options` without which the format cannot import.
    refusals: {option: error} for this format, in place of REFUSALS'.
    verify: for --verify: (input, the `Imported`) -> the largest pixel
      difference between the original framework's images and the
      import's; None when the original cannot run here.
    sources: the shipped configs' source folders it makes.
  """
  name: str
  description: str
  read: Callable[[Request], Imported]
  default_network: str
  example: str
  other_networks: tuple[str, ...] = ()
  options: Mapping[str, str] = dataclasses.field(default_factory=dict)
  required: Mapping[str, str] = dataclasses.field(default_factory=dict)
  refusals: Mapping[str, str] = dataclasses.field(default_factory=dict)
  verify: Callable[[str, Imported], float] | None = None
  sources: tuple[Source, ...] = ()

  def check_options(self, given: Mapping[str, bool]) -> None:
    """Refuses a format-specific option it does not accept, or a missing
    one it requires.

    Args:
      given: {option of REFUSALS: whether the command line gives it}, for
        the options to check.

    Raises:
      UserInputError: the first such option, in REFUSALS' order.
    """
    for option, refusal in REFUSALS.items():
      if option not in given:
        continue
      if given[option] and option not in self.options:
        takers = [i.name for i in importers() if option in i.options]
        raise UserInputError(self.refusals.get(option, refusal).format(
            name=self.name, takers=_and(takers) or "no format"))
      if not given[option] and option in self.required:
        raise UserInputError(self.required[option])


_REGISTERED: dict[str, Importer] = {}
_BUILTIN_NAMES: set[str] = set()


def _and(words: Sequence[str]) -> str:
  """"a", "a and b", "a, b and c"."""
  if len(words) < 2:
    return "".join(words)
  return f"{', '.join(words[:-1])} and {words[-1]}"


def _check(importer: Importer) -> None:
  """Raises ValueError for an entry that cannot work, saying why."""
  problems = []
  if not re.fullmatch(r"[a-z][a-z0-9_]*", importer.name):
    problems.append(f"name {importer.name!r} is not a lower-case identifier")
  if importer.name in _REGISTERED:
    problems.append(f"--from={importer.name} is already registered; choose "
                    "another name (or unregister it first)")
  unknown = sorted(set(importer.options) - set(REFUSALS))
  if unknown:
    problems.append(f"options {unknown} are not among {list(REFUSALS)} (a "
                    "new option needs a flag in tfgt.import_source)")
  if not set(importer.required) <= set(importer.options):
    problems.append("every option of `required` must be in `options`")
  if not set(importer.refusals) <= set(REFUSALS):
    problems.append(f"`refusals` may only name {list(REFUSALS)}")
  if ("verify" in importer.options) != (importer.verify is not None):
    problems.append("give both `verify` and options['verify'] (its help), "
                    "or neither")
  if not callable(importer.read):
    problems.append("`read` must be a function of a Request")
  if problems:
    raise ValueError(f"Importer {importer.name!r}: {'; '.join(problems)}.")


def _load_builtins() -> None:
  """Registers tfgt's own formats, first and in BUILTIN_MODULES' order."""
  if _BUILTIN_NAMES:
    return
  entries = [importlib.import_module(module).IMPORTER
             for module in BUILTIN_MODULES]
  for entry in entries:
    _check(entry)
    _REGISTERED[entry.name] = entry
  _BUILTIN_NAMES.update(entry.name for entry in entries)


def register(importer: Importer) -> Importer:
  """Adds a format to --from. Call it before `import_source.define_flags`
  (from a shell: a script that registers its entry, then runs
  `import_source.define_flags()` and `cli.run(import_source.main)`).

  Returns:
    `importer`.

  Raises:
    ValueError: a name already registered, or an entry that cannot work (an
      option import_source has no flag for, a required option not in
      `options`, --verify without a `verify` function).
  """
  _load_builtins()
  _check(importer)
  _REGISTERED[importer.name] = importer
  return importer


def unregister(name: str) -> None:
  """Removes a format that `register` added (e.g. at the end of a test).

  Raises:
    ValueError: `name` is one of tfgt's own formats, or not registered.
  """
  _load_builtins()
  if name not in _REGISTERED or name in _BUILTIN_NAMES:
    raise ValueError(f"{name!r} is not a format that register() added.")
  del _REGISTERED[name]


def importers() -> tuple[Importer, ...]:
  """Every format: tfgt's own, then the registered ones in their order."""
  _load_builtins()
  return tuple(_REGISTERED.values())


def names() -> tuple[str, ...]:
  """The --from values, in importers()' order."""
  return tuple(i.name for i in importers())


def get(name: str) -> Importer:
  """The entry of `name`.

  Raises:
    UserInputError: no such format (the message lists them).
  """
  _load_builtins()
  if name not in _REGISTERED:
    raise UserInputError(f"--from={name!r}: importable formats are "
                         f"{', '.join(names())}.")
  return _REGISTERED[name]


def option_help(option: str) -> str:
  """A flag's help from the formats that accept it: "fmt: meaning; ..."."""
  text = "; ".join(f"{i.name}: {i.options[option].rstrip('.')}"
                   for i in importers() if option in i.options)
  return f"{text}." if text else "No format accepts it."


def source_commands() -> dict[str, tuple[tuple[str, str], ...]]:
  """{source folder: ((import_source arguments before --out, remark), ...)}
  of the imports that make the shipped configs' sources, preferred first."""
  rows: dict[str, list] = {}
  for importer in importers():
    for source in importer.sources:
      rows.setdefault(source.folder, []).append(
          (not source.preferred, f"--from={importer.name} {source.args}",
           source.remark))
  return {folder: tuple((args, remark) for _, args, remark in
                        sorted(found, key=lambda row: row[0]))
          for folder, found in rows.items()}
