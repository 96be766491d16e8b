r"""Scores a trained generator: FID, KID, mFID, KMMD, precision/recall/...

    python -m tfgt.evaluate --model_dir=/tmp/run [--checkpoint=best|latest|N] \
        [--metrics=fid,kid,mfid,kmmd,prdc] [--num_samples=10000] \
        [--gin_file=gin_configs/fashion_mnist/eval.gin] [--gin_param=...] \
        [--features=classifier|inception|/path/model.keras|/path/saved_model] \
        [--precision=float32|mixed_bfloat16|mixed_float16|auto]

    # A shipped bundle has no run config: give the data config it trained on.
    python -m tfgt.evaluate --model_dir=pretrained:fashion_mnist_biggan \
        --gin_file=gin_configs/fashion_mnist/pretrain_biggan.gin --output=x.json

Reads the run's `config.gin` (data source and its settings) and
`classes.json` (the classes it trained and their model ids), loads the
generator of the chosen checkpoint from the run's bundle (`model/`, or
`model/best/`), compares its samples of those classes with all real images
of them, prints a table and writes the numbers as JSON beside the checkpoint
(`<checkpoint>.eval.json`; for "pretrained:NAME", `NAME-<checkpoint>.eval.json`
in the working directory; or --output). KID and mKID are printed x100.

The evaluator settings (`Evaluator.*`, e.g. the feature extractor) come from
the run's config, then --gin_file/--gin_param, then the flags here. Without
any, Fashion-MNIST runs are scored with the shipped classifier. --features
chooses the feature extractor without writing gin (it wins over
`Evaluator.extractor` of the config and the gin flags): "classifier" (the
shipped Fashion-MNIST classifier), "inception" (`InceptionHub` with its
handle, by default TF-GAN's module from the TF-Hub cache), or the path of a
local .keras file or SavedModel folder (`LocalModel`, whose settings are gin
bindings, e.g. --gin_param="LocalModel.input_size = (224, 224)"
--gin_param="LocalModel.normalisation = 'imagenet'"). A binding of
the run's config.gin that this version of tfgt does not know (a configurable
or parameter removed or renamed since) is skipped with a warning; a mistake in
--gin_file/--gin_param stops the command with a one-line message and exit
code 2. Training bindings (`train.*`) are accepted and ignored, so that
training configs can be given as they are.

--precision=mixed_bfloat16 (or mixed_float16) draws the samples with the
generator computing in that dtype (`tfgt.precision`); the features and the
scores are float32 whatever it is, and the JSON's settings record it.
"""

from __future__ import annotations

import json
import math
import os
from typing import Sequence

from absl import flags
from absl import logging

from tfgt import checkpoints
from tfgt import cli
from tfgt import config as config_lib
from tfgt import files
from tfgt import precision as precision_lib
from tfgt import run_folder
from tfgt.data import pipeline
from tfgt.errors import UserInputError
from tfgt.eval import evaluator as evaluator_lib
from tfgt.eval import features as features_lib
from tfgt.eval import registry
from tfgt.models import bundle

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command line's flags, defined only when it runs.

  Defining them at import would clash with tfgt.train's flags of the same
  names (--model_dir, --gin_file, ...) wherever both modules are imported.
  """
  flags.DEFINE_string("model_dir", None, "The training run's model_dir.")
  flags.DEFINE_string("checkpoint", "auto",
                      "'best', 'latest', a step number, or 'auto' (best if the "
                      "run kept one, else latest).")
  flags.DEFINE_string("metrics", None,
                      "Comma-separated subset of "
                      f"{','.join(registry.names())} (default: the "
                      "config's Evaluator.metrics, else "
                      f"{','.join(evaluator_lib.DEFAULT_METRICS)}).")
  flags.DEFINE_integer("num_samples", None,
                       "Generated images in total (default: as many as the "
                       "real images of the classes).")
  flags.DEFINE_integer("batch_size", None, "Images per forward pass.")
  flags.DEFINE_integer("seed", None, "Seed of the latents.")
  flags.DEFINE_string("cache_dir", None, "Cache of real features (default "
                      "$TFGT_CACHE_DIR or ~/.cache/tfgt/features).")
  flags.DEFINE_multi_string("gin_file", [], "Extra gin files, after the run's "
                            "config.gin.")
  flags.DEFINE_multi_string("gin_param", [], "Gin bindings, applied last.")
  flags.DEFINE_string("output", None, "JSON output path (default: beside the "
                      "checkpoint).")
  flags.DEFINE_string("features", None, features_lib.FLAG_HELP)
  precision_lib.define_flag("The generator draws the samples in")
  # Listed in --help with the command's own flags.
  flags.adopt_module_key_flags(precision_lib)


# Bindings for the trainer, which this command does not run.
TRAINING_ONLY = ("train",)

def read_run(model_dir: str) -> pipeline.ClassSelection:
  """Parses a run's config.gin and returns its classes.json selection.

  The config is parsed into the global gin config, not finalized. Bindings
  that the code no longer knows are skipped with a warning; `train.*`
  bindings are ignored.

  Raises:
    UserInputError: config.gin or classes.json missing or unreadable, or a
      syntax error in config.gin.
  """
  config = os.path.join(model_dir, run_folder.CONFIG)
  classes = os.path.join(model_dir, run_folder.CLASSES)
  for path in (config, classes):
    if not os.path.exists(path):
      raise UserInputError(
          f"{path} is missing: --model_dir must be the folder of a training "
          "run (python -m tfgt.train writes config.gin and classes.json "
          "there).")
  # An old run stays readable after the code dropped or renamed something
  # that its config binds: the data and evaluator settings are what matter.
  config_lib.parse([config], skip_unknown=True, ignore=TRAINING_ONLY,
                   finalize=False)
  with open(classes) as f:
    try:
      data = json.load(f)
      return pipeline.ClassSelection(list(data["source_ids"]),
                                     list(data["names"]),
                                     int(data["label_offset"]))
    except (ValueError, KeyError, TypeError) as e:
      raise UserInputError(f"{classes} is not a class selection written by "
                           f"the trainer: {e}") from e


def resolve_checkpoint(model_dir: str, checkpoint: str) -> tuple[str, str]:
  """(bundle directory, checkpoint prefix) of 'auto'|'best'|'latest'|N.

  'auto' is 'best' when the run kept a best checkpoint, else 'latest'.

  Raises:
    UserInputError: another word, or no such checkpoint.
  """
  directory = bundle.resolve_directory(model_dir)
  checkpoint = bundle.parse_checkpoint(checkpoint, "--checkpoint",
                                       also=("auto",))
  if checkpoint == "auto":
    best = os.path.join(directory, bundle.BEST_BUNDLE)
    checkpoint = "best" if checkpoints.steps_on_disk(best) else "latest"
  prefix = bundle.checkpoint_path(directory, checkpoint)
  # A best checkpoint lives in its own bundle folder (model/best).
  return os.path.dirname(prefix), prefix


def format_table(result: evaluator_lib.EvalResult) -> str:
  """The metrics as an aligned text table, each value times its metric's
  display scale (KID x100), then the per-class values."""

  def value(v: float, factor: float) -> str:
    v *= factor
    return "nan" if not math.isfinite(v) else f"{v:.4f}"

  rows = []
  for key, v in result.metrics.items():
    factor = registry.scale(key)
    rows.append((registry.label(key, factor), value(v, factor)))
  width = max([len(label) for label, _ in rows] + [6])
  lines = [f"{label:<{width}}  {text}" for label, text in rows]
  if result.per_class:
    # (key, display scale) of the per-class metrics' values, registry order.
    columns = [(k, m.scale) for m in registry.metrics() if m.per_class
               for k in m.keys
               if any(k in e for e in result.per_class.values())]
    head = f"{'class':<16} {'id':>4} {'real':>6} {'gen':>6}" + "".join(
        f" {registry.label(k, factor):>10}" for k, factor in columns)
    lines += ["", head]
    for name, e in result.per_class.items():
      lines.append(
          f"{name[:16]:<16} {int(e['model_id']):>4} {int(e['real']):>6} "
          f"{int(e['generated']):>6}" + "".join(
              f" {value(e[k], factor):>10}" for k, factor in columns))
  return "\n".join(lines)


def run(model_dir: str, checkpoint: str = "auto",
        overrides: dict | None = None, gin_files: Sequence[str] = (),
        gin_params: Sequence[str] = (), output: str | None = None,
        features: str | None = None, precision: str = precision_lib.DEFAULT
        ) -> tuple[evaluator_lib.EvalResult, str]:
  """Evaluates a run or bundle; returns the result and the JSON path written.

  The evaluation runs on a gin config of its own, made of the run's
  config.gin, then `gin_files` and `gin_params`: the caller's gin bindings do
  not apply to it, and the caller's gin config is put back as it was when
  `run` returns or raises.

  Args:
    model_dir: a training run's folder (with config.gin and classes.json),
      or a bare bundle folder / "pretrained:NAME", whose data `gin_files` or
      `gin_params` must then describe.
    checkpoint: "auto", "best", "latest" or a step number.
    overrides: Evaluator arguments that win over all gin bindings (None values
      are ignored).
    gin_files: gin files parsed after the run's config.gin.
    gin_params: gin bindings parsed last.
    output: JSON path; default `default_output(model_dir, checkpoint)`.
    features: the extractor, as --features: None (the config's
      `Evaluator.extractor`), "classifier", "inception", or the path of a
      .keras file or SavedModel folder (`LocalModel`, configured by
      `gin_params`); its bindings come before `gin_params`, so a binding
      there wins, as with tfgt.train --features.
    precision: the precision the generator draws in (`tfgt.precision`;
      "auto" resolved by the machine), recorded in the settings as
      resolved; the features are computed in float32 whatever it is.

  Returns:
    (the result, the path of the JSON file written).

  Raises:
    UserInputError: for a run folder or bundle that cannot be read, a mistake
      in `gin_files` or `gin_params` (a one-line message naming the binding
      and the fix), data that do not match the model, or an output that
      cannot be written.
  """
  directory = bundle.resolve_directory(model_dir)
  if not os.path.isdir(directory):
    if os.path.exists(directory):
      raise UserInputError(
          f"--model_dir {model_dir} is a file, not a run folder: give the "
          "folder of a training run (the --model_dir of tfgt.train), its "
          "'model' sub-folder or pretrained:NAME.")
    raise UserInputError(
        f"--model_dir {model_dir} does not exist: give the folder of a "
        "training run (the --model_dir of tfgt.train), a bundle folder or "
        "pretrained:NAME.")
  extractor_bindings = features_lib.flag_bindings(features)
  precision = precision_lib.choose(precision)
  with config_lib.isolated():
    return _evaluate(model_dir, directory, checkpoint, overrides, gin_files,
                     gin_params, output, extractor_bindings, precision)


def _evaluate(model_dir: str, directory: str, checkpoint: str,
              overrides: dict | None, gin_files: Sequence[str],
              gin_params: Sequence[str], output: str | None,
              extractor_bindings: Sequence[str] = (),
              precision: str = precision_lib.DEFAULT
              ) -> tuple[evaluator_lib.EvalResult, str]:
  """`run` on an empty gin config."""
  if os.path.exists(os.path.join(model_dir, run_folder.CONFIG)):
    selection = read_run(model_dir)
  elif os.path.exists(os.path.join(directory, bundle.SPEC_FILE)):
    # A bare bundle (e.g. pretrained:NAME) carries no data config: the gin
    # files must name the data, and the classes are selected as the trainer
    # does, then checked against the bundle's class names.
    if not gin_files and not gin_params:
      raise UserInputError(
          f"{model_dir} is a model bundle without the config.gin of its "
          "training run: name its data with --gin_file/--gin_param, e.g. "
          "--gin_file=gin_configs/fashion_mnist/pretrain_biggan.gin for "
          "pretrained:fashion_mnist_biggan.")
    selection = None
  else:
    read_run(model_dir)  # Raises the error that names the missing files.
  # Training configs may be given as they are: their train.* bindings are
  # not for this command.
  # --features after the files (it wins over their Evaluator.extractor),
  # --gin_param after it.
  config_lib.parse(gin_files, list(extractor_bindings) + list(gin_params),
                   ignore=TRAINING_ONLY)
  directory, prefix = resolve_checkpoint(model_dir, checkpoint)
  step = int(os.path.basename(prefix).rsplit("-", 1)[-1])
  generator, _, spec = bundle.load(directory, step, precision=precision)
  evaluator = evaluator_lib.Evaluator(
      **{k: v for k, v in (overrides or {}).items() if v is not None})
  result = evaluator.evaluate(generator, selection,
                              class_names=spec["class_names"],
                              data=pipeline.configured_data())
  result.settings.update(model_dir=os.path.abspath(model_dir),
                         checkpoint=prefix, precision=precision,
                         generator_classes=spec["class_names"])
  path = output or default_output(model_dir, prefix)
  if os.path.exists(path):
    logging.info("Replacing the earlier results in %s (give --output to keep "
                 "them).", path)
  try:
    files.write_json(path, dict(metrics=result.metrics,
                                per_class=result.per_class,
                                settings=result.settings))
  except OSError as e:
    raise UserInputError(f"Cannot write the results to {path} ({e}); choose "
                         "another file with --output.") from e
  return result, path


def old_class_fid(model_dir: str, num_samples: int | None = None
                  ) -> float | None:
  """FID of a run's final generator on the source's old classes.

  What a class extension keeps: a method with a frozen generator draws the
  old classes exactly as the source does, full fine-tuning overwrites them.
  The old classes are taken to be the dataset's ids 0..N-1 (as in the
  Fashion-MNIST split); the evaluator checks their names against the
  model's, so another layout is an error, not a wrong number. Runs on an
  empty gin config (the evaluator's defaults), the caller's is put back.

  Args:
    model_dir: a training run's folder.
    num_samples: generated images (None: the evaluator's default).

  Returns:
    The FID (>= 0), or None for a run without old classes (from scratch) or
    from an unconditional source (a hyper-modulated StyleGAN: its one old
    class merges several dataset classes, and is modulated too).

  Raises:
    UserInputError: the run folder or its bundle cannot be read.
  """
  with config_lib.isolated():
    new = read_run(model_dir)
    if not new.label_offset:
      return None
    generator, _, spec = bundle.load(
        os.path.join(model_dir, run_folder.BUNDLE))
    if spec["architecture"].startswith("hypermod"):  # Either source.
      return None
    names = spec["class_names"][:new.label_offset]
    old = pipeline.ClassSelection(list(range(new.label_offset)), names, 0)
    evaluator = evaluator_lib.Evaluator(num_samples=num_samples,
                                        metrics=["fid"])
    return float(evaluator.evaluate(generator, old,
                                    class_names=spec["class_names"])
                 .metrics["fid"])


def default_output(model_dir: str, prefix: str) -> str:
  """Where results go without --output: beside the checkpoint
  (`<prefix>.eval.json`), except for a model shipped in the package
  ("pretrained:NAME"), whose folder is not the user's: then
  `NAME-<checkpoint>.eval.json` in the working directory."""
  if model_dir.startswith(bundle.PRETRAINED_PREFIX):
    name = model_dir[len(bundle.PRETRAINED_PREFIX):].strip("/")
    return f"{name}-{os.path.basename(prefix)}.eval.json"
  return prefix + ".eval.json"


def main(argv: Sequence[str]) -> None:
  cli.check_arguments(argv, required=("model_dir",))
  # The Evaluator checks the --metrics names once the gin files are read:
  # a gin file may import a module that registers a metric.
  overrides = dict(num_samples=FLAGS.num_samples, batch_size=FLAGS.batch_size,
                   seed=FLAGS.seed, cache_dir=FLAGS.cache_dir,
                   metrics=FLAGS.metrics)
  with cli.exit_on_bad_input():
    result, path = run(FLAGS.model_dir, FLAGS.checkpoint, overrides,
                       FLAGS.gin_file, FLAGS.gin_param, FLAGS.output,
                       FLAGS.features, FLAGS.precision)
  print(f"{result.settings['checkpoint']}: {result.settings['generated']} "
        f"samples of {', '.join(result.settings['classes'])} against "
        f"{result.settings['real']} real images "
        f"({result.settings['extractor']['name']} features)")
  print(format_table(result))
  print(f"Written to {path}")


if __name__ == "__main__":
  define_flags()
  cli.run(main)
