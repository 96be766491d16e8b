"""StyleGAN2-ADA's augmentation pipeline (`tfgt.data.ada`): identity at
p = 0, each group's transformations against their definitions, seeds per
image, gradients (R1 through it included) and the gin binding."""

import os

import gin
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import FASHION_MNIST_DIR
from tests.conftest import REPO
from tests.conftest import event_values
from tests.models.test_stylegan2 import UNCONDITIONAL
from tests.models.test_stylegan2 import train_tiny_stylegan2
from tfgt import config as config_lib
from tfgt import objectives
from tfgt.data import ada
from tfgt.errors import UserInputError
from tfgt.methods import contrastive
from tfgt.models import architectures
from tfgt.models import stylegan2

SEEDS = tf.constant(np.arange(16).reshape(8, 2), tf.int32)


def _images(channels=1, seed=0):
  return tf.random.stateless_uniform([8, 16, 16, channels], [seed, 1], -1, 1)


def test_p_zero_is_the_identity_and_p_one_changes_every_image():
  x = _images(3)
  np.testing.assert_array_equal(ada.ADAugment(p=0.0)(x, SEEDS).numpy(),
                                x.numpy())
  y = ada.ADAugment(p=1.0)(x, SEEDS).numpy()
  assert y.shape == x.shape and np.all(np.isfinite(y))
  assert all(np.abs(y[i] - x.numpy()[i]).max() > 0.05 for i in range(8))


def test_blit_draws_the_eight_symmetries_of_the_square():
  x = _images().numpy()
  y = ada.ADAugment(p=1.0, pipeline=["blit"], xint_max=0.0)(
      tf.constant(x), SEEDS).numpy()
  used = set()
  for i in range(8):
    errors = [np.abs(y[i] - np.rot90(np.flip(x[i], 1) if flip else x[i],
                                     k)).max()
              for flip in (0, 1) for k in range(4)]
    assert min(errors) < 1e-5
    used.add(int(np.argmin(errors)))
  assert len(used) >= 3


def test_integer_translation_moves_whole_pixels():
  x = _images().numpy()
  y = ada.ADAugment(p=1.0, pipeline=["blit"], xint_max=0.25)(
      tf.constant(x), SEEDS + 100).numpy()
  # Each image is a symmetry of the square of the input moved by whole
  # pixels (up to 4 = 0.25 * 16): its interior matches one such shift.
  for i in range(8):
    best = np.inf
    for flip in (0, 1):
      for k in range(4):
        z = np.rot90(np.flip(x[i], 1) if flip else x[i], k)
        for dy in range(-4, 5):
          for dx in range(-4, 5):
            shifted = np.roll(z, (dy, dx), axis=(0, 1))
            best = min(best, np.abs(y[i, 4:12, 4:12] -
                                    shifted[4:12, 4:12]).max())
    assert best < 1e-5


def _ramp(a, b):
  """Images [8, 16, 16, 1] of the linear function a x + b y (centred)."""
  ys, xs = np.meshgrid(np.arange(16) - 7.5, np.arange(16) - 7.5,
                       indexing="ij")
  return tf.constant(np.tile((a * xs + b * ys)[None, :, :, None],
                             [8, 1, 1, 1]), tf.float32)


def _slopes(images):
  """Per image, the (x, y) slopes of its central 6x6 pixels, and how far
  they are from a plane."""
  centre = images[:, 5:11, 5:11, 0]
  ys, xs = np.meshgrid(np.arange(6), np.arange(6), indexing="ij")
  design = np.stack([xs.ravel(), ys.ravel(), np.ones(36)], axis=1)
  fits = [np.linalg.lstsq(design, c.ravel(), rcond=None) for c in centre]
  return (np.array([f[0][:2] for f in fits]),
          max(np.abs(design @ f[0] - c.ravel()).max()
              for f, c in zip(fits, centre)))


@pytest.mark.parametrize("transformation", ["scale", "rotate", "aniso"])
def test_geometry_maps_a_plane_to_a_plane(transformation):
  """A linear ramp stays a plane under an affine map (bilinear sampling of
  a plane is exact away from the borders): isotropic scaling scales its
  gradient by one factor, a rotation keeps its length, an anisotropic
  scaling s, 1/s keeps the product of its components."""
  strengths = dict(scale_std=0.0, rotate_max=0.0, aniso_std=0.0,
                   xfrac_std=0.0)
  strengths[{"scale": "scale_std", "rotate": "rotate_max",
             "aniso": "aniso_std"}[transformation]] = (
                 0.2 if transformation != "rotate" else 0.1)
  aug = ada.ADAugment(p=1.0, pipeline=["geom"], **strengths)
  x = _ramp(0.05, 0.02)
  slopes, misfit = _slopes(aug(x, SEEDS).numpy())
  assert misfit < 1e-4
  norms = np.linalg.norm(slopes, axis=1)
  if transformation == "scale":
    np.testing.assert_allclose(slopes[:, 1] / slopes[:, 0], 0.4, rtol=1e-3)
    assert np.ptp(norms) > 1e-3  # Each image its own factor.
  elif transformation == "rotate":
    np.testing.assert_allclose(norms, np.hypot(0.05, 0.02), rtol=1e-3)
    assert np.ptp(slopes[:, 1] / slopes[:, 0]) > 1e-3
  else:
    np.testing.assert_allclose(slopes[:, 0] * slopes[:, 1], 0.05 * 0.02,
                               rtol=1e-3)


def test_the_gradient_is_the_adjoint_of_the_augmentation():
  """The augmentation is linear in the images for given seeds; its gradient
  must be its transpose: <A x, v> = <x, A^T v> for any x and v."""
  aug = ada.ADAugment(p=1.0)
  x = _images(3, seed=6)
  v = tf.random.stateless_normal(x.shape, [7, 7])
  offset = aug(tf.zeros_like(x), SEEDS)  # The colour maps' constant term.
  with tf.GradientTape() as tape:
    tape.watch(x)
    total = tf.reduce_sum((aug(x, SEEDS) - offset) * v)
  grad = tape.gradient(total, x)
  np.testing.assert_allclose(float(total), float(tf.reduce_sum(x * grad)),
                             rtol=1e-4)
  # And under XLA (train.use_xla) the pipeline compiles.
  compiled = tf.function(lambda a: aug(a, SEEDS), jit_compile=True)
  assert compiled(x).shape == x.shape


def test_colour_on_greyscale_and_rgb():
  x = _images()
  brightness = ada.ADAugment(p=1.0, pipeline=["color"], contrast_std=0.0,
                             hue_max=0.0, saturation_std=0.0)
  # Brightness only (lumaflip drawn too): x -> +-x + b per image.
  y = brightness(x, SEEDS).numpy()
  for i in range(8):
    d_plus, d_minus = y[i] - x.numpy()[i], y[i] + x.numpy()[i]
    assert min(np.ptp(d_plus), np.ptp(d_minus)) < 1e-5
  # Hue and saturation keep every pixel's luma (the mean of r, g, b).
  rgb = _images(3, seed=4)
  keep = ada.ADAugment(p=1.0, pipeline=["color"], brightness_std=0.0,
                       contrast_std=0.0)
  keep.transformations = ("hue", "saturation")
  z = keep(rgb, SEEDS).numpy()
  np.testing.assert_allclose(z.mean(axis=-1), rgb.numpy().mean(axis=-1),
                             atol=1e-5)
  assert np.abs(z - rgb.numpy()).max() > 0.1


def test_an_image_is_augmented_by_its_seed_alone():
  x = _images(3)
  aug = ada.ADAugment(p=0.6)
  whole = aug(x, SEEDS).numpy()
  part = aug(x[5:], SEEDS[5:]).numpy()
  # Equal up to float32 sums in another order (batched matrix products).
  np.testing.assert_allclose(part, whole[5:], atol=1e-5)
  again = aug(x, SEEDS).numpy()
  np.testing.assert_array_equal(again, whole)
  assert not np.allclose(aug(x, SEEDS + 1).numpy(), whole)


def test_d_and_r1_differentiate_through_it():
  tf.keras.utils.set_random_seed(0)
  common = dict(resolution=16, channels=1, channel_base=64, channel_max=8)
  g = stylegan2.StyleGAN2Generator(1, dim_z=8, w_dim=8, mapping_layers=1,
                                   **common)
  d = stylegan2.StyleGAN2Discriminator(1, **common)
  architectures.build_by_calling(g, d)
  objective = objectives.Adversarial(r1_gamma=1.0,
                                     augment=ada.ADAugment(p=0.5))
  z = tf.random.stateless_normal([8, 8], [1, 2])
  y = tf.zeros([8], tf.int32)
  batch = objectives.Batch(images=_images(), labels=y, z_d=z, y_d=y, z_g=z,
                           y_g=y, index=tf.zeros([8], tf.int64),
                           global_batch_size=8, num_replicas=1)
  with tf.GradientTape() as tape:
    loss, parts = objective.d_loss(batch, g, d)
  grads = tape.gradient(loss, d.trainable_variables)
  assert float(parts["r1"]) > 0
  assert all(gr is not None and np.all(np.isfinite(gr.numpy()))
             for gr in grads)
  with tf.GradientTape() as tape:
    loss, _ = objective.g_loss(batch, g, d)
  grads = tape.gradient(loss, g.trainable_variables)
  assert sum(float(tf.reduce_sum(tf.abs(gr))) for gr in grads
             if gr is not None) > 0


def test_options_and_gin():
  for options, match in ((dict(p=1.5), "p must be in"),
                         (dict(pipeline="bgcfnc"), "unknown 'bgcfnc'"),
                         (dict(pipeline=["blit", "noise"]), "unknown groups"),
                         (dict(scale_std=-1.0), "scale_std must be >= 0")):
    with pytest.raises(UserInputError, match=match):
      ada.ADAugment(**options)
  gin.clear_config()
  try:
    config_lib.parse([], ["Adversarial.augment = @ADAugment()",
                          "ADAugment.p = 0.3", "ADAugment.pipeline = 'bg'"])
    objective = objectives.Adversarial()
    assert isinstance(objective.augment, ada.ADAugment)
    assert objective.augment.p == 0.3
    assert "hue" not in objective.augment.transformations
  finally:
    gin.clear_config()


def test_adaptive_p_follows_the_sign_of_d_on_real_images():
  aug = ada.ADAugment(p=0.5, target=0.6, interval=2, speed_kimg=0.1)
  assert aug.adaptive and float(aug.current_p()) == 0.5
  positive, negative = tf.ones([8]), -tf.ones([8])
  # Batch 1 of 2: only counted; batch 2: r_t = 1 > 0.6, p += 8 * 2 / 100.
  assert float(aug.observe(positive, tf.constant(0, tf.int64), 8)) == 0.5
  np.testing.assert_allclose(
      float(aug.observe(positive, tf.constant(1, tf.int64), 8)), 0.66,
      rtol=1e-6)
  state = aug.state()["ada"]
  assert float(state.sign_sum) == 0.0 and float(state.batches) == 0.0
  # r_t = 0 < 0.6 twice: p comes down, and never below 0.
  for index in range(2, 12):
    p = float(aug.observe(negative, tf.constant(index, tf.int64), 8))
  assert p == 0.0
  # The pipeline draws at the current p: 0 is the identity.
  x = _images()
  np.testing.assert_array_equal(aug(x, SEEDS).numpy(), x.numpy())
  for options, match in ((dict(target=1.0), "target must be None or in"),
                         (dict(interval=0), "interval must be an int"),
                         (dict(speed_kimg=0.0), "speed_kimg must be > 0")):
    with pytest.raises(UserInputError, match=match):
      ada.ADAugment(**options)
  assert objectives.Adversarial(augment=aug).xla_blocker


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR),
                    reason="needs dataset-fashion-mnist")
def test_adaptive_p_trains_on_two_replicas_and_resumes(tmp_path):
  def run(steps, start=0.2):
    train_tiny_stylegan2(tmp_path, steps, [
        "Adversarial.augment = @ADAugment()", f"ADAugment.p = {start}",
        "ADAugment.target = 0.6", "ADAugment.interval = 1",
        "ADAugment.speed_kimg = 0.04",
        "load_training_data.images_per_class = 8",
        "train.checkpoint_every = 1"], config=UNCONDITIONAL, replicas=2)

  def saved_p():
    reader = tf.train.load_checkpoint(str(tmp_path))
    (key,) = [k for k in reader.get_variable_to_shape_map()
              if k.startswith("objective/ada/p/")]
    return float(reader.get_tensor(key))

  run(2)
  # Each D batch moves p by 8 / 40 = 0.2, up or down, never below 0:
  # from 0.2, after two batches one of 0, 0.2, 0.6.
  p2 = saved_p()
  assert min(abs(p2 - v) for v in (0.0, 0.2, 0.6)) < 1e-5
  logged = dict(event_values(str(tmp_path))["train/d/augment_p"])
  np.testing.assert_allclose(logged[2], p2, atol=1e-5)
  # Resumed with another start value: p goes on from the checkpoint's (one
  # of p2 +- 0.2), not from 0.9 (0.7 or 1.1).
  run(3, start=0.9)
  p3 = saved_p()
  assert min(abs(p3 - v) for v in (max(p2 - 0.2, 0.0), p2 + 0.2)) < 1e-5


def test_the_ada_config_adds_the_adaptive_pipeline_to_any_config():
  gin.clear_config()
  cwd = os.getcwd()
  os.chdir(REPO)
  try:
    config_lib.parse(
        [os.path.join("gin_configs", "fashion_mnist", "cgantransfer.gin"),
         os.path.join("gin_configs", "ada.gin")], [])
    objective = objectives.Adversarial()
  finally:
    os.chdir(cwd)
    gin.clear_config()
  assert objective.augment.adaptive and objective.augment.p == 0.0
  assert objective.augment.target == 0.6
  assert "saturation" in objective.augment.transformations


@pytest.mark.parametrize("config, objective_type", [
    ("fashion_mnist/cgantransfer.gin", objectives.Regularized),
    ("fashion_mnist/hypermod_ablations/contrastive.gin",
     contrastive.ContrastiveAdversarial)])
def test_the_methods_objectives_carry_the_adaptive_state(config,
                                                        objective_type):
  """The main job's objective (cGANTransfer's regularised one) and the
  contrastive D's take ada.gin's pipeline, and give the trainer its state
  to create and checkpoint."""
  gin.clear_config()
  cwd = os.getcwd()
  os.chdir(REPO)
  try:
    config_lib.parse([os.path.join("gin_configs", config),
                      os.path.join("gin_configs", "ada.gin")],
                     ["ALIGNED = None", "HyperModulation.class_width = 4"])
    method = gin.query_parameter("train.method").scoped_configurable_fn()
    setup = method.build(["T-shirt/top", "Trouser", "Pullover", "Dress",
                          "Coat", "Sandal", "Shirt", "Sneaker", "Bag"]
                         if "cgantransfer" in config
                         else ["fashion-mnist-0-7", "Bag"])
  finally:
    os.chdir(cwd)
    gin.clear_config()
  assert isinstance(setup.objective, objective_type)
  (state,) = setup.objective.state().values()
  assert isinstance(state, ada.AdaptiveState) and float(state.p) == 0.0
