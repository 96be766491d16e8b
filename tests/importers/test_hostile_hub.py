"""TF-Hub modules whose graphs would do more than draw images. --verify runs a module's graph (hub.load runs its restore and
init ops, verify its default signature), so every op of the graph and of its
function library is checked first (tfhub_biggan.check_module_graph); without
--verify nothing of the module runs. The modules are written here."""

import os
import re

import numpy as np
import pytest
import tensorflow as tf

from tests.importers import test_tfhub_biggan as hub_case
from tfgt import import_source
from tfgt.importers import checkpoint_files
from tfgt.importers import tfhub_biggan as importer

tf1 = tf.compat.v1


def small_module(path, hostile):
  """A saved model in the TF1 Hub layout with one variable w and a default
  signature z -> z @ w; `hostile(w, out)` -> (out, main_op or None) adds the
  ops under test to the output and to what hub.load runs."""
  graph = tf.Graph()
  with graph.as_default():
    w = tf1.get_variable("w", initializer=np.eye(2, dtype=np.float32),
                         use_resource=False)
    z = tf1.placeholder(tf.float32, [None, 2], "z")
    out, main_op = hostile(w, tf.matmul(z, w))
    with tf1.Session(graph=graph) as session:
      session.run(tf1.global_variables_initializer())
      builder = tf1.saved_model.Builder(str(path))
      builder.add_meta_graph_and_variables(
          session, tags=[], signature_def_map={
              "default": tf1.saved_model.predict_signature_def(
                  {"z": z}, {"default": out})}, main_op=main_op)
      builder.save()
  return str(path)


def _python_in_a_function(out):
  @tf.function
  def identity(x):
    return tf.py_function(lambda a: a, [x], tf.float32)
  return identity(out)


def hostile_graphs(tmp):
  """{case: (hostile, what the refusal names)}."""
  copy = str(tmp / "hostname_copy")
  return {
      # A module that on hub.load it copied /etc/hostname.
      "file_ops_run_on_load": (
          lambda w, out: (out, tf1.io.write_file(
              copy, tf1.io.read_file("/etc/hostname"))),
          r"(?=.*WriteFile 'WriteFile' \(writes files\))"
          r"(?=.*ReadFile 'ReadFile' \(reads files\))"),
      "python_function": (
          lambda w, out: (tf1.py_func(lambda x: x, [out], tf.float32), None),
          r"PyFunc 'PyFunc' \(runs Python code\)"),
      "python_in_a_library_function": (
          lambda w, out: (_python_in_a_function(out), None),
          r"EagerPyFunc '[\w/]+' in function '\w+' \(runs Python code\)"),
      "checkpoint_saved_on_load": (
          lambda w, out: (out, tf.raw_ops.SaveV2(
              prefix=str(tmp / "ckpt"), tensor_names=["w"],
              shape_and_slices=[""], tensors=[w])),
          r"SaveV2 'SaveV2' \(writes checkpoint files, and loading the "
          r"module would run it\)"),
      "checkpoint_read_from_elsewhere": (
          lambda w, out: (out + tf.raw_ops.RestoreV2(
              prefix=str(tmp / "other"), tensor_names=["w"],
              shape_and_slices=[""], dtypes=[tf.float32])[0], None),
          r"RestoreV2 'RestoreV2' \(reads a checkpoint other than the "
          r"module's variables\)"),
      "print": (lambda w, out: (tf1.Print(out, [out]), None),
                r"Print 'Print' \(prints, or writes a file\)"),
  }


@pytest.mark.parametrize("case", ["file_ops_run_on_load", "python_function",
                                  "python_in_a_library_function",
                                  "checkpoint_saved_on_load",
                                  "checkpoint_read_from_elsewhere", "print"])
def test_module_graphs_are_checked_before_anything_loads(case, tmp_path):
  hostile, match = hostile_graphs(tmp_path)[case]
  path = small_module(tmp_path / "module", hostile)
  for check in ("load_module", "check_module_graph"):
    with pytest.raises(checkpoint_files.UnsafeCheckpointError) as error:
      getattr(importer, check)(path)
    message = str(error.value)
    assert "\n" not in message and message.startswith(path), message
    assert re.search(r"--verify runs the module's graph, and it holds ops "
                     "that a BigGAN generator does not use: .*" + match +
                     r".*Nothing of it was loaded or run\.", message), message
  assert sorted(os.listdir(tmp_path)) == ["module"]  # Nothing was written.


def test_a_module_of_generator_ops_loads_and_runs(tmp_path):
  path = small_module(tmp_path / "module", lambda w, out: (out, None))
  importer.check_module_graph(path)
  module = importer.load_module(path)
  z = np.array([[1.0, 2.0]], np.float32)
  got = module.signatures["default"](z=tf.constant(z))["default"].numpy()
  np.testing.assert_array_equal(got, z)


def test_verify_refuses_a_module_with_file_and_python_ops(tmp_path):
  """Without the op check, `--verify` on this module copied /etc/hostname
  when it loaded the module, then failed with a traceback in the PyFunc."""
  copy = tmp_path / "hostname_copy"

  def hostile(images):
    write = tf1.io.write_file(str(copy), tf1.io.read_file("/etc/hostname"))
    return tf1.py_func(lambda x: x, [images], tf.float32), write

  module = hub_case.write_module(tmp_path / "biggan-128", hostile=hostile)
  out = tmp_path / "out"
  with pytest.raises(checkpoint_files.UnsafeCheckpointError) as error:
    import_source.run("tfhub_biggan", module, str(out), verify=True)
  message = str(error.value)
  assert "\n" not in message
  for op in ("WriteFile", "ReadFile", "PyFunc"):
    assert f"{op} '" in message, message
  assert not copy.exists() and not out.exists()
  # Without --verify nothing of the module runs: the weights are read from
  # its checkpoint, and the bundle is written.
  import_source.run("tfhub_biggan", module, str(out))
  assert (out / "model.json").exists() and not copy.exists()
