r"""The transfers on a second domain: drawn digits, not Fashion-MNIST.

    python -m tools.train_fashion_mnist_classifier --source=glyphs \
        --output_dir=runs/glyph_classifier
    python -m tools.benchmark_domain --out_dir=runs/benchmark_domain \
        [--methods=cgantransfer,bsa,hypermod,gan_memory] [--seeds=0,1,2] \
        [--images_per_class=100] [--aligned=RUN_FOLDER] [--align_steps=1500] \
        [--glyph_classifier=runs/glyph_classifier/classifier.weights.h5] \
        [--jobs=2] [--record_dir=docs/benchmarks/domain] [--report_only]

Every score of the Fashion-MNIST benchmarks is on the sources' own domain,
with features trained on it. Here the shipped Fashion-MNIST sources learn
two drawn digits, "3" and "7" (`tfgt.data.sources.glyphs`, drawn from a
seed), from 100 images each, and are scored with the features of a
classifier trained on the drawn digits (the glyph classifier, trained by
the first command; this benchmark refuses to start without it). The configs
are gin_configs/glyphs/<method>.gin, the Fashion-MNIST ones with that data
and evaluator (gin_configs/glyphs/target.gin):

  cgantransfer  cGANTransfer from the shipped BigGAN, at the paper's G
                learning rate (2e-4) for 1200 steps, as in every benchmark
                (`tools.benchlib.cells.PROTOCOL`)
  bsa           BSA from the shipped BigGAN, 1200 steps
  hypermod      Hyper-Modulation from the shipped StyleGAN, 1500 steps
  gan_memory    GAN Memory from the shipped StyleGAN, 1500 steps

Hyper-Modulation starts from a self-aligned copy of the StyleGAN. The
self-alignment reads no target image, so one aligned run serves every
domain: --aligned names an existing one (e.g. runs/benchmark_hypermod/align_b
of `tools.benchmark_hypermod`, or runs/fashion_mnist/hypermod_align of
gin_configs/fashion_mnist/hypermod_align.gin); without it, the benchmark
first trains one into <out_dir>/align_b the way `tools.benchmark_hypermod`
does (--align_steps; recorded in <record_dir>/align_b.json).

Every (method, seed) trains into <out_dir>/<method>_<images>_s<seed>/ as in
`tools.benchmark_transfer` (resumable; --jobs; --record_dir keeps the rows;
--report_only trains nothing), evaluated every 100 steps. The best generator
is then scored again on --rescore_samples samples (FID, KID, mFID, mKID,
precision, recall, density, coverage), and once more for class consistency
and within-class diversity in feature and pixel space (<run>/trust.eval.json).
The old classes' FID is not measured: they are Fashion-MNIST classes, outside
the glyph classifier's domain (cGANTransfer and BSA keep the source
generator frozen). Writes <out_dir>/results.{json,md} (one table, and every
method compared with cGANTransfer seed by seed) and curves_<size>.png.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Sequence

from absl import app
from absl import flags
import gin

from tfgt import run_folder
from tfgt.errors import UserInputError
from tools import benchmark_hypermod
from tools.benchlib import cells as cells_lib
from tools.benchlib import cli
from tools.benchlib import measures
from tools.benchlib import report
from tools.benchlib import rows as rows_lib
from tools.benchlib import runs
from tools.benchlib import stats

CONFIG_DIR = os.path.join("gin_configs", "glyphs")
METHODS = ("cgantransfer", "bsa", "hypermod", "gan_memory")
# The method every other one is compared with, seed by seed.
BASELINE = "cgantransfer"
DEFAULT_SIZES = (100,)
# GLYPH_CLASSIFIER of gin_configs/glyphs/target.gin.
DEFAULT_CLASSIFIER = os.path.join("runs", "glyph_classifier",
                                  "classifier.weights.h5")
TRAIN_CLASSIFIER = ("python -m tools.train_fashion_mnist_classifier "
                    "--source=glyphs --output_dir={}")
# The self-alignment of `tools.benchmark_hypermod` that Hyper-Mod starts
# from (class network of depth 4, the configs' own).
ALIGNMENT = "b"
# The scores of the best generator beside the re-scoring's.
TRUST_METRICS = ("mconsistency", "mdiversity", "mdiversity_pixels")
TRUST_FILE = "trust.eval.json"
# Columns of the table: (result key, heading, format, x factor).
COLUMNS = (("fid", "FID", "{:.2f}", 1), ("mfid", "mFID", "{:.2f}", 1),
           ("mconsistency", "consistency", "{:.2f}", 1),
           ("mconsistency_real", "consistency (real)", "{:.2f}", 1),
           ("mdiversity", "diversity", "{:.2f}", 1),
           ("mdiversity_pixels", "pixel diversity", "{:.2f}", 1),
           ("precision", "P", "{:.2f}", 1), ("recall", "R", "{:.2f}", 1))
CLAIMS_INTRO = (
    f"Each method against {BASELINE} (and Hyper-Mod against GAN Memory), "
    "seed by seed (the same image subsets and training seeds): the mean "
    "difference, its standard deviation and a two-sided paired t-test; a "
    "difference counts at p < 0.05 (mFID: lower is better; consistency: "
    "higher is better; diversity: closer to 1, the real images' own, is "
    "better, compared as the distance from 1):")


def config_path(method: str) -> str:
  """gin_configs/glyphs/<method>.gin."""
  return os.path.join(CONFIG_DIR, f"{method}.gin")


def cells(methods: Sequence[str], sizes: Sequence[int],
          seeds: Sequence[int], aligned: str | None = None
          ) -> list[cells_lib.Cell]:
  """Every (method, size, seed), sizes then seeds then methods; the
  Hyper-Mod cells start from the self-aligned run `aligned` (None: the
  config's ALIGNED).

  Raises:
    UserInputError: an unknown method.
  """
  cli.check_known("methods", methods, list(METHODS))
  out = []
  for cell in cells_lib.method_cells([config_path(m) for m in methods],
                                     sizes, seeds):
    params = (f"ALIGNED = '{aligned}'",) if (
        cell.name == "hypermod" and aligned) else ()
    out.append(dataclasses.replace(cell, params=params))
  return out


def classifier_weights(cell: cells_lib.Cell, num_steps: int | None,
                       eval_gin: Sequence[str],
                       gin_params: Sequence[str]) -> str | None:
  """The weights file of the glyph classifier that a cell's evaluator
  loads (`FashionMNISTClassifier.weights`), None when it binds none.
  Leaves gin cleared."""
  try:
    cells_lib.parse(cell, num_steps, eval_gin, gin_params)
    try:
      weights = gin.query_parameter("FashionMNISTClassifier.weights")
    except ValueError:
      return None
    if isinstance(weights, gin.config.ConfigurableReference):
      weights = weights.scoped_configurable_fn()
    return os.path.expanduser(weights) if weights else None
  finally:
    gin.clear_config()


def check_classifier(todo: Sequence[cells_lib.Cell], num_steps: int | None,
                     eval_gin: Sequence[str],
                     gin_params: Sequence[str]) -> None:
  """Refuses to start without the glyph classifier's weights, before
  anything trains.

  Raises:
    UserInputError: naming the file and the command that trains it.
  """
  by_config = {c.config: c for c in todo}
  weights = {classifier_weights(c, num_steps, eval_gin, gin_params)
             for c in by_config.values()}
  missing = sorted(w for w in weights if w and not os.path.isfile(w))
  if missing:
    command = TRAIN_CLASSIFIER.format(os.path.dirname(missing[0]) or ".")
    raise UserInputError(
        f"The glyph classifier's weights {', '.join(missing)} do not exist: "
        "the benchmark scores the transfers with its features. Train it "
        f"first with `{command}` (a couple of minutes on 2 cores), or give the "
        "weights of one trained before with --glyph_classifier=PATH.")


def check_aligned(aligned: str) -> None:
  """Refuses an --aligned folder that is not a finished self-alignment.

  Raises:
    UserInputError: naming the folder and how to make one.
  """
  if not os.path.exists(os.path.join(aligned, run_folder.SAMPLES)):
    raise UserInputError(
        f"--aligned={aligned} is not a finished self-alignment run (no "
        f"{run_folder.SAMPLES} there). Give the folder of one (e.g. "
        "runs/benchmark_hypermod/align_b, or the --model_dir of `python -m "
        "tfgt.train --gin_file=gin_configs/fashion_mnist/hypermod_align.gin`"
        "), or leave the flag out to align in <out_dir>/align_b first.")


def trust_scores(model_dir: str, num_samples: int | None) -> dict:
  """Class consistency and diversity (TRUST_METRICS) of a run's best
  generator, with the run's evaluator on `num_samples` samples (None: its
  configured count), and the feature check; per class under "per_class".
  Written to <model_dir>/TRUST_FILE too."""
  from tfgt import evaluate  # pylint: disable=g-import-not-at-top
  result, _ = evaluate.run(
      model_dir, "best", overrides=dict(num_samples=num_samples,
                                        metrics=list(TRUST_METRICS)),
      output=os.path.join(model_dir, TRUST_FILE))
  gin.clear_config()
  out = {k: float(v) for k, v in result.metrics.items()}
  out["per_class"] = result.per_class
  # Which weights scored it (the glyph classifier is trained here, not
  # shipped): `notes` says when the rows of a table disagree.
  out["extractor"] = result.settings["extractor"]
  return out


def report_rows(rows: Sequence[dict]) -> list[dict]:
  """The rows with their trust scores among the best generator's
  re-scored results (`rows.result` reads them there); the rows themselves
  are not changed."""
  out = []
  for row in rows:
    trust = {k: v for k, v in (row.get("trust") or {}).items()
             if k not in ("per_class", "extractor")}
    if trust:
      row = dict(row)
      rescored = dict(row.get("rescored") or {})
      rescored["best"] = {**(rescored.get("best") or {}), **trust}
      row["rescored"] = rescored
    out.append(row)
  return out


def _compare(name: str, a: dict[int, float | None],
             b: dict[int, float | None], higher: bool | None) -> str | None:
  """"<name> a vs b: verdict (detail)" over seeds; `higher` None compares
  the distance from 1 (lower is better). None when a side has no value."""
  if not (any(v is not None for v in a.values()) and
          any(v is not None for v in b.values())):
    return None
  if higher is None:
    def gap(d):
      return {s: None if v is None else abs(v - 1.0) for s, v in d.items()}
    verdict, detail = stats.compare_paired(gap(a), gap(b))
    detail = f"distance from 1, {detail}" if detail else ""
  else:
    verdict, detail = stats.compare_paired(a, b, higher_is_better=higher)
  return (f"{name} {stats.fmt_stats(list(a.values()))} vs "
          f"{stats.fmt_stats(list(b.values()))}: {verdict}"
          f"{f' ({detail})' if detail else ''}")


def domain_claims(rows: Sequence[dict], size: int) -> list[str]:
  """Every method against cGANTransfer, and Hyper-Mod against GAN Memory,
  at one size: mFID, class consistency and diversity of the best generator,
  seed by seed (rows as `report_rows` gives them)."""
  def values(method: str, key: str) -> dict[int, float | None]:
    return {seed: rows_lib.result(r, key)
            for seed, r in rows_lib.by_seed(rows, method, size).items()}

  have = {r["method"] for r in rows if r["images_per_class"] == size}
  pairs = [(m, BASELINE) for m in METHODS if m != BASELINE]
  pairs.append(("hypermod", "gan_memory"))
  lines = []
  for a, b in pairs:
    if a not in have or b not in have:
      continue
    seeds = sorted(set(values(a, "fid")) & set(values(b, "fid")))
    parts = [_compare(name, {s: values(a, key).get(s) for s in seeds},
                      {s: values(b, key).get(s) for s in seeds}, higher)
             for key, name, higher in (("mfid", "mFID", False),
                                       ("mconsistency", "consistency", True),
                                       ("mdiversity", "diversity", None))]
    parts = [p for p in parts if p]
    if parts:
      lines.append(f"- {size}/class, {a} against {b} (seeds "
                   f"{', '.join(map(str, seeds))}): " + "; ".join(parts) +
                   ".")
  return lines


def classifier_notes(rows: Sequence[dict]) -> list[str]:
  """A line when the rows were scored with different extractor weights
  (their records' trust.extractor), or some with weights not recorded:
  scores of two classifiers do not compare."""
  kinds, labels = {}, {}
  for row in rows:
    if not row.get("trust"):
      continue  # Not scored for trust at all: no classifier to compare.
    extractor = row["trust"].get("extractor")
    key = json.dumps(extractor, sort_keys=True) if extractor else ""
    labels[key] = (f"weights {str(extractor.get('weights', '?'))[:12]}"
                   if extractor else "not recorded")
    kinds.setdefault(key, []).append(row.get("model_dir") or "?")
  if len(kinds) < 2:
    return []
  parts = [f"{labels[key]}: "
           f"{', '.join(sorted(os.path.basename(d) for d in kinds[key]))}"
           for key in sorted(kinds, key=lambda k: (not k, labels[k], k))]
  return ["- **The rows were not all scored with the same glyph classifier** "
          "(" + "; ".join(parts) + "): train the rows of one table with one "
          "classifier file (the --glyph_classifier of every command)."]


def notes(rows: Sequence[dict], alignments: Sequence[dict]) -> list[str]:
  """Lines after the claims: the feature check of the real images, the
  self-alignment, and why the old-class FID is empty."""
  lines = []
  separation = [rows_lib.result(r, "features_separation") for r in rows]
  spread = [rows_lib.result(r, "features_min_spread") for r in rows]
  separation = [v for v in separation if v is not None]
  spread = [v for v in spread if v is not None]
  if separation:
    low = min(separation) < 0.5 or (spread and min(spread) < 0.5)
    lines.append(
        "- The feature check of the glyph classifier on the real images of "
        f"the two classes: separation {min(separation):.2f}"
        + (f", smallest class spread {min(spread):.2f}" if spread else "") +
        (" (below 0.5: these features cannot be trusted to score the "
         "classes; docs/EVALUATION.md)." if low else
         " (both above 0.5: the features tell the classes apart and do not "
         "collapse them; docs/EVALUATION.md)."))
  lines += classifier_notes(rows)
  lines += benchmark_hypermod.alignment_markdown(alignments)
  lines.append(
      "- Old-class FID: not measured; the old classes are Fashion-MNIST's, "
      "outside the glyph classifier's domain (cGANTransfer and BSA keep the "
      "source generator frozen).")
  return lines


def markdown(rows: Sequence[dict], command: str,
             alignments: Sequence[dict] = (),
             left_out: Sequence[str] = ()) -> str:
  """The report: the table with consistency and diversity, the claims and
  the notes (`notes`)."""
  shown = report_rows(rows)
  text = report.markdown(shown, command, COLUMNS, domain_claims,
                         CLAIMS_INTRO, left_out)
  return text.replace("\nCommand:", "\n" + "\n".join(
      notes(shown, alignments)) + "\n\nCommand:")


def aligned_run(out_dir: str, methods: Sequence[str], aligned: str | None,
                align_steps: int | None, report_only: bool,
                record_dir: str | None, train: bool = True
                ) -> tuple[str | None, list[dict]]:
  """(the self-aligned run the Hyper-Mod cells start from, rows of the
  alignments trained here).

  None without Hyper-Mod. `aligned` when given; else <out_dir>/align_b,
  trained or resumed by
  `tools.benchmark_hypermod.run_alignments` when `train` (read from its
  folder or record with `report_only`).
  """
  if "hypermod" not in methods:
    return None, []
  if aligned:
    return aligned, []
  path = benchmark_hypermod.align_dir(out_dir, ALIGNMENT)
  if not train:
    return path, []
  alignments = benchmark_hypermod.run_alignments(
      out_dir, ["hypermod_b"], align_steps, (), report_only, record_dir)
  return path, alignments


def run_benchmark(out_dir: str, methods: Sequence[str] = METHODS,
                  sizes: Sequence[int] = DEFAULT_SIZES,
                  seeds: Sequence[int] = cells_lib.DEFAULT_SEEDS,
                  num_steps: int | None = None,
                  eval_gin: Sequence[str] = (),
                  gin_params: Sequence[str] = (), command: str = "",
                  rescore_samples: int | None = (
                      measures.DEFAULT_RESCORE_SAMPLES),
                  jobs: int = 1, only: str | None = None,
                  argv: Sequence[str] | None = None,
                  aligned: str | None = None,
                  align_steps: int | None = None,
                  glyph_classifier: str | None = None,
                  report_only: bool = False,
                  record_dir: str | None = None) -> list[dict]:
  """Checks the glyph classifier, aligns if needed, runs every cell and
  writes the report (not with `only`, which runs one cell for a parent
  process; with `report_only`, of the finished runs, training nothing and
  needing no classifier). `glyph_classifier` overrides GLYPH_CLASSIFIER;
  the other arguments are `tools.benchmark_transfer.run_benchmark`'s.
  Returns the rows.

  Raises:
    UserInputError: an unknown method, missing classifier weights, an
      --aligned folder that is no finished alignment, and what
      `runs.train_cells` refuses.
  """
  gin_params = list(gin_params) + (
      [f"GLYPH_CLASSIFIER = '{glyph_classifier}'"] if glyph_classifier
      else [])
  cli.check_known("methods", methods, list(METHODS))
  if not report_only:
    check_classifier(cells(methods, sizes, seeds, aligned), num_steps,
                     eval_gin, gin_params)
    if aligned and "hypermod" in methods:
      check_aligned(aligned)
  cli.make_out_dir(out_dir)
  path, alignments = aligned_run(out_dir, methods, aligned, align_steps,
                                 report_only, record_dir, train=not only)
  todo = cells(methods, sizes, seeds, path)
  num = None if rescore_samples == 0 else rescore_samples
  extra = {"trust": lambda d: trust_scores(d, num),
           "old_class_fid": lambda d: None}
  rows = runs.train_cells(todo, out_dir, num_steps, eval_gin, gin_params,
                          rescore_samples, jobs, only, argv, report_only,
                          extra_scores=extra, record_dir=record_dir)
  if not only:
    report.write_results(out_dir, dict(rows=rows, alignments=alignments),
                         markdown(rows, command, alignments,
                                  cells_lib.unfinished(todo, rows)))
    report.write_curves(rows, out_dir)
  gin.clear_config()
  return rows


FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the flags (only when run as a program, so that tests can
  import several tools)."""
  cli.define_common_flags("runs/benchmark_domain")
  flags.adopt_module_key_flags(cli)
  FLAGS.set_default("images_per_class", [str(s) for s in DEFAULT_SIZES])
  # The configs bind their evaluator (gin_configs/glyphs/target.gin).
  FLAGS.set_default("eval_gin", [])
  flags.DEFINE_list("methods", list(METHODS),
                    f"Rows of the table: {', '.join(METHODS)}.")
  flags.DEFINE_string("aligned", None,
                      "A finished self-alignment run for Hyper-Mod (e.g. "
                      "runs/benchmark_hypermod/align_b); default: align in "
                      "<out_dir>/align_b first.")
  flags.DEFINE_integer("align_steps", None,
                       "Overrides train.num_steps of that self-alignment.")
  flags.DEFINE_string("glyph_classifier", None,
                      "Weights of the glyph classifier (default "
                      f"{DEFAULT_CLASSIFIER}, gin_configs/glyphs/target.gin)."
                      )


def main(argv: Sequence[str]) -> None:
  cli.run_main(argv, run_benchmark, methods=FLAGS.methods,
               aligned=FLAGS.aligned, align_steps=FLAGS.align_steps,
               glyph_classifier=FLAGS.glyph_classifier)


if __name__ == "__main__":
  define_flags()
  app.run(main)
