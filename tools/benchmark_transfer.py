r"""Fashion-MNIST version of cGANTransfer's Table 1 (left).

    python tools/benchmark_transfer.py --out_dir=runs/benchmark_transfer \
        [--methods=cgantransfer,bsa,transfergan,scratch] \
        [--images_per_class=600,300,100] [--num_steps=1200] \
        [--eval_gin=gin_configs/fashion_mnist/eval.gin] [--gin_param=...] \
        [--rescore_samples=10000]

For every method and number of images per class, trains
gin_configs/fashion_mnist/<method>.gin (8 source classes -> Bag, Ankle boot)
into <out_dir>/<method>_<images>/ with the evaluator bound by --eval_gin (FID
every `train.eval_every` steps; the best checkpoint is kept), then writes
<out_dir>/results.json and <out_dir>/results.md with, per run: the best FID
and the iteration that reached it, the final FID, the FID history, the wall
time, and the trainable generator parameters per new class. The best and the
final generator are then scored again on --rescore_samples samples (the best
FID during training is the minimum of noisy estimates on fewer samples). A
run that finished before with the same configuration is read, not trained
again, and an interrupted one resumes, so the command can be re-run.

The paper's claims this checks: cGANTransfer's FID at least as good as BSA's
and reached in at least 3x fewer iterations (measured as the iterations each
needs to reach the worse of their two best FIDs, and as the iteration of the
best FID, with BSA's FID at that iteration: "BSA-early"); transfer far ahead
of scratch at 100 images per class.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Sequence

from absl import app
from absl import flags
from absl import logging
import gin
import numpy as np

# Runnable as `python tools/benchmark_transfer.py` from the repository root.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfgt import config as config_lib  # pylint: disable=g-import-not-at-top
from tfgt import distribute  # pylint: disable=g-import-not-at-top
from tfgt import errors  # pylint: disable=g-import-not-at-top
from tfgt import files  # pylint: disable=g-import-not-at-top
from tfgt import run_folder  # pylint: disable=g-import-not-at-top
# Registers Evaluator and the feature extractors that --eval_gin binds.
import tfgt.eval  # pylint: disable=g-import-not-at-top,unused-import
from tfgt import train as train_lib  # pylint: disable=g-import-not-at-top
from tfgt.errors import UserInputError  # pylint: disable=g-import-not-at-top

CONFIG_DIR = os.path.join("gin_configs", "fashion_mnist")
DEFAULT_METHODS = ("cgantransfer", "bsa", "transfergan", "scratch")
DEFAULT_SIZES = (600, 300, 100)
DONE_FILE = "benchmark.json"
# Samples of the final re-scoring of the best and the last generator.
DEFAULT_RESCORE_SAMPLES = 10000


def config_path(method: str) -> str:
  """A method name (gin file stem under CONFIG_DIR) or a .gin path."""
  path = method if method.endswith(".gin") else os.path.join(
      CONFIG_DIR, f"{method}.gin")
  if not os.path.exists(path):
    raise UserInputError(f"No config {path} for method {method!r}; run from "
                         "the repository root or give a .gin path.")
  return path


def run_name(method: str, images_per_class: int) -> str:
  stem = os.path.splitext(os.path.basename(method))[0]
  return f"{stem}_{images_per_class}"


def trainable_parameters(model_dir: str) -> dict:
  """Trainable G values of the method configured in gin, for its classes.

  Returns {"g_trainable": total, "g_per_new_class": total / M,
  "g_class_specific": values in variables with one row per new class,
  divided by M}.
  """
  with open(os.path.join(model_dir, "model", "model.json")) as f:
    class_names = json.load(f)["class_names"]
  method = gin.query_parameter("train.method").scoped_configurable_fn()
  num_old = len(method.source_info().class_names)
  num_new = len(class_names) - num_old
  setup = method.build(class_names)
  total = sum(int(np.prod(v.shape)) for v in setup.g_variables)
  specific = sum(int(np.prod(v.shape)) for v in setup.g_variables
                 if num_old and v.shape and v.shape[0] == num_new)
  return {"g_trainable": total, "g_per_new_class": total / num_new,
          "g_class_specific": specific / num_new if num_old else None}


def run_one(method: str, images_per_class: int, out_dir: str,
            num_steps: int | None, eval_gin: Sequence[str],
            gin_params: Sequence[str],
            rescore_samples: int | None = DEFAULT_RESCORE_SAMPLES) -> dict:
  """Trains (or reads) one run and returns its row of the table.

  A run whose benchmark.json was written with the same gin configuration is
  read back; an interrupted run resumes from its checkpoint. The wall time
  comes from the run's TensorBoard events, so it covers every session of a
  resumed run. With `rescore_samples`, the best and the final generator are
  scored again on that many samples (None: as many as real images) with the
  run's evaluator: the best FID during training is the minimum of noisy
  estimates on fewer samples.
  """
  model_dir = os.path.join(out_dir, run_name(method, images_per_class))
  gin.clear_config()
  params = list(gin_params) + [f"IMAGES_PER_CLASS = {images_per_class}"]
  if num_steps is not None:
    params.append(f"train.num_steps = {num_steps}")
  config_lib.parse([config_path(method)] + list(eval_gin), params)
  config = gin.config_str()
  done_path = os.path.join(model_dir, DONE_FILE)
  row = None
  if os.path.exists(done_path):
    with open(done_path) as f:
      row = json.load(f)
    # Rows without a stored config compare on the step count only.
    same = (row.get("gin_config", config) == config and
            row.get("num_steps") == gin.query_parameter("train.num_steps"))
    if same:
      logging.info("%s: finished before, reading its results.", model_dir)
    else:
      logging.info("%s: configuration changed, training again.", model_dir)
      row = None
  if row is None:
    metrics = train_lib.train(model_dir)
    row = dict(method=os.path.splitext(os.path.basename(method))[0],
               images_per_class=images_per_class, model_dir=model_dir,
               num_steps=gin.query_parameter("train.num_steps"),
               gin_config=config,
               wall_time_s=training_wall_time(model_dir),
               steps_per_sec=metrics.get("steps_per_sec"),
               best_fid=None, best_step=None, final_fid=None)
    best_path = os.path.join(model_dir, run_folder.BEST)
    if os.path.exists(best_path):
      with open(best_path) as f:
        best = json.load(f)
      row.update(best_fid=best.get("fid"), best_step=best.get("step"))
    history = eval_history(model_dir)
    if history:
      row["final_fid"] = history[-1][1]
      row["fid_history"] = history
    row.update(trainable_parameters(model_dir))
    files.write_json(done_path, row)
  if "rescored" not in row and rescore_samples != 0 and (
      row.get("best_step") is not None):
    row["rescored"] = rescore(model_dir, rescore_samples)
    files.write_json(done_path, row)
  if "old_class_fid" not in row and rescore_samples != 0:
    row["old_class_fid"] = old_class_fid(model_dir, rescore_samples)
    files.write_json(done_path, row)
  gin.clear_config()
  return row


def rescore(model_dir: str, num_samples: int | None) -> dict:
  """{"best"|"final": {metric: value}} of the run's evaluator on more samples.

  Uses `python -m tfgt.evaluate`'s code path: the run's config.gin (data and
  evaluator), its best and latest bundles.
  """
  from tfgt import evaluate  # pylint: disable=g-import-not-at-top
  out = {}
  for name, checkpoint in (("best", "best"), ("final", "latest")):
    result, _ = evaluate.run(model_dir, checkpoint,
                             overrides=dict(num_samples=num_samples))
    out[name] = {k: float(v) for k, v in result.metrics.items()}
  out["num_samples"] = result.settings["generated"]
  gin.clear_config()
  return out


def old_class_fid(model_dir: str, num_samples: int | None) -> float | None:
  """FID of the final generator on the source's classes (ids 0..N-1).

  What a class extension keeps: methods with a frozen generator draw the old
  classes exactly as the source does, full fine-tuning overwrites them. None
  for runs without old classes (Scratch).
  """
  from tfgt import evaluate  # pylint: disable=g-import-not-at-top
  from tfgt.data import pipeline  # pylint: disable=g-import-not-at-top
  from tfgt.eval import evaluator as evaluator_lib  # pylint: disable=g-import-not-at-top
  from tfgt.models import bundle  # pylint: disable=g-import-not-at-top
  gin.clear_config()
  try:
    new = evaluate.read_run(model_dir)
    if not new.label_offset:
      return None
    generator, _, spec = bundle.load(
        os.path.join(model_dir, run_folder.BUNDLE))
    # The source's classes are taken to be the dataset's ids 0..N-1 (as in
    # the Fashion-MNIST split); the evaluator checks their names against the
    # model's, so another layout is an error, not a wrong number.
    names = spec["class_names"][:new.label_offset]
    old = pipeline.ClassSelection(list(range(new.label_offset)), names, 0)
    evaluator = evaluator_lib.Evaluator(num_samples=num_samples,
                                        metrics=["fid"])
    return float(evaluator.evaluate(generator, old,
                                    class_names=spec["class_names"])
                 .metrics["fid"])
  finally:
    gin.clear_config()


def _session_events(model_dir: str):
  """Per TensorBoard events file of the run (one per trainer session), the
  list of its events."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  directory = os.path.join(model_dir, "train")
  names = sorted(tf.io.gfile.listdir(directory)) if os.path.isdir(
      directory) else []
  for name in names:
    if "tfevents" in name:
      yield list(tf.compat.v1.train.summary_iterator(
          os.path.join(directory, name)))


def training_wall_time(model_dir: str) -> float:
  """Seconds of training, summed over the sessions of a (resumed) run.

  Each session of the trainer writes its own TensorBoard events file; its
  span (first to last event) is that session's training and evaluation time.
  """
  total = 0.0
  for events in _session_events(model_dir):
    if events:
      times = [event.wall_time for event in events]
      total += max(times) - min(times)
  return total


def eval_history(model_dir: str, tag: str = "eval/fid"
                 ) -> list[list]:
  """[step, value] of a metric the trainer logged to TensorBoard, by step
  (lists, as they read back from JSON)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  values = {}
  for events in _session_events(model_dir):
    for event in events:
      for v in event.summary.value:
        if v.tag == tag:
          values[int(event.step)] = float(tf.make_ndarray(v.tensor))
  return [[step, value] for step, value in sorted(values.items())]


def fid_at(row: dict, step: int) -> float | None:
  """A run's FID at the last evaluation at or before `step`."""
  values = [fid for s, fid in row.get("fid_history") or [] if s <= step]
  return values[-1] if values else None


def first_step_reaching(row: dict, target: float) -> int | None:
  """The first evaluated step whose FID is at most `target`, if any.

  The history comes from TensorBoard in float32 and best FIDs from best.json
  in float64: equal values may differ in the last float32 digit.
  """
  for step, fid in row.get("fid_history") or []:
    if fid <= target * (1 + 1e-6):
      return int(step)
  return None


def _fmt(value, pattern: str = "{:.2f}") -> str:
  return "-" if value is None else pattern.format(value)


def score(row: dict, which: str = "best") -> float | None:
  """The re-scored FID of the best or final generator, else the training
  estimate."""
  rescored = (row.get("rescored") or {}).get(which) or {}
  if "fid" in rescored:
    return rescored["fid"]
  return row["best_fid"] if which == "best" else row.get("final_fid")


def best_at_last_evaluation(row: dict) -> bool:
  """The FID was still improving when the run stopped."""
  history = row.get("fid_history") or []
  return bool(history) and row.get("best_step") == history[-1][0]


def markdown(rows: list[dict], command: str) -> str:
  """The results table and the paper's claims, as Markdown."""
  sizes = sorted({r["images_per_class"] for r in rows}, reverse=True)
  methods = list(dict.fromkeys(r["method"] for r in rows))
  by_key = {(r["method"], r["images_per_class"]): r for r in rows}
  samples = sorted({(r.get("rescored") or {}).get("num_samples") for r in rows
                    if r.get("rescored")})
  lines = [
      "FID of the best generator (the iteration of the best FID during "
      "training), re-scored on " +
      (f"{', '.join(str(n) for n in samples)} samples" if samples else
       "the training evaluations' samples") +
      "; * marks a run whose best FID was its last evaluation (still "
      "improving when it stopped). Wall time per run (training and its "
      "evaluations); trained G values in all and per new class; the "
      "class-specific ones (one row per new class) per new class.", "",
      "| method | " + " | ".join(f"{s}/class" for s in sizes) +
      " | wall time (min) | G values trained | per new class | "
      "class-specific per new class |",
      "|---|" + "---|" * (len(sizes) + 4)]
  for m in methods:
    cells, walls, last = [], [], None
    for s in sizes:
      r = by_key.get((m, s))
      if r is None:
        cells.append("")
        continue
      star = "*" if best_at_last_evaluation(r) else ""
      cells.append(f"{_fmt(score(r))} ({_fmt(r['best_step'], '{}')}{star})")
      walls.append(r["wall_time_s"] / 60)
      last = r
    specific = last.get("g_class_specific") if last else None
    lines.append(
        f"| {m} | " + " | ".join(cells) +
        f" | {_fmt(np.mean(walls) if walls else None, '{:.1f}')} | "
        f"{_fmt(last and last['g_trainable'], '{:,}')} | "
        f"{_fmt(last and last['g_per_new_class'], '{:,.0f}')} | "
        f"{_fmt(specific or None, '{:,.0f}')} |")
  def size_table(title: str, cell) -> list[str]:
    """A table of `cell(row)` per method and images per class."""
    out = ["", title, "",
           "| method | " + " | ".join(f"{s}/class" for s in sizes) + " |",
           "|---|" + "---|" * len(sizes)]
    for m in methods:
      out.append(f"| {m} | " + " | ".join(
          "" if (m, s) not in by_key else cell(by_key[(m, s)])
          for s in sizes) + " |")
    return out

  lines += size_table(
      "During training (the evaluator's samples): best FID / final FID.",
      lambda r: f"{_fmt(r['best_fid'])} / {_fmt(r.get('final_fid'))}")
  if any(r.get("old_class_fid") is not None for r in rows):
    lines += size_table(
        "FID of the old classes after the transfer (final generator, same "
        "samples as above; the source model's own value is the reference).",
        lambda r: _fmt(r.get("old_class_fid")))
  lines += ["", "Claims of the paper:"]
  for s in sizes:
    ours, bsa = by_key.get(("cgantransfer", s)), by_key.get(("bsa", s))
    if ours and bsa and ours["best_fid"] is not None and bsa["best_fid"]:
      # Iterations each needs to reach the worse of the two best FIDs (same
      # evaluator, same samples): a speed measure that does not depend on
      # where the runs stop.
      target = max(ours["best_fid"], bsa["best_fid"])
      ours_step = first_step_reaching(ours, target)
      bsa_step = first_step_reaching(bsa, target)
      verdict = "not worse" if score(ours) <= score(bsa) else "worse"
      lines.append(
          f"- {s}/class: cGANTransfer FID {score(ours):.2f} vs BSA "
          f"{score(bsa):.2f} ({verdict}).")
      if ours_step is not None and bsa_step is not None:
        lines.append(
            f"  - Iterations to reach FID {target:.2f} during training: "
            f"cGANTransfer {ours_step}, BSA {bsa_step} "
            f"({bsa_step / max(ours_step, 1):.1f}x; the paper reports >= 3x).")
      speedup = (bsa["best_step"] / ours["best_step"]
                 if ours["best_step"] else float("nan"))
      cut = (" (a best at the last evaluation: the run length bounds it)"
             if best_at_last_evaluation(ours) or best_at_last_evaluation(bsa)
             else "")
      lines.append(
          f"  - Iteration of the best FID: {ours['best_step']} vs "
          f"{bsa['best_step']} ({speedup:.1f}x){cut}; BSA-early (BSA at "
          f"iteration {ours['best_step']}): "
          f"{_fmt(fid_at(bsa, ours['best_step']))}.")
    scratch = by_key.get(("scratch", s))
    if ours and scratch and ours["best_fid"] is not None and (
        scratch["best_fid"] is not None):
      lines.append(f"- {s}/class: cGANTransfer FID {score(ours):.2f} vs "
                   f"scratch {score(scratch):.2f}.")
  lines += ["", f"Command: `{command}`", ""]
  return "\n".join(lines)


def run_benchmark(out_dir: str, methods: Sequence[str] = DEFAULT_METHODS,
                  sizes: Sequence[int] = DEFAULT_SIZES,
                  num_steps: int | None = None,
                  eval_gin: Sequence[str] = (),
                  gin_params: Sequence[str] = (),
                  command: str = "",
                  rescore_samples: int | None = DEFAULT_RESCORE_SAMPLES
                  ) -> list[dict]:
  """Runs every (method, size) and writes results.json and results.md.

  `rescore_samples`: see `run_one` (0: no re-scoring).
  """
  os.makedirs(out_dir, exist_ok=True)
  rows = []
  for size in sizes:
    for method in methods:
      logging.info("Benchmark: %s with %d images per class.", method, size)
      rows.append(run_one(method, size, out_dir, num_steps, eval_gin,
                          gin_params, rescore_samples))
      files.write_json(os.path.join(out_dir, "results.json"), rows)
  text = markdown(rows, command)
  with open(os.path.join(out_dir, "results.md"), "w") as f:
    f.write(text)
  gin.clear_config()
  return rows


FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the flags (only when run as a program, so that tests can
  import several tools)."""
  flags.DEFINE_string("out_dir", "runs/benchmark_transfer",
                      "Where the runs and results go.")
  flags.DEFINE_list("methods", list(DEFAULT_METHODS),
                    f"Config stems under {CONFIG_DIR} (or .gin paths).")
  flags.DEFINE_list("images_per_class", [str(s) for s in DEFAULT_SIZES],
                    "Images per target class.")
  flags.DEFINE_integer("num_steps", None,
                       "Overrides train.num_steps of every config.")
  flags.DEFINE_multi_string("eval_gin", [os.path.join(CONFIG_DIR, "eval.gin")],
                            "Gin files binding train.evaluator (empty: none).")
  flags.DEFINE_multi_string("gin_param", [], "Extra gin bindings.")
  flags.DEFINE_integer("rescore_samples", DEFAULT_RESCORE_SAMPLES,
                       "Samples for re-scoring the best and the final "
                       "generator of each run (0: none; -1: as many as "
                       "real images).")
  flags.DEFINE_integer("logical_cpus", 0, "Split the CPU into this many "
                       "logical devices.")


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  distribute.split_cpu(FLAGS.logical_cpus)
  try:
    sizes = [int(s) for s in FLAGS.images_per_class]
    rows = run_benchmark(FLAGS.out_dir, FLAGS.methods, sizes,
                         FLAGS.num_steps, [g for g in FLAGS.eval_gin if g],
                         FLAGS.gin_param, command=" ".join(sys.argv),
                         rescore_samples=(None if FLAGS.rescore_samples < 0
                                          else FLAGS.rescore_samples))
  except UserInputError as e:
    logging.error("%s", errors.message(e))
    sys.exit(2)
  print(markdown(rows, " ".join(sys.argv)))


if __name__ == "__main__":
  define_flags()
  app.run(main)
