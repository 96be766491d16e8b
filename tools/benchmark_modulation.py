r"""Speed and memory of the formulations of a class-modulated convolution.

    python -m tools.benchmark_modulation [--resolutions=32,256]
        [--batches=10,64] [--classes=2,10]
        [--formulations=partition,stacked,patches] [--steps=3]
        [--max_gb=8] [--out=FILE.md]

A Hyper-Modulation generator convolves every sample with its class's kernel
(`tfgt.layers.adafm`). This runs, for each case, a forward and backward pass
(gradients with respect to the input and to gamma and beta) of the two
modulated convolutions of one synthesis block, compiled with tf.function, and
reports images per second after a first (tracing) pass and the peak resident
memory above the process's memory before the first pass. Each case runs in
its own process, so that peaks do not carry over.

Blocks: at 32 px the shipped Fashion-MNIST StyleGAN's (64 -> 64 channels,
both convolutions), at 256 px NVlabs' widths at 256x256 (128 -> 64, then
64 -> 64). Besides the per-class formulations ("partition", "stacked",
"patches" with each sample's class kernel gathered), "patches" with a
different kernel per sample is the cost of class interpolation (the
"interpolation" rows). A case whose patch tensor alone would exceed
--max_gb is reported as skipped with its size.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from tfgt import files

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the flags (only when run as a program, so that tests can
  import several tools)."""
  flags.DEFINE_list("resolutions", ["32", "256"], "Block resolutions.")
  flags.DEFINE_list("batches", ["10", "64"], "Batch sizes.")
  flags.DEFINE_list("classes", ["2", "10"], "Numbers of classes.")
  flags.DEFINE_list("formulations", ["partition", "stacked", "patches",
                                     "interpolation"],
                    "Formulations ('interpolation': per-sample kernels).")
  flags.DEFINE_integer("steps", 3, "Measured passes per case (after 1).")
  flags.DEFINE_float("max_gb", 8.0, "Skip cases whose patches exceed this.")
  flags.DEFINE_string("out", None, "Also write the Markdown table here.")
  flags.DEFINE_string("case", None, "Internal: run one case (JSON) and print "
                      "its result.")

# resolution -> [(in channels, out channels)] of the block's convolutions.
BLOCKS = {32: [(64, 64), (64, 64)], 256: [(128, 64), (64, 64)]}


def _rss_kb(field: str) -> int:
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith(field + ":"):
        return int(line.split()[1])
  return 0


def patch_gb(resolution: int, batch: int) -> float:
  """GB of the largest patch tensor of a case (float32)."""
  return max(batch * resolution ** 2 * 9 * c_in * 4
             for c_in, _ in BLOCKS[resolution]) / 1e9


def run_one(case: dict) -> dict:
  """Measures one case in this process."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfgt.layers import adafm  # pylint: disable=g-import-not-at-top

  resolution, batch = case["resolution"], case["batch"]
  classes = case["classes"]
  formulation = case["formulation"]
  rng = tf.random.Generator.from_seed(0)
  x = rng.normal([batch, resolution, resolution, BLOCKS[resolution][0][0]])
  kernels = [rng.normal([3, 3, c_in, c_out]) for c_in, c_out in
             BLOCKS[resolution]]
  rows = batch if formulation == "interpolation" else classes
  gammas = [tf.Variable(rng.normal([rows, c_in, c_out]))
            for c_in, c_out in BLOCKS[resolution]]
  betas = [tf.Variable(rng.normal([rows, c_in, c_out]) * 0.1)
           for c_in, c_out in BLOCKS[resolution]]
  labels = tf.range(batch) % classes

  @tf.function
  def step(x):
    with tf.GradientTape() as tape:
      tape.watch(x)
      h = x
      for kernel, gamma, beta in zip(kernels, gammas, betas):
        modulated = adafm.modulate_kernel(kernel, gamma, beta)
        if formulation == "interpolation":
          h = adafm.modulated_conv2d(h, modulated)
        else:
          h = adafm.modulated_conv2d(h, modulated, labels, formulation)
        h = tf.nn.leaky_relu(h, 0.2)
      loss = tf.reduce_mean(tf.square(h))
    return tape.gradient(loss, [x] + gammas + betas)

  before = _rss_kb("VmRSS")
  [g.numpy() for g in step(x)]  # Traces and runs once.
  start = time.perf_counter()
  for _ in range(case["steps"]):
    grads = step(x)
  [g.numpy() for g in grads]
  seconds = time.perf_counter() - start
  return {"images_per_sec": batch * case["steps"] / seconds,
          "extra_gb": (_rss_kb("VmHWM") - before) / 1e6}


def main(argv):
  del argv
  if FLAGS.case:
    print("RESULT " + json.dumps(run_one(json.loads(FLAGS.case))), flush=True)
    return
  rows = []
  for resolution in (int(r) for r in FLAGS.resolutions):
    for batch in (int(b) for b in FLAGS.batches):
      for classes in (int(c) for c in FLAGS.classes):
        for formulation in FLAGS.formulations:
          if formulation == "interpolation" and classes != int(
              FLAGS.classes[0]):
            continue  # Per-sample kernels do not depend on the classes.
          case = dict(resolution=resolution, batch=batch, classes=classes,
                      formulation=formulation, steps=FLAGS.steps)
          size = patch_gb(resolution, batch)
          if (formulation in ("patches", "interpolation") and
              size > FLAGS.max_gb):
            result = {"skipped": f"patches of {size:.1f} GB"}
          else:
            # This tool again, in a process of its own.
            out = subprocess.run(
                [sys.executable, "-m", __spec__.name,
                 "--case=" + json.dumps(case)],
                capture_output=True, text=True, check=False)
            lines = [l for l in out.stdout.splitlines()
                     if l.startswith("RESULT ")]
            if out.returncode or not lines:
              last = (out.stderr.strip().splitlines() or ["no output"])[-1]
              result = {"skipped": f"failed ({out.returncode}): {last[:120]}"}
            else:
              result = json.loads(lines[-1][len("RESULT "):])
          rows.append((case, result))
          print(f"{resolution:4d} px  batch {batch:3d}  {classes:3d} classes  "
                f"{formulation:13s} {result}", flush=True)
  lines = ["| px | batch | classes | formulation | images/s | x partition "
           "| extra memory (GB) |", "|---|---|---|---|---|---|---|"]
  for case, result in rows:
    key = (case["resolution"], case["batch"], case["classes"])
    if "skipped" in result:
      lines.append(f"| {key[0]} | {key[1]} | {key[2]} | "
                   f"{case['formulation']} | skipped: {result['skipped']} "
                   "| - | - |")
      continue
    base = [r for c, r in rows if (c["resolution"], c["batch"],
                                   c["classes"]) == key
            and c["formulation"] == "partition" and "skipped" not in r]
    ratio = (f"{result['images_per_sec'] / base[0]['images_per_sec']:.2f}"
             if base else "-")
    classes = "per sample" if case["formulation"] == "interpolation" else key[2]
    lines.append(f"| {key[0]} | {key[1]} | {classes} | {case['formulation']} "
                 f"| {result['images_per_sec']:.1f} | {ratio} | "
                 f"{result['extra_gb']:.2f} |")
  table = "\n".join(lines)
  print(table)
  if FLAGS.out:
    files.write_text(FLAGS.out, table + "\n")


if __name__ == "__main__":
  define_flags()
  sys.exit(app.run(main))
