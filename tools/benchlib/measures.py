"""What a benchmark measures of a finished run beyond what training logs.

The re-scoring of the best and the final generator on more samples, the
trained values of the configured method, and the threads the run trained
with. The library measures them (`tfgt.evaluate`, `tfgt.methods.base`).
"""

from __future__ import annotations

import json
import os

import gin

from tfgt import run_folder
from tfgt.methods import base

# Samples of the final re-scoring of the best and the last generator.
DEFAULT_RESCORE_SAMPLES = 10000
# What the re-scoring computes (the run's evaluator with these metrics).
RESCORE_METRICS = ("fid", "kid", "mfid", "mkid", "prdc", "mprdc")


def trainable_parameters(model_dir: str) -> dict:
  """`tfgt.methods.base.trainable_values` of the method configured in gin,
  for the classes of the run's bundle."""
  with open(os.path.join(model_dir, run_folder.MODEL_SPEC)) as f:
    class_names = json.load(f)["class_names"]
  method = gin.query_parameter("train.method").scoped_configurable_fn()
  return base.trainable_values(method, class_names)


def intra_op_threads() -> int:
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
