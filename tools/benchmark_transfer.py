r"""Fashion-MNIST version of cGANTransfer's Table 1 (left), over seeds.

    python tools/benchmark_transfer.py --out_dir=runs/benchmark_transfer \
        [--methods=cgantransfer,bsa,transfergan,scratch] \
        [--images_per_class=100,25,10] [--seeds=0,1,2] [--num_steps=1200] \
        [--jobs=2] [--eval_gin=gin_configs/fashion_mnist/eval.gin] \
        [--gin_param=...] [--rescore_samples=10000] \
        [--record_dir=docs/benchmarks/transfer] [--report_only]

For every method, number of images per class and seed, trains
gin_configs/fashion_mnist/<method>.gin (8 source classes -> Bag, Ankle boot)
into <out_dir>/<method>_<images>_s<seed>/, every method at the paper's G
learning rate, 2e-4, for 1200 steps (PROTOCOL: cgantransfer.gin itself runs a
shorter main job at 2e-3, and so would the configs that include it, such as
cgantransfer_diffaugment.gin, without `protocol`). The seed is both the
training seed (`train.seed`: initialisation, data order, latents) and the seed
of the images-per-class subset (`load_training_data.subset_seed`), so that
seeds measure the spread a user would see. The evaluator bound by --eval_gin
scores the EMA generator every `train.eval_every` steps and keeps the best
checkpoint. The best and the final generator are then scored again on
--rescore_samples samples (FID, KID, mFID, mKID, and precision, recall, density
and coverage pooled and per class), and the final generator's FID on the 8
source classes is measured. <out_dir>/results.json holds one row per run;
<out_dir>/results.md one table per size (mean +- sample standard deviation over
seeds), the claims of the paper, and <out_dir>/curves_<size>.png the
FID-vs-iteration curves (mean and min-max band over seeds).

A run that finished before with the same configuration is read, not trained
again, and an interrupted one resumes, so the command can be re-run across
sessions. With --record_dir, each finished row is also kept in
<record_dir>/<run>.json and read from there when its run folder is gone: rows
kept in the repository give the tables again on any machine (--report_only). A
command that would train a recorded run with another configuration (e.g.
another --num_steps) stops before training, since it would overwrite the
record: give it its own --record_dir (and --out_dir: a run folder of another
configuration is refused too, rather than resumed as this one). `--jobs=N`
trains N runs at a time in child processes with one intra-op thread each (on 2
cores, two runs at a time finished 1.18x sooner than one after the other;
docs/RESULTS.md); wall times then include the sharing and compare only between
runs of the same --jobs.

The paper's claims this checks: cGANTransfer's FID at least as good as BSA's
and reached in at least 3x fewer iterations; transfer far ahead of scratch
with few images. Every method runs the same seeds (image subsets and
training seeds), so a claim compares two methods seed by seed, with a
two-sided paired t-test: a difference counts at p < 0.05.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import json
import os
import re
import subprocess
import sys
from typing import Callable, Sequence

from absl import app
from absl import flags
from absl import logging
import gin
import numpy as np
import scipy.stats

# Runnable as `python tools/benchmark_transfer.py` from the repository root.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The other tools (plot_curves draws the curves).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tfgt import config as config_lib  # pylint: disable=g-import-not-at-top
from tfgt import distribute  # pylint: disable=g-import-not-at-top
from tfgt import errors  # pylint: disable=g-import-not-at-top
from tfgt import files  # pylint: disable=g-import-not-at-top
from tfgt import run_folder  # pylint: disable=g-import-not-at-top
# Registers Evaluator and the feature extractors that --eval_gin binds.
import tfgt.eval  # pylint: disable=g-import-not-at-top,unused-import
from tfgt import train as train_lib  # pylint: disable=g-import-not-at-top
from tfgt.errors import UserInputError  # pylint: disable=g-import-not-at-top

import machine  # pylint: disable=g-import-not-at-top

CONFIG_DIR = os.path.join("gin_configs", "fashion_mnist")
DEFAULT_METHODS = ("cgantransfer", "bsa", "transfergan", "scratch")
DEFAULT_SIZES = (100, 25, 10)
DEFAULT_SEEDS = (0, 1, 2)
DONE_FILE = "benchmark.json"
# Bindings of a method's runs in the benchmarks, by cell name (first, so that
# --gin_param and --num_steps override them): cGANTransfer at the paper's G learning rate
# and length, the protocol every other method runs at, rather than the
# faster rate and shorter run its config gives the main job
# (gin_configs/fashion_mnist/cgantransfer.gin; docs/RESULTS.md).
# A method whose config includes one of these runs at that config's protocol
# (cgantransfer_diffaugment.gin at cGANTransfer's), see `protocol`.
PROTOCOL = {"cgantransfer": ("train.g_lr = 2e-4", "train.num_steps = 1200")}
_INCLUDE = re.compile(r"""^\s*include\s+(['"])(.+?)\1""", re.MULTILINE)
# Samples of the final re-scoring of the best and the last generator.
DEFAULT_RESCORE_SAMPLES = 10000
# What the re-scoring computes (the run's evaluator with these metrics).
RESCORE_METRICS = ("fid", "kid", "mfid", "mkid", "prdc", "mprdc")
# Columns of the per-size tables: (result key, heading, format, x factor).
COLUMNS = (("fid", "FID", "{:.2f}", 1), ("precision", "P", "{:.2f}", 1),
           ("recall", "R", "{:.2f}", 1), ("density", "D", "{:.2f}", 1),
           ("coverage", "C", "{:.2f}", 1))


@dataclasses.dataclass(frozen=True)
class Cell:
  """One run of a benchmark.

  Attributes:
    name: the row's label (a method name; the run folder's prefix).
    config: gin file (a stem under CONFIG_DIR or a .gin path).
    images_per_class: IMAGES_PER_CLASS of the run.
    seed: `train.seed` and `load_training_data.subset_seed`.
    params: gin bindings of this cell only (after the benchmark's own).
  """
  name: str
  config: str
  images_per_class: int
  seed: int = 0
  params: tuple[str, ...] = ()

  @property
  def run_name(self) -> str:
    """The run's folder name, and the cell's name for --only."""
    return f"{self.name}_{self.images_per_class}_s{self.seed}"



def config_path(method: str) -> str:
  """A method name (gin file stem under CONFIG_DIR) or a .gin path."""
  path = method if method.endswith(".gin") else os.path.join(
      CONFIG_DIR, f"{method}.gin")
  if not os.path.exists(path):
    known = sorted(_stem(f) for f in os.listdir(CONFIG_DIR)
                   if f.endswith(".gin")) if os.path.isdir(CONFIG_DIR) else []
    raise UserInputError(
        f"No config {path} for method {method!r}. "
        + (f"The nearest configs there are "
           f"{', '.join(config_lib.nearest(method, known, 3))} (all: "
           f"{', '.join(known)}); or give a .gin path."
           if known else f"Run from the repository root (no {CONFIG_DIR} "
           "here), or give a .gin path."))
  return path


def whole_numbers(flag: str, values: Sequence[str],
                  minimum: int = 0) -> list[int]:
  """The integers of a list flag (e.g. --seeds=0,1,2).

  Raises:
    UserInputError: a value is not a whole number >= `minimum`.
  """
  try:
    numbers = [int(v) for v in values]
  except ValueError:
    numbers = None
  if not numbers or min(numbers) < minimum:
    raise UserInputError(
        f"--{flag}={','.join(values)}: give whole numbers >= {minimum} "
        "separated by commas, e.g. --images_per_class=10,25,100 or "
        "--seeds=0,1,2.")
  return numbers


def make_out_dir(path: str, flag: str = "out_dir") -> None:
  """Creates a folder a flag names.

  Raises:
    UserInputError: the path (or a parent) is a file.
  """
  try:
    os.makedirs(path, exist_ok=True)
  except (FileExistsError, NotADirectoryError) as e:
    raise UserInputError(f"--{flag}={path} is a file, or inside one: give "
                         "a folder.") from e


def check_known(kind: str, names: Sequence[str], known: Sequence[str]
                ) -> None:
  """Refuses names (of `kind`, e.g. "methods") that are not in `known`.

  Raises:
    UserInputError: naming the unknown ones and the choices.
  """
  unknown = [n for n in names if n not in known]
  if unknown:
    raise UserInputError(f"Unknown {kind} {unknown}; choose from "
                         f"{', '.join(known)}.")


def method_cells(methods: Sequence[str], sizes: Sequence[int],
                 seeds: Sequence[int]) -> list[Cell]:
  """Every (method, size, seed), sizes first then seeds then methods, so
  that a partial benchmark has whole comparisons."""
  return [Cell(_stem(m), m, size, seed)
          for size in sizes for seed in seeds for m in methods]


def trainable_parameters(model_dir: str) -> dict:
  """Trainable G values of the method configured in gin, for its classes.

  Returns {"g_trainable": total, "g_per_new_class": total / M,
  "g_class_specific": the values of one row of every trained variable with
  a row per class (one per new class, as cGANTransfer's, or one per class,
  as Hyper-Modulation's class embedding)}.
  """
  with open(os.path.join(model_dir, "model", "model.json")) as f:
    class_names = json.load(f)["class_names"]
  method = gin.query_parameter("train.method").scoped_configurable_fn()
  num_old = len(method.source_info().class_names)
  num_new = len(class_names) - num_old
  setup = method.build(class_names)
  total = sum(int(np.prod(v.shape)) for v in setup.g_variables)
  specific = sum(int(np.prod(v.shape[1:])) for v in setup.g_variables
                 if _class_rows(v.shape, num_new, len(class_names)))
  return {"g_trainable": total, "g_per_new_class": total / num_new,
          "g_class_specific": specific}


def _class_rows(shape, num_new: int, num_classes: int) -> bool:
  """A variable with one row per new class or per class: a matrix or more
  whose first dimension is one of those counts, and not a k x k
  convolution kernel [k, k, in, out]."""
  shape = tuple(shape)
  return (len(shape) >= 2 and shape[0] in (num_new, num_classes) and
          not (len(shape) == 4 and shape[0] == shape[1]))


def _stem(config: str) -> str:
  """"cgantransfer" for cgantransfer or any path to cgantransfer.gin."""
  return os.path.splitext(os.path.basename(config))[0]


def protocol(cell: Cell) -> tuple[str, ...]:
  """The PROTOCOL bindings of a method's cell: those of its config's stem,
  else those of the nearest config its config includes (a variant of
  cgantransfer.gin, such as cgantransfer_diffaugment.gin, runs at
  cGANTransfer's protocol, not at the main job's rate and length). A cell
  named otherwise than its config's stem (a setting of
  tools/benchmark_recall.py) runs its config as it is: no bindings."""
  if cell.name != _stem(cell.config):
    return ()
  paths, seen = [cell.config], set()
  while paths:
    path = paths.pop(0)
    if _stem(path) in PROTOCOL:
      return PROTOCOL[_stem(path)]
    if not path.endswith(".gin"):
      path = os.path.join(CONFIG_DIR, f"{path}.gin")
    if path in seen or not os.path.exists(path):
      continue
    seen.add(path)
    with open(path, encoding="utf-8") as f:
      paths += [m.group(2) for m in _INCLUDE.finditer(f.read())]
  return ()


def cell_params(cell: Cell, num_steps: int | None,
                gin_params: Sequence[str]) -> list[str]:
  """The gin bindings of a cell's run, in the order they apply: the
  method's PROTOCOL, the benchmark's --gin_param, the cell's own."""
  params = list(protocol(cell)) + list(gin_params) + [
      f"IMAGES_PER_CLASS = {cell.images_per_class}",
      f"train.seed = {cell.seed}",
      f"load_training_data.subset_seed = {cell.seed}"] + list(cell.params)
  if num_steps is not None:
    params.append(f"train.num_steps = {num_steps}")
  return params


def record_path(record_dir: str, cell: Cell) -> str:
  """Where a benchmark keeps the row of a finished run outside its run
  folder (<record_dir>/<run_name>.json)."""
  return os.path.join(record_dir, f"{cell.run_name}.json")


def cell_config(cell: Cell, num_steps: int | None, eval_gin: Sequence[str],
                gin_params: Sequence[str]) -> tuple[str, int]:
  """The gin configuration a cell trains with, as text, and its steps.

  Leaves gin cleared. Raises what `tfgt.config.parse` raises for a bad
  config or binding.
  """
  gin.clear_config()
  try:
    config_lib.parse([config_path(cell.config)] + list(eval_gin),
                     cell_params(cell, num_steps, gin_params))
    return gin.config_str(), gin.query_parameter("train.num_steps")
  finally:
    gin.clear_config()


def same_configuration(row: dict, config: str, num_steps: int) -> bool:
  """A stored row was trained with this gin configuration (text) and number
  of steps: the one test of `read_done` and `check_records`."""
  return row.get("gin_config") == config and row.get("num_steps") == num_steps


def record_clashes(cells: Sequence[Cell], num_steps: int | None,
                   eval_gin: Sequence[str], gin_params: Sequence[str],
                   record_dir: str) -> list[str]:
  """The records of `cells` in <record_dir> that hold another configuration
  than this command's, as "<path> (<steps> steps)"."""
  clashes = []
  for cell in cells:
    path = record_path(record_dir, cell)
    if not os.path.exists(path):
      continue
    with open(path) as f:
      row = json.load(f)
    if not same_configuration(row, *cell_config(cell, num_steps, eval_gin,
                                                gin_params)):
      clashes.append(f"{path} ({row.get('num_steps')} steps)")
  return clashes


def check_records(cells: Sequence[Cell], num_steps: int | None,
                  eval_gin: Sequence[str], gin_params: Sequence[str],
                  record_dir: str) -> None:
  """Refuses to train a cell whose record holds another configuration.

  A finished run's row in <record_dir> is the only trace of it once its
  run folder is gone (the rows kept in the repository); training the cell
  again with other settings (e.g. --num_steps) would overwrite it.

  Raises:
    UserInputError: naming the records and the two ways out.
  """
  clashes = record_clashes(cells, num_steps, eval_gin, gin_params,
                           record_dir)
  if clashes:
    raise UserInputError(
        f"The records {', '.join(clashes)} hold finished runs of another "
        "configuration than this command's, and training would overwrite "
        "them. Give another --record_dir (e.g. one per --num_steps) to keep "
        "both, or delete those records to replace them.")


def check_run_folders(cells: Sequence[Cell], out_dir: str,
                      num_steps: int | None, eval_gin: Sequence[str],
                      gin_params: Sequence[str],
                      record_dir: str | None = None) -> None:
  """Refuses to resume a run folder trained with another configuration.

  The trainer resumes a folder from its last checkpoint whatever the
  command's configuration: a cell asked for with another --num_steps or
  --gin_param would continue (or stop at once past) the old run and record
  it as the new one. A cell read back from a row of this configuration
  (its benchmark.json or its record) trains nothing and is not refused.

  Raises:
    UserInputError: naming the folders and the two ways out.
  """
  clashes = []
  for cell in cells:
    model_dir = os.path.join(out_dir, cell.run_name)
    path = os.path.join(model_dir, run_folder.CONFIG)
    if not os.path.isfile(path):
      continue
    config, steps = cell_config(cell, num_steps, eval_gin, gin_params)
    with open(path, encoding="utf-8") as f:
      if f.read() == config:
        continue
    record = record_path(record_dir, cell) if record_dir else None
    if read_done(model_dir, config, steps, record) is None:
      clashes.append(model_dir)
  if clashes:
    raise UserInputError(
        ("The run folder {} holds a run" if len(clashes) == 1 else
         "The run folders {} hold runs").format(", ".join(clashes)) +
        " of another configuration than this command's (config.gin differs, "
        "e.g. another --num_steps or --gin_param); training would go on from "
        "the last checkpoint as this command's run. Give another --out_dir "
        "(one per protocol, like --record_dir) to keep both, or delete the "
        "folder to train again.")


def read_done(model_dir: str, config: str, num_steps: int,
              record: str | None = None) -> dict | None:
  """The stored row of a finished run with this exact configuration.

  The run folder's benchmark.json comes first; without it, the `record`
  file (see `record_path`), which outlives the run folder: a benchmark whose
  rows are recorded in the repository reports them on any machine.
  """
  for path in (os.path.join(model_dir, DONE_FILE), record):
    if not path or not os.path.exists(path):
      continue
    with open(path) as f:
      row = json.load(f)
    if same_configuration(row, config, num_steps):
      logging.info("%s: finished before, reading its results from %s.",
                   model_dir, path)
      return row
    logging.info("%s: %s has another configuration.", model_dir, path)
  return None


def run_one(cell: Cell, out_dir: str, num_steps: int | None,
            eval_gin: Sequence[str], gin_params: Sequence[str],
            rescore_samples: int | None = DEFAULT_RESCORE_SAMPLES,
            train_fn: Callable[[str], dict] | None = None,
            extra_scores: dict[str, Callable[[str], object]] | None = None,
            record_dir: str | None = None) -> dict:
  """Trains (or reads) one run and returns its row.

  A run whose benchmark.json was written with the same gin configuration is
  read back; an interrupted run resumes from its checkpoint. The wall time
  comes from the run's TensorBoard events, so it covers every session of a
  resumed run. With `rescore_samples`, the best and the final generator are
  scored again on that many samples (None: as many as real images) with the
  run's evaluator and RESCORE_METRICS: the best FID during training is the
  minimum of noisy estimates on fewer samples.

  Args:
    train_fn: trains the configured run into a folder (default
      `tfgt.train.train`); returns the trainer's metrics.
    extra_scores: {row key: fn(model_dir) -> JSON-able value}, computed
      for a finished run that does not have the key yet.
    record_dir: also keep the finished row in <record_dir>/<run_name>.json
      and read it from there when the run folder is gone (`read_done`).
  """
  model_dir = os.path.join(out_dir, cell.run_name)
  record = record_path(record_dir, cell) if record_dir else None
  gin.clear_config()
  config_lib.parse([config_path(cell.config)] + list(eval_gin),
                   cell_params(cell, num_steps, gin_params))
  config = gin.config_str()
  steps = gin.query_parameter("train.num_steps")
  done_path = os.path.join(model_dir, DONE_FILE)
  row = read_done(model_dir, config, steps, record)
  if row is None:
    metrics = (train_fn or train_lib.train)(model_dir)
    row = dict(method=cell.name, images_per_class=cell.images_per_class,
               seed=cell.seed, model_dir=model_dir, num_steps=steps,
               gin_config=config,
               wall_time_s=training_wall_time(model_dir),
               steps_per_sec=metrics.get("steps_per_sec"),
               intra_op_threads=_intra_op_threads(),
               cpu=machine.cpu_description(),
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
  missing = _missing_scores(row, rescore_samples, tuple(extra_scores or ()))
  if missing and not os.path.isdir(model_dir):
    raise ValueError(
        f"{cell.run_name}: its row in {record} has no {', '.join(missing)}, "
        f"and its run folder {model_dir} (which those are scored from) is "
        "gone. Delete the record to train the run again, or run without the "
        "options that ask for those scores.")
  scorers = {"rescored": lambda d: rescore(d, rescore_samples),
             "old_class_fid": lambda d: old_class_fid(d, rescore_samples),
             **(extra_scores or {})}
  for key in missing:
    logging.info("%s: scoring %s.", cell.run_name, key)
    row[key] = scorers[key](model_dir)
    files.write_json(done_path, row)
  if record:
    make_out_dir(record_dir, "record_dir")
    files.write_json(record, row)
  gin.clear_config()
  return row


def _missing_scores(row: dict, rescore_samples: int | None,
                    extra_keys: Sequence[str]) -> list[str]:
  """The keys `run_one` still has to score for `row`, in its order: the
  re-scoring (with `rescore_samples` != 0, of a run with a best step), the
  old classes' FID (with `rescore_samples` != 0), then `extra_keys`."""
  keys = []
  if rescore_samples != 0:
    if row.get("best_step") is not None:
      keys.append("rescored")
    keys.append("old_class_fid")
  return [k for k in keys + list(extra_keys) if k not in row]


def _intra_op_threads() -> int:
  """The process's intra-op threads (0: TensorFlow's default, all cores)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return int(tf.config.threading.get_intra_op_parallelism_threads() or
             os.environ.get("TF_NUM_INTRAOP_THREADS", 0))


def rescore(model_dir: str, num_samples: int | None) -> dict:
  """{"best"|"final": {metric: value}} of the run's evaluator on more
  samples, with RESCORE_METRICS (per-class values under "per_class").

  Uses `python -m tfgt.evaluate`'s code path: the run's config.gin (data and
  evaluator), its best and latest bundles.
  """
  from tfgt import evaluate  # pylint: disable=g-import-not-at-top
  out = {}
  for name, checkpoint in (("best", "best"), ("final", "latest")):
    result, _ = evaluate.run(model_dir, checkpoint,
                             overrides=dict(num_samples=num_samples,
                                            metrics=RESCORE_METRICS))
    out[name] = {k: float(v) for k, v in result.metrics.items()}
    out[name]["per_class"] = result.per_class
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
    if spec["architecture"] == "hypermod":
      # Its one old class is the unconditional source's (several dataset
      # classes merged), and the hypernetwork modulates it too.
      return None
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


def result(row: dict, key: str, which: str = "best") -> float | None:
  """A re-scored result of the best or final generator (or the best one's
  path length, row["ppl"]); for "fid", the training estimate when the run
  was not re-scored."""
  rescored = dict((row.get("rescored") or {}).get(which) or {})
  if which == "best":
    rescored.update(row.get("ppl") or {})
  if key in rescored:
    return rescored[key]
  if key == "fid":
    return row["best_fid"] if which == "best" else row.get("final_fid")
  return None


def score(row: dict, which: str = "best") -> float | None:
  """The re-scored FID of the best or final generator, else the training
  estimate."""
  return result(row, "fid", which)


def best_at_last_evaluation(row: dict) -> bool:
  """The FID was still improving when the run stopped."""
  history = row.get("fid_history") or []
  return bool(history) and row.get("best_step") == history[-1][0]


def stats(values: Sequence[float | None]) -> tuple[float, float | None, int
                                                    ] | None:
  """(mean, sample standard deviation or None for one value, count) of the
  values that are not None; None when there are none."""
  values = [float(v) for v in values if v is not None]
  if not values:
    return None
  std = float(np.std(values, ddof=1)) if len(values) > 1 else None
  return float(np.mean(values)), std, len(values)


def fmt_stats(values: Sequence[float | None], pattern: str = "{:.2f}",
              factor: float = 1.0) -> str:
  """"mean ± std" over seeds ("mean" for one seed, "-" for none)."""
  s = stats(values)
  if s is None:
    return "-"
  mean, std, _ = s
  text = pattern.format(mean * factor)
  return text if std is None else f"{text} ± {pattern.format(std * factor)}"


def compare_paired(a: dict[int, float | None], b: dict[int, float | None],
                   higher_is_better: bool = False) -> tuple[str, str]:
  """(verdict, detail) of a against b, seed by seed.

  Every method of a benchmark runs the same seeds, that is the same image
  subsets and training seeds, so the differences per seed carry less of the
  subset's luck than the two means do. The verdict is "better" or "worse"
  when a two-sided paired t-test (scipy.stats.ttest_rel) over the seeds that
  both have gives p < 0.05 (or every difference is the same non-zero value),
  "within the spread" otherwise, "fewer than 2 seeds" when fewer than two
  seeds have both. The detail gives the mean difference a - b with its
  standard deviation and p.
  """
  seeds = sorted(s for s in set(a) & set(b)
                 if a[s] is not None and b[s] is not None)
  if len(seeds) < 2:
    return "fewer than 2 seeds", ""
  diffs = np.array([float(a[s]) - float(b[s]) for s in seeds])
  mean, std = float(diffs.mean()), float(diffs.std(ddof=1))
  if np.ptp(diffs) == 0:  # The t statistic is undefined.
    p = 0.0 if diffs[0] != 0 else 1.0
  else:
    p = float(scipy.stats.ttest_rel([a[s] for s in seeds],
                                    [b[s] for s in seeds]).pvalue)
  detail = (f"paired over {len(seeds)} seeds: difference {mean:+.2f} ± "
            f"{std:.2f}, p = {p:.2g}")
  if not p < 0.05:  # Also when p is NaN.
    return "within the spread", detail
  return ("better" if (mean > 0) == higher_is_better else "worse"), detail


def group(rows: Sequence[dict]) -> dict[tuple[str, int], list[dict]]:
  """{(method, images per class): rows of its seeds}, in row order."""
  out: dict[tuple[str, int], list[dict]] = {}
  for r in rows:
    out.setdefault((r["method"], r["images_per_class"]), []).append(r)
  return out


def images_per_sec(row: dict) -> float | None:
  """Training images per second of a run: its steps/s (the trainer's rate
  over its last logged steps, evaluations and checkpoints excluded) x the
  batch size of its gin configuration; None when the row lacks either."""
  batch = re.search(r"^train\.batch_size = (\d+)$", row.get("gin_config", ""),
                    re.M)
  rate = row.get("steps_per_sec")
  return rate * int(batch.group(1)) if batch and rate else None


def size_table(rows: Sequence[dict], size: int,
               columns: Sequence[tuple] = COLUMNS) -> list[str]:
  """The Markdown table of one size: a line per method, mean ± std over its
  seeds of the best generator's re-scored results, then the best
  iteration, the final FID, the old classes' FID and the cost."""
  by_cell = group(rows)
  methods = [m for m, s in by_cell if s == size]
  head = ("| method | seeds | " + " | ".join(c[1] for c in columns) +
          " | best iteration | final FID | old-class FID | wall time (min) | "
          "images/s | G values per new class | class-specific per new class |")
  lines = [head, "|---|" + "---|" * (len(columns) + 8)]
  for m in methods:
    cell = by_cell[(m, size)]
    last = sum(best_at_last_evaluation(r) for r in cell)
    steps = fmt_stats([r.get("best_step") for r in cell], "{:.0f}")
    if last:
      steps += f" ({last} at the end)"
    specific = cell[-1].get("g_class_specific")
    lines.append(
        f"| {m} | {len(cell)} | " + " | ".join(
            fmt_stats([result(r, key) for r in cell], pattern, factor)
            for key, _, pattern, factor in columns) +
        f" | {steps} | {fmt_stats([score(r, 'final') for r in cell])} | "
        f"{fmt_stats([r.get('old_class_fid') for r in cell])} | "
        f"{fmt_stats([r['wall_time_s'] / 60 for r in cell], '{:.1f}')} | "
        f"{fmt_stats([images_per_sec(r) for r in cell], '{:.0f}')} | "
        f"{_fmt(cell[-1].get('g_per_new_class'), '{:,.0f}')} | "
        f"{_fmt(specific or None, '{:,.0f}')} |")
  return lines


def by_seed(rows: Sequence[dict], method: str, size: int) -> dict[int, dict]:
  return {r.get("seed", 0): r for r in rows
          if r["method"] == method and r["images_per_class"] == size}


def transfer_claims(rows: Sequence[dict], size: int) -> list[str]:
  """cGANTransfer's claims at one size, in words, with the numbers."""
  lines = []
  ours, bsa = (by_seed(rows, "cgantransfer", size),
               by_seed(rows, "bsa", size))
  if ours and bsa:
    lines.append(f"- {size}/class: cGANTransfer FID "
                 f"{_paired_words(ours, bsa, 'BSA')}.")
    # Per seed, the iterations each needs to reach the worse of the two best
    # FIDs (same evaluator, same samples): a speed measure that does not
    # depend on where the runs stop.
    ratios = []
    for seed in sorted(set(ours) & set(bsa)):
      o, s = ours[seed], bsa[seed]
      if o["best_fid"] is None or s["best_fid"] is None:
        continue
      target = max(o["best_fid"], s["best_fid"])
      o_step, s_step = (first_step_reaching(o, target),
                        first_step_reaching(s, target))
      if o_step is not None and s_step is not None:
        ratios.append(s_step / max(o_step, 1))
        lines.append(
            f"  - seed {seed}: iterations to reach FID {target:.2f} during "
            f"training: cGANTransfer {o_step}, BSA {s_step}; iteration of "
            f"the best FID {o['best_step']} vs {s['best_step']}; BSA at "
            f"iteration {o['best_step']} (BSA-early): "
            f"{_fmt(fid_at(s, o['best_step']))}.")
    if ratios:
      cut = any(best_at_last_evaluation(r)
                for r in list(ours.values()) + list(bsa.values()))
      lines.append(
          f"  - BSA needed {fmt_stats(ratios, '{:.1f}')}x the iterations "
          "(the paper reports >= 3x)" +
          ("; some best FIDs were the last evaluation, so the run length "
           "bounds these figures." if cut else "."))
  scratch = by_seed(rows, "scratch", size)
  if ours and scratch:
    lines.append(f"- {size}/class: cGANTransfer FID "
                 f"{_paired_words(ours, scratch, 'scratch')}.")
  # Methods outside the paper's table (e.g. cgantransfer_diffaugment),
  # each against cGANTransfer: FID and recall.
  for method in sorted({r["method"] for r in rows} - set(DEFAULT_METHODS)):
    other = by_seed(rows, method, size)
    if not ours or not other:
      continue
    seeds = sorted(set(ours) & set(other))
    parts = []
    for key, name, higher in (("fid", "FID", False),
                              ("recall", "recall", True)):
      a = {seed: result(other[seed], key) for seed in seeds}
      b = {seed: result(ours[seed], key) for seed in seeds}
      if any(v is not None for v in a.values()):
        verdict, detail = compare_paired(a, b, higher_is_better=higher)
        parts.append(f"{name} {fmt_stats(list(a.values()))} vs "
                     f"{fmt_stats(list(b.values()))}: {verdict}"
                     f"{f' ({detail})' if detail else ''}")
    if parts:
      lines.append(
          f"- {size}/class: {method} against cGANTransfer, over the seeds "
          f"both have ({', '.join(map(str, seeds))}): {'; '.join(parts)}.")
  return lines


def _paired_words(ours: dict[int, dict], other: dict[int, dict],
                  name: str) -> str:
  """"12.00 ± 1.00 vs <name> 18.00 ± 2.00: better (paired ...)"."""
  a = {seed: score(r) for seed, r in ours.items()}
  b = {seed: score(r) for seed, r in other.items()}
  verdict, detail = compare_paired(a, b)
  return (f"{fmt_stats(list(a.values()))} vs {name} "
          f"{fmt_stats(list(b.values()))}: {verdict}"
          f"{f' ({detail})' if detail else ''}")


CLAIMS_INTRO = (
    "Claims of the paper. Every method ran the same seeds (the same image "
    "subsets and training seeds), so a claim compares two methods seed by "
    "seed: the mean difference, its standard deviation and a two-sided "
    "paired t-test; the difference counts at p < 0.05:")


def markdown(rows: list[dict], command: str,
             columns: Sequence[tuple] = COLUMNS,
             claims: Callable[[Sequence[dict], int], list[str]] = (
                 transfer_claims),
             claims_intro: str = CLAIMS_INTRO,
             left_out: Sequence[str] = ()) -> str:
  """One table per size, then the claims (`claims`, introduced by
  `claims_intro`), as Markdown; `left_out` names the runs not finished
  (see `unfinished`)."""
  sizes = sorted({r["images_per_class"] for r in rows}, reverse=True)
  samples = sorted({(r.get("rescored") or {}).get("num_samples") for r in rows
                    if r.get("rescored")})
  lines = [
      "Mean ± sample standard deviation over seeds (the seed of the image "
      "subset and of training). The best generator (the iteration of the "
      "best FID during training) re-scored on " +
      (f"{', '.join(str(n) for n in samples)} samples" if samples else
       "the training evaluations' samples") +
      "; the final FID is the last generator's; the old-class FID is the "
      "final generator's on the source classes. Wall time per run "
      "(training and its evaluations) and training images/s (steps/s x "
      "batch over the last logged steps, evaluations excluded); trained G "
      "values per new class, and "
      "the class-specific ones (one row per new class)."]
  cpus = collections.Counter(r.get("cpu", "a CPU not recorded")
                             for r in rows)
  if cpus:
    lines += ["", "Trained on " + "; ".join(
        f"{cpu} ({n} run{'s' if n > 1 else ''})" for cpu, n in cpus.items())
              + ". Wall times compare between runs on one CPU only."]
  for size in sizes:
    lines += ["", f"{size} images per class:", ""]
    lines += size_table(rows, size, columns)
  claim_lines = [line for size in sizes for line in claims(rows, size)]
  if claim_lines:
    lines += ["", claims_intro]
    lines += claim_lines
  if left_out:
    lines += ["", f"Not finished, left out of these tables ({len(left_out)} "
              f"run{'s' if len(left_out) > 1 else ''}): "
              f"{', '.join(left_out)}."]
  lines += ["", f"Command: `{command}`", ""]
  return "\n".join(lines)


def unfinished(cells: Sequence[Cell], rows: Sequence[dict]) -> list[str]:
  """The run names of `cells` that have no row in `rows`."""
  have = {(r["method"], r["images_per_class"], r.get("seed", 0))
          for r in rows}
  return [c.run_name for c in cells
          if (c.name, c.images_per_class, c.seed) not in have]


def write_curves(rows: Sequence[dict], out_dir: str, tag: str = "fid",
                 logdir: str | None = None) -> list[str]:
  """One PNG per size (`curves_<size>.png` in out_dir): the FID of the
  training evaluations (the run's evaluator and samples, not the
  re-scoring) against the iteration for every method, mean and min-max
  band over seeds; with `logdir`, also as TensorBoard images. Returns the
  paths written."""
  import plot_curves  # pylint: disable=g-import-not-at-top
  paths = []
  for size in sorted({r["images_per_class"] for r in rows}):
    groups = {}
    for (method, s), cell in group(rows).items():
      histories = [r["fid_history"] for r in cell if r.get("fid_history")]
      if s == size and histories:
        groups[method] = histories
    if groups:
      path = os.path.join(out_dir, f"curves_{size}.png")
      plot_curves.save(
          plot_curves.plot_groups(groups, f"{tag.upper()} during training",
                                  f"{size} images per class"), path,
          logdir, f"curves_{size}")
      paths.append(path)
  return paths


# ------------------------------------------------------------ running cells
def child_command(argv: Sequence[str], cell: Cell) -> list[str]:
  """The command line of a child process that runs one cell: this program's
  own arguments, without --jobs and --only, plus --only=<cell>."""
  keep = [a for a in argv[1:]
          if not a.startswith(("--jobs", "--only"))]
  return [sys.executable, argv[0]] + keep + [f"--only={cell.run_name}", "--jobs=1"]


def run_cells(cells: Sequence[Cell], run_fn: Callable[[Cell], dict],
              is_done: Callable[[Cell], bool], out_dir: str, jobs: int = 1,
              argv: Sequence[str] | None = None,
              report_only: bool = False) -> list[dict]:
  """Runs every cell and returns their rows, in the order of `cells`.

  With jobs > 1, the cells that `is_done` does not accept run in child
  processes (`child_command`), `jobs` at a time, each with one intra-op and
  one inter-op thread and its log in <out_dir>/<run_name>.log; their rows
  are then read back with `run_fn`. With `report_only`, nothing trains: the
  rows are those of the finished cells (the others are logged as pending).

  Raises:
    RuntimeError: a child process failed (its log is named).
  """
  if report_only:
    pending = [c.run_name for c in cells if not is_done(c)]
    if pending:
      logging.warning("Benchmark: not finished, left out of the report: %s.",
                      ", ".join(pending))
    cells = [c for c in cells if c.run_name not in pending]
  elif jobs > 1:
    todo = [c for c in cells if not is_done(c)]
    env = machine.one_thread_env()

    def child(cell: Cell) -> tuple[Cell, int]:
      log = os.path.join(out_dir, f"{cell.run_name}.log")
      logging.info("Benchmark: %s in a child process (log %s).",
                   cell.run_name, log)
      with open(log, "a") as f:
        return cell, subprocess.call(child_command(argv or sys.argv, cell),
                                     stdout=f, stderr=subprocess.STDOUT,
                                     env=env)

    failed = []
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
      for cell, code in pool.map(child, todo):
        if code:
          failed.append(f"{cell.run_name} (exit code {code}, log "
                        f"{os.path.join(out_dir, cell.run_name + '.log')})")
    if failed:
      raise RuntimeError("Benchmark runs failed: " + "; ".join(failed) +
                         ". Their checkpoints are kept: fix the cause and run "
                         "the same command again to resume them.")
  rows = []
  for cell in cells:
    logging.info("Benchmark: %s.", cell.run_name)
    rows.append(run_fn(cell))
  return rows


def select(cells: Sequence[Cell], only: str | None) -> list[Cell]:
  """The cells named by --only (all when None).

  Raises:
    UserInputError: --only names no cell.
  """
  if not only:
    return list(cells)
  chosen = [c for c in cells if c.run_name == only]
  if not chosen:
    raise UserInputError(
        f"--only={only!r} is not a run of this benchmark; its runs are "
        f"{', '.join(c.run_name for c in cells)}.")
  return chosen


def is_finished(cell: Cell, out_dir: str, num_steps: int | None,
                eval_gin: Sequence[str], gin_params: Sequence[str],
                extra_keys: Sequence[str] = (),
                record_dir: str | None = None,
                rescore_samples: int | None = DEFAULT_RESCORE_SAMPLES
                ) -> bool:
  """The cell's run finished with this configuration and was scored (with
  the `extra_keys` of `run_one`'s extra_scores too), by its run folder or
  its record in `record_dir`."""
  config, steps = cell_config(cell, num_steps, eval_gin, gin_params)
  row = read_done(os.path.join(out_dir, cell.run_name), config, steps,
                  record_path(record_dir, cell) if record_dir else None)
  return row is not None and not _missing_scores(row, rescore_samples,
                                                 extra_keys)


def check_reportable(cells: Sequence[Cell], is_done: Callable[[Cell], bool],
                     out_dir: str, num_steps: int | None,
                     eval_gin: Sequence[str], gin_params: Sequence[str],
                     record_dir: str | None = None) -> None:
  """Refuses a report (--report_only) in which no run finished with this
  command's configuration (`is_done`, the test `run_cells` reports by): an
  empty table would look like a result.

  Raises:
    UserInputError: saying where it looked and, when records of another
      configuration are there, what to give to read them.
  """
  if any(is_done(c) for c in cells):
    return
  clashes = (record_clashes(cells, num_steps, eval_gin, gin_params,
                            record_dir) if record_dir else [])
  raise UserInputError(
      f"Nothing to report: none of the {len(cells)} runs finished with this "
      f"command's configuration in --out_dir={out_dir}" +
      (f" or --record_dir={record_dir}" if record_dir else "") + "." +
      (f" The records {', '.join(clashes)} hold runs of another "
       "configuration: give the --num_steps, --gin_param and --eval_gin they "
       "ran with (each record's num_steps and gin_config)." if clashes else
       " Train them first (the same command without --report_only)."))


def train_cells(cells: Sequence[Cell], out_dir: str,
                num_steps: int | None, eval_gin: Sequence[str],
                gin_params: Sequence[str],
                rescore_samples: int | None = DEFAULT_RESCORE_SAMPLES,
                jobs: int = 1, only: str | None = None,
                argv: Sequence[str] | None = None, report_only: bool = False,
                extra_scores: dict[str, Callable[[str], object]] | None = None,
                record_dir: str | None = None) -> list[dict]:
  """The rows of `cells` (those `only` names, when given): each trained,
  resumed or read back by `run_one`, `jobs` at a time (`run_cells`).

  The one way every benchmark of this kind runs its cells; the arguments
  are `run_one`'s and `run_cells`'. Raises what they raise, and before
  anything trains or any folder is made, UserInputError for an unknown
  method, a missing --record_dir of a report, a report with nothing
  finished (`check_reportable`), and the clashes that `check_records` and
  `check_run_folders` find.
  """
  cells = select(cells, only)
  for config in sorted({c.config for c in cells}):
    config_path(config)
  if report_only and record_dir and not os.path.isdir(record_dir):
    raise UserInputError(
        f"--record_dir={record_dir} does not exist, so there are no records "
        "to report: check the path (the repository's records are in "
        "docs/benchmarks/<benchmark>), or leave the flag out to report the "
        "runs of --out_dir.")
  make_out_dir(out_dir)

  def is_done(cell: Cell) -> bool:
    return is_finished(cell, out_dir, num_steps, eval_gin, gin_params,
                       tuple(extra_scores or ()), record_dir, rescore_samples)

  if report_only:
    check_reportable(cells, is_done, out_dir, num_steps, eval_gin,
                     gin_params, record_dir)
  else:
    if record_dir:
      check_records(cells, num_steps, eval_gin, gin_params, record_dir)
    check_run_folders(cells, out_dir, num_steps, eval_gin, gin_params,
                      record_dir)
  return run_cells(
      cells,
      lambda c: run_one(c, out_dir, num_steps, eval_gin, gin_params,
                        rescore_samples, extra_scores=extra_scores,
                        record_dir=record_dir),
      is_done, out_dir, jobs if not only else 1, argv, report_only=report_only)


def write_results(out_dir: str, results, text: str) -> None:
  """Writes <out_dir>/results.json (`results`, JSON-able) and results.md."""
  files.write_json(os.path.join(out_dir, "results.json"), results)
  files.write_text(os.path.join(out_dir, "results.md"), text)


def print_results(out_dir: str) -> None:
  """Prints <out_dir>/results.md, the report `write_results` wrote."""
  with open(os.path.join(out_dir, "results.md"), encoding="utf-8") as f:
    print(f.read())


def run_benchmark(out_dir: str, methods: Sequence[str] = DEFAULT_METHODS,
                  sizes: Sequence[int] = DEFAULT_SIZES,
                  num_steps: int | None = None,
                  eval_gin: Sequence[str] = (),
                  gin_params: Sequence[str] = (),
                  command: str = "",
                  rescore_samples: int | None = DEFAULT_RESCORE_SAMPLES,
                  seeds: Sequence[int] = (0,), jobs: int = 1,
                  only: str | None = None,
                  argv: Sequence[str] | None = None,
                  report_only: bool = False,
                  record_dir: str | None = None) -> list[dict]:
  """Runs every (method, size, seed); writes results.json, results.md and
  the curves (not with `only`, which runs one cell for a parent process).

  `rescore_samples`: see `run_one` (0: no re-scoring). `report_only`: train
  nothing; report the finished runs (a benchmark still running, or
  interrupted, gives its partial tables). `record_dir`: see `run_one`.
  """
  cells = method_cells(methods, sizes, seeds)
  rows = train_cells(cells, out_dir, num_steps, eval_gin, gin_params,
                     rescore_samples, jobs, only, argv, report_only,
                     record_dir=record_dir)
  if not only:
    write_results(out_dir, rows, markdown(
        rows, command, left_out=unfinished(cells, rows)))
    write_curves(rows, out_dir)
  gin.clear_config()
  return rows


FLAGS = flags.FLAGS


def define_common_flags(out_dir: str) -> None:
  """Flags that every benchmark of this kind shares."""
  flags.DEFINE_string("out_dir", out_dir, "Where the runs and results go.")
  flags.DEFINE_list("images_per_class", [str(s) for s in DEFAULT_SIZES],
                    "Images per target class.")
  flags.DEFINE_list("seeds", [str(s) for s in DEFAULT_SEEDS],
                    "Seeds of the image subset and of training, per cell.")
  flags.DEFINE_integer("num_steps", None,
                       "Overrides train.num_steps of every config.")
  flags.DEFINE_multi_string("eval_gin", [os.path.join(CONFIG_DIR, "eval.gin")],
                            "Gin files binding train.evaluator (empty: none).")
  flags.DEFINE_multi_string("gin_param", [], "Extra gin bindings.")
  flags.DEFINE_integer("rescore_samples", DEFAULT_RESCORE_SAMPLES,
                       "Samples for re-scoring the best and the final "
                       "generator of each run (0: none; -1: as many as "
                       "real images).")
  flags.DEFINE_integer("jobs", 1, "Runs at a time, in child processes with "
                       "one intra-op thread each (1: in this process).")
  flags.DEFINE_string("only", None, "Run this one cell (<method>_<images>_s"
                      "<seed>) and write no tables (used by --jobs).")
  flags.DEFINE_integer("logical_cpus", 0, "Split the CPU into this many "
                       "logical devices.")
  flags.DEFINE_bool("report_only", False, "Train nothing: write the tables "
                    "and figures of the runs finished so far.")
  flags.DEFINE_bool("fixed_addresses", False, "Run this benchmark and its "
                    "child processes without address-space layout "
                    "randomisation (setarch -R), so that a run repeats bit "
                    "for bit where a kernel's round-off depends on buffer "
                    "alignment (docs/RESULTS.md).")
  flags.DEFINE_string("record_dir", None, "Also keep each finished run's row "
                      "in <record_dir>/<run>.json, and count a run recorded "
                      "there with the same configuration as finished when "
                      "its folder is gone (e.g. a folder of the repository, "
                      "so that the tables come back on another machine).")


def define_flags() -> None:
  """Defines the flags (only when run as a program, so that tests can
  import several tools)."""
  define_common_flags("runs/benchmark_transfer")
  flags.DEFINE_list("methods", list(DEFAULT_METHODS),
                    f"Config stems under {CONFIG_DIR} (or .gin paths).")


@contextlib.contextmanager
def command_line_errors():
  """Exits as tfgt.train does: 2 with the message for bad input, 130 on
  Ctrl-C and 143 on SIGTERM (the runs have saved their checkpoints)."""
  try:
    yield
  except UserInputError as e:
    logging.error("%s", errors.message(e))
    sys.exit(2)
  except KeyboardInterrupt:
    sys.exit(130)
  except train_lib.Interrupted:
    sys.exit(143)


def fix_addresses_if_asked() -> None:
  """With --fixed_addresses, runs this program again under `setarch -R`
  (once: the new process has the personality already); its child processes
  inherit it. Exits 2 where that cannot be had."""
  if not FLAGS.fixed_addresses or machine.addresses_fixed():
    return
  try:
    command = machine.with_fixed_addresses([sys.executable] + sys.argv)
  except ValueError as e:
    logging.error("%s", e)
    sys.exit(2)
  logging.info("Running again without address randomisation: %s",
               " ".join(command[:3]))
  sys.stdout.flush()
  sys.stderr.flush()
  os.execv(command[0], command)


def rescore_flag() -> int | None:
  return None if FLAGS.rescore_samples < 0 else FLAGS.rescore_samples


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  fix_addresses_if_asked()
  distribute.split_cpu(FLAGS.logical_cpus)
  with command_line_errors():
    run_benchmark(
        FLAGS.out_dir, FLAGS.methods,
        whole_numbers("images_per_class", FLAGS.images_per_class, 1),
        FLAGS.num_steps, [g for g in FLAGS.eval_gin if g], FLAGS.gin_param,
        command=" ".join(sys.argv), rescore_samples=rescore_flag(),
        seeds=whole_numbers("seeds", FLAGS.seeds), jobs=FLAGS.jobs,
        only=FLAGS.only, argv=sys.argv, report_only=FLAGS.report_only,
        record_dir=FLAGS.record_dir)
  if not FLAGS.only:
    print_results(FLAGS.out_dir)


if __name__ == "__main__":
  define_flags()
  app.run(main)
