r"""Images per second of a full GAN training step (one D and one G update).

    python tools/benchmark_step.py [--settings=fashion_mnist,cifar]
        [--modes=eager,function,xla] [--devices=1,2] [--steps=6] [--out=FILE.md]

Runs the real trainer (`tfgt.train.train`) for a few steps per case on
synthetic data of the right shape and reports the rate measured after the
first (tracing) step. Settings:
  fashion_mnist: the shipped default, 32x32x1, ch 16, batch 64, 8 classes;
  cifar:         the cGANTransfer paper's CIFAR setting, 32x32x3, ch 64,
                 batch 50, 80 classes;
  stylegan_fashion_mnist: the shipped StyleGAN source's setting
                 (gin_configs/fashion_mnist/pretrain_stylegan.gin): 32x32x1,
                 fmap_base 512, fmap_max 64, batch 32, 1 class,
                 non-saturating loss, R1 10 on one D batch in 4;
  stylegan_256:  Hyper-Modulation's source setting: StyleGAN at 256x256x3
                 with NVlabs' widths (fmap_base 8192, fmap_max 512, z and w
                 512), batch 10, 1 class, R1 10 on every D batch.
Devices: 1 = one logical CPU device, 2 = MirroredStrategy over the CPU split
into two logical devices (same global batch). Ratios within one run are the
figures to compare; absolute rates move with the load of the machine.
"""

from __future__ import annotations

import os
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

from tfgt import distribute
from tfgt import files
from tfgt import train as train_lib
from tfgt.data import sources

FLAGS = flags.FLAGS
flags.DEFINE_list("settings", ["fashion_mnist", "cifar"], "Settings to run.")
flags.DEFINE_list("modes", ["eager", "function", "xla"], "Execution modes.")
flags.DEFINE_list("devices", ["1", "2"], "Logical CPU devices.")
flags.DEFINE_integer("steps", 6, "Measured steps per case (after 1 warm-up).")
flags.DEFINE_integer("eager_steps", 2, "Measured steps in eager mode.")
flags.DEFINE_string("out", None, "Also write the Markdown table here.")


def _biggan(channels: int, ch: int, dim_z: int) -> list[str]:
  return [f"BigGANGenerator.channels = {channels}",
          f"BigGANDiscriminator.channels = {channels}",
          f"BigGANGenerator.ch = {ch}", f"BigGANDiscriminator.ch = {ch}",
          f"BigGANGenerator.dim_z = {dim_z}"]


def _stylegan(resolution: int, channels: int, fmap_base: int, fmap_max: int,
              dim_z: int, r1_every: int) -> list[str]:
  models = [f"{m}.{k} = {v}"
            for m in ("StyleGANGenerator", "StyleGANDiscriminator")
            for k, v in (("resolution", resolution), ("channels", channels),
                         ("fmap_base", fmap_base), ("fmap_max", fmap_max))]
  return models + [
      "Scratch.architecture = 'stylegan'",
      f"StyleGANGenerator.dim_z = {dim_z}", f"StyleGANGenerator.w_dim = {dim_z}",
      "discriminator_loss.name = 'non_saturating'",
      "generator_loss.name = 'non_saturating'",
      "Adversarial.r1_gamma = 10.0", f"Adversarial.r1_every = {r1_every}"]


# name -> (batch, classes, gin bindings of the models and losses).
SETTINGS = {
    "fashion_mnist": (64, 8, _biggan(1, 16, 64)),
    "cifar": (50, 80, _biggan(3, 64, 128)),
    "stylegan_fashion_mnist": (32, 1, _stylegan(32, 1, 512, 64, 128, 4)),
    "stylegan_256": (10, 1, _stylegan(256, 3, 8192, 512, 512, 1)),
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


def case_bindings(setting: str, steps: int, use_xla: bool = False
                  ) -> list[str]:
  """Gin bindings that train `setting` from scratch on synthetic images for
  one tracing step and `steps` measured ones, with no periodic work."""
  batch, classes, model_bindings = SETTINGS[setting]
  return model_bindings + [
      "train.method = @Scratch()",
      "load_training_data.source = @synthetic_images",
      f"synthetic_images.num_classes = {classes}",
      f"synthetic_images.per_class = {max(64, batch)}",
      f"train.batch_size = {batch}",
      f"train.num_steps = {steps + 1}",
      f"train.use_xla = {use_xla}",
      "train.log_every = 1000000",
      "train.sample_every = 0",
      "train.checkpoint_every = 0",
      "train.samples_per_class = 1",
  ]


def run_case(setting: str, mode: str, devices: int) -> float:
  """Images per second of one case."""
  steps = FLAGS.eager_steps if mode == "eager" else FLAGS.steps
  gin.clear_config()
  gin.parse_config(case_bindings(setting, steps, use_xla=mode == "xla"))
  cpus = tf.config.list_logical_devices("CPU")
  if devices == 1:
    strategy = tf.distribute.OneDeviceStrategy(cpus[0].name)
  else:
    strategy = tf.distribute.MirroredStrategy(
        [d.name for d in cpus[:devices]],
        cross_device_ops=tf.distribute.ReductionToOneDevice())
  tf.config.run_functions_eagerly(mode == "eager")
  try:
    with tempfile.TemporaryDirectory() as model_dir:
      start = time.time()
      metrics = train_lib.train(model_dir, strategy=strategy)
      logging.info("%s %s %d device(s): %.1f s in all", setting, mode, devices,
                   time.time() - start)
  finally:
    tf.config.run_functions_eagerly(False)
  return metrics["images_per_sec"]


def main(argv):
  del argv
  rows = []
  for setting in FLAGS.settings:
    for mode in FLAGS.modes:
      for devices in (int(d) for d in FLAGS.devices):
        if mode == "xla" and devices > 1:
          continue  # the trainer refuses XLA with several replicas
        rate = run_case(setting, mode, devices)
        rows.append((setting, mode, devices, rate))
        print(f"{setting:14s} {mode:9s} {devices} device(s): "
              f"{rate:8.3f} images/s", flush=True)
  lines = ["| setting | mode | devices | images/s | x tf.function, 1 device |",
           "|---|---|---|---|---|"]
  for setting, mode, devices, rate in rows:
    base = [r for s, m, d, r in rows if s == setting and m == "function"
            and d == 1]
    ratio = f"{rate / base[0]:.2f}" if base else "-"
    lines.append(f"| {setting} | {mode} | {devices} | {rate:.3f} | {ratio} |")
  table = "\n".join(lines)
  print(table)
  if FLAGS.out:
    files.write_text(FLAGS.out, table + "\n")


if __name__ == "__main__":
  distribute.split_cpu(2)
  sys.exit(app.run(main))
