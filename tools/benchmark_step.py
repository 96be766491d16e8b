r"""Images per second of a full GAN training step (one D and one G update).

    python -m tools.benchmark_step [--settings=fashion_mnist,cifar]
        [--modes=eager,function,xla,function_memopt] [--devices=1,2]
        [--steps=6] [--out=FILE.md]
        [--threads=0:0,1:1,2:1,1:2,1:1x2]
        [--precisions=float32,mixed_bfloat16,mixed_float16] [--rounds=1]

Runs the real trainer (`tfgt.train.train`) for a few steps per case on
synthetic data of the right shape and reports the rate measured after the
first (tracing) step. Settings:
  fashion_mnist: the shipped default, 32x32x1, ch 16, batch 64, 8 classes;
  cifar:         the cGANTransfer paper's CIFAR setting, 32x32x3, ch 64,
                 batch 50, 80 classes;
  biggan_128:    the ImageNet BigGAN at 128x128x3 that
                 gin_configs/places365/ transfers from (ch 96, shared
                 class embedding, hierarchical z 120, attention at 64 px),
                 every weight trained, 5 classes (the Places365 transfer's),
                 batch 8 (the paper's 256 does not fit a CPU step: the
                 rate per image is what compares);
  stylegan_fashion_mnist: the shipped StyleGAN source's setting
                 (gin_configs/fashion_mnist/pretrain_stylegan.gin): 32x32x1,
                 fmap_base 512, fmap_max 64, batch 32, 1 class,
                 non-saturating loss, R1 10 on one D batch in 4;
  stylegan_256:  Hyper-Modulation's source setting: StyleGAN at 256x256x3
                 with NVlabs' widths (fmap_base 8192, fmap_max 512, z and w
                 512), batch 10, 1 class, R1 10 on every D batch;
  stylegan2_fashion_mnist: the StyleGAN2 source's setting
                 (gin_configs/fashion_mnist/pretrain_stylegan2.gin):
                 32x32x1, channel_base 1024, channel_max 64, z and w 128,
                 batch 32, 8 classes, R1 on one D batch in 4;
  cgantransfer, bsa: the transfers of gin_configs/fashion_mnist/ (the main
                 job's cgantransfer.gin) from the shipped source on the real
                 Fashion-MNIST subset, without their evaluation: a frozen G
                 whose few trained values should cost only the input
                 gradients of its layers (compare their GFLOP/image with
                 fashion_mnist's, which trains every weight);
  transfergan, scratch: the other methods of Table 1 (every weight of G and
                 D trained; TransferGAN from the source, scratch from a
                 random initialisation), so that the four methods' cost
                 compares in one run;
  cgantransfer_diffaugment: the main job with DiffAugment on D's inputs
                 (its cost over cgantransfer's).
Modes: eager (`tf.config.run_functions_eagerly`), function (the trainer's
compiled step), xla (the step's gradients compiled with XLA), function_memopt
(the compiled step with Grappler's memory optimizer at TensorFlow's default,
which the trainer turns off so that gradient sums repeat bit for bit:
`tfgt.steps.fixed_summation_order`; its cost is function's rate over this
one).
Devices: 1 = one logical CPU device, 2 = MirroredStrategy over the CPU split
into two logical devices (same global batch). Precisions (`--precisions`,
`train.precision`, `tfgt.precision`): each case runs in every precision
given, one after the other, and `--rounds=R` repeats that R times, so that
the precisions alternate under the same load of the machine. Ratios within
one run are the figures to compare; absolute rates move with the load of the
machine.

FLOP accounting (per setting): the floating-point operations of one step per
image, counted by TensorFlow's profiler (`tf.compat.v1.profiler`,
float_operation) on the graphs of the step's D and G gradient computations
(losses, their gradients, R1 where the setting has it) after pruning what
their outputs do not need, as TensorFlow's graph optimiser does at run time;
the optimizer updates and the EMA (a few operations per weight) are not
counted. Achieved GFLOP/s = that count x images/s, beside the rate of a
float32 2048 x 2048 matmul measured in the same run (`--matmul_size`), the
machine's practical peak for dense work. A mixed-precision row is given the
float32 step's count (the same operations) and compared with a matmul in its
compute dtype (bfloat16 or float16), measured in the same run.

Threads (`--threads`): each entry INTRA:INTER sets TensorFlow's intra-op and
inter-op thread pools (0: TensorFlow's choice, one per core), optionally
xP for P processes running the same case at once (their images/s summed:
what parallel runs, e.g. tools.benchmark_transfer --jobs=2, get from the
machine; the P processes start together and each times its own steps, so
the sum is close to, not exactly, their shared rate). Every entry runs in
fresh child processes, since thread pools are fixed when TensorFlow starts;
without --threads the cases run in this process with TensorFlow's
defaults.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging
import gin
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import rewriter_config_pb2

from tfgt import distribute
from tfgt import files
from tfgt import precision as precision_lib
from tfgt import steps as steps_lib
from tfgt import train as train_lib
from tfgt.data import sources
from tfgt.errors import UserInputError
from tools import machine

FLAGS = flags.FLAGS
# The repository, whose gin_configs/ the transfer settings include (from any
# working directory).
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
gin.add_config_file_search_path(REPO)


MODES = ("eager", "function", "xla", "function_memopt")


def define_flags() -> None:
  """Defines the flags (only when run as a program, so that tests can
  import several tools; `tools.benchmark_workers` takes them too)."""
  flags.DEFINE_list("settings", ["fashion_mnist", "cifar"],
                    "Settings to run.")
  flags.DEFINE_list("modes", ["eager", "function", "xla"],
                    "Execution modes: eager, function, xla, function_memopt.")
  flags.DEFINE_list("devices", ["1", "2"], "Logical CPU devices.")
  flags.DEFINE_integer("steps", 6, "Measured steps per case (after 1 "
                       "warm-up).")
  flags.DEFINE_integer("eager_steps", 2, "Measured steps in eager mode.")
  flags.DEFINE_string("out", None, "Also write the Markdown table here.")
  flags.DEFINE_integer("matmul_size", 2048, "Side of the float32 matmul that "
                       "measures the machine's dense rate (0: skip).")
  flags.DEFINE_list("threads", [], "Thread settings INTRA:INTER[xP] to "
                    "compare, each in child processes (e.g. 0:0,1:1,1:1x2).")
  flags.DEFINE_list("precisions", ["float32"], "train.precision values to "
                    "measure each case in: float32, mixed_bfloat16, "
                    "mixed_float16.")
  flags.DEFINE_integer("rounds", 1, "Times every case runs in all its "
                       "precisions, alternating.")
  flags.DEFINE_string("child_rows", None, "Internal: a child process writes "
                      "its rows (JSON) here.")

# A child's thread setting, read from argv before TensorFlow starts.
CHILD_THREADS = "--child_threads="


def parse_threads(entry: str) -> tuple[int, int, int]:
  """"INTRA:INTER[xP]" -> (intra, inter, processes); 0 threads: TF's
  choice.

  Raises:
    ValueError: not of that form.
  """
  body, times, processes = entry.strip().partition("x")
  intra, sep, inter = body.partition(":")
  try:
    parsed = (int(intra), int(inter), int(processes if times else 1))
  except ValueError:
    parsed = None
  if not sep or parsed is None or min(parsed) < 0 or parsed[2] < 1:
    raise ValueError(f"--threads entry {entry!r}: give INTRA:INTER or "
                     "INTRA:INTERxP, e.g. 1:1 or 1:1x2 (0: TensorFlow's "
                     "choice).")
  return parsed


def _biggan(channels: int, ch: int, dim_z: int) -> list[str]:
  return [f"BigGANGenerator.channels = {channels}",
          f"BigGANDiscriminator.channels = {channels}",
          f"BigGANGenerator.ch = {ch}", f"BigGANDiscriminator.ch = {ch}",
          f"BigGANGenerator.dim_z = {dim_z}"]


def _biggan_imagenet(resolution: int, ch: int) -> list[str]:
  """The ImageNet BigGAN's architecture (BigGAN-PyTorch's 128 px release:
  a class embedding shared by the blocks, hierarchical z of 120, attention
  at 64 px) at `resolution` and width `ch`, hinge loss."""
  return _biggan(3, ch, 120) + [
      f"BigGANGenerator.resolution = {resolution}",
      f"BigGANDiscriminator.resolution = {resolution}",
      "BigGANGenerator.conditioning = 'shared_embedding'",
      "BigGANGenerator.shared_dim = 128",
      "BigGANGenerator.hierarchical_z = True",
      "BigGANGenerator.attention_resolution = 64",
      "BigGANDiscriminator.attention_resolution = 64"]


def _stylegan(resolution: int, channels: int, fmap_base: int, fmap_max: int,
              dim_z: int, r1_every: int) -> list[str]:
  models = [f"{m}.{k} = {v}"
            for m in ("StyleGANGenerator", "StyleGANDiscriminator")
            for k, v in (("resolution", resolution), ("channels", channels),
                         ("fmap_base", fmap_base), ("fmap_max", fmap_max))]
  return models + [
      "Scratch.architecture = 'stylegan'",
      f"StyleGANGenerator.dim_z = {dim_z}",
      f"StyleGANGenerator.w_dim = {dim_z}",
      "discriminator_loss.name = 'non_saturating'",
      "generator_loss.name = 'non_saturating'",
      "Adversarial.r1_gamma = 10.0", f"Adversarial.r1_every = {r1_every}"]


def _stylegan2(resolution: int, channels: int, channel_base: int,
               channel_max: int, dim_z: int) -> list[str]:
  """The models and losses of gin_configs/fashion_mnist/pretrain_stylegan2.gin
  at another size (lazy R1 every 4 D steps)."""
  models = [f"{m}.{k} = {v}"
            for m in ("StyleGAN2Generator", "StyleGAN2Discriminator")
            for k, v in (("resolution", resolution), ("channels", channels),
                         ("channel_base", channel_base),
                         ("channel_max", channel_max))]
  return models + [
      "Scratch.architecture = 'stylegan2'",
      f"StyleGAN2Generator.dim_z = {dim_z}",
      f"StyleGAN2Generator.w_dim = {dim_z}",
      "StyleGAN2Generator.mapping_layers = 2",
      "StyleGAN2Generator.style_mixing_prob = 0.0",
      "discriminator_loss.name = 'non_saturating'",
      "generator_loss.name = 'non_saturating'",
      "Adversarial.r1_gamma = 0.0064", "Adversarial.r1_every = 4"]


# name -> (batch, classes, gin bindings of the models and losses); classes
# None: a config of gin_configs/ with its own method and data.
SETTINGS = {
    "fashion_mnist": (64, 8, _biggan(1, 16, 64)),
    "cifar": (50, 80, _biggan(3, 64, 128)),
    "biggan_128": (8, 5, _biggan_imagenet(128, 96)),
    "stylegan_fashion_mnist": (32, 1, _stylegan(32, 1, 512, 64, 128, 4)),
    "stylegan_256": (10, 1, _stylegan(256, 3, 8192, 512, 512, 1)),
    "stylegan2_fashion_mnist": (32, 8, _stylegan2(32, 1, 1024, 64, 128)),
    "cgantransfer": (64, None, [
        "include 'gin_configs/fashion_mnist/cgantransfer.gin'"]),
    "bsa": (64, None, ["include 'gin_configs/fashion_mnist/bsa.gin'"]),
    "transfergan": (64, None, [
        "include 'gin_configs/fashion_mnist/transfergan.gin'"]),
    "scratch": (64, None, ["include 'gin_configs/fashion_mnist/scratch.gin'"]),
    "cgantransfer_diffaugment": (64, None, [
        "include 'gin_configs/fashion_mnist/cgantransfer_diffaugment.gin'"]),
}


@gin.configurable(denylist=["split", "resolution", "channels"])
def synthetic_images(split: str = "train", resolution: int = 32,
                     channels: int = 3, num_classes: int = 8,
                     per_class: int = 64) -> sources.LabelledImages:
  """Random uint8 images; speed does not depend on the pixels."""
  del split
  rng = np.random.RandomState(0)
  n = num_classes * per_class
  return sources.LabelledImages(
      rng.randint(0, 256, (n, resolution, resolution, channels), np.uint8),
      np.repeat(np.arange(num_classes), per_class).astype(np.int64),
      [f"class{i}" for i in range(num_classes)])


def case_bindings(setting: str, steps: int, use_xla: bool = False,
                  precision: str = "float32") -> list[str]:
  """Gin bindings that train `setting` from scratch on synthetic images for
  one tracing step and `steps` measured ones, with no periodic work, in
  `precision` (`train.precision`)."""
  batch, classes, model_bindings = SETTINGS[setting]
  if classes is None:  # A config's own method and data, not evaluated.
    data = ["train.evaluator = None", "train.eval_every = 0"]
  else:
    data = ["train.method = @Scratch()",
            "load_training_data.source = @synthetic_images",
            f"synthetic_images.num_classes = {classes}",
            f"synthetic_images.per_class = {max(64, batch)}"]
  mixed = ([] if precision == "float32" else
           [f"train.precision = '{precision}'"])
  return model_bindings + data + mixed + [
      f"train.batch_size = {batch}",
      f"train.num_steps = {steps + 1}",
      f"train.use_xla = {use_xla}",
      "train.log_every = 1000000",
      "train.sample_every = 0",
      "train.checkpoint_every = 0",
      "train.samples_per_class = 1",
  ]


def matmul_gflops(size: int, seconds: float = 3.0,
                  dtype: tf.DType = tf.float32) -> float:
  """GFLOP/s of a [size, size] x [size, size] matmul in `dtype` on this CPU
  (2 size^3 operations each; the best of repeated timings over about
  `seconds`)."""
  a = tf.cast(tf.random.stateless_normal([size, size], seed=[0, 1]), dtype)
  b = tf.cast(tf.random.stateless_normal([size, size], seed=[0, 2]), dtype)
  product = tf.function(lambda: tf.reduce_sum(
      tf.cast(tf.matmul(a, b), tf.float32)))
  product().numpy()  # Traces and warms up.
  best, spent = float("inf"), 0.0
  while spent < seconds or best == float("inf"):
    start = time.perf_counter()
    product().numpy()
    elapsed = time.perf_counter() - start
    best, spent = min(best, elapsed), spent + elapsed
  return 2.0 * size ** 3 / best / 1e9


def needed_graph_def(concrete):
  """The GraphDef of what a concrete function's outputs depend on, with
  their shapes: ops the graph holds but its outputs do not need, such as
  input gradients a tape builds for nothing, are pruned at run time."""
  outputs = sorted({t.op.name for t in tf.nest.flatten(concrete.outputs)})
  return tf.compat.v1.graph_util.extract_sub_graph(
      concrete.graph.as_graph_def(add_shapes=True), outputs)


def float_ops(concrete) -> int:
  """The profiler's count of floating-point operations of what a concrete
  function's outputs depend on (`needed_graph_def`)."""
  graph = tf.Graph()
  with graph.as_default():
    tf.graph_util.import_graph_def(needed_graph_def(concrete), name="")
  options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
  options["output"] = "none"
  return int(tf.compat.v1.profiler.profile(graph=graph,
                                           options=options).total_float_ops)


class _RecordingStep(steps_lib.TrainStep):
  """The trainer's step, kept for FLOP accounting after the run."""
  last = None

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    _RecordingStep.last = self


def gradient_graph(step: steps_lib.TrainStep, player: str):
  """The concrete function of `step`'s D ("d") or G ("g") gradient
  computation on a one-replica batch of its global batch size (without
  XLA: the same operations)."""
  generator = step.setup.generator
  batch = step.global_batch_size
  shape = [batch, generator.resolution, generator.resolution,
           generator.channels]
  spec = dict(images=tf.TensorSpec(shape, tf.float32),
              labels=tf.TensorSpec([batch], tf.int64),
              z_d=tf.TensorSpec([batch, generator.dim_z], tf.float32),
              y_d=tf.TensorSpec([batch], tf.int64),
              z_g=tf.TensorSpec([batch, generator.dim_z], tf.float32),
              y_g=tf.TensorSpec([batch], tf.int64),
              index=tf.TensorSpec([batch], tf.int64))
  gradients = step._d_gradients if player == "d" else step._g_gradients  # pylint: disable=protected-access
  fn = getattr(gradients, "python_function", gradients)  # Not XLA's.
  with step.strategy.scope():
    return tf.function(fn).get_concrete_function(spec)


def step_float_ops(step: steps_lib.TrainStep) -> float:
  """Floating-point operations of one step of `step` per image: its D
  gradients (d_steps times) and G gradients on a one-replica batch."""
  total = sum(times * float_ops(gradient_graph(step, player))
              for player, times in (("d", step.d_steps), ("g", 1)) if times)
  return total / step.global_batch_size


def _default_memory_optimizer() -> None:
  """Function calls of this thread with Grappler's memory optimizer as
  TensorFlow sets it (mode function_memopt)."""
  steps_lib.set_memory_optimization(
      rewriter_config_pb2.RewriterConfig.DEFAULT_MEM_OPT)


def run_case(setting: str, mode: str, devices: int, steps: int,
             precision: str = "float32") -> tuple[float, float]:
  """Images per second of one case over `steps` measured steps, and its
  FLOPs per image (counted on the one-device function mode in float32 only;
  NaN otherwise)."""
  gin.clear_config()
  gin.parse_config(case_bindings(setting, steps, use_xla=mode == "xla",
                                 precision=precision))
  cpus = tf.config.list_logical_devices("CPU")
  if devices == 1:
    strategy = tf.distribute.OneDeviceStrategy(cpus[0].name)
  else:
    strategy = tf.distribute.MirroredStrategy(
        [d.name for d in cpus[:devices]],
        cross_device_ops=tf.distribute.ReductionToOneDevice())
  tf.config.run_functions_eagerly(mode == "eager")
  original, steps_lib.TrainStep = steps_lib.TrainStep, _RecordingStep
  summation = steps_lib.fixed_summation_order
  if mode == "function_memopt":
    steps_lib.fixed_summation_order = _default_memory_optimizer
  try:
    with tempfile.TemporaryDirectory() as model_dir:
      start = time.time()
      metrics = train_lib.train(model_dir, strategy=strategy)
      logging.info("%s %s %d device(s): %.1f s in all", setting, mode, devices,
                   time.time() - start)
  finally:
    tf.config.run_functions_eagerly(False)
    steps_lib.TrainStep = original
    steps_lib.fixed_summation_order = summation
  flops = float("nan")
  if mode == "function" and devices == 1 and precision == "float32":
    flops = step_float_ops(_RecordingStep.last)
  return metrics["images_per_sec"], flops


def _row(row) -> tuple:
  """(setting, mode, devices, images/s, FLOPs per image, threads label or
  "", precision) of a table row of 5, 6 or 7 fields."""
  threads = row[5] if len(row) > 5 and row[5] else ""
  precision = row[6] if len(row) > 6 else "float32"
  return (*row[:5], threads, precision)


def table(rows: list, cpu: str, matmul: float, matmul_size: int,
          low_matmul: dict | None = None) -> str:
  """The Markdown table of (setting, mode, devices, images/s, FLOPs per
  image[, threads[, precision]]) rows, the CPU and its matmul rates in the
  header. The ratio column divides by the setting's first tf.function,
  1-device, float32 row (with threads: the first thread setting's).
  `matmul`: GFLOP/s of a float32 matmul of side `matmul_size`;
  `low_matmul`: {precision: GFLOP/s of a matmul in its compute dtype}, the
  rate a mixed-precision row is compared with."""
  rows = [_row(r) for r in rows]
  low_matmul = low_matmul or {}
  peak = f"{matmul:.0f} GFLOP/s" if matmul > 0 else "not measured"
  for name, rate in low_matmul.items():
    peak += (f"; {precision_lib.compute_dtype(name).name} matmul: "
             f"{rate:.0f} GFLOP/s")
  threaded = any(r[5] for r in rows)
  mixed = any(r[6] != "float32" for r in rows)
  lines = [f"CPU: {cpu}; float32 "
           f"{matmul_size}^2 matmul in the same run: {peak}.", "",
           "| setting | mode | devices |" + (" threads |" if threaded else "")
           + (" precision |" if mixed else "")
           + " images/s | x tf.function, 1 device "
           "| GFLOP/image | GFLOP/s | of matmul rate |",
           "|---|---|---|" + ("---|" if threaded else "") +
           ("---|" if mixed else "") + "---|---|---|---|---|"]
  for setting, mode, devices, rate, _, threads, precision in rows:
    base = [(r[3], r[4]) for r in rows if r[0] == setting
            and r[1] == "function" and r[2] == 1 and r[6] == "float32"]
    ratio = f"{rate / base[0][0]:.2f}" if base else "-"
    flops = base[0][1] if base else float("nan")
    peak = (matmul if precision == "float32"
            else low_matmul.get(precision, matmul))
    if np.isfinite(flops):
      achieved = flops * rate / 1e9
      share = f"{achieved / peak:.0%}" if peak > 0 else "-"
      counts = f"{flops / 1e9:.2f} | {achieved:.0f} | {share}"
    else:
      counts = "- | - | -"
    shown = f" {threads} |" if threaded else ""
    shown += f" {precision} |" if mixed else ""
    lines.append(f"| {setting} | {mode} | {devices} |{shown} {rate:.3f} | "
                 f"{ratio} | {counts} |")
  return "\n".join(lines)


def run_cases() -> list:
  """(setting, mode, devices, images/s, FLOPs per image) of every case of
  the flags, in this process; with --precisions other than float32 alone,
  (..., "", precision) rows, each case in every precision in turn,
  --rounds times."""
  rows = []
  precisions = list(FLAGS.precisions)
  mixed = precisions != ["float32"]
  for setting in FLAGS.settings:
    for mode in FLAGS.modes:
      for devices in (int(d) for d in FLAGS.devices):
        if mode == "xla" and devices > 1:
          continue  # the trainer refuses XLA with several replicas
        for _ in range(FLAGS.rounds if mixed else 1):
          for precision in precisions:
            rate, flops = run_case(
                setting, mode, devices,
                FLAGS.eager_steps if mode == "eager" else FLAGS.steps,
                precision)
            rows.append((setting, mode, devices, rate, flops) +
                        (("", precision) if mixed else ()))
            print(f"{setting:14s} {mode:9s} {devices} device(s) "
                  f"{precision:14s}: {rate:8.3f} images/s", flush=True)
  return rows


def run_threads(entry: str) -> list:
  """The cases of the flags under one --threads entry: P child processes
  at once, each with the entry's thread pools; their images/s summed per
  case, the entry as a sixth field."""
  intra, inter, processes = parse_threads(entry)
  passed = [a for a in sys.argv[1:] if not a.startswith(
      ("--threads", "--out", "--matmul_size", "--child_rows"))]
  with tempfile.TemporaryDirectory() as tmp:
    outs = [os.path.join(tmp, f"rows{p}.json") for p in range(processes)]
    children = [subprocess.Popen(
        [sys.executable, "-m", __spec__.name, *passed,
         "--matmul_size=0", f"--child_rows={out}",
         f"{CHILD_THREADS}{intra}:{inter}"]) for out in outs]
    try:
      for child in children:
        if child.wait() != 0:
          raise RuntimeError(f"--threads={entry}: a child process failed "
                             f"(exit {child.returncode}); its log is above.")
    finally:  # No child outlives a failed one (nor its folder).
      for child in children:
        if child.poll() is None:
          child.terminate()
          child.wait()
    runs = []
    for out in outs:
      with open(out, encoding="utf-8") as f:
        runs.append(json.load(f))
  label = f"{intra or 'TF'}/{inter or 'TF'}" + (
      f" x{processes} processes" if processes > 1 else "")
  rows = []
  for case in zip(*runs):  # The same case in every process.
    setting, mode, devices, _, flops = case[0]
    rows.append((setting, mode, devices, sum(c[3] for c in case), flops,
                 label))
  return rows


def main(argv):
  del argv
  cpu = machine.cpu_description()
  matmul = matmul_gflops(FLAGS.matmul_size) if FLAGS.matmul_size else 0.0
  print(f"{cpu}: float32 matmul {matmul:.0f} GFLOP/s", flush=True)
  if FLAGS.child_rows:
    rows = run_cases()
    files.write_text(FLAGS.child_rows, json.dumps(rows))
    return
  unknown = sorted(set(FLAGS.modes) - set(MODES))
  if unknown:
    raise app.UsageError(f"--modes: unknown {', '.join(unknown)}; the modes "
                         f"are {', '.join(MODES)}.")
  for entry in FLAGS.threads:
    parse_threads(entry)  # Refuse a bad entry before any run.
  try:
    for name in FLAGS.precisions:
      precision_lib.check(name)
  except UserInputError as e:
    raise app.UsageError(f"--precisions: {e}") from e
  if FLAGS.rounds < 1:
    raise app.UsageError(f"--rounds must be >= 1, got {FLAGS.rounds}.")
  mixed = [p for p in dict.fromkeys(FLAGS.precisions) if p != "float32"]
  if mixed and FLAGS.threads:
    raise app.UsageError("--threads measures float32 only: run it without "
                         "--precisions, or --precisions without --threads.")
  low_matmul = {}
  if FLAGS.matmul_size:
    for name in mixed:
      low_matmul[name] = matmul_gflops(
          FLAGS.matmul_size, dtype=precision_lib.compute_dtype(name))
      print(f"{precision_lib.compute_dtype(name).name} matmul "
            f"{low_matmul[name]:.0f} GFLOP/s", flush=True)
  rows = (run_cases() if not FLAGS.threads else
          [row for entry in FLAGS.threads for row in run_threads(entry)])
  text = table(rows, cpu, matmul, FLAGS.matmul_size, low_matmul)
  print(text)
  if FLAGS.out:
    files.write_text(FLAGS.out, text + "\n")


def _set_child_threads() -> None:
  """A child's thread pools (its --child_threads=INTRA:INTER), set before
  TensorFlow starts; the flag is removed from argv."""
  for arg in list(sys.argv):
    if arg.startswith(CHILD_THREADS):
      intra, inter, _ = parse_threads(arg[len(CHILD_THREADS):])
      tf.config.threading.set_intra_op_parallelism_threads(intra)
      tf.config.threading.set_inter_op_parallelism_threads(inter)
      sys.argv.remove(arg)


if __name__ == "__main__":
  define_flags()
  _set_child_threads()
  distribute.split_cpu(2)
  sys.exit(app.run(main))
