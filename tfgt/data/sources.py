"""Labelled image sources, loaded into memory at the model's resolution.

Each loader returns a `LabelledImages`: uint8 images [N, R, R, C], int64 labels
[N] in the source's own class ids, and the class names. Few-shot transfer uses
at most a few thousand images per run, so holding them in memory is cheap and
lets every bad file be reported before training starts.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import io
import os
import shlex
import struct
from typing import Sequence, TYPE_CHECKING
import zlib

from absl import logging
import gin
import numpy as np

from tfgt.data import class_lookup
from tfgt.errors import UserInputError

if TYPE_CHECKING:
  from PIL import Image
  from PIL import ImageCms

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif",
                   ".tiff")


@dataclasses.dataclass
class LabelledImages:
  images: np.ndarray  # uint8 [N, R, R, C]
  labels: np.ndarray  # int64 [N], ids into class_names
  class_names: list[str]


# How to replace a damaged Fashion-MNIST file.
_REINSTALL_HINT = (
    "Re-install the data with `apt-get install --reinstall "
    f"dataset-fashion-mnist` (it fills {FASHION_MNIST_DIR}) or point to "
    "another copy with --gin_param=\"fashion_mnist.data_dir='/path/to/dir'\".")


def _read_idx(path: str) -> np.ndarray:
  """Reads an IDX file (optionally gzipped) into a NumPy array.

  Raises:
    UserInputError: naming the file when it is unreadable, not valid gzip, not
      an unsigned-byte IDX file or truncated.
  """
  opener = gzip.open if path.endswith(".gz") else open
  try:
    with opener(path, "rb") as f:
      data = f.read()
  # gzip raises OSError (BadGzipFile, CRC), EOFError or zlib.error.
  except (OSError, EOFError, zlib.error) as e:
    raise UserInputError(f"Cannot read IDX file {path}: {e}. "
                         f"{_REINSTALL_HINT}") from e
  if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 8:
    raise UserInputError(f"{path} is not an unsigned-byte IDX file. "
                         f"{_REINSTALL_HINT}")
  ndim = data[3]
  if len(data) < 4 + 4 * ndim:
    raise UserInputError(f"{path} is truncated: its header is cut short. "
                         f"{_REINSTALL_HINT}")
  dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
  body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
  if body.size != int(np.prod(dims)):
    raise UserInputError(f"{path} is truncated: header says {dims}, found "
                         f"{body.size} values. {_REINSTALL_HINT}")
  return body.reshape(dims)


def _find(directory: str, stem: str) -> str:
  for name in (stem, stem + ".gz"):
    path = os.path.join(directory, name)
    if os.path.exists(path):
      return path
  raise UserInputError(
      f"Fashion-MNIST file {stem}[.gz] not found in {directory}. Install the "
      "data with `apt-get install dataset-fashion-mnist` (it fills "
      f"{FASHION_MNIST_DIR}) or point to another copy with "
      "--gin_param=\"fashion_mnist.data_dir='/path/to/dir'\".")


@gin.configurable(allowlist=["data_dir"])
def fashion_mnist(split: str = "train", resolution: int = 32,
                  channels: int = 1,
                  data_dir: str = FASHION_MNIST_DIR) -> LabelledImages:
  """Fashion-MNIST from its IDX files, zero-padded from 28x28 to `resolution`.

  Args:
    split: "train" (60k images) or "test" (10k).
    resolution: output size, at least 28 (padding) ; 32 by default.
    channels: 1, or 3 to repeat the grey channel.
    data_dir: folder holding the four IDX files (gzipped or not).
  """
  if not os.path.isdir(data_dir):
    raise UserInputError(
        f"Fashion-MNIST directory {data_dir} does not exist. Install it with "
        "`apt-get install dataset-fashion-mnist` or point to a copy with "
        "--gin_param=\"fashion_mnist.data_dir='/path/to/dir'\".")
  prefix = {"train": "train", "test": "t10k"}.get(split)
  if prefix is None:
    raise UserInputError(f"Fashion-MNIST split must be 'train' or 'test', got "
                         f"{split!r}.")
  images = _read_idx(_find(data_dir, f"{prefix}-images-idx3-ubyte"))
  labels = _read_idx(_find(data_dir, f"{prefix}-labels-idx1-ubyte"))
  if images.shape[0] != labels.shape[0]:
    raise UserInputError(f"Fashion-MNIST {split}: {images.shape[0]} images but "
                         f"{labels.shape[0]} labels in {data_dir}.")
  if resolution < 28:
    raise UserInputError(f"Fashion-MNIST needs resolution >= 28, got "
                         f"{resolution}.")
  before = (resolution - 28) // 2
  after = resolution - 28 - before
  images = np.pad(images, ((0, 0), (before, after), (before, after)))
  images = np.repeat(images[..., None], channels, axis=-1)
  return LabelledImages(images, labels.astype(np.int64),
                        list(FASHION_MNIST_CLASSES))


# The classes of `glyphs`: the ten digits, drawn (a domain other than the
# clothes of Fashion-MNIST, made by code, nothing to download).
GLYPH_CHARACTERS = "0123456789"
# Images per class of each split of `glyphs`.
GLYPH_SPLIT_SIZES = {"train": 1000, "test": 200}


@functools.lru_cache(maxsize=None)
def _glyph_font(size: int):
  from PIL import ImageFont  # pylint: disable=g-import-not-at-top
  return ImageFont.load_default(size=size)


def draw_glyph(character: str, resolution: int,
               rng: np.random.Generator) -> np.ndarray:
  """One character drawn at a random size (45-80 % of the image), stroke
  width (0-2 px at 32 px, in proportion above), rotation (+-15 degrees),
  place and grey level (150-255) on black, with Gaussian noise (sigma 0-8
  grey levels), as uint8 [resolution, resolution]. Deterministic given the
  generator's state (Pillow's built-in font)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from PIL import ImageDraw  # pylint: disable=g-import-not-at-top
  size = int(round(resolution * rng.uniform(0.45, 0.8)))
  stroke = int(rng.integers(0, 3) * resolution // 32)
  angle = rng.uniform(-15.0, 15.0)
  grey = int(rng.integers(150, 256))
  noise = rng.uniform(0.0, 8.0)
  font = _glyph_font(size)
  canvas = Image.new("L", (2 * resolution, 2 * resolution), 0)
  draw = ImageDraw.Draw(canvas)
  draw.text((resolution, resolution), character, fill=grey, font=font,
            anchor="mm", stroke_width=stroke, stroke_fill=grey)
  canvas = canvas.rotate(angle, resample=Image.BILINEAR,
                         center=(resolution, resolution))
  box = canvas.getbbox() or (0, 0, 1, 1)
  glyph = canvas.crop(box)
  image = Image.new("L", (resolution, resolution), 0)
  room_x = max(resolution - glyph.width, 0)
  room_y = max(resolution - glyph.height, 0)
  image.paste(glyph, (int(rng.integers(0, room_x + 1)),
                      int(rng.integers(0, room_y + 1))))
  pixels = np.asarray(image, np.float64)
  pixels += noise * rng.standard_normal(pixels.shape)
  return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


@gin.configurable(allowlist=["characters", "images_per_class", "seed"])
def glyphs(split: str = "train", resolution: int = 32, channels: int = 1,
           characters: str = GLYPH_CHARACTERS,
           images_per_class: int | None = None,
           seed: int = 0) -> LabelledImages:
  """A drawn image domain: one class per character (`draw_glyph`), for
  scoring transfers on a target that is not the source's domain.

  The images are drawn on the fly from `seed` and the split (train and test
  never share a draw), the same on every machine with the same Pillow.

  Args:
    split: "train" or "test".
    resolution: the image side, >= 16.
    channels: 1, or 3 (grey repeated).
    characters: the classes, distinct characters.
    images_per_class: per class (default `GLYPH_SPLIT_SIZES[split]`).
    seed: of the draws.

  Raises:
    UserInputError: a bad split, resolution, size or character list.
  """
  if split not in GLYPH_SPLIT_SIZES:
    raise UserInputError(f"glyphs: split must be one of "
                         f"{sorted(GLYPH_SPLIT_SIZES)}, got {split!r}.")
  if resolution < 16:
    raise UserInputError(f"glyphs: resolution must be >= 16, got "
                         f"{resolution}.")
  if not characters or len(set(characters)) != len(characters):
    raise UserInputError(f"glyphs.characters={characters!r}: give distinct "
                         "characters, one per class, e.g. '0123456789'.")
  count = GLYPH_SPLIT_SIZES[split] if images_per_class is None else (
      images_per_class)
  if count < 1:
    raise UserInputError(f"glyphs.images_per_class must be >= 1, got "
                         f"{count}.")
  rng = np.random.default_rng([seed, list(GLYPH_SPLIT_SIZES).index(split)])
  images = np.stack([draw_glyph(c, resolution, rng)
                     for c in characters for _ in range(count)])
  labels = np.repeat(np.arange(len(characters), dtype=np.int64), count)
  images = np.repeat(images[..., None], channels, axis=-1)
  return LabelledImages(images, labels, [f"glyph {c}" for c in characters])


# Folders that file managers, archivers, notebooks and NAS boxes create beside
# the data; they are never classes. Names starting with "." are skipped too.
_SYSTEM_FOLDERS = frozenset({
    "__MACOSX",  # macOS metadata in unzipped archives.
    "__pycache__",
    "$RECYCLE.BIN", "System Volume Information",  # Windows drives.
    "lost+found",  # Linux file systems.
    "@eaDir", "#recycle",  # Synology NAS.
})
# Transparent pixels of image-folder images are shown over this colour.
DEFAULT_BACKGROUND = "white"
_BACKGROUND_HINT = ("give a colour name such as 'white' or 'black', "
                    "'#rrggbb', or an (r, g, b) tuple of ints in [0, 255]")


def is_hidden_or_system(name: str) -> bool:
  """Whether a file or folder name is one that image folders skip.

  Hidden names start with "." (this covers macOS "._x" metadata files and
  ".ipynb_checkpoints"); system folders are those in `_SYSTEM_FOLDERS`.
  """
  return name.startswith(".") or name in _SYSTEM_FOLDERS


def background_rgb(background: str | Sequence[int]) -> tuple[int, int, int]:
  """The colour of `image_folder.background` as uint8 (r, g, b).

  Args:
    background: a colour Pillow knows by name or as '#rrggbb' ('white',
      'black', 'grey', ...), or a sequence of three ints in [0, 255].

  Raises:
    UserInputError: for anything else.
  """
  from PIL import ImageColor  # pylint: disable=g-import-not-at-top
  error = UserInputError(f"image_folder.background={background!r} is not a "
                         f"colour: {_BACKGROUND_HINT}.")
  if isinstance(background, str):
    try:
      rgb = ImageColor.getrgb(background)
    except ValueError as e:
      raise error from e
    if len(rgb) != 3:  # '#rrggbbaa': a background has no transparency.
      raise error
    return (int(rgb[0]), int(rgb[1]), int(rgb[2]))
  if (isinstance(background, (tuple, list)) and len(background) == 3
      and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
              and 0 <= v <= 255 for v in background)):
    return (int(background[0]), int(background[1]), int(background[2]))
  raise error


def _high_depth_to_8bit(img: Image.Image, path: str) -> Image.Image:
  """An 'I;16*', 'I' or 'F' Pillow image as an 8-bit 'L' image.

  16-bit values map 0..65535 to 0..255; 'I' (32-bit integers, which Pillow
  also uses for 16-bit PNG, TIFF and PGM files) must hold values in that 16-bit
  range; 'F' (32-bit floats) must hold values in [0, 1].

  Raises:
    UserInputError: naming `path` for values outside those ranges.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  values = np.asarray(img).astype(np.float64)
  low, high = float(np.min(values)), float(np.max(values))
  if img.mode == "F":
    if not (np.all(np.isfinite(values)) and low >= 0.0 and high <= 1.0):
      raise UserInputError(
          f"Image {path} has floating-point values in [{low:g}, {high:g}]; "
          "floating-point images are read as 0 = black and 1 = white. Scale "
          "it to [0, 1], or save it as an 8- or 16-bit PNG.")
    scaled = values * 255.0
  else:
    if low < 0 or high > 65535:
      raise UserInputError(
          f"Image {path} has integer values in [{low:g}, {high:g}]; integer "
          "images are read as 16-bit, 0 = black and 65535 = white. Save it as "
          "an 8- or 16-bit PNG.")
    scaled = values / 257.0  # 65535 / 257 = 255.
  return Image.fromarray(np.round(scaled).astype(np.uint8))


@functools.lru_cache(maxsize=16)
def _srgb_transform(icc_profile: bytes, mode: str
                    ) -> ImageCms.ImageCmsTransform:
  """A cached ImageCms transform from an embedded profile to sRGB 'RGB'."""
  from PIL import ImageCms  # pylint: disable=g-import-not-at-top
  source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
  return ImageCms.buildTransform(source, ImageCms.createProfile("sRGB"), mode,
                                 "RGB")


def _to_srgb(img: Image.Image, path: str) -> Image.Image:
  """Applies an 'L', 'LA', 'RGB', 'RGBA' or 'CMYK' image's ICC profile.

  Returns an 'RGB' (or 'RGBA', alpha kept) image in sRGB, or `img` unchanged
  when it has no profile or the profile does not fit it (a greyscale image
  tagged with an RGB profile, a damaged profile): its values are then read
  as sRGB, as most viewers do.
  """
  from PIL import ImageCms  # pylint: disable=g-import-not-at-top
  icc_profile = img.info.get("icc_profile")
  if not icc_profile:
    return img
  alpha = img.getchannel("A") if img.mode in ("LA", "RGBA") else None
  colour = img.convert(img.mode[:-1]) if alpha is not None else img
  try:
    srgb = ImageCms.applyTransform(
        colour, _srgb_transform(bytes(icc_profile), colour.mode))
  except (OSError, ValueError, ImageCms.PyCMSError) as e:
    logging.log_first_n(
        logging.WARNING, "Ignored the colour profile of %s (%s): its values "
        "are read as sRGB.", 5, path, e)
    return img
  if alpha is not None:
    srgb.putalpha(alpha)
  return srgb


def decode_image(path: str, background: tuple[int, int, int] = (255, 255, 255)
                 ) -> Image.Image:
  """Opens an image file as an image viewer shows it.

  The first frame of an animation, turned upright by its EXIF orientation,
  16-bit and floating-point values scaled to 8 bits (see
  `_high_depth_to_8bit`), colours converted to sRGB by an embedded ICC profile,
  palette and 1-bit images expanded, and transparency (alpha channel, or a
  transparent palette index or colour) composited over `background`.

  Args:
    path: the image file.
    background: uint8 (r, g, b) shown through transparent pixels.

  Returns:
    A Pillow image of mode 'L' (greyscale sources) or 'RGB', full size.

  Raises:
    UserInputError: for 16-bit or float values out of range (see
      `_high_depth_to_8bit`). Pillow's own errors for unreadable files pass
      through.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from PIL import ImageOps  # pylint: disable=g-import-not-at-top
  with Image.open(path) as opened:
    opened.seek(0)
    try:
      img = ImageOps.exif_transpose(opened)  # A loaded copy.
    except Exception as e:  # pylint: disable=broad-except
      # EXIF parsing raises many types; a viewer shows such a file unturned.
      logging.log_first_n(logging.WARNING, "Ignored the EXIF orientation of "
                          "%s (%s).", 5, path, e)
      img = opened.copy()
  mode = img.mode
  if mode.startswith("I;16") or mode in ("I", "F"):
    img = _high_depth_to_8bit(img, path)
  else:
    has_alpha = (mode in ("LA", "La", "PA", "RGBA", "RGBa")
                 or "transparency" in img.info)
    if mode == "CMYK":
      base = "CMYK"
    elif mode in ("1", "L", "LA", "La"):
      base = "L"
    else:  # RGB, RGBA, RGBX, RGBa, P, PA, YCbCr, LAB, HSV.
      base = "RGB"
    wanted = base + "A" if has_alpha and base != "CMYK" else base
    if mode != wanted:
      img = img.convert(wanted)
  img = _to_srgb(img, path)
  if img.mode in ("LA", "RGBA"):
    canvas = Image.new("RGBA", img.size, background + (255,))
    img = Image.alpha_composite(canvas, img.convert("RGBA")).convert("RGB")
  if img.mode not in ("L", "RGB"):
    img = img.convert("RGB")
  return img


def _load_image(path: str, resolution: int, channels: int,
                background: tuple[int, int, int]) -> np.ndarray:
  """`decode_image`, centre-cropped square and resized to `resolution`.

  Returns:
    uint8 [resolution, resolution, channels].

  Raises:
    UserInputError: naming `path` when it cannot be read or converted.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  try:
    img = decode_image(path, background)
    img = img.convert("L" if channels == 1 else "RGB")
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side))
    img = img.resize((resolution, resolution), Image.Resampling.BICUBIC)
    array = np.asarray(img, dtype=np.uint8)
  except UserInputError:
    raise
  except Exception as e:  # PIL raises many types for bad files.
    raise UserInputError(f"Cannot read image {path}: {e}. Remove or replace "
                         "the file.") from e
  return array.reshape(resolution, resolution, channels)


def _escaped(text: str) -> str:
  """A path or name with its bytes that are not UTF-8 (which Python reads
  as lone surrogates) shown as \\xNN."""
  return os.fsencode(text).decode("utf-8", "backslashreplace")


def _bash_quoted(path: str) -> str:
  """`path` quoted for bash: as is when it is UTF-8 text, else as $'...'
  with its other bytes as \\xNN."""
  try:
    path.encode("utf-8")
    return shlex.quote(path)
  except UnicodeEncodeError:
    pass
  return "$'" + "".join(
      chr(b) if 0x20 <= b < 0x7f and b not in b"\\'" else f"\\x{b:02x}"
      for b in os.fsencode(path)) + "'"


def _check_folder_name(root: str, name: str) -> None:
  """Refuses a class folder whose name is not valid UTF-8.

  Class names are stored as UTF-8 text (classes.json, model.json, the
  serving export's class list), which such a name cannot be.

  Raises:
    UserInputError: naming the folder with its bytes escaped, and a rename.
  """
  try:
    name.encode("utf-8")
    return
  except UnicodeEncodeError:
    pass
  # Names that are not UTF-8 are mostly Windows-1252 (Latin-1) text.
  guess = os.fsencode(name).decode("cp1252", "replace").replace("\ufffd", "_")
  folder = os.path.join(root, name)
  raise UserInputError(
      f"Class folder {_escaped(folder)} has a name that is not valid UTF-8 "
      f"(bytes {os.fsencode(name)!r}), which class names must be: rename it, "
      f"e.g. in bash: mv {_bash_quoted(folder)} "
      f"{_bash_quoted(os.path.join(root, guess))} (convmv -f cp1252 -t utf8 "
      "-r --notest renames every such name under a folder).")


@gin.configurable(allowlist=["root", "background"])
def image_folder(root: str = gin.REQUIRED, resolution: int = 32,
                 channels: int = 3, split: str = "train",
                 background: str | Sequence[int] = DEFAULT_BACKGROUND
                 ) -> LabelledImages:
  """Images in `root/<class name>/*.{jpg,png,...}`, one sub-folder per class.

  Class ids follow the sub-folder names sorted as strings ("1", "10", "2"),
  as logged with the classes. Hidden and system folders (see
  `is_hidden_or_system`) are not classes, and hidden files (such as macOS
  "._x" metadata) are not images; both are skipped and counted in the log, as
  are files without an image suffix. Each image is read as a viewer shows it
  (see `decode_image`), centre-cropped to a square and resized to
  `resolution` (bicubic, antialiased). docs/DATA.md has the details.

  Args:
    root: the folder of class sub-folders.
    resolution: output size R.
    channels: 1 (greyscale) or 3 (RGB).
    split: ignored (a folder holds one split).
    background: colour shown through transparent pixels (see
      `background_rgb`); white by default, as on a web page or a document.

  Returns:
    uint8 images [N, R, R, channels] in [0, 255], int64 labels [N] in
    [0, classes), the class names.

  Raises:
    UserInputError: when `root` is missing or has no class sub-folders, a
      class folder holds no images, an image cannot be read or converted, or
      `background` is not a colour.
  """
  del split
  fill = background_rgb(background)
  if not os.path.isdir(root):
    raise UserInputError(f"Image folder {root} does not exist. Point "
                         "image_folder.root at a folder with one sub-folder "
                         "of images per class.")
  folders = sorted(d for d in os.listdir(root)
                   if os.path.isdir(os.path.join(root, d)))
  skipped_folders = [d for d in folders if is_hidden_or_system(d)]
  class_names = [d for d in folders if not is_hidden_or_system(d)]
  if skipped_folders:
    logging.info("Image folder %s: skipped %d hidden or system folders, not "
                 "classes: %s.", root, len(skipped_folders),
                 ", ".join(skipped_folders))
  for name in class_names:
    _check_folder_name(root, name)
  if not class_names:
    raise UserInputError(
        f"Image folder {root} has no class sub-folders"
        + (f" (hidden or system folders are skipped: "
           f"{', '.join(skipped_folders)})" if skipped_folders else "")
        + ". Put the images of each class in a sub-folder named after the "
        "class.")
  images, labels, counts = [], [], []
  hidden_files, other_files = [], []
  for label, name in enumerate(class_names):
    folder = os.path.join(root, name)
    files = []
    for f in sorted(os.listdir(folder)):
      path = os.path.join(folder, f)
      if f.startswith("."):
        hidden_files.append(path)
      elif not f.lower().endswith(_IMAGE_SUFFIXES) or os.path.isdir(path):
        other_files.append(path)
      else:
        files.append(path)
    if not files:
      raise UserInputError(
          f"Class folder {folder} holds no images (looked for "
          f"{', '.join(_IMAGE_SUFFIXES)}; hidden files are skipped). Add "
          "images, or remove the folder if it is not a class.")
    for path in files:
      images.append(_load_image(path, resolution, channels, fill))
      labels.append(label)
    counts.append(len(files))
  if hidden_files:
    logging.info("Image folder %s: skipped %d hidden files and folders in "
                 "class folders (such as macOS '._' metadata), e.g. %s.",
                 root, len(hidden_files), hidden_files[0])
  if other_files:
    logging.warning("Image folder %s: skipped %d entries that are not images "
                    "by their suffix (%s), e.g. %s.", root, len(other_files),
                    ", ".join(_IMAGE_SUFFIXES), other_files[0])
  logging.info("Image folder %s: %d classes (id=name: images): %s.", root,
               len(class_names),
               ", ".join(f"{i}={n!r}: {c}" for i, (n, c)
                         in enumerate(zip(class_names, counts))))
  return LabelledImages(np.stack(images), np.asarray(labels, np.int64),
                        class_names)


@gin.configurable(allowlist=["name", "data_dir", "download"])
def tfds_dataset(name: str = gin.REQUIRED, resolution: int = 32,
                 channels: int = 3, split: str = "train",
                 data_dir: str | None = None,
                 download: bool = False) -> LabelledImages:
  """A TFDS dataset with 'image' and 'label' features, e.g. 'cifar100'.

  With `download=False` (default) the data must already be prepared in
  `data_dir`, which works offline.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  try:
    builder = tfds.builder(name, data_dir=data_dir)
    if download:
      builder.download_and_prepare()
    ds = builder.as_dataset(split=split, as_supervised=False)
  except Exception as e:  # TFDS raises various errors for missing data.
    raise UserInputError(
        f"TFDS dataset {name!r} (split {split!r}) is not available in data_dir="
        f"{data_dir!r}: {e}. Prepare it there first (tfds build {name} "
        "--data_dir=...) or set tfds_dataset.download=True where there is a "
        "network.") from e
  names = builder.info.features["label"].names

  def convert(example):
    image = tf.image.convert_image_dtype(example["image"], tf.float32)
    if image.shape[-1] != channels:
      image = (tf.image.rgb_to_grayscale(image) if channels == 1
               else tf.image.grayscale_to_rgb(image))
    image = tf.image.resize(image, [resolution, resolution], antialias=True)
    image = tf.cast(tf.round(tf.clip_by_value(image, 0, 1) * 255), tf.uint8)
    return image, example["label"]

  images, labels = [], []
  for image, label in tfds.as_numpy(ds.map(convert).batch(1024)):
    images.append(image)
    labels.append(label)
  return LabelledImages(np.concatenate(images),
                        np.concatenate(labels).astype(np.int64), list(names))


@gin.configurable(allowlist=["source", "classes", "name"])
def merged_classes(split: str = "train", resolution: int = 32,
                   channels: int = 1, source=fashion_mnist,
                   classes: Sequence[int | str] | None = None,
                   name: str = gin.REQUIRED) -> LabelledImages:
  """Several classes of another source as one class: the data of an
  unconditional model (a StyleGAN source trained on Fashion-MNIST's classes
  0-7 with their labels ignored).

  Args:
    split, resolution, channels: passed to `source`.
    source: the loader whose classes are merged (`fashion_mnist`,
      `image_folder`, ...).
    classes: names or ids of the classes to merge (as
      `load_training_data.classes`); None merges all.
    name: the name of the merged class (what the model's classes.json and
      evaluation reports say).

  Returns:
    The images of those classes, all with label 0, and [name].

  Raises:
    UserInputError: an empty name or class list, or an unknown class.
  """
  if not isinstance(name, str) or not name.strip():
    raise UserInputError(
        f"merged_classes.name={name!r}: give the merged class a name, e.g. "
        "merged_classes.name = 'fashion-mnist-0-7'.")
  data = source(split=split, resolution=resolution, channels=channels)
  ids = class_lookup.resolve_classes(classes, data.class_names,
                                     setting="merged_classes.classes")
  if not ids:
    raise UserInputError(
        "merged_classes.classes is empty: list the classes to merge, or leave "
        "it unset to merge all.")
  keep = np.isin(data.labels, ids)
  logging.info("Merged %d classes (%s) into one class %r: %d images.",
               len(ids), ", ".join(repr(data.class_names[i]) for i in ids),
               name, int(keep.sum()))
  return LabelledImages(data.images[keep],
                        np.zeros(int(keep.sum()), np.int64), [name])
