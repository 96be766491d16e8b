"""What a benchmark measures of a finished run beyond what training logs.

The re-scoring of the best and the final generator on more samples, the
final generator's FID on the source's classes, the trained values of the
method, and the threads the run trained with.
"""

from __future__ import annotations

import json
import os

import gin
import numpy as np

from tfgt import run_folder

# Samples of the final re-scoring of the best and the last generator.
DEFAULT_RESCORE_SAMPLES = 10000
# What the re-scoring computes (the run's evaluator with these metrics).
RESCORE_METRICS = ("fid", "kid", "mfid", "mkid", "prdc", "mprdc")


def trainable_parameters(model_dir: str) -> dict:
  """Trainable G values of the method configured in gin, for its classes.

  Returns {"g_trainable": total, "g_per_new_class": total / M,
  "g_class_specific": the values of one row of every trained variable with
  a row per class (one per new class, as cGANTransfer's, or one per class,
  as Hyper-Modulation's class embedding)}.
  """
  with open(os.path.join(model_dir, run_folder.MODEL_SPEC)) as f:
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


def old_class_fid(model_dir: str, num_samples: int | None) -> float | None:
  """FID of the final generator on the source's classes (ids 0..N-1).

  What a class extension keeps: methods with a frozen generator draw the old
  classes exactly as the source does, full fine-tuning overwrites them. None
  for runs without old classes (Scratch).
  """
  # pylint: disable=g-import-not-at-top
  from tfgt import evaluate
  from tfgt.data import pipeline
  from tfgt.eval import evaluator as evaluator_lib
  from tfgt.models import bundle
  # pylint: enable=g-import-not-at-top
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
