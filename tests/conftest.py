"""Shared test set-up.

The CPU is split into two logical devices before TensorFlow starts, so that
tests can run MirroredStrategy over two replicas on a CPU-only machine.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gin  # pylint: disable=g-import-not-at-top
import pytest  # pylint: disable=g-import-not-at-top

from tfgt import distribute  # pylint: disable=g-import-not-at-top

distribute.split_cpu(2)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

# Gin bindings that shrink the Fashion-MNIST configs to test size.
TINY = [
    "BigGANGenerator.ch = 4",
    "BigGANDiscriminator.ch = 4",
    "BigGANGenerator.dim_z = 16",
    "train.batch_size = 8",
    "train.log_every = 1",
    "train.sample_every = 2",
    "train.checkpoint_every = 2",
    "train.samples_per_class = 2",
]


@pytest.fixture(autouse=True)
def clear_gin():
  """Every test starts from an empty gin config."""
  gin.clear_config()
  yield
  gin.clear_config()


@pytest.fixture
def repo_dir():
  return REPO

