r"""Turns a public pretrained GAN into a tfgt bundle (a source for transfer).

    python -m tfgt.import_source --from=FORMAT --input=FILE --out=FOLDER \
        [--network=...] [--class_names=... | --class_names_file=F] \
        [--noise_mode=z|const] [--resolution=N] [--discriminator=D.pth] \
        [--verify]

The formats are the entries of tfgt.importers.registry (--help lists each
with an example): NVlabs' and rosinality's StyleGAN v1, BigGAN-PyTorch and
DeepMind's TF-Hub BigGAN modules, and any format registered with
`registry.register`. Reads the file without its framework and without
running anything it contains (tfgt.importers.checkpoint_files; a TF-Hub
module's variables are read from its checkpoint, and only --verify runs its
graph, after checking its ops), maps every array onto the tfgt model, prints
the table of where each went, and writes the bundle (<out>/model.json and a
checkpoint), which configs name as their source (e.g.
`SOURCE = "sources/ffhq"`). docs/IMPORT.md lists the formats, the layout
changes, what the tests check and how to add a format. --verify runs the
original beside the import and prints the largest pixel difference, for the
formats whose framework is tfgt's own (tfhub_biggan).
"""

from __future__ import annotations

import os
from typing import Sequence

from absl import app
from absl import flags

from tfgt import cli
from tfgt.errors import UserInputError
from tfgt.importers import mapping
from tfgt.importers import registry
from tfgt.models import bundle

# --verify refuses to write a default-network (moving-average) import that
# differs from the original by more than one 8-bit grey level (images in
# [-1, 1]).
VERIFY_TOLERANCE = 2.0 / 255


def read_class_names(path: str) -> list[str]:
  """One class name per non-empty line of a text file.

  Raises:
    UserInputError: no such file, or no name in it.
  """
  if not os.path.isfile(path):
    raise UserInputError(f"--class_names_file: no file at {path!r}.")
  with open(path, encoding="utf-8") as f:
    names = [line.strip() for line in f if line.strip()]
  if not names:
    raise UserInputError(f"--class_names_file: {path} holds no names.")
  return names


def _check_out(out: str) -> None:
  """Refuses an `out` that is not a new or empty folder.

  Raises:
    UserInputError: `out` holds a bundle, is a file, or holds files.
  """
  if os.path.exists(os.path.join(out, bundle.SPEC_FILE)):
    raise UserInputError(f"{out} already holds a model ({bundle.SPEC_FILE}); "
                         "choose another --out or delete it first.")
  if os.path.isfile(out) or (os.path.isdir(out) and os.listdir(out)):
    what = "a file" if os.path.isfile(out) else "a folder with files in it"
    raise UserInputError(f"--out={out} is {what}; the bundle needs a new or "
                         "empty folder (nothing there is overwritten).")


def _read(importer: registry.Importer, request: registry.Request,
          verify: bool, out: str) -> mapping.Imported:
  """The importer's models (and with `verify` its comparison).

  Raises:
    UserInputError: whatever the reader or the verification raises, in one
      line (see `run`).
  """
  try:
    imported = importer.read(request)
    if verify:
      imported.verified = importer.verify(request.input, imported)
      if (request.network == importer.default_network and
          imported.verified > VERIFY_TOLERANCE):
        raise UserInputError(
            f"--verify: the import draws up to {imported.verified:.3g} "
            "away from the module (more than one grey level, "
            f"{VERIFY_TOLERANCE:.3g}), so {out} was not written. The module "
            "computes otherwise than docs/IMPORT.md assumes; please report "
            "it with the table (run without --verify to print it and write "
            "the bundle anyway).")
  except UserInputError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    # The importers check what the formats allow; whatever else a file makes
    # them raise still means the file cannot be imported, and is said in one
    # line (the command exits 2) rather than with a traceback.
    text = " ".join(str(e).split())
    raise UserInputError(
        f"{request.input}: the {importer.name} import failed on this file "
        f"({type(e).__name__}: {text[:300]}); it is not a file of this "
        "format that tfgt can import (docs/IMPORT.md). If it is the model's "
        "released file, please report this message.") from e
  return imported


def run(source_format: str, input_path: str, out: str,
        network: str | None = None, class_names: Sequence[str] | None = None,
        noise_mode: str = "z", discriminator: str | None = None,
        resolution: int | None = None, verify: bool = False):
  """Imports `input_path` and writes the bundle at `out`.

  `network` defaults to the format's `default_network`. `resolution` and
  `discriminator` are for the formats whose entry accepts them
  (stylegan_rosinality requires the resolution the checkpoint was trained
  at; biggan_pytorch and tfhub_biggan take a D.pth). `verify`: for formats
  with a `verify` function (tfhub_biggan), compare the original's images
  with the import's (`Imported.verified`, the largest pixel difference); a
  default-network import that differs by more than VERIFY_TOLERANCE is
  refused, nothing written.

  Returns:
    The `Imported` models and report.

  Raises:
    UserInputError: an unknown format, an option the format does not accept
      (or a required one missing), a file that does not fit it (any other
      exception an importer raises on the file is reported as one, in one
      line), or an `out` that already holds a model.
    checkpoint_files.UnsafeCheckpointError: (a UserInputError) a file that
      asks for code or memory it must not have, or with `verify` a module
      whose graph holds ops a BigGAN generator does not use.
  """
  importer = registry.get(source_format)
  importer.check_options({"verify": bool(verify)})  # Before --out.
  _check_out(out)
  importer.check_options({"resolution": resolution is not None,
                          "discriminator": bool(discriminator)})
  request = registry.Request(
      input=input_path, network=network or importer.default_network,
      class_names=class_names, noise_mode=noise_mode, resolution=resolution,
      discriminator=discriminator)
  imported = _read(importer, request, bool(verify), out)
  writer = bundle.BundleWriter(
      out, imported.generator, imported.discriminator, imported.class_names,
      f"import:{source_format}",
      discriminator_trained=not imported.fresh_discriminator)
  writer.save(0)
  return imported


FLAGS = flags.FLAGS


def _from_help() -> str:
  """--from's help: each format's description and example command."""
  return "The format of --input:\n" + "\n".join(
      f"- {i.name}: {i.description}; e.g. --from={i.name} {i.example}"
      for i in registry.importers())


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
  """The command line's flags, defined only when it runs; --from's choices
  and the format-specific flags' help come from the registered formats
  (register any other before this)."""
  importers = registry.importers()
  define = dict(flag_values=flag_values)
  flags.DEFINE_enum("from", None, [i.name for i in importers], _from_help(),
                    **define)
  flags.DEFINE_string("input", None, "The file to import (or the folder, "
                      "handle or URL that --from's format reads).", **define)
  flags.DEFINE_string("out", None, "The bundle folder to write.", **define)
  flags.DEFINE_string("network", None, "The generator to import: " + "; ".join(
      " or ".join([f"{i.name} {i.default_network} (default)",
                   *i.other_networks]) for i in importers) + ".", **define)
  flags.DEFINE_integer("resolution", None, registry.option_help("resolution"),
                       **define)
  flags.DEFINE_string("discriminator", None,
                      registry.option_help("discriminator"), **define)
  flags.DEFINE_bool("verify", False, registry.option_help("verify"), **define)
  flags.DEFINE_list("class_names", None, "Class names (default: the file's "
                    "stem for one class, ImageNet's names for a BigGAN of "
                    "1000, else class_<i>).", **define)
  flags.DEFINE_string("class_names_file", None, "A text file with one class "
                      "name per line (e.g. ImageNet's 1000), instead of "
                      "--class_names.", **define)
  flags.DEFINE_enum("noise_mode", "z", ["z", "const"], "The generator's "
                    "noise: per sample (z) or the file's buffers (const).",
                    **define)


def main(argv: Sequence[str], flag_values: flags.FlagValues = FLAGS) -> None:
  """Runs the command on parsed `flag_values` (those of `define_flags`).

  Raises:
    app.UsageError: an argument that is not a flag, --from, --input or
      --out missing, or both --class_names and --class_names_file.
    SystemExit: code 2 after bad input (a UserInputError, logged in one
      line).
  """
  values = flag_values
  cli.check_arguments(argv, required=("from", "input", "out"),
                      flag_values=values)
  if values.class_names and values.class_names_file:
    raise app.UsageError("Give --class_names or --class_names_file, not both.")
  with cli.exit_on_bad_input():
    class_names = values.class_names
    if values.class_names_file:
      class_names = read_class_names(values.class_names_file)
    imported = run(values["from"].value, values.input, values.out,
                   values.network, class_names, values.noise_mode,
                   values.discriminator, values.resolution, values.verify)
  print(mapping.format_report(imported.report))
  default = registry.get(values["from"].value).default_network
  network = values.network or default
  print(f"\nWrote {values.out}: {summary(imported)}; generator weights "
        f"{network}.")
  if imported.verified is not None:
    print(f"Verify: largest pixel difference between the original and the "
          f"import (images in [-1, 1], truncation 1): {imported.verified:.2e}"
          + (f" (the module samples from {default}; a --network={network} "
             "import differs by design)" if network != default else ""))


def summary(imported) -> str:
  """One line on the imported model: architecture, size, classes."""
  g = imported.generator.ctor_kwargs
  names = imported.class_names
  shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
  text = (f"{imported.generator.architecture} {g['resolution']}x"
          f"{g['resolution']}x{g['channels']}, {len(names)} class(es) "
          f"({shown})")
  if "fmap_base" in g:
    text += f", fmap_base {g['fmap_base']}, fmap_max {g['fmap_max']}"
  elif "channel_base" in g:
    text += (f", channel_base {g['channel_base']}, channel_max "
             f"{g['channel_max']}, dim_z {g['dim_z']}, w_dim {g['w_dim']}")
  else:
    text += (f", ch {g['ch']}, dim_z {g['dim_z']}, {g['conditioning']}"
             f"{' with hierarchical z' if g.get('hierarchical_z') else ''}, "
             f"attention at {g['attention_resolution'] or 'none'}")
  disc = ("fresh (untrained)" if imported.fresh_discriminator else
          "imported" if imported.discriminator is not None else "none")
  return f"{text}, discriminator {disc}"


if __name__ == "__main__":
  define_flags()
  cli.run(main)
