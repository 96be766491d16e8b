r"""Fashion-MNIST version of Hyper-Modulation's Tables 2, 4 and 5 and Fig. 7.

    python -m tools.benchmark_hypermod --out_dir=runs/benchmark_hypermod \
        [--methods=gan_memory,hypermod_a,hypermod_b,hypermod_c,hypermod_ft,\
hypermod_s,hypermod_b_unaligned,hypermod_b_official_lr,cgantransfer] \
        [--images_per_class=100] [--seeds=0,1,2] [--jobs=2] \
        [--align_steps=1500] [--rescore_samples=10000] \
        [--source=pretrained:fashion_mnist_stylegan]

The shipped unconditional StyleGAN (Fashion-MNIST classes 0-7 merged) learns
Bag and Ankle boot from the images per class of the cGANTransfer runs (the
same seeded subsets), with every method of the paper on one trainer:

  gan_memory            free gamma, beta, b per class ("No hypernet.")
  hypermod_a            hypernetwork without the V space (Table 2, config A)
  hypermod_b            hypernetwork with V (config B; `make hypermod`)
  hypermod_c            B plus the contrastive discriminator (config C)
  hypermod_ft           B with every generator weight trained (Hyper-Mod-FT)
  hypermod_s            the architecture from random weights (Hyper-Mod-S)
  hypermod_b_unaligned  B without self-alignment (Fig. 7d)
  hypermod_b_official_lr  B with the official code's class-network rate
                        (2e-6, 1/1000 of the modulators')
  hypermod_b_mixed_bfloat16  B in mixed_bfloat16 (`train.precision`; the
                        same float32 self-alignment); only when named in
                        --methods
  cgantransfer          cGANTransfer from the shipped BigGAN (Tables 4-5)

First the self-alignment stage runs once per class network it serves
(<out_dir>/align_b for depth 4, align_a for depth 0: it uses no target
data, so the seeds share it), then every (method, size, seed) trains into
<out_dir>/<method>_<images>_s<seed>/ as `tools.benchmark_transfer` does
(resumable, re-scored on --rescore_samples samples with mFID, mKID and
precision, recall, density and coverage per class, wall time, trained values
per class). Writes <out_dir>/results.{json,md}, the FID curves per size
(curves_<size>.png: Fig. 7d with hypermod_b and hypermod_b_unaligned) and
alignment.png (Fig. 7a-c: the source's samples, the unaligned and the
aligned hypernetwork's for the same z). Every picture also goes to
TensorBoard under <out_dir>/tb.

The claims of the paper checked in results.md: the hypernetwork beats GAN
Memory; V beats A; the contrastive D beats B at batch 10; FT beats
Hyper-Mod; self-alignment reaches a given FID sooner; Hyper-Mod beats
cGANTransfer.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Sequence

from absl import app
from absl import flags
from absl import logging
import gin
import numpy as np

from tfgt import config as config_lib
from tfgt import files
from tfgt import run_events
from tfgt import run_folder
from tfgt import train as train_lib
from tfgt.errors import UserInputError
from tools.benchlib import cells as cells_lib
from tools.benchlib import cli
from tools.benchlib import figures
from tools.benchlib import measures
from tools.benchlib import report
from tools.benchlib import rows as rows_lib
from tools.benchlib import runs
from tools.benchlib import stats

ALIGN_CONFIG = "hypermod_align"
# The self-alignment runs: key -> gin bindings of SelfAlignment.
ALIGNMENTS = {"b": (), "a": ("SelfAlignment.class_depth = 0",)}
# Method -> (config under gin_configs/fashion_mnist/, alignment key or None,
# extra gin bindings).
METHODS = {
    "gan_memory": ("gan_memory", None, ()),
    "hypermod_a": ("hypermod_ablations/no_v_space", "a", ()),
    "hypermod_b": ("hypermod", "b", ()),
    "hypermod_c": ("hypermod_ablations/contrastive", "b", ()),
    "hypermod_ft": ("hypermod_ablations/finetune", "b", ()),
    "hypermod_s": ("hypermod_ablations/scratch", None, ()),
    "hypermod_b_unaligned": ("hypermod_ablations/no_alignment", None, ()),
    "hypermod_b_official_lr": ("hypermod_ablations/official_class_lr", "b",
                               ()),
    "cgantransfer": ("cgantransfer", None, ()),
    "hypermod_b_mixed_bfloat16": (
        "hypermod", "b", ("train.precision = 'mixed_bfloat16'",)),
}
# The rows run when --methods is not given: the paper's; the precision row
# is for docs/RESULTS.md's mixed-precision table (--methods=hypermod_b,
# hypermod_b_mixed_bfloat16).
DEFAULT_METHODS = tuple(m for m in METHODS
                        if m != "hypermod_b_mixed_bfloat16")
DEFAULT_SIZES = (100,)
# The configs' SOURCE: the shipped unconditional StyleGAN.
DEFAULT_SOURCE = "pretrained:fashion_mnist_stylegan"
# Path-length values per class pair and sampling (Bag -> Ankle boot).
DEFAULT_PPL_SAMPLES = 2000
# The paper's Table 5 columns (per class, averaged), then the pooled FID.
COLUMNS = (("mfid", "mFID", "{:.2f}", 1), ("mkid", "mKID x100", "{:.2f}", 100),
           ("mprecision", "P", "{:.2f}", 1), ("mrecall", "R", "{:.2f}", 1),
           ("mdensity", "D", "{:.2f}", 1), ("mcoverage", "C", "{:.2f}", 1),
           ("fid", "FID", "{:.2f}", 1), ("ppl_full", "PPL full", "{:.1f}", 1),
           ("ppl_end", "PPL end", "{:.1f}", 1))


def path_length(model_dir: str, num_samples: int) -> dict[str, float]:
  """The best generator's perceptual path length between the run's
  classes (Table 3; tfgt.eval.ppl): {"ppl_full", "ppl_end"}."""
  from tfgt import evaluate  # pylint: disable=g-import-not-at-top
  result, _ = evaluate.run(model_dir, "best", overrides=dict(
      metrics=["ppl"], ppl_samples=num_samples, check_features=False),
                           output=os.path.join(model_dir, "ppl.eval.json"))
  gin.clear_config()
  return {k: float(v) for k, v in result.metrics.items()}


def align_dir(out_dir: str, key: str) -> str:
  return os.path.join(out_dir, f"align_{key}")


def cells(out_dir: str, methods: Sequence[str], sizes: Sequence[int],
          seeds: Sequence[int]) -> list[cells_lib.Cell]:
  """The benchmark's runs, seeds outside methods (see `cells.method_cells`).

  Raises:
    UserInputError: an unknown method.
  """
  cli.check_known("methods", methods, list(METHODS))
  out = []
  for cell in cells_lib.method_cells(methods, sizes, seeds):
    config, key, extra = METHODS[cell.name]
    params = (() if key is None else (
        f"ALIGNED = '{align_dir(out_dir, key)}'",)) + tuple(extra)
    out.append(dataclasses.replace(
        cell, config=os.path.join(cells_lib.CONFIG_DIR, config + ".gin"),
        params=params))
  return out


def alignments_needed(methods: Sequence[str]) -> list[str]:
  return sorted({METHODS[m][1] for m in methods if METHODS[m][1]},
                reverse=True)


def alignment_finished(out_dir: str, key: str) -> bool:
  """Whether the self-alignment run `key` has ended (the trainer writes
  samples.png at the end of a run)."""
  return os.path.exists(os.path.join(align_dir(out_dir, key),
                                     run_folder.SAMPLES))


def run_alignment(out_dir: str, key: str, num_steps: int | None,
                  gin_params: Sequence[str], train: bool = True) -> dict:
  """Trains (or resumes) the self-alignment run `key` (not with `train`
  False); returns its FID history and the FID of its first and best
  evaluation."""
  model_dir = align_dir(out_dir, key)
  if train:
    gin.clear_config()
    params = list(gin_params) + list(ALIGNMENTS[key])
    if num_steps is not None:
      params.append(f"train.num_steps = {num_steps}")
    config_lib.parse([cells_lib.config_path(ALIGN_CONFIG)], params)
    try:
      train_lib.train(model_dir)
    finally:
      gin.clear_config()
  history = run_events.history(model_dir)
  best = min(history, key=lambda sv: sv[1]) if history else None
  return dict(key=key, model_dir=model_dir, fid_history=history,
              first_fid=history[0] if history else None, best_fid=best,
              wall_time_s=run_events.training_wall_time(model_dir))


def draw_alignment(aligned_dir: str, source: str, num: int = 8,
                   seed: int = 0) -> np.ndarray:
  """Fig. 7a-c: rows of the source's samples, of an unaligned hypernetwork
  (the aligned run's architecture at its initialisation, seeded) and of the
  aligned one, for the same z (and so the same noise), as uint8 [H, W, C].
  """
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfgt import images  # pylint: disable=g-import-not-at-top
  from tfgt.data import pipeline  # pylint: disable=g-import-not-at-top
  # pylint: disable-next=g-import-not-at-top
  from tfgt.methods import hypermod as methods
  src = methods.load_stylegan_source(source).generator
  aligned = methods.load_aligned(aligned_dir, src)
  keras.utils.set_random_seed(seed)
  kwargs = dict(aligned.ctor_kwargs)
  unaligned = type(aligned)(aligned.num_classes, **kwargs)
  unaligned.build()
  methods.copy_source(src, unaligned)
  z = tf.random.stateless_normal([num, src.dim_z], seed=[seed, 7])
  labels = tf.zeros([num], tf.int32)
  rows = [pipeline.to_uint8(g((z, labels), training=False)).numpy()
          for g in (src, unaligned, aligned)]
  return images.grid(np.stack(rows))


def _claim(claim: str, what: str, va: dict[int, float | None],
           vb: dict[int, float | None], pattern: str = "{:.2f}") -> list[str]:
  """A claim "a beats b" (lower is better) in words, judged seed by seed
  (`stats.compare_paired`), or nothing when a side has no values."""
  if not (any(v is not None for v in va.values()) and
          any(v is not None for v in vb.values())):
    return []
  verdict, detail = stats.compare_paired(va, vb)
  held = {"better": "holds", "worse": "does not hold"}.get(
      verdict, f"cannot be decided, {verdict}")
  return [f"- {claim}: {what} {stats.fmt_stats(list(va.values()), pattern)} vs "
          f"{stats.fmt_stats(list(vb.values()), pattern)}: {held}"
          f"{f' ({detail})' if detail else ''}."]


def hypermod_claims(rows: Sequence[dict], size: int) -> list[str]:
  """The paper's claims at one size, in words, with the numbers (mFID of
  the best generator, re-scored; its path lengths for Table 3)."""
  def values(method: str, key: str = "mfid") -> dict[int, float | None]:
    return {seed: rows_lib.result(r, key)
            for seed, r in rows_lib.by_seed(rows, method, size).items()}

  lines = []
  for a, b, claim in (
      ("hypermod_b", "gan_memory", "the hypernetwork beats GAN Memory"),
      ("hypermod_b", "hypermod_a", "the V space (B) beats config A"),
      ("hypermod_c", "hypermod_b", "the contrastive D (C) beats B"),
      ("hypermod_ft", "hypermod_b", "Hyper-Mod-FT beats Hyper-Mod"),
      ("hypermod_b", "hypermod_s", "Hyper-Mod beats Hyper-Mod-S"),
      ("hypermod_b", "cgantransfer", "Hyper-Mod beats cGANTransfer"),
      ("hypermod_c", "cgantransfer", "Hyper-Mod C beats cGANTransfer"),
      ("hypermod_b", "hypermod_b_official_lr",
       "C at the modulators' rate beats the official rate"),
      ("hypermod_b_mixed_bfloat16", "hypermod_b",
       "B in mixed_bfloat16 beats B in float32")):
    lines += _claim(f"{size}/class, {claim}", "mFID", values(a), values(b))
  # Table 3: the V space gives shorter paths between the classes.
  for sampling in ("full", "end"):
    key = f"ppl_{sampling}"
    lines += _claim(
        f"{size}/class, the V space shortens the path between classes",
        f"PPL {sampling}, B vs A", values("hypermod_b", key),
        values("hypermod_a", key), "{:.1f}")
  # Fig. 7d: iterations to reach the worse of the two best FIDs, per seed.
  aligned = rows_lib.by_seed(rows, "hypermod_b", size)
  unaligned = rows_lib.by_seed(rows, "hypermod_b_unaligned", size)
  sooner = []
  for seed in sorted(set(aligned) & set(unaligned)):
    x, y = aligned[seed], unaligned[seed]
    if x.get("best_fid") is None or y.get("best_fid") is None:
      continue
    target = max(x["best_fid"], y["best_fid"])
    sx, sy = (rows_lib.first_step_reaching(x, target),
              rows_lib.first_step_reaching(y, target))
    if sx is not None and sy is not None:
      sooner.append((seed, target, sx, sy))
  if sooner:
    text = "; ".join(f"seed {s}: FID {t:.2f} at {a} vs {b}"
                     for s, t, a, b in sooner)
    held = ("cannot be decided (fewer than 2 seeds)" if len(sooner) < 2 else
            "holds" if all(a < b for _, _, a, b in sooner) else
            "does not hold" if all(a >= b for _, _, a, b in sooner) else
            "cannot be decided (the seeds disagree)")
    lines.append(f"- {size}/class, self-alignment reaches a given FID "
                 f"sooner (iterations, aligned vs unaligned; {text}): "
                 f"{held}.")
  return lines


def alignment_markdown(alignments: Sequence[dict]) -> list[str]:
  lines = []
  for a in alignments:
    first, best = a["first_fid"], a["best_fid"]
    if first and best:
      lines.append(
          f"- Self-alignment {a['key'].upper()} ({a['model_dir']}): FID of "
          f"the 8 source classes merged {first[1]:.2f} at step {first[0]}, "
          f"best {best[1]:.2f} at step {best[0]} "
          f"({a['wall_time_s'] / 60:.1f} min).")
  return lines


def run_alignments(out_dir: str, methods: Sequence[str],
                   align_steps: int | None, gin_params: Sequence[str],
                   report_only: bool = False,
                   record_dir: str | None = None) -> list[dict]:
  """The self-alignment runs that `methods` need (`run_alignment`), each
  trained or resumed (with `report_only`, read from its run folder or its
  <record_dir>/align_<key>.json, training nothing); a finished one is also
  recorded there. Returns their rows."""
  alignments = []
  for key in alignments_needed(methods):
    record = (os.path.join(record_dir, f"align_{key}.json") if record_dir
              else None)
    if report_only and not alignment_finished(out_dir, key):
      if record and os.path.exists(record):
        with open(record) as f:
          alignments.append(json.load(f))
      else:
        logging.warning("Benchmark: self-alignment %s not finished.", key)
      continue
    logging.info("Benchmark: self-alignment %s.", key)
    alignments.append(run_alignment(out_dir, key, align_steps, gin_params,
                                    train=not report_only))
    if record and alignment_finished(out_dir, key):
      # The run folder stays on this machine; its row goes with the
      # records, so that --report_only rebuilds the lines anywhere.
      os.makedirs(record_dir, exist_ok=True)
      files.write_json(record, alignments[-1])
  return alignments


def run_benchmark(out_dir: str, methods: Sequence[str] = DEFAULT_METHODS,
                  sizes: Sequence[int] = DEFAULT_SIZES,
                  seeds: Sequence[int] = cells_lib.DEFAULT_SEEDS,
                  num_steps: int | None = None,
                  align_steps: int | None = None,
                  eval_gin: Sequence[str] = (),
                  gin_params: Sequence[str] = (), command: str = "",
                  rescore_samples: int | None = (
                      measures.DEFAULT_RESCORE_SAMPLES),
                  jobs: int = 1, only: str | None = None,
                  argv: Sequence[str] | None = None,
                  source: str = DEFAULT_SOURCE,
                  ppl_samples: int = DEFAULT_PPL_SAMPLES,
                  report_only: bool = False,
                  record_dir: str | None = None) -> list[dict]:
  """Aligns, runs every cell, writes the tables and figures (not with
  `only`, which runs one cell for a parent process; with `report_only`,
  of the finished runs, training nothing; `argv` and `record_dir` as in
  `tools.benchmark_transfer.run_benchmark`; `source`: the unconditional
  StyleGAN or StyleGAN2 that the alignment and the hypernetwork rows start
  from, bound as the configs' SOURCE when it is not DEFAULT_SOURCE).
  Returns the rows.

  Raises:
    UserInputError: another source with the cgantransfer row (which
      transfers the shipped BigGAN), and what the runs raise.
  """
  if source != DEFAULT_SOURCE:
    if "cgantransfer" in methods:
      raise UserInputError(
          f"--source={source}: the cgantransfer row transfers the shipped "
          "BigGAN, not this source; leave it out of --methods.")
    gin_params = list(gin_params) + [f"SOURCE = '{source}'"]
  cli.make_out_dir(out_dir)
  alignments = [] if only else run_alignments(
      out_dir, methods, align_steps, gin_params, report_only, record_dir)
  extra = {"ppl": lambda d: path_length(d, ppl_samples)} if ppl_samples else {}
  todo = cells(out_dir, methods, sizes, seeds)
  rows = runs.train_cells(todo, out_dir, num_steps, eval_gin, gin_params,
                          rescore_samples, jobs, only, argv, report_only,
                          extra_scores=extra, record_dir=record_dir)
  if only:
    return rows
  text = report.markdown(rows, command, COLUMNS, hypermod_claims,
                         left_out=cells_lib.unfinished(todo, rows))
  extra = alignment_markdown(alignments)
  if extra:
    text = text.replace("\nCommand:", "\n" + "\n".join(extra) +
                        "\n\nCommand:")
  report.write_results(out_dir, dict(rows=rows, alignments=alignments), text)
  logdir = os.path.join(out_dir, "tb")
  report.write_curves(rows, out_dir, logdir=logdir)
  if "b" in alignments_needed(methods) and alignment_finished(out_dir, "b"):
    picture = draw_alignment(align_dir(out_dir, "b"), source)
    figures.save(picture, os.path.join(out_dir, "alignment.png"), logdir,
                 "alignment")
  gin.clear_config()
  return rows


FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the flags (only when run as a program, so that tests can
  import several tools)."""
  cli.define_common_flags("runs/benchmark_hypermod")
  flags.adopt_module_key_flags(cli)
  FLAGS.set_default("images_per_class", [str(s) for s in DEFAULT_SIZES])
  flags.DEFINE_list("methods", list(DEFAULT_METHODS),
                    f"Rows of the table: {', '.join(METHODS)}.")
  flags.DEFINE_integer("ppl_samples", DEFAULT_PPL_SAMPLES,
                       "Perceptual path length values per class pair and "
                       "sampling (0: no path length).")
  flags.DEFINE_integer("align_steps", None,
                       "Overrides train.num_steps of the self-alignment.")
  flags.DEFINE_string("source", DEFAULT_SOURCE,
                      "The unconditional StyleGAN or StyleGAN2 (bundle, run "
                      "folder or pretrained:NAME) that the alignment and the "
                      "Hyper-Modulation rows start from, e.g. the run of "
                      "gin_configs/fashion_mnist/"
                      "pretrain_stylegan2_unconditional.gin; not with the "
                      "cgantransfer row.")


def main(argv: Sequence[str]) -> None:
  cli.run_main(argv, run_benchmark, methods=FLAGS.methods,
               align_steps=FLAGS.align_steps, ppl_samples=FLAGS.ppl_samples,
               source=FLAGS.source)


if __name__ == "__main__":
  define_flags()
  app.run(main)
