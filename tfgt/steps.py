"""The training step: D updates, a G update and the EMA, on every replica.

`TrainStep` compiles one `tf.function` that, per call, takes `d_steps`
batches for D updates (none when the method has no discriminator), uses the
last batch for the G update, updates the EMA generator and increments the
step counter. The losses come from the method's objective
(`tfgt.objectives`); each variable group (`tfgt.methods.base.VariableGroup`)
has its own Adam optimizer (`make_optimizers`).

Under `train.precision = "mixed_float16"` each network's loss is scaled by
its `tfgt.precision.DynamicLossScale` before the backward pass and its
gradients unscaled after; a step whose gradients are not finite on some
replica skips that network's update on every replica (its optimizers do not
move) and halves the scale. Other precisions take the float32 path: the
loss as it is, every update applied.

The step runs with Grappler's memory optimizer off (`fixed_summation_order`):
its scheduling heuristic makes the sum of a variable's gradient contributions
depend on which thread finishes first, so that two runs of one configuration
would part by round-off (docs/RESULTS.md, "The cause, found").
"""

from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf
# Not in tf.config: the only way to set one Grappler option for the functions
# a thread calls (the call attribute every eager function call carries).
from tensorflow.core.protobuf import config_pb2
from tensorflow.core.protobuf import rewriter_config_pb2
from tensorflow.python.eager import context

from tfgt import ema as ema_lib
from tfgt import objectives
from tfgt import precision
from tfgt.errors import UserInputError
from tfgt.methods import base


def make_optimizers(groups: Sequence[base.VariableGroup],
                    learning_rate: float, beta_1: float, beta_2: float
                    ) -> dict[str, keras.optimizers.Optimizer]:
  """One built Adam per group: {group name: optimizer}.

  Args:
    groups: the variable groups of one network (G or D).
    learning_rate: the network's base rate; a group's rate is this times its
      `learning_rate_scale`.
    beta_1, beta_2: Adam's decay rates unless a group overrides them.
  """
  optimizers = {}
  for group in groups:
    kwargs = dict(beta_1=beta_1, beta_2=beta_2)
    kwargs.update(group.optimizer)
    optimizer = keras.optimizers.Adam(
        learning_rate * group.learning_rate_scale, **kwargs)
    optimizer.build(group.variables)
    optimizers[group.name] = optimizer
  return optimizers


def fixed_summation_order() -> None:
  """Turns Grappler's memory optimizer off for the functions this thread calls.

  A gradient tape sums the contributions to one variable's gradient with an
  AddN (D's projection head gets one from the real batch, one from the fake
  batch and one from the R1 penalty). The memory optimizer's default
  scheduling heuristic rewrites an AddN of more than two inputs into a
  temporary buffer that each input is added to as soon as it is ready, so the
  order of the sum, and its round-off, follows the order in which the
  executor's threads finish: a few steps in a hundred of `scratch.gin` then
  differed in the last bit of D's head gradients, and the runs parted from
  there. Without the rewrite the AddN sums in its inputs' order. The other
  Grappler passes stay on. Idempotent; per thread (TensorFlow keeps function
  call options per thread).
  """
  set_memory_optimization(rewriter_config_pb2.RewriterConfig.NO_MEM_OPT)


def _call_config() -> config_pb2.ConfigProto:
  proto = config_pb2.ConfigProto()
  proto.ParseFromString(
      context.context().function_call_options.config_proto_serialized)
  return proto


def memory_optimization() -> int:
  """Grappler's memory-optimizer mode for the functions this thread calls: a
  `RewriterConfig.MemOptType` (`DEFAULT_MEM_OPT` unless set here)."""
  return _call_config().graph_options.rewrite_options.memory_optimization


def set_memory_optimization(mode: int) -> None:
  """Sets Grappler's memory-optimizer mode (a `RewriterConfig.MemOptType`)
  for the functions this thread calls; a no-op when it is already `mode`."""
  if memory_optimization() == mode:
    return
  proto = _call_config()
  proto.graph_options.rewrite_options.memory_optimization = mode
  ctx = context.context()
  options = ctx.function_call_options
  options.config_proto_serialized = proto
  ctx.function_call_options = options


def _apply(groups, optimizers, grads) -> None:
  start = 0
  for group in groups:
    end = start + len(group.variables)
    optimizers[group.name].apply_gradients(
        zip(grads[start:end], group.variables))
    start = end


def _apply_if_finite(groups, optimizers, grads,
                     loss_scale: precision.DynamicLossScale) -> None:
  """`_apply` on every replica if every replica's gradients are finite,
  else nothing (the optimizers' moments and iterations stay); then the loss
  scale's update. Called in a replica context."""
  finite = loss_scale.all_finite(grads)
  ctx = tf.distribute.get_replica_context()
  if ctx is None or ctx.num_replicas_in_sync == 1:
    tf.cond(finite, lambda: _apply(groups, optimizers, grads), lambda: None)
  else:
    # An optimizer's update synchronises the replicas, which cannot happen
    # inside a conditional of a replica function: decide in the
    # cross-replica context (every replica has the same `finite`) and run
    # the update per replica from there.
    def cross_replica(strategy, finite, grads):
      def update():
        strategy.extended.call_for_each_replica(
            lambda g: _apply(groups, optimizers, g), args=(grads,))
      tf.cond(strategy.experimental_local_results(finite)[0], update,
              lambda: None)
    ctx.merge_call(cross_replica, args=(finite, grads))
  loss_scale.update(finite)


class TrainStep:
  """The compiled step of a run.

  Args:
    strategy: the tf.distribute strategy whose scope built everything.
    setup: the method's models, variable groups and objective.
    optimizers: {group name: optimizer} for every group of the setup.
    ema: the EMA of the generator.
    step: the int64 step counter variable (incremented per call).
    d_steps: D updates per G update (ignored without a discriminator).
    global_batch_size: rows of a batch over all replicas.
    use_xla: compile the gradient computations with XLA.
    loss_scales: {"g": scale, "d": scale} of `precision.DynamicLossScale`
      (mixed_float16), or None (no loss scaling).

  Calling it with a distributed iterator of batch dicts (images, labels,
  z_d, y_d, z_g, y_g, index; see `objectives.Batch`) returns
  (d_loss or None, g_loss, d_parts, g_parts), summed over replicas.
  """

  def __init__(self, strategy: tf.distribute.Strategy, setup: base.GANSetup,
               optimizers: dict, ema: ema_lib.ExponentialMovingAverage,
               step: tf.Variable, d_steps: int, global_batch_size: int,
               use_xla: bool = False,
               loss_scales: dict[str, precision.DynamicLossScale] | None
               = None):
    self.strategy = strategy
    self.loss_scales = dict(loss_scales or {})
    self.setup = setup
    self.optimizers = optimizers
    self.ema = ema
    self.step = step
    self.has_d = setup.discriminator is not None
    self.d_steps = d_steps if self.has_d else 0
    self.global_batch_size = global_batch_size
    if use_xla and not setup.objective.supports_xla:
      raise UserInputError(
          f"train.use_xla=True: the method's objective "
          f"({type(setup.objective).__name__}) does not compile with XLA: "
          f"{setup.objective.xla_blocker}; or set train.use_xla=False.")
    self._d_gradients = self._gradients_fn("d", use_xla)
    self._g_gradients = self._gradients_fn("g", use_xla)
    self._function = tf.function(self._step)

  @property
  def batches_per_step(self) -> int:
    """Batches an iterator gives per call."""
    return max(self.d_steps, 1)

  def _batch(self, batch: dict, player: str) -> objectives.Batch:
    scale = self.loss_scales.get(player)
    extra = {} if scale is None else {"loss_scale": scale.scale}
    return objectives.Batch(
        **batch, global_batch_size=self.global_batch_size,
        num_replicas=self.strategy.num_replicas_in_sync,
        batches_per_step=self.batches_per_step, **extra)

  def _gradients_fn(self, player: str, use_xla: bool):
    setup = self.setup
    loss_fn = (setup.objective.d_loss if player == "d"
               else setup.objective.g_loss)
    variables = setup.d_variables if player == "d" else setup.g_variables
    scale = self.loss_scales.get(player)

    def gradients(batch):
      with tf.GradientTape() as tape:
        loss, parts = loss_fn(self._batch(batch, player), setup.generator,
                              setup.discriminator)
        target = loss if scale is None else scale.scale_loss(loss)
      grads = tape.gradient(target, variables)
      if scale is not None:
        grads = scale.unscale(grads)
      return loss, parts, grads

    return tf.function(gradients, jit_compile=True) if use_xla else gradients

  def _update(self, player: str, grads) -> None:
    groups = self.setup.d_groups if player == "d" else self.setup.g_groups
    scale = self.loss_scales.get(player)
    if scale is None:
      _apply(groups, self.optimizers, grads)
    else:
      _apply_if_finite(groups, self.optimizers, grads, scale)

  def _d_replica_step(self, batch):
    loss, parts, grads = self._d_gradients(batch)
    self._update("d", grads)
    return loss, parts

  def _g_replica_step(self, batch):
    loss, parts, grads = self._g_gradients(batch)
    self._update("g", grads)
    return loss, parts

  def _sum(self, value):
    return self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)

  def _step(self, iterator):
    d_loss, d_parts = None, {}
    batch = None
    for _ in range(self.d_steps):
      batch = next(iterator)
      d_loss, d_parts = self.strategy.run(self._d_replica_step, args=(batch,))
    if batch is None:
      batch = next(iterator)
    g_loss, g_parts = self.strategy.run(self._g_replica_step, args=(batch,))
    self.ema.update(self.step)
    self.step.assign_add(1)
    return (None if d_loss is None else self._sum(d_loss), self._sum(g_loss),
            {k: self._sum(v) for k, v in d_parts.items()},
            {k: self._sum(v) for k, v in g_parts.items()})

  def __call__(self, iterator):
    fixed_summation_order()
    return self._function(iterator)
