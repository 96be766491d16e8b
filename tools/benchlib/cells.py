"""The cells of a benchmark: one training run each, and its gin bindings.

A cell is a row name (a method or setting), a gin config, a number of images
per class and a seed. Its run trains the config with, in this order, the
method's PROTOCOL, the benchmark's --gin_param, the cell's size and seed,
and the cell's own bindings.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Sequence

import gin

from tfgt import config as config_lib
# Registers Evaluator and the feature extractors that --eval_gin binds.
import tfgt.eval  # pylint: disable=unused-import
from tfgt.errors import UserInputError

CONFIG_DIR = os.path.join("gin_configs", "fashion_mnist")
DEFAULT_SIZES = (100, 25, 10)
DEFAULT_SEEDS = (0, 1, 2)
# Bindings of a method's runs in the benchmarks, by cell name (first, so that
# --gin_param and --num_steps override them): cGANTransfer at the paper's G
# learning rate and length, the protocol every other method runs at, rather
# than the faster rate and shorter run its config gives the main job
# (gin_configs/fashion_mnist/cgantransfer.gin; docs/RESULTS.md).
# A method whose config includes one of these runs at that config's protocol
# (cgantransfer_diffaugment.gin at cGANTransfer's), see `protocol`.
PROTOCOL = {"cgantransfer": ("train.g_lr = 2e-4", "train.num_steps = 1200")}
_INCLUDE = re.compile(r"""^\s*include\s+(['"])(.+?)\1""", re.MULTILINE)


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


def _stem(config: str) -> str:
  """"cgantransfer" for cgantransfer or any path to cgantransfer.gin."""
  return os.path.splitext(os.path.basename(config))[0]


def config_path(method: str) -> str:
  """The gin file of a method name (a stem under CONFIG_DIR) or .gin path.

  Raises:
    UserInputError: no such file, naming the nearest configs.
  """
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


def method_cells(methods: Sequence[str], sizes: Sequence[int],
                 seeds: Sequence[int]) -> list[Cell]:
  """Every (method, size, seed), sizes first then seeds then methods, so
  that a partial benchmark has whole comparisons."""
  return [Cell(_stem(m), m, size, seed)
          for size in sizes for seed in seeds for m in methods]


def protocol(cell: Cell) -> tuple[str, ...]:
  """The PROTOCOL bindings of a method's cell: those of its config's stem,
  else those of the nearest config its config includes (a variant of
  cgantransfer.gin, such as cgantransfer_diffaugment.gin, runs at
  cGANTransfer's protocol, not at the main job's rate and length). A cell
  named otherwise than its config's stem (a setting of
  `tools.benchmark_recall`) runs its config as it is: no bindings."""
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


def parse(cell: Cell, num_steps: int | None, eval_gin: Sequence[str],
          gin_params: Sequence[str]) -> None:
  """Clears gin and binds the configuration of a cell's run (its config,
  `eval_gin`, then `cell_params`).

  Raises what `tfgt.config.parse` raises for a bad config or binding, and
  UserInputError for a missing config (`config_path`).
  """
  gin.clear_config()
  config_lib.parse([config_path(cell.config)] + list(eval_gin),
                   cell_params(cell, num_steps, gin_params))


def cell_config(cell: Cell, num_steps: int | None, eval_gin: Sequence[str],
                gin_params: Sequence[str]) -> tuple[str, int]:
  """The gin configuration a cell trains with, as text, and its steps.

  Leaves gin cleared. Raises what `parse` raises.
  """
  try:
    parse(cell, num_steps, eval_gin, gin_params)
    return gin.config_str(), gin.query_parameter("train.num_steps")
  finally:
    gin.clear_config()


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


def unfinished(cells: Sequence[Cell], rows: Sequence[dict]) -> list[str]:
  """The run names of `cells` that have no row in `rows`."""
  have = {(r["method"], r["images_per_class"], r.get("seed", 0))
          for r in rows}
  return [c.run_name for c in cells
          if (c.name, c.images_per_class, c.seed) not in have]
