"""The architecture contract (`tfgt.models.architectures`), checked for
every registered architecture alike: build, call with labels and class
weights, clone, constructor options, the EMA hook, a bundle round trip,
truncation and the serving export.

A new architecture is covered by adding its tiny constructor options to
`TINY`; a registered architecture missing from it fails
`test_every_registered_architecture_is_checked`.
"""

import os

import numpy as np
import pytest
import tensorflow as tf

from tfgt import ema as ema_lib
from tfgt import export as export_lib
from tfgt.models import architectures
from tfgt.models import bundle

_STYLE = dict(resolution=8, channels=1, dim_z=8, w_dim=8, mapping_layers=1,
              fmap_base=16, fmap_max=8)
_STYLE_D = dict(resolution=8, channels=1, fmap_base=16, fmap_max=8)
_STYLE2 = dict(resolution=8, channels=1, dim_z=8, w_dim=8, mapping_layers=1,
               channel_base=32, channel_max=8)
_STYLE2_D = dict(resolution=8, channels=1, channel_base=32, channel_max=8,
                 mapping_layers=1)
# Per architecture: (generator options, discriminator options), small enough
# to build in a second.
TINY = {
    "biggan": (dict(ch=4, dim_z=8, resolution=32, channels=1),
               dict(ch=4, resolution=32, channels=1)),
    "stylegan": (_STYLE, _STYLE_D),
    "hypermod": (dict(source=_STYLE, class_width=4, class_depth=1), _STYLE_D),
    "stylegan2": (_STYLE2, _STYLE2_D),
    "hypermod_stylegan2": (dict(source=_STYLE2, class_width=4,
                                class_depth=1),
                           dict(_STYLE2_D, mapping_layers=0)),
}
NUM_CLASSES = 3


def test_every_registered_architecture_is_checked():
  architectures.import_built_in()
  assert set(architectures.names()) == set(TINY)


@pytest.fixture(scope="module", params=sorted(TINY))
def models(request):
  """(name, generator, discriminator), built with random weights."""
  name = request.param
  entry = architectures.get(name)
  g_options, d_options = TINY[name]
  tf.keras.utils.set_random_seed(0)
  g = entry.generator(NUM_CLASSES, **g_options)
  d = entry.discriminator(NUM_CLASSES, **d_options)
  entry.build(g, d)
  return name, g, d


@pytest.mark.parametrize("name", sorted(TINY))
def test_models_build_without_symbolic_traces(name, monkeypatch):
  """Building calls the models once; no layer is built by tracing its call
  on symbolic inputs (Keras 3's fallback for a layer without `build`,
  nested per level: see tfgt.layers.building)."""
  from keras.src.backend.tensorflow import core  # pylint: disable=g-import-not-at-top
  traced = []
  original = core.compute_output_spec

  def counting(fn, *args, **kwargs):
    traced.append(getattr(fn, "__self__", fn))
    return original(fn, *args, **kwargs)

  monkeypatch.setattr(core, "compute_output_spec", counting)
  monkeypatch.setattr("keras.src.backend.compute_output_spec", counting)
  entry = architectures.get(name)
  g_options, d_options = TINY[name]
  g = entry.generator(NUM_CLASSES, **g_options)
  d = entry.discriminator(NUM_CLASSES, **d_options)
  entry.build(g, d)
  assert g.built and d.built and g.variables and d.variables
  assert not traced, [type(layer).__name__ for layer in traced]


def _inputs(g, count=4):
  z = tf.random.stateless_normal([count, g.dim_z], [0, 1])
  labels = tf.constant([i % g.num_classes for i in range(count)], tf.int32)
  return z, labels


def test_models_keep_the_contract(models):
  name, g, d = models
  assert isinstance(g, architectures.Generator)
  assert isinstance(d, architectures.Discriminator)
  assert g.architecture == d.architecture == name
  assert g.num_classes == d.num_classes == NUM_CLASSES
  z, labels = _inputs(g)
  images = g((z, labels), training=False)
  assert images.dtype == tf.float32
  assert images.shape == (4, g.resolution, g.resolution, g.channels)
  assert np.all(np.abs(images.numpy()) <= 1.0)
  # One-hot class weights are the labels.
  one_hot = tf.one_hot(labels, NUM_CLASSES)
  np.testing.assert_allclose(g((z, one_hot), training=False), images,
                             atol=1e-5)
  logits = d((images, labels), training=False)
  assert logits.dtype == tf.float32 and logits.shape == (4,)
  features = d.features(images, training=False)
  assert features.shape[0] == 4 and features.shape.rank == 2


def test_clone_and_constructor_options_rebuild_the_same_model(models):
  name, g, d = models
  entry = architectures.get(name)
  z, labels = _inputs(g)
  for model, other in ((g, g.clone()),
                       (g, entry.generator(NUM_CLASSES, **g.ctor_kwargs))):
    assert type(other) is type(model) and not other.built
    entry.build(other, None)
    other.set_weights(model.get_weights())
    np.testing.assert_array_equal(other((z, labels), training=False),
                                  model((z, labels), training=False))
  assert g.clone(num_classes=NUM_CLASSES + 2).num_classes == NUM_CLASSES + 2
  assert d.clone().ctor_kwargs == d.ctor_kwargs


def test_an_ema_of_the_generator_starts_as_it_and_follows_it(models):
  _, g, _ = models
  average = g.clone()
  architectures.get(g.architecture).build(average, None)
  ema = ema_lib.ExponentialMovingAverage(average, g, decay=0.5)
  z, labels = _inputs(g)
  np.testing.assert_array_equal(average((z, labels), training=False),
                                g((z, labels), training=False))
  # Every variable is either averaged or copied (a bool per variable).
  assert all(isinstance(architectures.ema_copies(g, v), bool)
             for v in g.variables)
  ema.update(tf.constant(1, tf.int64))


def test_a_bundle_round_trips_bit_for_bit(models, tmp_path):
  _, g, d = models
  names = [f"class {i}" for i in range(NUM_CLASSES)]
  bundle.BundleWriter(str(tmp_path), g, d, names, "contract").save(3)
  loaded_g, loaded_d, spec = bundle.load(str(tmp_path),
                                         with_discriminator=True)
  assert spec["architecture"] == g.architecture
  assert spec["class_names"] == names
  z, labels = _inputs(g)
  images = g((z, labels), training=False)
  np.testing.assert_array_equal(loaded_g((z, labels), training=False),
                                images)
  np.testing.assert_array_equal(loaded_d((images, labels), training=False),
                                d((images, labels), training=False))


def _draw(g, z, labels, truncation: float):
  """Images at a truncation, as sampling and the export draw them."""
  truncation = tf.fill([z.shape[0]], truncation)
  if architectures.truncates_z(g):
    z = export_lib.truncate_latents(z, truncation)
  return architectures.generate(g, z, labels, truncation)


def test_no_truncation_draws_the_untruncated_images(models):
  _, g, _ = models
  z, labels = _inputs(g)
  images = g((z, labels), training=False)
  np.testing.assert_allclose(
      _draw(g, z, labels, architectures.no_truncation(g)), images, atol=1e-6)
  truncated = _draw(g, z, labels, 0.5)
  assert np.abs(truncated.numpy() - images.numpy()).max() > 1e-4


def test_the_serving_export_draws_the_generators_images(models, tmp_path):
  _, g, _ = models
  path = os.path.join(tmp_path, "1")
  names = [f"class {i}" for i in range(NUM_CLASSES)]
  export_lib.write_saved_model(g, names, path)
  export_lib.verify_saved_model(path, g, names)
