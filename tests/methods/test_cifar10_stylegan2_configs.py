"""gin_configs/cifar10_stylegan2/: every method builds from a bundle shaped
as the import of NVlabs' conditional CIFAR-10 StyleGAN2-ADA writes one (10
classes, 32x32x3, NVlabs' "cifar" options at tiny width), with its five new
classes."""

import glob
import os

import gin
import pytest

from tests.conftest import REPO
from tfgt import train as train_lib
from tfgt.methods import cgantransfer
from tfgt.methods import finetune
from tfgt.models import architectures
from tfgt.models import bundle
from tfgt.models import stylegan2
from tfgt.models import stylegan2_transfer

NEW = ["apple", "bicycle", "rocket", "tractor", "whale"]
OLD = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
       "horse", "ship", "truck"]


def _source(directory, classes, channels, method, **d_options):
  """A tiny conditional StyleGAN2 bundle of `classes` at 32 px."""
  common = dict(resolution=32, channels=channels, channel_base=128,
                channel_max=8)
  g = stylegan2.StyleGAN2Generator(len(classes), dim_z=8, w_dim=8,
                                   mapping_layers=2, style_mixing_prob=0.0,
                                   **common)
  d = stylegan2.StyleGAN2Discriminator(len(classes), **common, **d_options)
  architectures.build_by_calling(g, d)
  bundle.BundleWriter(directory, g, d, classes, method).save(0)
  return directory


def _parse(config, source):
  gin.clear_config()
  cwd = os.getcwd()
  os.chdir(REPO)
  try:
    train_lib.parse_config([config], [f"SOURCE = '{source}'"])
  finally:
    os.chdir(cwd)


@pytest.fixture(scope="module")
def cifar10_source(tmp_path_factory):
  return _source(str(tmp_path_factory.mktemp("cifar10_stylegan2")), OLD, 3,
                 "import:stylegan2_ada_pytorch", block_architecture="orig",
                 mapping_layers=1)


def _configs(folder="cifar10_stylegan2"):
  return sorted(p for p in glob.glob(os.path.join(
      REPO, "gin_configs", folder, "*.gin"))
                if not p.endswith("base.gin"))


def test_the_folder_has_the_three_methods():
  assert {os.path.basename(p) for p in _configs()} == {
      "cgantransfer.gin", "transfergan.gin", "freezed.gin"}


@pytest.mark.parametrize("config", _configs(), ids=os.path.basename)
def test_every_config_builds(config, cifar10_source):
  _parse(config, cifar10_source)
  assert gin.query_parameter("load_training_data.classes") == NEW
  assert gin.query_parameter("Adversarial.r1_gamma") == 0.01
  method = gin.query_parameter("train.method").scoped_configurable_fn()
  setup = method.build(OLD + NEW)
  g = setup.generator
  assert g.num_classes == 15
  if isinstance(method, cgantransfer.CGANTransfer):
    assert isinstance(g, stylegan2_transfer.StyleGAN2TransferGenerator)
  else:
    assert isinstance(method, finetune.TransferGAN)
    assert isinstance(g, stylegan2.StyleGAN2Generator)
  assert setup.discriminator.num_classes == 15


# gin_configs/fashion_mnist_stylegan2/: the same three methods from the
# class-conditional Fashion-MNIST StyleGAN2 (8 classes, 32x32x1) to Bag and
# Ankle boot, with StyleGAN2's training settings.
FASHION_OLD = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker"]


@pytest.fixture(scope="module")
def fashion_source(tmp_path_factory):
  return _source(str(tmp_path_factory.mktemp("fashion_mnist_stylegan2")),
                 FASHION_OLD, 1, "scratch")


@pytest.mark.parametrize("config", _configs("fashion_mnist_stylegan2"),
                         ids=os.path.basename)
def test_every_fashion_mnist_config_builds(config, fashion_source):
  assert len(_configs("fashion_mnist_stylegan2")) == 3
  _parse(config, fashion_source)
  assert gin.query_parameter("load_training_data.classes") == [8, 9]
  assert gin.query_parameter("discriminator_loss.name") == "non_saturating"
  assert gin.query_parameter("Adversarial.r1_gamma") == 0.0064
  method = gin.query_parameter("train.method").scoped_configurable_fn()
  setup = method.build(FASHION_OLD + ["Bag", "Ankle boot"])
  assert setup.generator.num_classes == 10
  assert setup.discriminator.num_classes == 10
  if isinstance(method, cgantransfer.CGANTransfer):
    assert isinstance(setup.generator,
                      stylegan2_transfer.StyleGAN2TransferGenerator)
