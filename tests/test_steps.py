"""tfgt.steps: Grappler's memory-optimizer mode per thread, which fixes the
order in which a step sums a variable's gradients (the step itself is
tested through the trainer, tests/tools/test_check_determinism.py)."""

import threading

from tensorflow.core.protobuf import rewriter_config_pb2

from tfgt import steps

MEM_OPT = rewriter_config_pb2.RewriterConfig


def test_fixed_summation_order_is_per_thread_and_idempotent():
  seen = []

  def body():  # Function call options are per thread: not the test's.
    seen.append(steps.memory_optimization())
    steps.fixed_summation_order()
    steps.fixed_summation_order()
    seen.append(steps.memory_optimization())
    steps.set_memory_optimization(MEM_OPT.DEFAULT_MEM_OPT)
    seen.append(steps.memory_optimization())

  thread = threading.Thread(target=body)
  thread.start()
  thread.join()
  assert seen == [MEM_OPT.DEFAULT_MEM_OPT, MEM_OPT.NO_MEM_OPT,
                  MEM_OPT.DEFAULT_MEM_OPT]
