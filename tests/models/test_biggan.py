"""BigGAN generator and discriminator."""

import numpy as np
import pytest
import tensorflow as tf

from tfgt.models import biggan


@pytest.mark.parametrize("resolution,channels,conditioning,attn,ch,d_index", [
    (32, 1, "table", 0, 4, -1),
    (32, 3, "shared_embedding", 16, 4, 0),
    (64, 3, "table", 32, 8, 0),
    (128, 3, "shared_embedding", 64, 8, 0),
])
def test_shapes(resolution, channels, conditioning, attn, ch, d_index):
  dim_z = 24 if conditioning == "table" else 120
  g = biggan.BigGANGenerator(5, resolution=resolution, channels=channels,
                             ch=ch, dim_z=dim_z,
                             conditioning=conditioning,
                             hierarchical_z=conditioning != "table",
                             shared_dim=8, attention_resolution=attn)
  d = biggan.BigGANDiscriminator(5, resolution=resolution, channels=channels,
                                 ch=ch,
                                 attention_resolution=attn)
  # As in BigGAN: D's attention follows the block whose output is at attn.
  assert d.attention_index == d_index
  labels = tf.constant([0, 4])
  images = g((tf.random.normal([2, dim_z]), labels), training=True)
  assert images.shape == (2, resolution, resolution, channels)
  assert np.all(np.abs(images.numpy()) <= 1.0)
  logits = d((images, labels), training=True)
  assert logits.shape == (2,)
  assert (g.attention is not None) == bool(attn)


def test_256_resolution_builds():
  g = biggan.BigGANGenerator(2, resolution=256, channels=3, ch=1, dim_z=8)
  assert g((tf.zeros([1, 8]), tf.constant([1]))).shape == (1, 256, 256, 3)


def test_generator_output_depends_on_label_and_soft_weights_mix():
  g = biggan.BigGANGenerator(3, ch=4, dim_z=8)
  biggan.build_models(g)
  for block in g.blocks:
    for bn in (block.bn1, block.bn2):
      bn.gain_offset.assign(tf.random.normal(bn.gain_offset.shape))
      bn.shift.assign(tf.random.normal(bn.shift.shape))
  z = tf.random.normal([1, 8])
  a = g((z, tf.constant([0])))
  b = g((z, tf.constant([1])))
  one_hot = g((z, tf.constant([[1.0, 0.0, 0.0]])))
  assert not np.allclose(a.numpy(), b.numpy())
  np.testing.assert_array_equal(a.numpy(), one_hot.numpy())


def test_projection_discriminator_depends_on_label():
  d = biggan.BigGANDiscriminator(4, ch=4)
  x = tf.random.normal([1, 32, 32, 1])
  scores = [float(d((x, tf.constant([c])))[0]) for c in range(4)]
  assert len(set(np.round(scores, 6))) == 4


def test_bad_arguments():
  with pytest.raises(ValueError, match="resolution"):
    biggan.BigGANGenerator(2, resolution=48)
  with pytest.raises(ValueError, match="conditioning"):
    biggan.BigGANGenerator(2, conditioning="film")
  g = biggan.BigGANGenerator(2, ch=4, dim_z=8)
  with pytest.raises(ValueError, match="width 9"):
    g((tf.zeros([1, 9]), tf.constant([0])))
  with pytest.raises(ValueError, match="dim_z"):
    biggan.BigGANGenerator(2, dim_z=10, hierarchical_z=True)
  # An attention resolution that no block outputs is refused, not ignored.
  with pytest.raises(ValueError, match="no generator block outputs"):
    biggan.BigGANGenerator(2, attention_resolution=12)
  with pytest.raises(ValueError, match="no discriminator block outputs"):
    biggan.BigGANDiscriminator(2, attention_resolution=32)


def test_checkpoint_names_are_readable_and_complete(tmp_path):
  g = biggan.BigGANGenerator(2, ch=4, dim_z=8, attention_resolution=16)
  biggan.build_models(g)
  path = tf.train.Checkpoint(generator=g).save(str(tmp_path / "ckpt"))
  names = {n for n, _ in tf.train.list_variables(path)}
  for v in g.variables:
    assert f"{v.path}/.ATTRIBUTES/VARIABLE_VALUE" in names, v.path
