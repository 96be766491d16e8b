"""Knowledge-transfer BN layers and the transfer generator (cGANTransfer)."""

# The folding helpers are tested directly.
# pylint: disable=protected-access

import functools

import numpy as np
import pytest
import tensorflow as tf

from tfgt.errors import UserInputError
from tfgt.layers import knowledge_transfer as kt
from tfgt.models import biggan
from tfgt.models import transfer_generator as tg
from tfgt.models import weights

N, M = 3, 2
DIM_Z = 16


@functools.lru_cache(maxsize=None)
def _source(conditioning="table", hierarchical_z=False, seed=0):
  """A tiny built source generator whose classes differ (shared, read-only:
  building Keras models dominates the run time of these tests)."""
  tf.keras.utils.set_random_seed(seed)
  g = biggan.BigGANGenerator(N, ch=4, dim_z=DIM_Z, conditioning=conditioning,
                             shared_dim=8, hierarchical_z=hierarchical_z)
  biggan.build_models(g)
  for v in g.variables:
    if v.path.endswith(("gain_offset", "/shift", "moving_mean")):
      v.assign(tf.random.normal(v.shape, stddev=0.3, seed=seed))
    if v.path.endswith("moving_variance"):
      v.assign(tf.random.uniform(v.shape, 0.5, 2.0, seed=seed))
  return g


def _target(src, **kwargs):
  g = tg.KnowledgeTransferGenerator(N, M, **kwargs, **src.ctor_kwargs)
  g.load_source(src)
  return g


def _randomise(variables, seed=1, stddev=0.3):
  for i, v in enumerate(variables):
    v.assign(tf.random.normal(v.shape, stddev=stddev, seed=seed + i))


def test_layer_shapes_and_variables():
  layer = kt.KnowledgeTransferBN(N, M, name="bn")
  x = tf.random.normal([4, 2, 2, 5])
  y = tf.one_hot([0, 1, 3, 4], N + M)
  assert layer(x, y).shape == x.shape
  gain, shift = layer.class_tables()
  assert gain.shape == shift.shape == (N + M, 5)
  shapes = {v.path.split("/", 1)[1]: tuple(v.shape) for v in layer.variables}
  assert shapes["gain_offset"] == shapes["shift"] == (N, 5)
  assert shapes["propagation/scores/gain_scores"] == (M, N)
  assert shapes["propagation/scores/shift_scores"] == (M, N)
  assert shapes["propagation/prior_gain_offset"] == (N, 5)
  assert shapes["propagation/gain_residual"] == (M, 5)
  assert not layer.gain_offset.trainable and not layer.shift.trainable
  with pytest.raises(ValueError, match="columns"):
    layer(x, tf.one_hot([0, 1, 2, 3], N))


@pytest.mark.parametrize("score_bias", [False, True])
def test_tables_are_the_stated_combination(score_bias):
  layer = kt.KnowledgeTransferBN(N, M, residual="random",
                                 score_bias=score_bias, name="bn")
  layer(tf.zeros([2, 5]), tf.one_hot([0, 4], N + M))
  _randomise(layer.variables)
  old_g, old_s = layer.gain_offset.numpy(), layer.shift.numpy()
  p = layer.new_classes
  s_g, s_s = p.scores.gain_scores.numpy(), p.scores.shift_scores.numpy()
  if score_bias:
    s_g = s_g + p.scores.gain_score_bias.numpy()
    s_s = s_s + p.scores.shift_score_bias.numpy()
  expect_g = s_g @ p.prior_gain_offset.numpy() + p.gain_residual.numpy()
  expect_s = s_s @ p.prior_shift.numpy() + p.shift_residual.numpy()
  gain, shift = layer.class_tables()
  np.testing.assert_array_equal(gain[:N], old_g)
  np.testing.assert_array_equal(shift[:N], old_s)
  np.testing.assert_allclose(gain[N:], expect_g, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(shift[N:], expect_s, rtol=1e-5, atol=1e-6)
  # The layer applies exactly these tables: x_hat * (1 + gain_y) + shift_y.
  x = tf.random.normal([N + M, 5])
  y = tf.eye(N + M)
  x_hat = layer.standardize(x, training=False)
  np.testing.assert_allclose(layer(x, y, training=False),
                             x_hat * (1.0 + gain) + shift, rtol=1e-5,
                             atol=1e-6)


def test_residual_none_and_frozen_prior_have_no_such_parameters():
  layer = kt.KnowledgeTransferBN(N, M, residual="none", tune_prior=False,
                                 name="bn")
  layer(tf.zeros([2, 5]), tf.one_hot([0, 4], N + M))
  paths = [v.path for v in layer.trainable_variables]
  assert not any("residual" in p for p in paths)
  assert not any("prior" in p for p in paths)
  assert any("scores" in p for p in paths)
  assert float(layer.new_classes.l2()) == 0.0


def test_new_class_starts_at_the_mean_of_old_classes():
  """Uniform scores, zero residual: a new class draws what the source draws
  for the uniform mixture of its classes."""
  for conditioning, hierarchical in (("table", False),
                                     ("shared_embedding", True)):
    src = _source(conditioning, hierarchical)
    g = _target(src)
    z = tf.random.normal([4, DIM_Z], seed=3)
    new = g((z, tf.fill([4], N + 1)), training=False)
    mixed = src((z, tf.fill([4, N], 1.0 / N)), training=False)
    np.testing.assert_allclose(new, mixed, atol=2e-5)


@pytest.mark.parametrize("conditioning", ["table", "shared_embedding"])
def test_old_classes_are_bit_identical_even_in_training_mode(conditioning):
  src = _source(conditioning, hierarchical_z=conditioning != "table")
  g = _target(src, residual="random")
  _randomise(g.transfer_variables())
  z = tf.random.normal([6, DIM_Z], seed=4)
  y = tf.constant([0, 1, 2, 2, 1, 0])
  want = src((z, y), training=False).numpy()
  np.testing.assert_array_equal(g((z, y), training=False), want)
  # A frozen backbone runs in inference mode: training neither changes the
  # output nor the BN statistics.
  stats = [v.numpy() for v in g.variables if "moving" in v.path]
  np.testing.assert_array_equal(g((z, y), training=True), want)
  for before, v in zip(stats, [v for v in g.variables if "moving" in v.path]):
    np.testing.assert_array_equal(before, v.numpy())


def test_gradients_reach_scores_prior_residuals_and_nothing_frozen():
  src = _source()
  g = _target(src, residual="random")
  z = tf.random.normal([4, DIM_Z], seed=5)
  trained = {id(v) for v in g.transfer_variables()}
  with tf.GradientTape() as tape:
    images = g((z, tf.constant([3, 4, 3, 4])), training=True)
    loss = tf.reduce_mean(tf.square(images - 0.3))
  grads = tape.gradient(loss, g.trainable_variables)
  kinds = set()
  for v, grad in zip(g.trainable_variables, grads):
    if id(v) in trained:
      assert grad is not None and float(tf.norm(grad)) > 0, v.path
      kinds.add(v.path.rsplit("/", 1)[-1])
  assert kinds == {"gain_scores", "shift_scores", "prior_gain_offset",
                   "prior_shift", "gain_residual", "shift_residual"}
  # Frozen: the old rows are not trainable; the method's variable list holds
  # nothing but the transfer parameters.
  frozen_paths = [v.path for v in g.trainable_variables if id(v) not in trained]
  assert not any(p.endswith(("/gain_offset", "/shift")) for p in frozen_paths)
  assert all("propagation" in v.path for v in g.transfer_variables())


def test_shared_scores_are_one_set_for_all_layers():
  src = _source()
  g = _target(src, shared_scores=True)
  score_vars = [v for v in g.variables if "scores" in v.path]
  assert len(score_vars) == 2
  tables = g.score_tables()
  assert len(tables) == 2 * g.num_blocks
  for gain, _ in tables[1:]:
    np.testing.assert_array_equal(gain, tables[0][0])
  # The trainer's EMA pairing works on the clone (each variable once).
  ema = g.clone()
  biggan.build_models(ema)
  pairs = weights.pair_variables(ema, g)
  assert len(pairs) == len(g.variables)


def test_regularizer_values():
  src = _source()
  g = _target(src, residual="random")
  _randomise(g.transfer_variables())
  l1, l2 = g.regularization()
  want_l1 = want_l2 = 0.0
  for layer in g.transfer_layers():
    p = layer.new_classes
    want_l1 += (np.abs(p.scores.gain_scores.numpy()).mean() +
                np.abs(p.scores.shift_scores.numpy()).mean())
    want_l2 += (np.square(p.gain_residual.numpy()).mean() +
                np.square(p.shift_residual.numpy()).mean())
  np.testing.assert_allclose(float(l1), want_l1, rtol=1e-5)
  np.testing.assert_allclose(float(l2), want_l2, rtol=1e-5)
  np.testing.assert_array_equal(g.scores_l1(), l1)
  np.testing.assert_array_equal(g.residuals_l2(), l2)
  # Uniform init: every layer contributes 2 * (1/N) to the L1.
  fresh = _target(src)
  l1, l2 = fresh.regularization()
  np.testing.assert_allclose(float(l1), 2 * g.num_blocks * 2.0 / N, rtol=1e-6)
  assert float(l2) == 0.0
  # Shared scores count once.
  shared = _target(src, shared_scores=True)
  np.testing.assert_allclose(float(shared.regularization()[0]), 2.0 / N,
                             rtol=1e-6)


def test_fold_table_is_bit_identical():
  src = _source()
  g = _target(src, residual="random")
  _randomise(g.transfer_variables())
  folded = tg.fold_generator(g)
  assert type(folded).__name__ == "BigGANGenerator"
  assert folded.num_classes == N + M
  assert folded.ctor_kwargs == src.ctor_kwargs
  z = tf.random.normal([10, DIM_Z], seed=6)
  y = tf.constant([0, 1, 2, 3, 4] * 2)
  np.testing.assert_array_equal(folded((z, y), training=False),
                                g((z, y), training=False))
  old = tf.constant([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
  np.testing.assert_array_equal(folded((z, old), training=False),
                                src((z, old), training=False))
  # Refilling a previous result gives the same model.
  _randomise(g.transfer_variables(), seed=7)
  again = tg.fold_generator(g, into=folded)
  assert again is folded
  np.testing.assert_array_equal(folded((z, y), training=False),
                                g((z, y), training=False))


def test_fold_shared_embedding_hierarchical():
  src = _source("shared_embedding", hierarchical_z=True)
  g = _target(src, residual="random")
  _randomise(g.transfer_variables())
  folded = tg.fold_generator(g)
  assert type(folded).__name__ == "BigGANGenerator"
  assert folded.conditioning == "shared_embedding"
  assert folded.ctor_kwargs["shared_dim"] == src.ctor_kwargs["shared_dim"] + M
  z = tf.random.normal([10, DIM_Z], seed=9)
  y = tf.constant([0, 1, 2, 3, 4] * 2)
  np.testing.assert_allclose(folded((z, y), training=False),
                             g((z, y), training=False), atol=1e-5)


def test_prior_of_shared_embedding_is_the_projected_old_embedding():
  src = _source("shared_embedding", hierarchical_z=True)
  g = _target(src)
  layer = g.block1.bn2
  src_layer = src.block1.bn2
  embeddings = src.shared_embedding.normalized_table(False)
  width = src_layer.gain_projection.kernel.shape[0]
  cond = tf.concat([embeddings, tf.zeros([N, width - embeddings.shape[1]])],
                   axis=1)
  np.testing.assert_allclose(layer.new_classes.prior_gain_offset,
                             src_layer.gain_projection(cond, training=False),
                             rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("conditioning", ["table", "shared_embedding"])
def test_independent_rows_start_at_the_mean_and_fold(conditioning):
  src = _source(conditioning, hierarchical_z=conditioning != "table")
  g = tg.KnowledgeTransferGenerator(N, M, "independent", **src.ctor_kwargs)
  g.load_source(src, row_init="mean")
  layer = g.block0.bn1
  old_gain, _ = g.old_class_rows(layer)
  np.testing.assert_allclose(
      layer.new_classes.new_gain_offset,
      np.tile(np.mean(old_gain, 0, keepdims=True), [M, 1]), rtol=1e-5,
      atol=1e-7)
  assert all("independent" in v.path for v in g.transfer_variables())
  _randomise(g.transfer_variables())
  z = tf.random.normal([5, DIM_Z], seed=10)
  y = tf.constant([0, 1, 2, 3, 4])
  folded = tg.fold_generator(g)((z, y))
  if conditioning == "table":
    np.testing.assert_array_equal(folded, g((z, y)))
  else:
    np.testing.assert_allclose(folded, g((z, y)), atol=1e-5)
  np.testing.assert_array_equal(g((z[:3], y[:3])), src((z[:3], y[:3])))


def test_new_row_inits_mean_one_thing_each():
  old = tf.constant([[1.0, 2.0], [3.0, 6.0]])
  np.testing.assert_array_equal(weights.initial_rows(old, 3, "mean"),
                                [[2.0, 4.0]] * 3)
  np.testing.assert_array_equal(weights.initial_rows(old, 3, "zeros"),
                                np.zeros([3, 2]))
  drawn = tf.random.normal([3, 2], seed=2)
  np.testing.assert_array_equal(
      weights.initial_rows(old, 3, "random", initialised=drawn), drawn)
  with pytest.raises(ValueError, match="initialised"):
    weights.initial_rows(old, 3, "random")
  with pytest.raises(UserInputError, match=r"X.rows must be one of "
                     r"\('mean', 'zeros', 'random'\), got 'avg'"):
    weights.check_row_init("X.rows", "avg")
  # Independent rows have no random initialiser to keep.
  src = _source()
  g = tg.KnowledgeTransferGenerator(N, M, "independent", **src.ctor_kwargs)
  with pytest.raises(UserInputError, match=r"row_init must be one of "
                     r"\('mean', 'zeros'\), got 'random'"):
    g.load_source(src, row_init="random")


def test_wrong_source_is_refused():
  src = _source()
  g = tg.KnowledgeTransferGenerator(N + 1, M, **src.ctor_kwargs)
  with pytest.raises(ValueError, match="does not match"):
    g.load_source(src)


@pytest.mark.parametrize("shape", [(5, 9), (9, 5)])
def test_fold_spectral_vector_gives_unit_gain(shape):
  rng = np.random.RandomState(0)
  matrix = rng.normal(size=shape)
  matrix /= np.linalg.svd(matrix, compute_uv=False)[0] / 1.3  # top = 1.3
  u = tg._unit_vector_with_unit_gain(matrix)
  np.testing.assert_allclose(np.linalg.norm(u), 1.0, rtol=1e-12)
  np.testing.assert_allclose(np.linalg.norm(matrix @ u), 1.0, rtol=1e-12)
  with pytest.raises(ValueError, match="Cannot fold"):
    tg._unit_vector_with_unit_gain(matrix / 2.0)


def test_fold_scales_new_embedding_when_rows_fill_the_spectrum():
  # Source kernel [class rows; z rows] with singular values 1.2, 0.9, 0.5;
  # the new rows alone would lift every singular value above 1.
  w = np.concatenate([np.diag([1.2, 0.9, 0.5]), np.zeros([1, 3])], axis=0)
  new = np.array([[0.0, 5.0, 0.0], [0.0, 0.0, 5.0]])
  with pytest.raises(ValueError, match="Cannot fold"):
    tg._unit_vector_with_unit_gain(
        np.concatenate([w[:2], new, w[2:]]))
  scale, vectors = tg._fold_projections({"k": (w, new)}, 2)
  assert scale > 1
  kernel = np.concatenate([w[:2], new / scale, w[2:]])
  np.testing.assert_allclose(np.linalg.norm(kernel @ vectors["k"]), 1.0,
                             rtol=1e-9)
