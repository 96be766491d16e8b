"""Statistics over seeds: mean ± sample standard deviation, and paired
comparisons of two methods that ran the same seeds."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.stats


def fmt(value, pattern: str = "{:.2f}") -> str:
  """`value` formatted with `pattern`, "-" for None."""
  return "-" if value is None else pattern.format(value)


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

  Args:
    a: {seed: value} of one method (None: no value).
    b: the same of the other.
    higher_is_better: the direction of the values.

  Returns:
    (verdict, detail); the detail is "" with fewer than 2 seeds.
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
