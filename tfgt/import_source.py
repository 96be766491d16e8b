r"""Turns a public pretrained GAN into a tfgt bundle (a source for transfer).

    python -m tfgt.import_source --from=stylegan_nvlabs \
        --input=karras2019stylegan-ffhq-1024x1024.pkl --out=sources/ffhq \
        [--network=Gs] [--class_names=ffhq] [--noise_mode=z]
    python -m tfgt.import_source --from=biggan_pytorch \
        --input=weights/138k --out=sources/biggan_imagenet_128 \
        [--network=G_ema] [--discriminator=D.pth] [--class_names_file=F]
    python -m tfgt.import_source --from=stylegan_rosinality \
        --input=stylegan-256px-new.model --resolution=256 --out=sources/ffhq_256 \
        [--network=g_running] [--class_names=ffhq] [--noise_mode=z]
    python -m tfgt.import_source --from=tfhub_biggan \
        --input=deepmind/biggan-128/2 --out=sources/biggan_imagenet_128 \
        [--network=G_ema] [--discriminator=D.pth] [--verify]

Reads the file without its framework and without running anything it
contains (tfgt.importers.checkpoint_files; a TF-Hub module's variables are
read from its checkpoint, and only --verify runs its graph, after checking
its ops), maps every array onto the tfgt
model, prints the table of where each went, and writes the bundle
(<out>/model.json and a checkpoint), which configs name as their source
(e.g. `SOURCE = "sources/ffhq"`). docs/IMPORT.md lists the formats, the
layout changes and what the tests check.

Formats: stylegan_nvlabs (NVlabs StyleGAN v1 pickles: G, D, Gs),
stylegan_rosinality (rosinality's StyleGAN v1 port: generator,
discriminator, g_running), biggan_pytorch (BigGAN-PyTorch G_ema.pth /
G.pth with D.pth) and tfhub_biggan (DeepMind's TF-Hub BigGAN modules, by
folder, handle or URL; generator only). --verify runs the original beside
the import and prints the largest pixel difference; here that is possible
for tfhub_biggan, whose framework (TensorFlow with tensorflow_hub) is
tfgt's own.
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
from tfgt.importers import mapping
from tfgt.models import bundle

FORMATS = ("stylegan_nvlabs", "stylegan_rosinality", "biggan_pytorch",
           "tfhub_biggan")
# Formats whose original framework --verify can run here.
VERIFIABLE = ("tfhub_biggan",)
# --verify refuses to write a moving-average import that differs from the
# original by more than one 8-bit grey level (images in [-1, 1]).
VERIFY_TOLERANCE = 2.0 / 255
# The generator imported when --network is not given.
DEFAULT_NETWORK = {"stylegan_nvlabs": "Gs", "stylegan_rosinality": "g_running",
                   "biggan_pytorch": "G_ema", "tfhub_biggan": "G_ema"}


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


def run(source_format: str, input_path: str, out: str,
        network: str | None = None, class_names: Sequence[str] | None = None,
        noise_mode: str = "z", discriminator: str | None = None,
        resolution: int | None = None, verify: bool = False):
  """Imports `input_path` and writes the bundle at `out`.

  `resolution`: stylegan_rosinality only, the resolution the checkpoint was
  trained at (its file holds every block up to 1024 px). `verify`:
  tfhub_biggan only, compare the module's images with the import's
  (`Imported.verified`, the largest pixel difference); a G_ema import that
  differs by more than VERIFY_TOLERANCE is refused, nothing written.

  Returns:
    The `Imported` models and report.

  Raises:
    UserInputError: an unknown format, a file that does not fit it (any
      other exception an importer raises on the file is reported as one, in
      one line), or an `out` that already holds a model.
    checkpoint_files.UnsafeCheckpointError: (a UserInputError) a file that
      asks for code or memory it must not have, or with `verify` a module
      whose graph holds ops a BigGAN generator does not use.
  """
  if source_format not in FORMATS:
    raise UserInputError(
        f"--from={source_format!r}: importable formats are "
        f"{', '.join(FORMATS)}.")
  if verify and source_format not in VERIFIABLE:
    raise UserInputError(
        f"--verify runs the original framework beside the import; for "
        f"{source_format} that is not installed here (PyTorch and the "
        "original code, or TensorFlow 1 and dnnlib). The tests compare this "
        "format with a NumPy forward pass of the original (docs/IMPORT.md).")
  if os.path.exists(os.path.join(out, bundle.SPEC_FILE)):
    raise UserInputError(f"{out} already holds a model ({bundle.SPEC_FILE}); "
                         "choose another --out or delete it first.")
  if os.path.isfile(out) or (os.path.isdir(out) and os.listdir(out)):
    what = "a file" if os.path.isfile(out) else "a folder with files in it"
    raise UserInputError(f"--out={out} is {what}; the bundle needs a new or "
                         "empty folder (nothing there is overwritten).")
  network = network or DEFAULT_NETWORK[source_format]
  if (resolution is None) == (source_format == "stylegan_rosinality"):
    raise UserInputError(
        "--resolution is required for stylegan_rosinality (the resolution "
        "the checkpoint was trained at, e.g. 256: its file holds every block "
        "up to 1024 px)" if resolution is None else
        f"--resolution is for stylegan_rosinality; a {source_format} file "
        "holds its resolution.")
  if discriminator and source_format not in ("biggan_pytorch",
                                              "tfhub_biggan"):
    raise UserInputError(f"--discriminator is for biggan_pytorch and "
                         f"tfhub_biggan; a {source_format} file holds its "
                         "discriminator.")
  if discriminator and not os.path.isfile(discriminator):
    raise UserInputError(f"--discriminator={discriminator}: no such file (a "
                         "BigGAN-PyTorch D.pth).")
  # pylint: disable=g-import-not-at-top
  try:
    if source_format == "stylegan_nvlabs":
      from tfgt.importers import stylegan
      imported = stylegan.import_nvlabs(input_path, network, class_names,
                                        noise_mode)
    elif source_format == "stylegan_rosinality":
      from tfgt.importers import rosinality
      imported = rosinality.import_rosinality(input_path, resolution, network,
                                              class_names, noise_mode)
    elif source_format == "biggan_pytorch":
      from tfgt.importers import biggan
      imported = biggan.import_biggan_pytorch(input_path, network, class_names,
                                              discriminator)
    else:
      from tfgt.importers import tfhub_biggan
      imported = tfhub_biggan.import_tfhub_biggan(input_path, network,
                                                  class_names, discriminator)
      if verify:
        module = tfhub_biggan.load_module(
            tfhub_biggan.resolve_module(input_path))
        imported.verified = tfhub_biggan.verify(module, imported.generator)
        if network == "G_ema" and imported.verified > VERIFY_TOLERANCE:
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
        f"{input_path}: the {source_format} import failed on this file "
        f"({type(e).__name__}: {text[:300]}); it is not a file of this "
        "format that tfgt can import (docs/IMPORT.md). If it is the model's "
        "released file, please report this message.") from e
  # pylint: enable=g-import-not-at-top
  writer = bundle.BundleWriter(
      out, imported.generator, imported.discriminator, imported.class_names,
      f"import:{source_format}",
      discriminator_trained=not imported.fresh_discriminator)
  writer.save(0)
  return imported


FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command line's flags, defined only when it runs."""
  flags.DEFINE_enum("from", None, list(FORMATS), "Format of --input.")
  flags.DEFINE_string("input", None, "The file to import (tfhub_biggan: the "
                      "module's folder, handle or URL).")
  flags.DEFINE_string("out", None, "The bundle folder to write.")
  flags.DEFINE_string("network", None, "The generator to import: "
                      "stylegan_nvlabs Gs (moving average, default) or G; "
                      "stylegan_rosinality g_running (moving average, "
                      "default) or generator; biggan_pytorch and tfhub_biggan "
                      "G_ema (default) or G.")
  flags.DEFINE_integer("resolution", None, "stylegan_rosinality: the "
                       "resolution the checkpoint was trained at (e.g. 256).")
  flags.DEFINE_string("discriminator", None, "biggan_pytorch: the D.pth "
                      "(default: D.pth beside the generator, if any); "
                      "tfhub_biggan: a BigGAN-PyTorch D.pth of the same "
                      "model (default: a fresh, untrained one).")
  flags.DEFINE_bool("verify", False, "tfhub_biggan: run the module's own "
                    "graph (hub.load and its default signature) beside the "
                    "import on the same inputs and print the largest pixel "
                    "difference. Before anything of it loads, every op of "
                    "the graph and its function library is checked against "
                    "the ops a BigGAN generator needs; file, Python-function "
                    "and other side-effecting ops are refused. Without "
                    "--verify nothing of the module runs (only its variables "
                    "are read).")
  flags.DEFINE_list("class_names", None, "Class names (default: the file's "
                    "stem for one class, ImageNet's names for a BigGAN of "
                    "1000, else class_<i>).")
  flags.DEFINE_string("class_names_file", None, "A text file with one class "
                      "name per line (e.g. ImageNet's 1000), instead of "
                      "--class_names.")
  flags.DEFINE_enum("noise_mode", "z", ["z", "const"], "The generator's "
                    "noise: per sample (z) or the file's buffers (const).")


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  for name in ("from", "input", "out"):
    if not FLAGS[name].value:
      raise app.UsageError(f"--{name} is required.")
  if FLAGS.class_names and FLAGS.class_names_file:
    raise app.UsageError("Give --class_names or --class_names_file, not both.")
  try:
    class_names = FLAGS.class_names
    if FLAGS.class_names_file:
      class_names = read_class_names(FLAGS.class_names_file)
    imported = run(FLAGS["from"].value, FLAGS.input, FLAGS.out,
                   FLAGS.network, class_names, FLAGS.noise_mode,
                   FLAGS.discriminator, FLAGS.resolution, FLAGS.verify)
  except UserInputError as e:
    logging.error("%s", errors.message(e))
    sys.exit(2)
  print(mapping.format_report(imported.report))
  network = FLAGS.network or DEFAULT_NETWORK[FLAGS["from"].value]
  print(f"\nWrote {FLAGS.out}: {summary(imported)}; generator weights "
        f"{network}.")
  if imported.verified is not None:
    print(f"Verify: largest pixel difference between the original and the "
          f"import (images in [-1, 1], truncation 1): {imported.verified:.2e}"
          + (" (the module samples from G_ema; a --network=G import differs "
             "by design)" if FLAGS.network == "G" else ""))


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
  else:
    text += (f", ch {g['ch']}, dim_z {g['dim_z']}, {g['conditioning']}"
             f"{' with hierarchical z' if g.get('hierarchical_z') else ''}, "
             f"attention at {g['attention_resolution'] or 'none'}")
  disc = ("fresh (untrained)" if imported.fresh_discriminator else
          "imported" if imported.discriminator is not None else "none")
  return f"{text}, discriminator {disc}"


if __name__ == "__main__":
  from tfgt import cli  # pylint: disable=g-import-not-at-top
  define_flags()
  cli.run(main)
