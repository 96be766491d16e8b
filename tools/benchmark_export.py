r"""Images per second of the TF Serving export against the in-process generator.

    python -m tools.benchmark_export \
        --model_dir=pretrained:fashion_mnist_biggan [--checkpoint=latest] \
        [--batch_sizes=1,64] [--rounds=5] [--seconds=1] \
        [--precisions=float32,mixed_bfloat16]

Exports the model's generator (tfgt.export) to a temporary folder, loads it
back and times, at each batch size:

  in_process          the bundle's generator in a tf.function, z and labels
                      given, uint8 out
  saved_model/z       the export's from_z signature, from tf.saved_model.load
  saved_model/seed    the export's serving_default (z drawn from seeds)
  tf1_session/seed    serving_default through the TF1 loader in a Session,
                      the path TF Serving runs (without its RPC and batching)
  in_process/weights  the generator on class weights [B, N] (a random mix
                      per image: Hyper-Modulation's per-sample kernels)
  saved_model/weights the export's from_class_weights signature

With several --precisions the model is exported once per precision
(`tfgt.export --precision`) and every case runs in each; a case of a
precision other than the first is named with it ("tf1_session/seed
mixed_bfloat16").

Cases are timed in interleaved rounds so that a load from other processes
weighs on all of them alike; the table gives the median over rounds of the
images per second and of the process CPU time per image, each also as a ratio
to the in-process case with the same input (in_process, or
in_process/weights for the /weights cases) of the first precision at the
same batch size (for
images/s, > 1 is faster; for CPU, > 1 costs more). All cases draw without
truncation. The last two columns compare each case's uint8 images with the
same case's in the first precision (the same inputs): the largest and the
mean absolute difference in grey levels (0 and 0 in the first precision).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from typing import Callable, Sequence

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from tfgt import export
from tfgt import files
from tfgt import precision as precision_lib
from tfgt.data import pipeline
from tfgt.models import architectures
from tfgt.models import bundle
from tools import machine

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the flags (only when run as a program, so that tests can
  import several tools)."""
  flags.DEFINE_string("model_dir", None, "Training run, bundle folder or "
                      "pretrained:NAME.")
  flags.DEFINE_string("checkpoint", "latest", "'best', 'latest' or a step.")
  flags.DEFINE_list("batch_sizes", ["1", "64"], "Batch sizes to time.")
  flags.DEFINE_integer("rounds", 5, "Interleaved timing rounds per case.")
  flags.DEFINE_float("seconds", 1.0, "Minimum time per case and round.")
  flags.DEFINE_string("export_dir", None, "Keep the exports here, one "
                      "folder per precision (default: a temporary folder, "
                      "deleted afterwards).")
  flags.DEFINE_string("output", None, "Also write the results as JSON here.")
  flags.DEFINE_list("precisions", [precision_lib.DEFAULT],
                    "Precisions to export and time (tfgt.precision); ratios "
                    "are to the first.")


def _time_calls(fn: Callable[[], object], seconds: float
                ) -> tuple[float, float]:
  """(wall, process CPU) seconds per call, over calls filling `seconds`.

  CPU time (all threads of this process) is less sensitive than wall time to
  other processes competing for the cores.
  """
  calls, start, cpu_start = 0, time.perf_counter(), time.process_time()
  while True:
    fn()
    calls += 1
    elapsed = time.perf_counter() - start
    if elapsed >= seconds:
      return elapsed / calls, (time.process_time() - cpu_start) / calls


def _cases(generator, saved_model_path: str, batch_size: int, session_run
           ) -> dict[str, Callable[[], object]]:
  rng = np.random.RandomState(0)
  labels = tf.constant(rng.randint(0, generator.num_classes, batch_size),
                       tf.int32)
  seeds = tf.constant(rng.randint(0, 2**31, batch_size), tf.int64)
  z = tf.constant(rng.randn(batch_size, generator.dim_z), tf.float32)
  weights = tf.constant(rng.dirichlet(np.ones(generator.num_classes),
                                      batch_size), tf.float32)
  truncation = tf.constant(float(architectures.no_truncation(generator)))
  draw = tf.function(
      lambda z, y: pipeline.to_uint8(generator((z, y), training=False)))
  loaded = tf.saved_model.load(saved_model_path)
  from_z = loaded.signatures["from_z"]
  from_seeds = loaded.signatures["serving_default"]
  from_weights = loaded.signatures["from_class_weights"]
  feeds = dict(labels=labels.numpy(), seeds=seeds.numpy(),
               truncation=float(truncation.numpy()))
  return {
      "in_process": lambda: draw(z, labels).numpy(),
      "saved_model/z": lambda: from_z(labels=labels, z=z,
                                      truncation=truncation)["images"].numpy(),
      "saved_model/seed": lambda: from_seeds(
          labels=labels, seeds=seeds, truncation=truncation)["images"].numpy(),
      "tf1_session/seed": lambda: session_run(**feeds),
      "in_process/weights": lambda: draw(z, weights).numpy(),
      "saved_model/weights": lambda: from_weights(
          class_weights=weights, seeds=seeds,
          truncation=truncation)["images"].numpy(),
  }


def _tf1_runner(saved_model_path: str):
  graph = tf.Graph()
  with graph.as_default():
    session = tf.compat.v1.Session(graph=graph)
    meta = tf.compat.v1.saved_model.load(session, ["serve"], saved_model_path)
  signature = meta.signature_def["serving_default"]
  fetch = signature.outputs["images"].name

  def run(**feeds):
    return session.run(fetch, {signature.inputs[k].name: v
                               for k, v in feeds.items()})

  return run


def _case_name(case: str, precision: str, first: str) -> str:
  return case if precision == first else f"{case} {precision}"


def benchmark(model_dir: str, checkpoint: str, batch_sizes: Sequence[int],
              rounds: int, seconds: float, export_dir: str,
              precisions: Sequence[str] = (precision_lib.DEFAULT,)
              ) -> list[dict]:
  """Rows {case, precision, batch_size, images_per_sec, ratio,
  cpu_ms_per_image, cpu_ratio}; ratios are to the in-process case with the
  same input, of the first precision, at the same batch size.

  Raises:
    UserInputError: an unknown precision, or what `tfgt.export.export`
      raises.
  """
  # "auto" as the machine resolves it; a precision given twice runs once.
  precisions = list(dict.fromkeys(precision_lib.choose(p)
                                  for p in precisions))
  models = []
  for precision in precisions:
    path = export.export(model_dir, os.path.join(export_dir, precision),
                         checkpoint=checkpoint, precision=precision)
    generator, _, _ = bundle.load(model_dir, checkpoint=checkpoint,
                                  precision=precision)
    models.append((precision, generator, path, _tf1_runner(path)))
  first = precisions[0]
  rows = []
  for batch_size in batch_sizes:
    cases, precision_of = {}, {}
    for precision, generator, path, session_run in models:
      for case, fn in _cases(generator, path, batch_size,
                             session_run).items():
        name = _case_name(case, precision, first)
        cases[name], precision_of[name] = fn, precision
    images = {}
    for name, fn in cases.items():  # Tracing and first-call costs.
      fn()
      images[name] = np.asarray(fn())
    times = {name: [] for name in cases}
    cpu = {name: [] for name in cases}
    for _ in range(rounds):
      for name, fn in cases.items():
        wall_time, cpu_time = _time_calls(fn, seconds)
        times[name].append(wall_time)
        cpu[name].append(cpu_time)
    for name, values in times.items():
      reference = ("in_process/weights" if name.split()[0].endswith(
          "/weights") else "in_process")
      base = batch_size / statistics.median(times[reference])
      base_cpu = statistics.median(cpu[reference])
      rate = batch_size / statistics.median(values)
      cpu_time = statistics.median(cpu[name])
      rows.append(dict(case=name, precision=precision_of[name],
                       batch_size=batch_size, images_per_sec=rate,
                       ratio=rate / base,
                       cpu_ms_per_image=1000 * cpu_time / batch_size,
                       cpu_ratio=cpu_time / base_cpu,
                       **pixel_difference(images[name],
                                          images[name.split()[0]])))
  return rows


def pixel_difference(images: np.ndarray, reference: np.ndarray
                     ) -> dict[str, float]:
  """{"max_difference", "mean_difference"}: the largest and the mean
  absolute difference, in grey levels of 255, between a case's uint8 images
  and the same case's in the first precision (the same inputs; 0 and 0 for
  the first precision itself)."""
  difference = np.abs(images.astype(np.int32) - reference.astype(np.int32))
  return dict(max_difference=float(difference.max()),
              mean_difference=float(difference.mean()))


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not FLAGS.model_dir:
    raise app.UsageError("--model_dir is required.")
  batch_sizes = [int(b) for b in FLAGS.batch_sizes]
  with tempfile.TemporaryDirectory() as scratch:
    rows = benchmark(FLAGS.model_dir, FLAGS.checkpoint, batch_sizes,
                     FLAGS.rounds, FLAGS.seconds,
                     FLAGS.export_dir or os.path.join(scratch, "serving"),
                     FLAGS.precisions)
  spec = bundle.read_spec(bundle.resolve_directory(FLAGS.model_dir))
  g = spec["generator"]
  # The generator's options as model.json has them (any architecture).
  options = ", ".join(f"{k} {v}" for k, v in g.items()
                      if k != "num_classes" and not isinstance(v, dict))
  print(f"Model {FLAGS.model_dir} ({FLAGS.checkpoint}): "
        f"{spec.get('architecture', 'biggan')}, {g['num_classes']} classes, "
        f"{options}; {machine.cpu_description()}, load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
  print(f"{'case':<35} {'batch':>5} {'images/s':>10} {'x in_process':>13} "
        f"{'CPU ms/image':>13} {'x in_process':>13} "
        f"{'max |diff|':>10} {'mean |diff|':>11}")
  for r in rows:
    print(f"{r['case']:<35} {r['batch_size']:>5} {r['images_per_sec']:>10.1f} "
          f"{r['ratio']:>13.2f} {r['cpu_ms_per_image']:>13.2f} "
          f"{r['cpu_ratio']:>13.2f} {r['max_difference']:>10.0f} "
          f"{r['mean_difference']:>11.3f}")
  if FLAGS.output:
    files.write_json(FLAGS.output, rows)


if __name__ == "__main__":
  define_flags()
  app.run(main)
