"""Mixed precision: the `train.precision` setting and its float32 islands.

    train.precision = "float32"          (default) everything in float32
    train.precision = "mixed_bfloat16"   layers compute in bfloat16
    train.precision = "mixed_float16"    layers compute in float16, with
                                         dynamic loss scaling
    train.precision = "auto"             mixed_bfloat16 where the hardware
                                         has native bfloat16, else float32
                                         (`resolve`)

A precision is a Keras 3 dtype policy (`keras.mixed_precision`): models built
inside `policy_scope(name)` give every layer that policy, so that its
variables stay float32 (checkpoints, bundles and the EMA are the same in
every precision, and a run may change precision when it resumes) while its
computation runs in the policy's compute dtype (Keras casts a layer's float
inputs and reads its variables in that dtype).

What stays float32 (the islands), and why:
  * Losses and their reductions: D's logits leave the discriminator as
    float32 (`output`), so every loss, R1 penalty, regulariser and mean over
    the batch is float32; a bfloat16 mean of a batch loses the last digits
    of the loss and float16 overflows on sums of squares.
  * The R1 penalty: the gradient of D's logits with respect to the real
    images comes back as float32 (the images enter D as float32) and its
    square and sums are float32; under float16 the inner gradient is taken
    of the loss-scaled logits and unscaled before squaring (it underflows
    otherwise). D's own backward pass inside it runs in the compute dtype.
  * Batch-norm statistics and the synchronised batch norm's sums across
    replicas (`tfgt.layers.batch_norm`): a mean of squares over a batch in
    bfloat16 has 8 bits of mantissa, and the variance is a difference of two
    such numbers; the normalisation itself is applied in float32 too.
  * Spectral norm's power iteration and sigma (`tfgt.layers.spectral_norm`):
    the kernel is read in float32, W / sigma is cast to the compute dtype
    for the matmul or convolution; a bfloat16 power iteration does not
    converge to a unit vector and the stored vector would drift.
  * Attention logits and softmax (`tfgt.layers.attention`): the softmax of
    large logits in low precision saturates (and overflows in float16).
  * AdaFM's standardisation (`tfgt.layers.adafm`): a division by a
    per-slice standard deviation of 9 taps; kernels are modulated in
    float32 and cast for the convolution (GAN Memory's start, gamma = sigma
    and beta = mu, then still gives the source's kernel bit for bit).
  * StyleGAN's instance norm and pixel norm statistics (the same reason as
    batch norm) and its running mean of w (`w_avg`, a slow average).
  * StyleGAN2 (`tfgt.layers.stylegan2_ops`, `tfgt.models.stylegan2`): the
    second-moment normalisation of z and of the label embedding, the
    demodulation coefficients (a sum of squares over k * k * in terms) from
    the stored kernel read in float32, the minibatch standard deviation's
    statistics, the image that the "skip" generator sums over its blocks,
    w_avg, truncation, the path-length mean, and cGANTransfer's propagated
    label embedding.
  * The Barlow Twins cross-correlation (`tfgt.methods.contrastive`): D's
    features are cast to float32 before the batch norm and the products
    summed over the batch.
  * The EMA update (`tfgt.ema`): it runs outside every layer, on the
    float32 variables; (1 - decay) (g - ema) with decay 0.999 is below
    bfloat16's resolution of most weights.
  * Generated images: a generator returns float32 images in [-1, 1]
    (`output`), so sampling, evaluation and export see float32 whatever the
    precision; every evaluation feature (FID, KID, ...) is computed by the
    evaluator's own float32 feature extractor, built outside the policy.

mixed_float16 needs loss scaling (float16's smallest normal value is 6e-5):
`DynamicLossScale`, one per network (G's variable groups share one, D's
another, since one backward pass of one loss gives all of a network's
gradients), the scheme of Micikevicius et al. (2018): a step whose scaled
gradients hold an infinity or NaN is skipped on every replica and halves
the scale; 2000 finite steps in a row double it.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator, Sequence

from absl import flags
from absl import logging
import gin
import keras
import tensorflow as tf

from tfgt.errors import UserInputError

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
DEFAULT = "float32"
# Chooses by the hardware: `resolve`.
AUTO = "auto"
CHOICES = PRECISIONS + (AUTO,)
# CPU flags (Linux /proc/cpuinfo) of native bfloat16 arithmetic: AVX512-BF16
# (AMD Zen 4 and later, Intel Cooper Lake and Sapphire Rapids) and AMX-BF16
# (Intel Sapphire Rapids and later). Without them TensorFlow's bfloat16
# kernels convert to float32 and back, slower than float32.
BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
CPUINFO = "/proc/cpuinfo"


def check(name: str) -> str:
  """Returns `name` if it is one of PRECISIONS.

  Raises:
    UserInputError: any other value, with the valid names.
  """
  if name not in PRECISIONS:
    raise UserInputError(
        f"Unknown precision {name!r}: give one of {', '.join(PRECISIONS)} "
        "here (resolve 'auto' first with tfgt.precision.choose).")
  return name


def _check_choice(name: str) -> None:
  """Raises UserInputError for a name not in CHOICES, saying where it is
  set and what is valid."""
  if name not in CHOICES:
    raise UserInputError(
        f"Unknown precision {name!r}: use float32, mixed_bfloat16, "
        "mixed_float16 or auto (train.precision in gin; --precision of "
        "tfgt.sample, tfgt.evaluate and tfgt.export; precision= of "
        "tfgt.load).")


def cpu_bfloat16_flags(cpuinfo: str | None = None) -> list[str]:
  """The flags of BFLOAT16_CPU_FLAGS that this CPU reports, sorted, from
  `cpuinfo` (default CPUINFO); [] where it cannot be read (not Linux)."""
  try:
    with open(cpuinfo or CPUINFO, encoding="utf-8", errors="replace") as f:
      for line in f:
        if line.startswith("flags"):
          have = set(line.partition(":")[2].split())
          return sorted(set(BFLOAT16_CPU_FLAGS) & have)
  except OSError:
    pass
  return []


def _gpu_compute_capabilities() -> list[tuple[int, int] | None]:
  """Each visible GPU's CUDA compute capability (None where unknown)."""
  out = []
  for gpu in tf.config.list_physical_devices("GPU"):
    details = tf.config.experimental.get_device_details(gpu)
    capability = details.get("compute_capability")
    out.append(tuple(capability) if capability else None)
  return out


def resolve(name: str, cpuinfo: str | None = None) -> tuple[str, str]:
  """The precision to compute in for `name` (one of CHOICES), and why.

  "auto" is "mixed_bfloat16" where the hardware computes bfloat16 natively
  and "float32" elsewhere: with GPUs, when every visible GPU has compute
  capability 8.0 or more (Ampere and later); without, when the CPU reports
  avx512_bf16 or amx_bf16 (`cpu_bfloat16_flags(cpuinfo)`) and TensorFlow's
  oneDNN kernels are on (TF_ENABLE_ONEDNN_OPTS=0 turns off the bfloat16
  kernels that make it fast). mixed_float16 is never chosen for you. Every
  setting measured but the small StyleGAN2 trains faster in bfloat16 on such
  a CPU (docs/TRAINING.md); which configs bind "auto" is said there.

  Returns:
    (precision, reason): precision one of PRECISIONS; reason a phrase for
    the log, "" for an explicit name.

  Raises:
    UserInputError: a name not in CHOICES.
  """
  _check_choice(name)
  if name != AUTO:
    return name, ""
  capabilities = _gpu_compute_capabilities()
  if capabilities:
    native = all(c is not None and c >= (8, 0) for c in capabilities)
    shown = ", ".join("unknown" if c is None else f"{c[0]}.{c[1]}"
                      for c in capabilities)
    return (("mixed_bfloat16" if native else "float32"),
            f"auto: GPU compute capability {shown}")
  flags_found = cpu_bfloat16_flags(cpuinfo)
  if flags_found and os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0":
    return "float32", ("auto: the CPU has " + ", ".join(flags_found) +
                       " but TF_ENABLE_ONEDNN_OPTS=0 turns oneDNN off")
  if flags_found:
    return "mixed_bfloat16", f"auto: the CPU has {', '.join(flags_found)}"
  return "float32", ("auto: the CPU reports neither "
                     f"{' nor '.join(BFLOAT16_CPU_FLAGS)}")


def choose(name: str) -> str:
  """`resolve(name)`'s precision, logging the reason when `name` is "auto":
  what every command and `tfgt.load` call with the precision they are given
  (the run's scores and exports record the precision chosen).

  Raises:
    UserInputError: a name not in CHOICES.
  """
  chosen, reason = resolve(name)
  if reason:
    logging.info("Precision %s (%s).", chosen, reason)
  return chosen


def define_flag(use: str) -> None:
  """Defines `--precision` (an enum of CHOICES, default float32) for a
  command that builds a generator from a bundle; `use` says what computes
  in it (e.g. "The generator draws in"). The command lists it in its --help
  with `flags.adopt_module_key_flags(tfgt.precision)`."""
  flags.DEFINE_enum(
      "precision", DEFAULT, CHOICES,
      f"{use} this precision (docs/TRAINING.md): mixed_bfloat16 on CPUs "
      "with bfloat16 instructions and GPUs of compute capability 8.0+, "
      "mixed_float16 on older GPUs, auto: mixed_bfloat16 where the CPU "
      "(avx512_bf16, amx_bf16) or every GPU has native bfloat16, else "
      "float32; the weights are float32 in each, images come out "
      "float32/uint8.")


def compute_dtype(name: str) -> tf.DType:
  """The compute dtype of a precision: float32, bfloat16 or float16."""
  return tf.as_dtype(keras.DTypePolicy(check(name)).compute_dtype)


def current() -> str:
  """The name of the global Keras dtype policy (this thread's)."""
  return keras.config.dtype_policy().name


@contextlib.contextmanager
def policy_scope(name: str) -> Iterator[None]:
  """Layers created inside get the dtype policy `name`.

  Keras keeps the global policy per thread; the previous one comes back on
  exit. A layer keeps the policy it was created with, so a model built
  inside computes in that precision wherever it is called.

  Raises:
    UserInputError: an unknown name.
  """
  check(name)
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy(name)
  try:
    yield
  finally:
    keras.config.set_dtype_policy(previous)


def _cast(x, dtype):
  # `x` itself when it has the dtype already (a variable stays a variable,
  # so that a float32 graph is the same op for op as without the cast).
  if tf.as_dtype(x.dtype) == tf.as_dtype(dtype):
    return x
  return tf.cast(x, dtype)


def float32(x: tf.Tensor) -> tf.Tensor:
  """`x` (a tensor or variable) as float32; `x` itself when it is float32."""
  return _cast(x, tf.float32)


def like(x: tf.Tensor, reference: tf.Tensor) -> tf.Tensor:
  """`x` cast to `reference`'s dtype (`x` itself when they are equal): a
  float32 island's result handed back to the compute dtype."""
  return _cast(x, reference.dtype)


def output(x: tf.Tensor) -> tf.Tensor:
  """A model's output as float32: images of a generator, logits of a
  discriminator. The identity under float32."""
  return _cast(x, tf.float32)


def needs_loss_scaling(name: str) -> bool:
  """Whether a precision trains with `DynamicLossScale` (float16)."""
  return check(name) == "mixed_float16"


@gin.configurable(allowlist=["initial_scale", "growth_steps"])
class DynamicLossScale(tf.Module):
  """A dynamic loss scale for one network's optimizers (float16 training).

  The loss is multiplied by `scale` before the backward pass and the
  gradients divided by it after (`unscale`); `update(finite)` then halves
  the scale after a step with a non-finite gradient (a step the caller
  skips) and doubles it after `growth_steps` finite steps in a row. Its
  variables are created on the strategy of the caller's scope; every
  replica computes the same values (`all_finite` agrees across replicas).

  The scale settles where the gradients fit: from 2^15, a BigGAN with a
  hinge loss skips its first few steps (the sums of a bias's gradient over
  the batch and the pixels overflow float16 above about 2^10 at the start);
  `DynamicLossScale.initial_scale` in gin starts it lower.

  Args:
    initial_scale: the first scale, > 0 (2^15, as Keras').
    growth_steps: finite steps in a row before the scale doubles, >= 1.
    name: the module's name.

  Raises:
    ValueError: an argument out of range.
  """

  # Below this the scale cannot rescue any gradient: the run diverged.
  MIN_SCALE = 1.0

  def __init__(self, initial_scale: float = 2.0 ** 15,
               growth_steps: int = 2000, name: str | None = None):
    super().__init__(name=name)
    if not initial_scale > 0 or growth_steps < 1:
      raise ValueError(f"initial_scale must be > 0 and growth_steps >= 1, "
                       f"got {initial_scale} and {growth_steps}.")
    self.growth_steps = growth_steps
    aggregation = tf.VariableAggregation.ONLY_FIRST_REPLICA
    self.scale = tf.Variable(float(initial_scale), trainable=False,
                             dtype=tf.float32, name="scale",
                             aggregation=aggregation)
    self.good_steps = tf.Variable(0, trainable=False, dtype=tf.int64,
                                  name="good_steps", aggregation=aggregation)
    self.skipped = tf.Variable(0, trainable=False, dtype=tf.int64,
                               name="skipped", aggregation=aggregation)
    self.last_skipped = tf.Variable(False, trainable=False, name="last_skipped",
                                    aggregation=aggregation)

  def scale_loss(self, loss: tf.Tensor) -> tf.Tensor:
    """loss * scale, float32."""
    return float32(loss) * self.scale

  def unscale(self, grads: Sequence[tf.Tensor | None]
              ) -> list[tf.Tensor | None]:
    """Gradients of the scaled loss / scale, as float32."""
    inverse = 1.0 / self.scale
    return [None if g is None else float32(g) * inverse for g in grads]

  @staticmethod
  def all_finite(grads: Sequence[tf.Tensor | None]) -> tf.Tensor:
    """Whether every gradient of every replica is finite: a bool scalar,
    the same on every replica (an all-reduce in a replica context of more
    than one replica)."""
    bad = tf.add_n([tf.reduce_sum(tf.cast(~tf.math.is_finite(g), tf.float32))
                    for g in grads if g is not None] + [tf.zeros([])])
    ctx = tf.distribute.get_replica_context()
    if ctx is not None and ctx.num_replicas_in_sync > 1:
      bad = ctx.all_reduce(tf.distribute.ReduceOp.SUM, bad)
    return tf.equal(bad, 0.0)

  def update(self, finite: tf.Tensor) -> None:
    """After a step: halve on a skipped (non-finite) step, double after
    `growth_steps` finite ones."""
    grown = self.good_steps + 1 >= self.growth_steps
    self.scale.assign(tf.where(
        finite, tf.where(grown, self.scale * 2.0, self.scale),
        self.scale * 0.5))
    self.good_steps.assign(tf.where(finite & ~grown, self.good_steps + 1,
                                    tf.zeros([], tf.int64)))
    self.skipped.assign_add(tf.cast(~finite, tf.int64))
    self.last_skipped.assign(~finite)
