"""Image grids for people to look at (PNG files and TensorBoard)."""

from __future__ import annotations

import numpy as np


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
  """Writes a uint8 [H, W, C] image (C = 1 or 3) as PNG."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  if image.shape[-1] == 1:
    image = image[..., 0]
  Image.fromarray(image).save(path)
