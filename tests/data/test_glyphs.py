"""The drawn glyph domain (tfgt.data.sources.glyphs): deterministic, split
apart, usable as training data through gin, and bad settings refused."""

import gin
import numpy as np
import pytest

from tfgt.data import pipeline
from tfgt.data import sources
from tfgt.errors import UserInputError


def test_glyphs_are_drawn_the_same_from_a_seed_and_apart_by_split():
  a = sources.glyphs("train", 32, 1, characters="AB", images_per_class=5)
  b = sources.glyphs("train", 32, 1, characters="AB", images_per_class=5)
  np.testing.assert_array_equal(a.images, b.images)
  assert a.images.shape == (10, 32, 32, 1) and a.images.dtype == np.uint8
  assert a.class_names == ["glyph A", "glyph B"]
  assert list(a.labels) == [0] * 5 + [1] * 5
  test = sources.glyphs("test", 32, 1, characters="AB", images_per_class=5)
  other = sources.glyphs("train", 32, 1, characters="AB", images_per_class=5,
                         seed=1)
  assert not np.array_equal(a.images, test.images)
  assert not np.array_equal(a.images, other.images)
  # Every image holds a glyph: bright pixels on a dark ground.
  assert all((img > 120).sum() >= 10 for img in a.images)
  rgb = sources.glyphs("train", 48, 3, characters="A", images_per_class=2)
  assert rgb.images.shape == (2, 48, 48, 3)
  np.testing.assert_array_equal(rgb.images[..., 0], rgb.images[..., 2])


@pytest.mark.parametrize("kwargs,message", [
    (dict(split="valid"), "split must be one of"),
    (dict(resolution=8), "resolution must be >= 16"),
    (dict(characters="AA"), "distinct"),
    (dict(images_per_class=0), "images_per_class must be >= 1"),
])
def test_bad_settings_are_refused(kwargs, message):
  with pytest.raises(UserInputError, match=message):
    sources.glyphs(**kwargs)


def test_glyph_classes_as_training_data_through_gin():
  gin.clear_config()
  try:
    gin.parse_config([
        "load_training_data.source = @glyphs",
        "load_training_data.classes = ['glyph 3', 'glyph 8']",
        "glyphs.images_per_class = 4"])
    _, labels, selection = pipeline.load_training_data(32, 1)
  finally:
    gin.clear_config()
  assert selection.names == ["glyph 3", "glyph 8"]
  assert np.bincount(labels).tolist() == [4, 4]
