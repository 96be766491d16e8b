r"""Turns a public pretrained GAN into a tfgt bundle (a source for transfer).

    python -m tfgt.import_source --from=stylegan_nvlabs \
        --input=karras2019stylegan-ffhq-1024x1024.pkl --out=sources/ffhq \
        [--network=Gs] [--class_names=ffhq] [--noise_mode=z]

Reads the file without its framework and without running anything it
contains (tfgt.importers.checkpoint_files), maps every array onto the tfgt
model, prints the table of where each went, and writes the bundle
(<out>/model.json and a checkpoint), which configs name as their source
(e.g. `SOURCE = "sources/ffhq"`). docs/IMPORT.md lists the formats, the
layout changes and what the tests check.

Formats: stylegan_nvlabs (NVlabs StyleGAN v1 pickles: G, D, Gs). The other
formats of docs/IMPORT.md are not importable yet and say so.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

from absl import app
from absl import flags
from absl import logging

from tfgt import errors
from tfgt.errors import UserInputError
from tfgt.models import bundle

FORMATS = ("stylegan_nvlabs",)
# Formats of the public models that are planned (docs/IMPORT.md).
PLANNED = ("tfhub_biggan", "biggan_pytorch", "stylegan_rosinality")


def run(source_format: str, input_path: str, out: str,
        network: str = "Gs", class_names: Sequence[str] | None = None,
        noise_mode: str = "z"):
  """Imports `input_path` and writes the bundle at `out`.

  Returns:
    The `Imported` models and report.

  Raises:
    UserInputError: an unknown format, a file that does not fit it, or an
      `out` that already holds a model.
  """
  if source_format not in FORMATS:
    planned = (" (planned, not importable yet)" if source_format in PLANNED
               else "")
    raise UserInputError(
        f"--from={source_format!r}{planned}: importable formats are "
        f"{', '.join(FORMATS)}.")
  if os.path.exists(os.path.join(out, bundle.SPEC_FILE)):
    raise UserInputError(f"{out} already holds a model ({bundle.SPEC_FILE}); "
                         "choose another --out or delete it first.")
  from tfgt.importers import stylegan  # pylint: disable=g-import-not-at-top
  imported = stylegan.import_nvlabs(input_path, network, class_names,
                                    noise_mode)
  writer = bundle.BundleWriter(out, imported.generator,
                               imported.discriminator, imported.class_names,
                               f"import:{source_format}")
  writer.save(0)
  return imported


FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command line's flags, defined only when it runs."""
  flags.DEFINE_enum("from", None, list(FORMATS) + list(PLANNED),
                    "Format of --input.")
  flags.DEFINE_string("input", None, "The file to import.")
  flags.DEFINE_string("out", None, "The bundle folder to write.")
  flags.DEFINE_string("network", "Gs", "stylegan_nvlabs: the generator to "
                      "import, Gs (moving average) or G.")
  flags.DEFINE_list("class_names", None, "Class names (default: the file's "
                    "stem for one class, class_<i> for several).")
  flags.DEFINE_enum("noise_mode", "z", ["z", "const"], "The generator's "
                    "noise: per sample (z) or the file's buffers (const).")


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  for name in ("from", "input", "out"):
    if not FLAGS[name].value:
      raise app.UsageError(f"--{name} is required.")
  try:
    imported = run(FLAGS["from"].value, FLAGS.input, FLAGS.out,
                   FLAGS.network, FLAGS.class_names, FLAGS.noise_mode)
  except UserInputError as e:
    logging.error("%s", errors.message(e))
    sys.exit(2)
  from tfgt.importers import stylegan  # pylint: disable=g-import-not-at-top
  print(stylegan.format_report(imported.report))
  g = imported.generator.ctor_kwargs
  print(f"\nWrote {FLAGS.out}: StyleGAN {g['resolution']}x{g['resolution']}x"
        f"{g['channels']}, {len(imported.class_names)} class(es) "
        f"({', '.join(imported.class_names)}), fmap_base {g['fmap_base']}, "
        f"fmap_max {g['fmap_max']}, discriminator "
        f"{'imported' if imported.discriminator is not None else 'none'}.")


if __name__ == "__main__":
  define_flags()
  app.run(main)
