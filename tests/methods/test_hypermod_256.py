"""Hyper-Modulation's 256 px settings (gin_configs/{afhq,celeba_hq,
places365_10,flowers102}/): every config builds from an imported-style
StyleGAN bundle and an image folder, at tiny width and 32 px; AFHQ's
self-alignment and transfer train a few steps through the trainer."""

import glob
import os

import gin
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.conftest import REPO
from tfgt import train as train_lib
from tfgt.data import pipeline
from tfgt.methods import hypermod as methods
from tfgt.models import architectures
from tfgt.models import bundle
from tfgt.models import hypermod
from tfgt.models import stylegan

DATASETS = ("afhq", "celeba_hq", "places365_10", "flowers102")
CLASSES = ["cat", "dog", "wild", "female", "male", "amphitheater", "aqueduct",
           "castle", "dam", "field_road", "fire_station", "pagoda",
           "underwater_ocean_deep", "volcano", "waterfall"]


@pytest.fixture(scope="module")
def rgb_source(tmp_path_factory):
  """A random unconditional RGB StyleGAN bundle, as tfgt.import_source
  writes one (one class)."""
  directory = str(tmp_path_factory.mktemp("ffhq_256"))
  kwargs = dict(resolution=32, channels=3, dim_z=8, w_dim=8,
                mapping_layers=2, fmap_base=32, fmap_max=8)
  g = stylegan.StyleGANGenerator(1, **kwargs)
  d = stylegan.StyleGANDiscriminator(1, resolution=32, channels=3,
                                     fmap_base=32, fmap_max=8)
  architectures.build_by_calling(g, d)
  bundle.BundleWriter(directory, g, d, ["ffhq"],
                      "import:stylegan_nvlabs").save(0)
  return directory


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
  root = tmp_path_factory.mktemp("images")
  rng = np.random.RandomState(0)
  for name in CLASSES:
    (root / name).mkdir()
    for i in range(3):
      Image.fromarray(rng.randint(0, 256, (8, 8, 3), dtype=np.uint8)).save(
          root / name / f"{i}.png")
  return str(root)


def _configs():
  return sorted(p for ds in DATASETS
                for p in glob.glob(os.path.join(REPO, "gin_configs", ds,
                                                "*.gin"))
                if not p.endswith("base.gin"))


def _params(source, folder, aligned="None"):
  return [f"SOURCE = '{source}'", f"DATA_DIR = '{folder}'",
          f"ALIGNED = {aligned}", "SelfAlignment.class_width = 6",
          "SelfAlignment.class_depth = 2", "HyperModulation.class_width = 6",
          "HyperModulation.class_depth = 2", "train.evaluator = None"]


def test_every_dataset_has_the_paper_methods():
  for ds in DATASETS:
    names = {os.path.basename(p) for p in
             glob.glob(os.path.join(REPO, "gin_configs", ds, "*.gin"))}
    assert names >= {"base.gin", "hypermod_align.gin", "hypermod.gin",
                     "hypermod_ft.gin", "gan_memory.gin", "scratch.gin"}, ds


@pytest.mark.parametrize("config", _configs(),
                         ids=lambda p: os.path.relpath(p, REPO))
def test_every_256_config_builds(config, rgb_source, folder):
  gin.clear_config()
  cwd = os.getcwd()
  os.chdir(REPO)
  try:
    train_lib.parse_config([config], _params(rgb_source, folder))
  finally:
    os.chdir(cwd)
  method = gin.query_parameter("train.method").scoped_configurable_fn()
  _, _, selection = pipeline.load_training_data(32, 3)
  names = list(method.source_info().class_names) + list(selection.names)
  setup = method.build(names)
  assert isinstance(setup.generator, hypermod.HyperModGenerator)
  dataset = os.path.basename(os.path.dirname(config))
  expected = {"afhq": 3, "celeba_hq": 2, "places365_10": 10, "flowers102": 1}
  if isinstance(method, methods.SelfAlignment):
    assert selection.names == ["source-domain"]
    assert setup.discriminator is None
  else:
    assert len(selection.names) == expected[dataset]
    assert setup.generator.num_classes == 1 + expected[dataset]
  # Table 2's configuration C is at batch 60.
  assert gin.query_parameter("train.batch_size") == (
      32 if isinstance(method, methods.SelfAlignment) else
      60 if config.endswith("contrastive.gin") else 10)


def test_afhq_aligns_then_transfers_through_the_trainer(rgb_source, folder,
                                                        tmp_path):
  steps = ["train.num_steps = 2", "train.batch_size = 4",
           "train.log_every = 1", "train.sample_every = 0",
           "train.checkpoint_every = 2",
           "make_strategy.name = 'default'"]
  aligned = str(tmp_path / "align")
  cwd = os.getcwd()
  os.chdir(REPO)
  try:
    gin.clear_config()
    train_lib.parse_config(["gin_configs/afhq/hypermod_align.gin"],
                           _params(rgb_source, folder) + steps)
    train_lib.train(aligned)
    gin.clear_config()
    train_lib.parse_config(["gin_configs/afhq/hypermod.gin"],
                           _params(rgb_source, folder, f"'{aligned}'") + steps)
    train_lib.train(str(tmp_path / "transfer"))
  finally:
    os.chdir(cwd)
    gin.clear_config()
  generator, _, spec = bundle.load(str(tmp_path / "transfer"))
  assert spec["class_names"] == ["ffhq", "cat", "dog", "wild"]
  images = generator((tf.zeros([2, 8]), tf.constant([1, 3])), training=False)
  assert images.shape == (2, 32, 32, 3)


def test_a_missing_source_names_the_import_command(folder, tmp_path):
  from tfgt.errors import UserInputError  # pylint: disable=g-import-not-at-top
  gin.clear_config()
  missing = str(tmp_path / "sources" / "ffhq_256")
  cwd = os.getcwd()
  os.chdir(REPO)
  try:
    train_lib.parse_config(["gin_configs/afhq/gan_memory.gin"],
                           _params(missing, folder))
    method = gin.query_parameter("train.method").scoped_configurable_fn()
  finally:
    os.chdir(cwd)
  import re  # pylint: disable=g-import-not-at-top
  with pytest.raises(UserInputError, match=(
      r"Source model .* not found: .*" + re.escape(
          "`python -m tfgt.import_source --from=stylegan_rosinality "
          "--input=<stylegan-256px-new.model> --resolution=256 "
          f"--out={missing}`"))):
    method.source_info()
  gin.clear_config()


@pytest.fixture(scope="module")
def rgb_stylegan2_source(tmp_path_factory):
  """A random unconditional RGB StyleGAN2 bundle, as an import of NVlabs'
  FFHQ 256 px transfer source writes one (tiny, 32 px)."""
  from tfgt.models import stylegan2  # pylint: disable=g-import-not-at-top
  directory = str(tmp_path_factory.mktemp("ffhq_256_stylegan2"))
  kwargs = dict(resolution=32, channels=3, channel_base=128, channel_max=8)
  g = stylegan2.StyleGAN2Generator(1, dim_z=8, w_dim=8, mapping_layers=2,
                                   **kwargs)
  d = stylegan2.StyleGAN2Discriminator(1, **kwargs)
  architectures.build_by_calling(g, d)
  bundle.BundleWriter(directory, g, d, ["ffhq"],
                      "import:stylegan2_ada_pytorch").save(0)
  return directory


@pytest.mark.parametrize("name", ["hypermod_align.gin", "hypermod.gin",
                                  "gan_memory.gin", "hypermod_ft.gin"])
def test_afhq_configs_take_a_stylegan2_source(name, rgb_stylegan2_source,
                                              folder):
  gin.clear_config()
  cwd = os.getcwd()
  os.chdir(REPO)
  try:
    train_lib.parse_config([os.path.join("gin_configs", "afhq", name)],
                           _params(rgb_stylegan2_source, folder))
  finally:
    os.chdir(cwd)
  method = gin.query_parameter("train.method").scoped_configurable_fn()
  _, _, selection = pipeline.load_training_data(32, 3)
  setup = method.build(list(method.source_info().class_names) +
                       list(selection.names))
  assert isinstance(setup.generator, hypermod.HyperModStyleGAN2Generator)
  if setup.discriminator is not None:
    assert isinstance(setup.discriminator,
                      hypermod.HyperModStyleGAN2Discriminator)
    assert setup.discriminator.num_classes == 4
