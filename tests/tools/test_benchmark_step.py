"""`tools.benchmark_step`'s FLOP accounting: the profiler's count of what a
step's outputs need, and a frozen generator that costs no weight
gradients."""

import os

import gin
import numpy as np
import tensorflow as tf

from tests.conftest import REPO
from tools import benchmark_step


def test_float_ops_counts_what_the_outputs_need():
  tool = benchmark_step
  kernel = tf.Variable(tf.random.stateless_normal([3, 3, 3, 4], [0, 1]))
  batch, size = 2, 8

  def gradient(x):
    with tf.GradientTape() as tape:
      loss = tf.reduce_sum(tf.nn.conv2d(x, kernel, 1, "SAME"))
    return loss, tape.gradient(loss, kernel)

  concrete = tf.function(gradient).get_concrete_function(
      tf.TensorSpec([batch, size, size, 3]))
  conv = 2 * batch * size * size * 3 * 3 * 3 * 4  # One convolution.
  counted = tool.float_ops(concrete)
  # The forward convolution and the kernel's gradient, plus the sum; the
  # tape also builds the input's gradient, which nothing needs: not counted
  # (it would be a third convolution).
  assert 2 * conv <= counted <= 2 * conv + 2 * batch * size * size * 4
  assert any(op.type == "Conv2DBackpropInput"
             for op in concrete.graph.get_operations())


def test_a_frozen_generator_costs_no_weight_gradients():
  """The main job's cGANTransfer step: G's convolutions are frozen, so its G
  update computes input gradients through them but no kernel gradient."""
  tool = benchmark_step
  cwd = os.getcwd()
  os.chdir(REPO)
  try:
    gin.clear_config()
    rate, flops = tool.run_case("cgantransfer", "function", 1, steps=1)
    step = tool._RecordingStep.last  # pylint: disable=protected-access
  finally:
    os.chdir(cwd)
    gin.clear_config()
  assert rate > 0 and np.isfinite(flops) and flops > 0
  needed = tool.needed_graph_def(tool.gradient_graph(step, "g"))
  kinds = [node.op for node in needed.node]
  assert "Conv2D" in kinds and "Conv2DBackpropInput" in kinds
  assert "Conv2DBackpropFilter" not in kinds


def test_thread_settings_parse_and_show_in_the_table():
  tool = benchmark_step
  assert tool.parse_threads("1:1") == (1, 1, 1)
  assert tool.parse_threads("0:2x2") == (0, 2, 2)
  for bad in ("1", "a:1", "1:1x0", "-1:1", "1:1x"):
    try:
      tool.parse_threads(bad)
    except ValueError as e:
      assert "INTRA:INTER" in str(e)
    else:
      raise AssertionError(f"{bad!r} was accepted")
  rows = [("cifar", "function", 1, 6.0, 30e9, "TF/TF"),
          ("cifar", "function", 1, 9.0, 30e9, "1/1 x2 processes")]
  text = tool.table(rows, "CPU X", 200.0, 2048)
  assert "| threads |" in text
  # Ratios divide by the setting's first tf.function, 1-device row.
  assert "| cifar | function | 1 | 1/1 x2 processes | 9.000 | 1.50 | 30.00 | " \
         "270 | 135% |" in text


def test_memopt_mode_gives_back_tensorflows_default_and_the_trainer_not():
  import threading  # pylint: disable=g-import-not-at-top
  from tensorflow.core.protobuf import rewriter_config_pb2  # pylint: disable=g-import-not-at-top
  from tfgt import steps  # pylint: disable=g-import-not-at-top

  seen = []

  def body():  # Function call options are per thread: not this test's.
    seen.append(steps.memory_optimization())
    steps.fixed_summation_order()
    seen.append(steps.memory_optimization())
    benchmark_step._default_memory_optimizer()  # pylint: disable=protected-access
    seen.append(steps.memory_optimization())
    steps.fixed_summation_order()
    seen.append(steps.memory_optimization())

  thread = threading.Thread(target=body)
  thread.start()
  thread.join()
  config = rewriter_config_pb2.RewriterConfig
  assert seen == [config.DEFAULT_MEM_OPT, config.NO_MEM_OPT,
                  config.DEFAULT_MEM_OPT, config.NO_MEM_OPT]


def test_imagenet_biggan_setting_binds_the_128px_release_architecture():
  """`biggan_128` binds BigGAN-PyTorch's 128 px release (the source of
  gin_configs/places365/, whose architecture comes from the imported
  bundle's model.json): shared embedding, hierarchical z of 120, attention
  at 64 px, ch 96."""
  from tfgt.models import biggan  # pylint: disable=g-import-not-at-top
  batch, classes, bindings = benchmark_step.SETTINGS["biggan_128"]
  assert (batch, classes) == (8, 5)
  gin.clear_config()
  try:
    gin.parse_config([b for b in bindings if b.startswith("BigGAN")])
    g = biggan.BigGANGenerator(classes)
    d = biggan.BigGANDiscriminator(classes)
  finally:
    gin.clear_config()
  assert (g.resolution, g.channels, g.ctor_kwargs["ch"], g.dim_z) == (
      128, 3, 96, 120)
  assert g.conditioning == "shared_embedding" and g.hierarchical_z
  assert g.ctor_kwargs["attention_resolution"] == 64
  assert (d.resolution, d.ctor_kwargs["ch"]) == (128, 96)
  assert d.ctor_kwargs["attention_resolution"] == 64
