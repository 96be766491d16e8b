"""The values a report reads from a benchmark's rows (`runs.run_one`'s):
scores of the best or final generator, FID history, rates, groups."""

from __future__ import annotations

import re
from typing import Sequence


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


def best_at_last_evaluation(row: dict) -> bool:
  """The FID was still improving when the run stopped."""
  history = row.get("fid_history") or []
  return bool(history) and row.get("best_step") == history[-1][0]


def images_per_sec(row: dict) -> float | None:
  """Training images per second of a run: its steps/s (the trainer's rate
  over its last logged steps, evaluations and checkpoints excluded) x the
  batch size of its gin configuration; None when the row lacks either."""
  batch = re.search(r"^train\.batch_size = (\d+)$", row.get("gin_config", ""),
                    re.M)
  rate = row.get("steps_per_sec")
  return rate * int(batch.group(1)) if batch and rate else None


def group(rows: Sequence[dict]) -> dict[tuple[str, int], list[dict]]:
  """{(method, images per class): rows of its seeds}, in row order."""
  out: dict[tuple[str, int], list[dict]] = {}
  for r in rows:
    out.setdefault((r["method"], r["images_per_class"]), []).append(r)
  return out


def by_seed(rows: Sequence[dict], method: str, size: int) -> dict[int, dict]:
  """{seed: row} of one method at one size."""
  return {r.get("seed", 0): r for r in rows
          if r["method"] == method and r["images_per_class"] == size}
