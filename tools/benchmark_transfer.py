r"""Fashion-MNIST version of cGANTransfer's Table 1 (left), over seeds.

    python -m tools.benchmark_transfer --out_dir=runs/benchmark_transfer \
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
two-sided paired t-test: a difference counts at p < 0.05. This module holds
the benchmark's methods, claims and flags; how its cells run, are recorded,
scored and reported is `tools.benchlib`.
"""

from __future__ import annotations

from typing import Sequence

from absl import app
from absl import flags
import gin

from tools.benchlib import cells as cells_lib
from tools.benchlib import cli
from tools.benchlib import measures
from tools.benchlib import report
from tools.benchlib import rows as rows_lib
from tools.benchlib import runs
from tools.benchlib import stats

DEFAULT_METHODS = ("cgantransfer", "bsa", "transfergan", "scratch")


def _paired_words(ours: dict[int, dict], other: dict[int, dict],
                  name: str) -> str:
  """"12.00 ± 1.00 vs <name> 18.00 ± 2.00: better (paired ...)"."""
  a = {seed: rows_lib.score(r) for seed, r in ours.items()}
  b = {seed: rows_lib.score(r) for seed, r in other.items()}
  verdict, detail = stats.compare_paired(a, b)
  return (f"{stats.fmt_stats(list(a.values()))} vs {name} "
          f"{stats.fmt_stats(list(b.values()))}: {verdict}"
          f"{f' ({detail})' if detail else ''}")


def _speed_claims(ours: dict[int, dict], bsa: dict[int, dict]
                  ) -> list[str]:
  """cGANTransfer against BSA at one size ({seed: row} of each): per seed,
  the iterations each needs to reach the worse of the two best FIDs (same
  evaluator, same samples), a speed measure that does not depend on where
  the runs stop; then their ratio over seeds."""
  lines, ratios = [], []
  for seed in sorted(set(ours) & set(bsa)):
    o, s = ours[seed], bsa[seed]
    if o["best_fid"] is None or s["best_fid"] is None:
      continue
    target = max(o["best_fid"], s["best_fid"])
    o_step, s_step = (rows_lib.first_step_reaching(o, target),
                      rows_lib.first_step_reaching(s, target))
    if o_step is not None and s_step is not None:
      ratios.append(s_step / max(o_step, 1))
      lines.append(
          f"  - seed {seed}: iterations to reach FID {target:.2f} during "
          f"training: cGANTransfer {o_step}, BSA {s_step}; iteration of "
          f"the best FID {o['best_step']} vs {s['best_step']}; BSA at "
          f"iteration {o['best_step']} (BSA-early): "
          f"{stats.fmt(rows_lib.fid_at(s, o['best_step']))}.")
  if ratios:
    cut = any(rows_lib.best_at_last_evaluation(r)
              for r in list(ours.values()) + list(bsa.values()))
    lines.append(
        f"  - BSA needed {stats.fmt_stats(ratios, '{:.1f}')}x the iterations "
        "(the paper reports >= 3x)" +
        ("; some best FIDs were the last evaluation, so the run length "
         "bounds these figures." if cut else "."))
  return lines


def _variant_claims(rows: Sequence[dict], ours: dict[int, dict],
                    size: int) -> list[str]:
  """Methods outside the paper's table (e.g. cgantransfer_diffaugment),
  each against cGANTransfer: FID and recall."""
  lines = []
  for method in sorted({r["method"] for r in rows} - set(DEFAULT_METHODS)):
    other = rows_lib.by_seed(rows, method, size)
    if not ours or not other:
      continue
    seeds = sorted(set(ours) & set(other))
    parts = []
    for key, name, higher in (("fid", "FID", False),
                              ("recall", "recall", True)):
      a = {seed: rows_lib.result(other[seed], key) for seed in seeds}
      b = {seed: rows_lib.result(ours[seed], key) for seed in seeds}
      if any(v is not None for v in a.values()):
        verdict, detail = stats.compare_paired(a, b, higher_is_better=higher)
        parts.append(f"{name} {stats.fmt_stats(list(a.values()))} vs "
                     f"{stats.fmt_stats(list(b.values()))}: {verdict}"
                     f"{f' ({detail})' if detail else ''}")
    if parts:
      lines.append(
          f"- {size}/class: {method} against cGANTransfer, over the seeds "
          f"both have ({', '.join(map(str, seeds))}): {'; '.join(parts)}.")
  return lines


def transfer_claims(rows: Sequence[dict], size: int) -> list[str]:
  """cGANTransfer's claims at one size, in words, with the numbers."""
  lines = []
  ours, bsa = (rows_lib.by_seed(rows, "cgantransfer", size),
               rows_lib.by_seed(rows, "bsa", size))
  if ours and bsa:
    lines.append(f"- {size}/class: cGANTransfer FID "
                 f"{_paired_words(ours, bsa, 'BSA')}.")
    lines += _speed_claims(ours, bsa)
  scratch = rows_lib.by_seed(rows, "scratch", size)
  if ours and scratch:
    lines.append(f"- {size}/class: cGANTransfer FID "
                 f"{_paired_words(ours, scratch, 'scratch')}.")
  return lines + _variant_claims(rows, ours, size)


def markdown(rows: Sequence[dict], command: str,
             left_out: Sequence[str] = ()) -> str:
  """This benchmark's report (`report.markdown` with `transfer_claims`)."""
  return report.markdown(rows, command, report.COLUMNS, transfer_claims,
                         left_out=left_out)


def run_benchmark(out_dir: str, methods: Sequence[str] = DEFAULT_METHODS,
                  sizes: Sequence[int] = cells_lib.DEFAULT_SIZES,
                  num_steps: int | None = None,
                  eval_gin: Sequence[str] = (),
                  gin_params: Sequence[str] = (),
                  command: str = "",
                  rescore_samples: int | None = (
                      measures.DEFAULT_RESCORE_SAMPLES),
                  seeds: Sequence[int] = (0,), jobs: int = 1,
                  only: str | None = None,
                  argv: Sequence[str] | None = None,
                  report_only: bool = False,
                  record_dir: str | None = None) -> list[dict]:
  """Runs every (method, size, seed); writes results.json, results.md and
  the curves (not with `only`, which runs one cell for a parent process).

  `rescore_samples`: see `runs.run_one` (0: no re-scoring). `argv`: the
  command of the child processes (`runs.train_cells`). `report_only`:
  train nothing; report the finished runs (a benchmark still running, or
  interrupted, gives its partial tables). `record_dir`: see `runs.run_one`.
  Returns the rows; raises what `runs.train_cells` raises.
  """
  cells = cells_lib.method_cells(methods, sizes, seeds)
  rows = runs.train_cells(cells, out_dir, num_steps, eval_gin, gin_params,
                          rescore_samples, jobs, only, argv, report_only,
                          record_dir=record_dir)
  if not only:
    report.write_results(out_dir, rows, markdown(
        rows, command, left_out=cells_lib.unfinished(cells, rows)))
    report.write_curves(rows, out_dir)
  gin.clear_config()
  return rows


FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the flags (only when run as a program, so that tests can
  import several tools)."""
  cli.define_common_flags("runs/benchmark_transfer")
  flags.adopt_module_key_flags(cli)
  flags.DEFINE_list("methods", list(DEFAULT_METHODS),
                    f"Config stems under {cells_lib.CONFIG_DIR} (or .gin "
                    "paths).")


def main(argv: Sequence[str]) -> None:
  cli.run_main(argv, run_benchmark, methods=FLAGS.methods)


if __name__ == "__main__":
  define_flags()
  app.run(main)
