"""A benchmark's report: one Markdown table per size, its claims, the
results files and the FID curves."""

from __future__ import annotations

import collections
import os
from typing import Callable, Sequence

from tfgt import files
from tools.benchlib import figures
from tools.benchlib import rows as rows_lib
from tools.benchlib import stats

# Columns of the per-size tables: (result key, heading, format, x factor).
COLUMNS = (("fid", "FID", "{:.2f}", 1), ("precision", "P", "{:.2f}", 1),
           ("recall", "R", "{:.2f}", 1), ("density", "D", "{:.2f}", 1),
           ("coverage", "C", "{:.2f}", 1))
CLAIMS_INTRO = (
    "Claims of the paper. Every method ran the same seeds (the same image "
    "subsets and training seeds), so a claim compares two methods seed by "
    "seed: the mean difference, its standard deviation and a two-sided "
    "paired t-test; the difference counts at p < 0.05:")
# A benchmark's claims at one size: fn(rows, size) -> Markdown lines.
Claims = Callable[[Sequence[dict], int], list[str]]


def size_table(rows: Sequence[dict], size: int,
               columns: Sequence[tuple] = COLUMNS) -> list[str]:
  """The Markdown table of one size: a line per method, mean ± std over its
  seeds of the best generator's re-scored results, then the best
  iteration, the final FID, the old classes' FID and the cost."""
  by_cell = rows_lib.group(rows)
  methods = [m for m, s in by_cell if s == size]
  head = ("| method | seeds | " + " | ".join(c[1] for c in columns) +
          " | best iteration | final FID | old-class FID | wall time (min) | "
          "images/s | G values per new class | class-specific per new class |")
  lines = [head, "|---|" + "---|" * (len(columns) + 8)]
  for m in methods:
    cell = by_cell[(m, size)]
    results = [stats.fmt_stats([rows_lib.result(r, key) for r in cell],
                               pattern, factor)
               for key, _, pattern, factor in columns]
    last = sum(rows_lib.best_at_last_evaluation(r) for r in cell)
    steps = stats.fmt_stats([r.get("best_step") for r in cell], "{:.0f}")
    if last:
      steps += f" ({last} at the end)"
    specific = cell[-1].get("g_class_specific")
    cost = [
        steps, stats.fmt_stats([rows_lib.score(r, "final") for r in cell]),
        stats.fmt_stats([r.get("old_class_fid") for r in cell]),
        stats.fmt_stats([r["wall_time_s"] / 60 for r in cell], "{:.1f}"),
        stats.fmt_stats([rows_lib.images_per_sec(r) for r in cell],
                        "{:.0f}"),
        stats.fmt(cell[-1].get("g_per_new_class"), "{:,.0f}"),
        stats.fmt(specific or None, "{:,.0f}")]
    lines.append(f"| {m} | {len(cell)} | " + " | ".join(results + cost) +
                 " |")
  return lines


def _preamble(rows: Sequence[dict]) -> list[str]:
  """What the tables hold, and the CPUs the runs trained on."""
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
  return lines


def markdown(rows: Sequence[dict], command: str,
             columns: Sequence[tuple] = COLUMNS,
             claims: Claims | None = None,
             claims_intro: str = CLAIMS_INTRO,
             left_out: Sequence[str] = ()) -> str:
  """The report as Markdown.

  Args:
    rows: the finished runs' rows.
    command: the command line, quoted at the end.
    columns: the result columns of the tables (see COLUMNS).
    claims: the benchmark's claims at one size (none when None),
      introduced by `claims_intro`.
    claims_intro: the line before the claims.
    left_out: the runs not finished (`cells.unfinished`), named.

  Returns:
    One table per size (largest first), the claims, what was left out and
    the command.
  """
  sizes = sorted({r["images_per_class"] for r in rows}, reverse=True)
  lines = _preamble(rows)
  for size in sizes:
    lines += ["", f"{size} images per class:", ""]
    lines += size_table(rows, size, columns)
  claim_lines = ([line for size in sizes for line in claims(rows, size)]
                 if claims else [])
  if claim_lines:
    lines += ["", claims_intro]
    lines += claim_lines
  if left_out:
    lines += ["", f"Not finished, left out of these tables ({len(left_out)} "
              f"run{'s' if len(left_out) > 1 else ''}): "
              f"{', '.join(left_out)}."]
  lines += ["", f"Command: `{command}`", ""]
  return "\n".join(lines)


def write_curves(rows: Sequence[dict], out_dir: str, tag: str = "fid",
                 logdir: str | None = None) -> list[str]:
  """One PNG per size (`curves_<size>.png` in out_dir): the FID of the
  training evaluations (the run's evaluator and samples, not the
  re-scoring) against the iteration for every method, mean and min-max
  band over seeds; with `logdir`, also as TensorBoard images. Returns the
  paths written."""
  paths = []
  for size in sorted({r["images_per_class"] for r in rows}):
    groups = {}
    for (method, s), cell in rows_lib.group(rows).items():
      histories = [r["fid_history"] for r in cell if r.get("fid_history")]
      if s == size and histories:
        groups[method] = histories
    if groups:
      path = os.path.join(out_dir, f"curves_{size}.png")
      figures.save(
          figures.plot_groups(groups, f"{tag.upper()} during training",
                              f"{size} images per class"), path,
          logdir, f"curves_{size}")
      paths.append(path)
  return paths


def write_results(out_dir: str, results, text: str) -> None:
  """Writes <out_dir>/results.json (`results`, JSON-able) and results.md."""
  files.write_json(os.path.join(out_dir, "results.json"), results)
  files.write_text(os.path.join(out_dir, "results.md"), text)


def print_results(out_dir: str) -> None:
  """Prints <out_dir>/results.md, the report `write_results` wrote."""
  with open(os.path.join(out_dir, "results.md"), encoding="utf-8") as f:
    print(f.read())
