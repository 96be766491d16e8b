"""Smoke test that Bazel's runfiles tree holds a working tfgt.

Also a quick check, outside Bazel, that a tiny BigGAN generator runs end to end.
"""

import os

import numpy as np
import tensorflow as tf

import tfgt
from tfgt.models import biggan


def test_tiny_generator_output_shape_and_range():
  num_classes, batch, dim_z = 3, 2, 16
  generator = biggan.BigGANGenerator(num_classes, resolution=32, channels=1,
                                     ch=4, dim_z=dim_z)
  z = tf.random.stateless_normal([batch, dim_z], seed=[1, 2])
  labels = tf.constant([0, 2])
  images = generator((z, labels), training=False).numpy()
  assert images.shape == (batch, 32, 32, 1)
  assert np.all(np.isfinite(images))
  # The generator ends in tanh: pixels lie in [-1, 1].
  assert images.min() >= -1.0 and images.max() <= 1.0
  # Different classes must condition the output.
  assert not np.allclose(images[0], images[1])


def test_package_and_configs_are_found_from_the_repo_root(repo_dir):
  # Under Bazel, the gin configs reach the test only if the py_library
  # declares them as data; relative paths work because tests run from the
  # repository root.
  assert tfgt.__version__
  assert os.path.isfile(
      os.path.join(repo_dir, "gin_configs", "fashion_mnist", "base.gin"))
  assert os.path.isfile(os.path.join("gin_configs", "fashion_mnist",
                                     "base.gin"))


def test_bazel_skips_a_virtual_environment_in_the_checkout(repo_dir):
  # The README makes .venv in the checkout on Debian 12; its site-packages
  # hold BUILD files that `bazel build //...` would otherwise load and fail.
  with open(os.path.join(repo_dir, ".bazelignore")) as f:
    ignored = {line.strip() for line in f if not line.startswith("#")}
  assert {".venv", "venv"} <= ignored
