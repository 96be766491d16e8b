"""Image grids for people to look at (PNG files and TensorBoard)."""

from __future__ import annotations

import io
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from tfgt import files
from tfgt.data import pipeline


def grid(images: np.ndarray, pad: int = 1) -> np.ndarray:
  """Tiles images [rows, cols, H, W, C] (uint8) into one [H', W', C] image."""
  rows, cols, h, w, c = images.shape
  out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255,
                np.uint8)
  for r in range(rows):
    for k in range(cols):
      top, left = pad + r * (h + pad), pad + k * (w + pad)
      out[top:top + h, left:left + w] = images[r, k]
  return out


def save_png(image: np.ndarray, path: str) -> None:
  """Writes a uint8 [H, W, C] image (C = 1 or 3) as PNG, atomically
  (`tfgt.files`): an interrupted write leaves the old file."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  if image.shape[-1] == 1:
    image = image[..., 0]
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format="PNG")
  files.write_bytes(path, buffer.getvalue())


def sample_grid(draw: Callable[[tf.Tensor, tf.Tensor], tf.Tensor],
                class_ids: Sequence[int], z: tf.Tensor) -> np.ndarray:
  """uint8 grid, one row per class, one column per latent of `z`.

  Args:
    draw: (z [B, dim_z], labels int32 [B]) -> images [B, H, W, C] in [-1, 1].
    class_ids: the classes, one row each.
    z: latents [columns, dim_z], the same in every row.
  """
  rows = []
  for c in class_ids:
    labels = tf.fill([z.shape[0]], tf.constant(c, tf.int32))
    rows.append(pipeline.to_uint8(draw(z, labels)))
  return grid(np.stack([r.numpy() for r in rows]))


def figure_to_array(figure) -> np.ndarray:
  """A matplotlib figure as a uint8 RGB image [H, W, 3] (PNG at 100 dpi,
  tight bounding box); the figure is closed."""
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  buffer = io.BytesIO()
  figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
  plt.close(figure)
  return tf.io.decode_png(buffer.getvalue(), channels=3).numpy()
