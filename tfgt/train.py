r"""One trainer for every GAN of the library.

    python -m tfgt.train --gin_file=gin_configs/fashion_mnist/pretrain_biggan.gin \
        --model_dir=/tmp/run [--gin_param=train.num_steps=100] [--logical_cpus=2]

The method (a `tfgt.methods` class bound to `train.method` in gin) decides what
the models are and what trains; this module only runs the loop: data, a
tf.distribute strategy, D and G updates, EMA, checkpoints that resume,
TensorBoard summaries and progress on the terminal. Running the same command
again continues from the latest checkpoint.

Files in model_dir:
  config.gin, operative_config.gin  the gin config given and the one used
  classes.json                      the class selection of the data
  run.json                          what fixes the run's trajectory (method,
                                    seed, batch, data); a resume must match it
  best.json, eval_state.json        the best evaluation; the last evaluated step
  ckpt-*                            training checkpoints (models, optimizers)
  model/                            the plain EMA generator and D (bundle.py)
  train/                            TensorBoard events
  samples.png                       a grid of the final samples, one row a class
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Callable, Sequence

from absl import app
from absl import flags
from absl import logging
import gin
import keras
import numpy as np
import tensorflow as tf

from tfgt import distribute
from tfgt import files
from tfgt import images as image_utils
from tfgt import losses
from tfgt.data import pipeline
from tfgt.errors import UserInputError
from tfgt.eval import cache as cache_lib
from tfgt.eval import evaluator as evaluator_lib
from tfgt.methods import base
from tfgt.models import architectures
from tfgt.models import bundle

# Make every configurable of the library known to gin before parsing.
import tfgt.eval  # pylint: disable=unused-import
import tfgt.methods  # pylint: disable=unused-import

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the command-line flags (only when run as a program, so that
  importing this module next to other tfgt programs defines no flags)."""
  flags.DEFINE_multi_string("gin_file", [], "Gin config files, in order.")
  flags.DEFINE_multi_string("gin_param", [], "Gin bindings, applied last.")
  flags.DEFINE_string("model_dir", None, "Where checkpoints and logs go.")
  flags.DEFINE_integer("seed", None, "Overrides train.seed.")
  flags.DEFINE_integer("logical_cpus", 0,
                       "Split the CPU into this many logical devices (with "
                       "strategy 'auto' this trains with MirroredStrategy on "
                       "them).")
  flags.DEFINE_bool("deterministic", False,
                    "Enable TensorFlow op determinism (slower).")


def _format_eta(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _read_json(path: str) -> dict | None:
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      return json.load(f)
  except ValueError as e:
    raise UserInputError(f"{path} is not valid JSON ({e}); delete it to "
                         "continue the run without it.") from e


def _check_run_identity(model_dir: str, identity: dict) -> None:
  """Refuses to resume a run with another method, seed, batch or data.

  Those decide which batches and latents each step sees; a resumed run with
  other values would silently differ from a straight one. The number of steps,
  intervals, learning rates and evaluation may change between sessions.
  """
  path = os.path.join(model_dir, "run.json")
  old = _read_json(path)
  if old is None or tf.train.latest_checkpoint(model_dir) is None:
    # A new run (or one from before run.json existed): record it.
    files.write_json(path, identity)
    return
  changed = {k: (old.get(k), v) for k, v in identity.items()
             if old.get(k) != v}
  if changed:
    details = "; ".join(f"{k}: {a!r} before, {b!r} now"
                        for k, (a, b) in sorted(changed.items()))
    raise UserInputError(
        f"{model_dir} holds a run that this config would not continue as it "
        f"started ({details}). Use a new --model_dir, or the settings that "
        "made this one.")


def _check_model_dir(model_dir: str, spec: dict) -> None:
  """Refuses to resume a run whose classes or architecture differ."""
  path = os.path.join(model_dir, "model", bundle.SPEC_FILE)
  if not os.path.exists(path):
    return
  with open(path) as f:
    old = json.load(f)
  if old["class_names"] != spec["class_names"]:
    raise UserInputError(
        f"{model_dir} holds a model of {len(old['class_names'])} classes "
        f"({', '.join(old['class_names'])}) but this config trains "
        f"{len(spec['class_names'])} ({', '.join(spec['class_names'])}). Use a "
        "new --model_dir, or the config that made this one.")
  old_architecture = old.get("architecture", architectures.DEFAULT_ARCHITECTURE)
  if old_architecture != spec["architecture"]:
    raise UserInputError(
        f"{model_dir} holds a {old_architecture} model but this config builds "
        f"a {spec['architecture']}. Use a new --model_dir, or the config that "
        "made this one.")
  for part in ("generator", "discriminator"):
    if old[part] != spec[part]:
      raise UserInputError(
          f"{model_dir} holds a {part} {old[part]} but this config builds "
          f"{spec[part]}. Use a new --model_dir, or the config that made it.")


def _pair_variables(target, source) -> list[tuple]:
  """Pairs the variables of two models of one structure, checking names."""
  pairs = list(zip(target.variables, source.variables))
  if len(target.variables) != len(source.variables) or any(
      t.path.split("/", 1)[-1] != s.path.split("/", 1)[-1]
      or t.shape != s.shape for t, s in pairs):
    raise ValueError(f"Models {target.name} and {source.name} differ in "
                     "structure.")
  return pairs


class _Interrupted(Exception):
  """SIGTERM arrived; the trainer saves and stops."""


@gin.configurable(denylist=["model_dir", "strategy"])
def train(model_dir: str,
          strategy: tf.distribute.Strategy | None = None,
          method: base.Method = gin.REQUIRED,
          num_steps: int = 1000,
          batch_size: int = 64,
          d_steps: int = 1,
          g_lr: float = 2e-4,
          d_lr: float = 2e-4,
          beta1: float = 0.0,
          beta2: float = 0.999,
          r1_gamma: float = 0.0,
          ema_decay: float = 0.999,
          ema_start: int = 0,
          random_flip: bool = True,
          seed: int = 0,
          use_xla: bool = False,
          checkpoint_every: int = 500,
          keep_checkpoints: int = 3,
          log_every: int = 50,
          sample_every: int = 500,
          samples_per_class: int = 8,
          evaluator: Callable[[keras.Model], dict] | None = None,
          eval_every: int = 0,
          best_metric: str = "fid") -> dict:
  """Trains `method`'s GAN for `num_steps` G updates, resuming if possible.

  Args:
    model_dir: output folder (see the module docstring).
    strategy: tf.distribute strategy; `distribute.make_strategy()` if None.
    method: the transfer method (or `Scratch` for pretraining).
    num_steps: number of G updates (each after `d_steps` D updates).
    batch_size: global batch size, split over the replicas.
    d_steps: D updates per G update.
    g_lr: Adam learning rate of G.
    d_lr: Adam learning rate of D.
    beta1: Adam beta_1 of both optimizers.
    beta2: Adam beta_2 of both optimizers.
    r1_gamma: weight of the R1 penalty on real images (0 turns it off).
    ema_decay: decay of the EMA generator.
    ema_start: before this step the EMA generator copies G.
    random_flip: horizontal flips of the real images.
    seed: seed of initialisation, data order and latent samples.
    use_xla: compile the gradient computations with XLA.
    checkpoint_every: steps between checkpoints (also saved at the end and on
      interruption).
    keep_checkpoints: checkpoints kept.
    log_every: steps between terminal lines and scalar summaries.
    sample_every: steps between sample grids in TensorBoard.
    samples_per_class: columns of the sample grid.
    evaluator: optional callable(plain generator) -> {metric: float}, run every
      `eval_every` steps; the bundle with the lowest `best_metric` is kept in
      `model/best`.
    eval_every: steps between evaluations (0: only at the end, if an
      evaluator is set).
    best_metric: metric that selects the best checkpoint (lower is better,
      except for precision, recall, density and coverage); an evaluator with
      `result_names()` must produce it.

  Returns:
    The last logged metrics, with "step".
  """
  if batch_size < 1 or num_steps < 0 or d_steps < 1:
    raise UserInputError("train.batch_size and train.d_steps must be >= 1 and "
                         "train.num_steps >= 0.")
  if log_every < 1:
    raise UserInputError(f"train.log_every must be >= 1, got {log_every}.")
  for name, value in (("checkpoint_every", checkpoint_every),
                      ("sample_every", sample_every),
                      ("eval_every", eval_every)):
    if value < 0:
      raise UserInputError(f"train.{name} must be >= 0 (0: never), got "
                           f"{value}.")
  result_names = getattr(evaluator, "result_names", None)
  if result_names is not None and best_metric not in result_names():
    raise UserInputError(
        f"train.best_metric={best_metric!r} is not among the evaluator's "
        f"results {sorted(result_names())}: choose one of them, or add its "
        "metric to Evaluator.metrics.")
  strategy = strategy or distribute.make_strategy()
  replicas = strategy.num_replicas_in_sync
  if batch_size % replicas:
    raise UserInputError(f"train.batch_size={batch_size} does not split over "
                         f"{replicas} replicas.")
  if use_xla and replicas > 1:
    # The synchronised batch norm all-reduces inside the replica step, and
    # collectives inside an XLA cluster hang on a multi-device CPU strategy.
    raise UserInputError(
        f"train.use_xla=True needs a single replica, the strategy has "
        f"{replicas}. Set train.use_xla=False or train on one device.")
  os.makedirs(model_dir, exist_ok=True)
  # Seeds Python, NumPy, TensorFlow and Keras' initialisers, so that the
  # initial weights do not depend on the strategy.
  keras.utils.set_random_seed(seed)

  info = method.source_info()
  images, labels, selection = pipeline.load_training_data(
      resolution=info.resolution, channels=info.channels,
      label_offset=len(info.class_names))
  class_names = info.class_names + selection.names
  pipeline.check_new_class_names(info.class_names, selection)
  train_ids = np.unique(labels).astype(np.int32)
  if hasattr(evaluator, "prepare"):
    # Loads the feature extractor now: a missing or unsuitable one fails
    # before any training, not at the first evaluation.
    evaluator.prepare()
  logging.info("Training classes: %s (model ids %d-%d), %d images.",
               ", ".join(selection.names), selection.label_offset,
               selection.label_offset + len(selection.names) - 1, len(images))

  with strategy.scope():
    keras.utils.set_random_seed(seed)
    setup = method.build(class_names)
    generator, discriminator = setup.generator, setup.discriminator
    ema = setup.clone_generator()
    ema((tf.zeros([1, generator.dim_z]), tf.zeros([1], tf.int32)))
    # (EMA variable, G variable, whether the EMA copies it: state such as
    # spectral norm's power-iteration vectors is not averaged.)
    ema_pairs = [(e, v, architectures.ema_copies(ema, e))
                 for e, v in _pair_variables(ema, generator)]
    for e, v, _ in ema_pairs:
      e.assign(v)
    g_opt = keras.optimizers.Adam(g_lr, beta_1=beta1, beta_2=beta2)
    d_opt = keras.optimizers.Adam(d_lr, beta_1=beta1, beta_2=beta2)
    g_opt.build(setup.g_variables)
    d_opt.build(setup.d_variables)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")

  spec = bundle.spec_of(setup.fold(ema), discriminator, class_names,
                        method.name)
  _check_model_dir(model_dir, spec)
  _check_run_identity(model_dir, dict(
      method=method.name, seed=seed, batch_size=batch_size, d_steps=d_steps,
      random_flip=random_flip, classes=selection.to_json(),
      images=int(len(images)),
      data=cache_lib.array_fingerprint(images, labels)))

  checkpoint = tf.train.Checkpoint(
      generator=generator, discriminator=discriminator, ema_generator=ema,
      step=step,
      # Nested so that variables are named by their model paths, not by the
      # optimizers' variable lists.
      optimizers=tf.train.Checkpoint(generator=g_opt, discriminator=d_opt))
  manager = tf.train.CheckpointManager(checkpoint, model_dir,
                                       max_to_keep=keep_checkpoints)
  if manager.latest_checkpoint:
    try:
      checkpoint.restore(
          manager.latest_checkpoint).assert_existing_objects_matched()
    except AssertionError as e:
      raise UserInputError(
          f"The checkpoint {manager.latest_checkpoint} does not match the "
          f"models this config builds (another method or its options?): {e}. "
          "Use a new --model_dir, or the config that made this one.") from e
    logging.info("Resumed from %s at step %d.", manager.latest_checkpoint,
                 int(step.numpy()))
  start_step = int(step.numpy())
  # Written once the run is known to continue (a failed start changes nothing).
  files.write_json(os.path.join(model_dir, "classes.json"),
                   selection.to_json())
  files.write_text(os.path.join(model_dir, "config.gin"), gin.config_str())

  exported = setup.fold(ema)
  writer_bundle = bundle.BundleWriter(
      os.path.join(model_dir, "model"), exported, discriminator, class_names,
      method.name, max_to_keep=keep_checkpoints)
  best_bundle = None

  def refresh_exported() -> None:
    # The plain generator that bundles, grids and evaluations see: the fold
    # of the EMA generator (the EMA generator itself when there is no fold).
    folded = setup.fold(ema)
    if folded is not exported:
      exported.set_weights(folded.get_weights())

  def save(current: int) -> None:
    manager.save(checkpoint_number=current)
    save_bundle(current)

  def save_bundle(current: int) -> None:
    refresh_exported()
    writer_bundle.save(current)

  bundle_step = tf.train.latest_checkpoint(writer_bundle.directory)
  if start_step and (bundle_step is None or
                     not bundle_step.endswith(f"-{start_step}")):
    # Interrupted between the checkpoint and its bundle: write the bundle the
    # checkpoint stands for, so that sampling and export see this step.
    logging.info("Writing the model bundle of step %d.", start_step)
    save_bundle(start_step)

  # Data and latents: everything random is keyed on (seed, batch index), so a
  # run is the same on any number of replicas and a resumed run continues
  # with the batches it would have seen.
  dim_z = generator.dim_z
  ids = tf.constant(train_ids)

  def add_latents(index, batch):
    batch_images, batch_labels = batch
    b = tf.shape(batch_labels)[0]

    def draw_labels(salt):
      pick = tf.random.stateless_uniform([b], seed=[seed + salt, index],
                                         maxval=len(train_ids), dtype=tf.int32)
      return tf.gather(ids, pick)

    return dict(
        images=batch_images, labels=batch_labels,
        z_d=tf.random.stateless_normal([b, dim_z], seed=[seed + 1, index]),
        y_d=draw_labels(2),
        z_g=tf.random.stateless_normal([b, dim_z], seed=[seed + 3, index]),
        y_g=draw_labels(4))

  dataset = pipeline.training_dataset(images, labels, batch_size, seed,
                                      random_flip=random_flip)
  dataset = dataset.enumerate().skip(start_step * d_steps).map(add_latents)
  iterator = iter(strategy.experimental_distribute_dataset(dataset))

  def d_gradients(batch):
    with tf.GradientTape() as tape:
      fake = generator((batch["z_d"], batch["y_d"]), training=True)
      real_logits = discriminator((batch["images"], batch["labels"]),
                                  training=True)
      fake_logits = discriminator((fake, batch["y_d"]), training=True)
      loss = tf.reduce_sum(
          losses.discriminator_loss(real_logits, fake_logits)) / batch_size
      if r1_gamma:
        penalty = losses.r1_penalty(
            lambda x: discriminator((x, batch["labels"]), training=True),
            batch["images"])
        loss += 0.5 * r1_gamma * tf.reduce_sum(penalty) / batch_size
      if setup.extra_d_loss is not None:
        loss += setup.extra_d_loss() / replicas
    return loss, tape.gradient(loss, setup.d_variables)

  def g_gradients(batch):
    with tf.GradientTape() as tape:
      fake = generator((batch["z_g"], batch["y_g"]), training=True)
      logits = discriminator((fake, batch["y_g"]), training=True)
      loss = tf.reduce_sum(losses.generator_loss(logits)) / batch_size
      if setup.extra_g_loss is not None:
        loss += setup.extra_g_loss() / replicas
    return loss, tape.gradient(loss, setup.g_variables)

  if use_xla:
    d_gradients = tf.function(d_gradients, jit_compile=True)
    g_gradients = tf.function(g_gradients, jit_compile=True)

  def d_replica_step(batch):
    loss, grads = d_gradients(batch)
    d_opt.apply_gradients(zip(grads, setup.d_variables))
    return loss

  def g_replica_step(batch):
    loss, grads = g_gradients(batch)
    g_opt.apply_gradients(zip(grads, setup.g_variables))
    return loss

  @tf.function
  def train_step(it):
    for _ in range(d_steps):
      batch = next(it)
      d_loss = strategy.run(d_replica_step, args=(batch,))
    g_loss = strategy.run(g_replica_step, args=(batch,))
    warming_up = step < ema_start
    for e, v, copied in ema_pairs:
      if copied:
        e.assign(v)
      else:
        # e + (1 - decay) (v - e) leaves a value that did not change exactly
        # as it is (decay * x + (1 - decay) * x need not be x in float32), so
        # frozen weights stay bit-identical to the source's.
        e.assign(tf.where(warming_up, tf.convert_to_tensor(v),
                          e + (1.0 - ema_decay) * (v - e)))
    step.assign_add(1)
    return (strategy.reduce(tf.distribute.ReduceOp.SUM, d_loss, axis=None),
            strategy.reduce(tf.distribute.ReduceOp.SUM, g_loss, axis=None))

  sample_generator = tf.function(lambda z, y: exported((z, y), training=False))
  grid_ids = (list(range(len(class_names))) if len(class_names) <= 16
              else train_ids[:16].tolist())
  grid_z = tf.random.stateless_normal([samples_per_class, dim_z],
                                      seed=[seed + 5, 0])

  def write_grid(current: int) -> np.ndarray:
    refresh_exported()
    picture = image_utils.sample_grid(sample_generator, grid_ids, grid_z)
    with summary_writer.as_default(step=current):
      tf.summary.image("samples_ema", picture[None], max_outputs=1)
    return picture

  def evaluate(current: int) -> None:
    nonlocal best_bundle
    refresh_exported()
    results = evaluator(exported)
    logging.info("Step %d evaluation: %s", current,
                 ", ".join(f"{k} {v:.4g}" for k, v in sorted(results.items())))
    with summary_writer.as_default(step=current):
      for k, v in results.items():
        tf.summary.scalar(f"eval/{k}", v)
    best = _read_json(best_path)
    value = results.get(best_metric)
    if value is None:
      logging.warning("The evaluation has no %r: no best checkpoint kept.",
                      best_metric)
    elif (best is None or best_metric not in best or
          (value > best[best_metric] if best_metric in evaluator_lib.HIGHER_IS_BETTER
           else value < best[best_metric])):
      if best_bundle is None:
        best_bundle = bundle.BundleWriter(
            os.path.join(model_dir, "model", "best"), exported, discriminator,
            class_names, method.name, max_to_keep=1)
      best_bundle.save(current)
      files.write_json(best_path, dict(results, step=current))
    files.write_json(eval_state_path, {"step": current})

  best_path = os.path.join(model_dir, "best.json")
  eval_state_path = os.path.join(model_dir, "eval_state.json")
  if evaluator is not None:
    _read_json(best_path)  # A torn or edited file stops here, not later.

  def due_evaluation(current: int) -> bool:
    return evaluator is not None and (
        (eval_every and current % eval_every == 0) or current == num_steps)

  summary_writer = tf.summary.create_file_writer(
      os.path.join(model_dir, "train"))
  # SIGTERM only sets a flag, checked after each step: an exception raised at
  # an arbitrary point could land inside TensorFlow or gin code, which may
  # wrap it into another error, or inside a file write.
  terminate = threading.Event()
  previous_handler = signal.signal(signal.SIGTERM,
                                   lambda signum, frame: terminate.set())
  metrics = {"step": float(start_step)}
  last_saved = start_step
  current = start_step
  # Seconds of the last evaluation, for the ETA.
  eval_seconds = 0.0

  def timed(fn, *args) -> float:
    start = time.time()
    fn(*args)
    return time.time() - start

  def evaluate_if_missing(at: int) -> None:
    nonlocal eval_seconds
    if due_evaluation(at) and (
        (_read_json(eval_state_path) or {}).get("step") != at):
      logging.info("Evaluating step %d (not evaluated before).", at)
      eval_seconds = timed(evaluate, at)

  logging.info("Training from step %d to %d, global batch %d on %d "
               "replica(s).", start_step, num_steps, batch_size, replicas)
  try:
    if start_step > 0 or num_steps == 0:
      # An evaluation an interruption cut short, or a finished run.
      evaluate_if_missing(start_step)
    # The rate counts training steps only: grids, checkpoints and evaluations
    # in a window are subtracted (`paused`) and evaluations enter the ETA.
    window_start, window_steps, paused = time.time(), 0, 0.0
    run_start = time.time()
    while current < num_steps:
      d_loss, g_loss = train_step(iterator)
      current += 1
      window_steps += 1
      if current == start_step + 1:
        # The first step includes tracing: keep it out of the rate.
        window_start, window_steps, paused = time.time(), 0, 0.0
        if start_step == 0:
          files.write_text(os.path.join(model_dir, "operative_config.gin"),
                           gin.operative_config_str())
      if current % log_every == 0 or current == num_steps:
        now = time.time()
        busy = now - window_start - paused
        rate = window_steps / max(busy, 1e-9) if window_steps else 0.0
        metrics = {"step": float(current), "d_loss": float(d_loss),
                   "g_loss": float(g_loss)}
        if rate:
          metrics.update(steps_per_sec=rate, images_per_sec=rate * batch_size)
        with summary_writer.as_default(step=current):
          for k, v in metrics.items():
            if k != "step":
              tf.summary.scalar(f"train/{k}", v)
          tf.summary.scalar("train/g_lr", g_lr)
          tf.summary.scalar("train/d_lr", d_lr)
        remaining_evals = (
            (num_steps // eval_every - current // eval_every)
            if evaluator is not None and eval_every else 0)
        logging.info(
            "step %d/%d (%.0f%%)  %.2f steps/s  %.0f images/s  ETA %s  "
            "d_loss %.4f  g_loss %.4f", current, num_steps,
            100.0 * current / max(num_steps, 1), rate, rate * batch_size,
            _format_eta((num_steps - current) / rate +
                        remaining_evals * eval_seconds) if rate else "--",
            metrics["d_loss"], metrics["g_loss"])
        window_start, window_steps, paused = now, 0, 0.0
      if sample_every and current % sample_every == 0:
        paused += timed(write_grid, current)
      if checkpoint_every and current % checkpoint_every == 0:
        paused += timed(save, current)
        last_saved = current
      if due_evaluation(current):
        eval_seconds = timed(evaluate, current)
        paused += eval_seconds
      if terminate.is_set():
        raise _Interrupted()
    logging.info("Trained %d steps in %s.", current - start_step,
                 _format_eta(time.time() - run_start))
  except (KeyboardInterrupt, _Interrupted):
    # The signal may land between a finished step and the Python counter.
    current = int(step.numpy())
    logging.warning("Interrupted at step %d: saving a checkpoint.", current)
    if current != last_saved:
      save(current)
    summary_writer.flush()
    raise
  finally:
    signal.signal(signal.SIGTERM, previous_handler)
  if current != last_saved or not manager.latest_checkpoint:
    save(current)
  picture = write_grid(current)
  image_utils.save_png(picture, os.path.join(model_dir, "samples.png"))
  summary_writer.flush()
  logging.info("Samples (one row per class: %s) in %s.",
               ", ".join(class_names[i] for i in grid_ids),
               os.path.join(model_dir, "samples.png"))
  return metrics


def parse_config(gin_files: Sequence[str], gin_params: Sequence[str]) -> None:
  """Parses gin files and bindings; a missing file is a UserInputError."""
  for path in gin_files:
    if not os.path.exists(path):
      raise UserInputError(f"Gin file {path} does not exist.")
  gin.parse_config_files_and_bindings(list(gin_files), list(gin_params))


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not FLAGS.model_dir:
    raise app.UsageError("--model_dir is required.")
  if not FLAGS.gin_file:
    raise app.UsageError("At least one --gin_file is required.")
  distribute.split_cpu(FLAGS.logical_cpus)
  if FLAGS.deterministic:
    tf.config.experimental.enable_op_determinism()
  params = list(FLAGS.gin_param)
  if FLAGS.seed is not None:
    params.append(f"train.seed = {FLAGS.seed}")
  try:
    parse_config(FLAGS.gin_file, params)
    train(FLAGS.model_dir)
  except UserInputError as e:
    logging.error("%s", e)
    sys.exit(2)
  except KeyboardInterrupt:
    sys.exit(130)
  except _Interrupted:
    sys.exit(143)


if __name__ == "__main__":
  define_flags()
  app.run(main)
