"""Image folders as they come from cameras, scanners, Macs and archives.

Every input is made here, small, with Pillow and NumPy. The rule under test:
an image loads as an image viewer shows it, whatever mode or metadata Pillow
reports, and a folder's junk (hidden files and folders) is skipped and logged.
"""

import json
import logging
import os
import struct
import subprocess

import gin
import numpy as np
import pytest
from PIL import Image
from PIL import ImageCms

from tests.conftest import REPO
from tfgt import errors
from tfgt import sample
from tfgt import train as train_lib
from tfgt.data import pipeline
from tfgt.data import sources
from tfgt.errors import UserInputError

FASHION_NAMES = list(sources.FASHION_MNIST_CLASSES)
# The first bytes of an AppleDouble file (macOS metadata beside a copied file).
APPLE_DOUBLE = (b"\x00\x05\x16\x07\x00\x02\x00\x00" + b"Mac OS X        "
                + b"\x00\x02" + b"\x00" * 300)


@pytest.fixture
def log(caplog):
  caplog.set_level(logging.INFO)
  # Whatever level an earlier test of the process left absl's logger at
  # (a SavedModel export sets it to WARNING).
  caplog.set_level(logging.INFO, logger="absl")
  return caplog


def _png(path, value=128, size=(8, 8), mode="RGB"):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.new(mode, size, value).save(path)


def _load_one(path, resolution=8, channels=3, **kwargs):
  """The single image of a folder holding `path` as root/c/<file>."""
  root = os.path.dirname(os.path.dirname(path))
  data = sources.image_folder(root=root, resolution=resolution,
                              channels=channels, **kwargs)
  assert data.images.shape == (1, resolution, resolution, channels)
  return data.images[0]


# Hidden and system folders.


def test_hidden_and_system_folders_are_not_classes(tmp_path, log):
  for name in ("cat", "dog", ".ipynb_checkpoints"):
    for i in range(2):
      _png(tmp_path / name / f"{i}.png")
  os.makedirs(tmp_path / ".empty_hidden")
  os.makedirs(tmp_path / "__MACOSX" / "cat")
  (tmp_path / "__MACOSX" / "cat" / "._0.png").write_bytes(APPLE_DOUBLE)
  data = sources.image_folder(root=str(tmp_path), resolution=8)
  assert data.class_names == ["cat", "dog"]
  assert data.labels.tolist() == [0, 0, 1, 1]
  assert ("skipped 3 hidden or system folders, not classes: .empty_hidden, "
          ".ipynb_checkpoints, __MACOSX") in log.text


def test_only_hidden_folders_is_refused_with_what_was_skipped(tmp_path):
  _png(tmp_path / ".ipynb_checkpoints" / "0.png")
  with pytest.raises(UserInputError, match="has no class sub-folders .hidden "
                     "or system folders are skipped: .ipynb_checkpoints.*"
                     "sub-folder named after the class"):
    sources.image_folder(root=str(tmp_path), resolution=8)


def test_class_folder_name_that_is_not_utf8_is_refused(tmp_path):
  for name in (b"caf\xe9", b"tea"):
    _png(os.path.join(os.fsencode(tmp_path), name, b"0.png").decode(
        "utf-8", "surrogateescape"))
  with pytest.raises(UserInputError) as error:
    sources.image_folder(root=str(tmp_path), resolution=8)
  message = errors.message(error.value)
  assert "\n" not in message
  assert (f"Class folder {tmp_path}/caf\\xe9 has a name that is not valid "
          "UTF-8 (bytes b'caf\\xe9')") in message
  # The rename it proposes works in bash, and the folder then loads.
  command = message.split("in bash: ")[1].split(" (convmv")[0]
  assert command == f"mv $'{tmp_path}/caf\\xe9' '{tmp_path}/café'"
  subprocess.run(["bash", "-c", command], check=True)
  data = sources.image_folder(root=str(tmp_path), resolution=8)
  assert data.class_names == ["café", "tea"]


# Hidden files.


def test_macos_metadata_files_are_skipped_and_counted(tmp_path, log):
  for i in range(3):
    _png(tmp_path / "cat" / f"{i}.png")
    (tmp_path / "cat" / f"._{i}.png").write_bytes(APPLE_DOUBLE)
  (tmp_path / "cat" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
  (tmp_path / "cat" / "notes.txt").write_text("not an image")
  data = sources.image_folder(root=str(tmp_path), resolution=8)
  assert data.images.shape == (3, 8, 8, 3)
  assert "skipped 4 hidden files and folders" in log.text
  assert os.path.join("cat", ".DS_Store") in log.text
  assert "skipped 1 entries that are not images" in log.text


def test_folder_of_only_hidden_files_is_an_empty_class(tmp_path):
  _png(tmp_path / "cat" / "0.png")
  os.makedirs(tmp_path / "dog")
  (tmp_path / "dog" / "._0.png").write_bytes(APPLE_DOUBLE)
  with pytest.raises(UserInputError, match="dog holds no images.*hidden files "
                     "are skipped"):
    sources.image_folder(root=str(tmp_path), resolution=8)


# Bit depth.

RAMP16 = np.tile(np.round(np.linspace(0, 65535, 16)).astype(np.uint16),
                 (16, 1))
RAMP8 = np.round(np.linspace(0, 255, 16)).astype(np.uint8)


@pytest.mark.parametrize("channels", [1, 3])
def test_16_bit_greyscale_png_spans_0_to_255(tmp_path, channels):
  path = tmp_path / "c" / "ramp.png"
  os.makedirs(path.parent)
  Image.fromarray(RAMP16).save(path)
  assert Image.open(path).mode == "I;16"
  image = _load_one(str(path), resolution=16, channels=channels)
  assert image.min() == 0 and image.max() == 255
  for c in range(channels):
    np.testing.assert_array_equal(image[0, :, c], RAMP8)


def test_16_bit_values_in_32_bit_integer_tiff(tmp_path):
  path = tmp_path / "c" / "ramp.tif"
  os.makedirs(path.parent)
  Image.fromarray(RAMP16.astype(np.int32)).save(path)
  assert Image.open(path).mode == "I"
  image = _load_one(str(path), resolution=16, channels=1)
  np.testing.assert_array_equal(image[0, :, 0], RAMP8)


def test_float_tiff_in_0_1(tmp_path):
  path = tmp_path / "c" / "ramp.tif"
  os.makedirs(path.parent)
  Image.fromarray(RAMP16.astype(np.float32) / 65535).save(path)
  assert Image.open(path).mode == "F"
  image = _load_one(str(path), resolution=16, channels=3)
  np.testing.assert_array_equal(image[0, :, 1], RAMP8)


@pytest.mark.parametrize("values,match", [
    (np.full((8, 8), 70000, np.int32), r"integer values in \[70000, 70000\].*"
     "16-bit PNG"),
    (np.full((8, 8), 3.5, np.float32), r"floating-point values in \[3.5, "
     r"3.5\].*Scale it to \[0, 1\]"),
    (np.full((8, 8), np.nan, np.float32), "floating-point values"),
])
def test_out_of_range_high_depth_values_are_refused(tmp_path, values, match):
  path = tmp_path / "c" / "odd.tif"
  os.makedirs(path.parent)
  Image.fromarray(values).save(path)
  with pytest.raises(UserInputError, match="odd.tif has " + match):
    _load_one(str(path))


# Transparency.


def _cut_out(size=8):
  """An opaque red square in the middle of a fully transparent image."""
  rgba = np.zeros((size, size, 4), np.uint8)
  rgba[2:6, 2:6] = (255, 0, 0, 255)
  return rgba


def _transparent_folder(root):
  """One class with the same cut-out in five transparent forms and a JPEG."""
  folder = root / "c"
  os.makedirs(folder)
  rgba = _cut_out()
  Image.fromarray(rgba).save(folder / "rgba.png")
  grey = np.stack([rgba[..., 0] // 2, rgba[..., 3]], -1)
  Image.fromarray(grey, "LA").save(folder / "la.png")
  palette = Image.fromarray(rgba[..., :3]).quantize(2)
  transparent_index = palette.getpixel((0, 0))
  palette.save(folder / "palette.png", transparency=transparent_index)
  # Palette with a transparent index, as GIF too.
  palette.save(folder / "palette.gif", transparency=transparent_index)
  # An RGB PNG whose black is its transparent colour (tRNS chunk).
  Image.fromarray(rgba[..., :3]).save(folder / "trns.png",
                                      transparency=(0, 0, 0))
  flat = rgba[..., :3].copy()
  flat[rgba[..., 3] == 0] = 255
  Image.fromarray(flat).save(folder / "white.jpg", quality=95)
  return ["la.png", "palette.gif", "palette.png", "rgba.png", "trns.png",
          "white.jpg"]


def test_transparent_images_show_the_jpeg_white_background(tmp_path):
  files = _transparent_folder(tmp_path)
  assert Image.open(tmp_path / "c" / "palette.png").mode == "P"
  data = sources.image_folder(root=str(tmp_path), resolution=8)
  for name, image in zip(files, data.images):
    np.testing.assert_allclose(image[0, 0], [255, 255, 255], atol=2,
                               err_msg=name)
    centre = (127, 127, 127) if name == "la.png" else (255, 0, 0)
    np.testing.assert_allclose(image[4, 4], centre, atol=8, err_msg=name)


@pytest.mark.parametrize("background,rgb", [
    ("black", (0, 0, 0)), ("#0080ff", (0, 128, 255)),
    ((10, 20, 30), (10, 20, 30))])
def test_background_is_configurable(tmp_path, background, rgb):
  files = _transparent_folder(tmp_path)
  data = sources.image_folder(root=str(tmp_path), resolution=8,
                              background=background)
  for name, image in zip(files, data.images):
    if name != "white.jpg":
      assert tuple(image[0, 0]) == rgb, name


def test_background_gin_binding(tmp_path):
  _transparent_folder(tmp_path)
  gin.parse_config([f"image_folder.root = '{tmp_path}'",
                    "image_folder.background = 'black'"])
  data = sources.image_folder(resolution=8, channels=1)
  assert data.images[3, 0, 0, 0] == 0  # rgba.png


@pytest.mark.parametrize("background", ["whyte", (0, 0), (0, 0, 256),
                                        "#00000000", (0.5, 0.5, 0.5)])
def test_bad_background_is_refused(tmp_path, background):
  _png(tmp_path / "c" / "0.png")
  with pytest.raises(UserInputError, match=r"image_folder.background=.* is "
                     "not a colour: give a colour name such as 'white'"):
    sources.image_folder(root=str(tmp_path), resolution=8,
                         background=background)


# Orientation, colour modes and animation.


def test_exif_orientation_is_applied(tmp_path):
  # Stored 32 wide x 16 high, left red and right blue; orientation 6 shows it
  # turned a quarter clockwise: 16 wide x 32 high, red on top.
  stored = np.zeros((16, 32, 3), np.uint8)
  stored[:, :16] = (255, 0, 0)
  stored[:, 16:] = (0, 0, 255)
  exif = Image.Exif()
  exif[0x0112] = 6
  path = tmp_path / "c" / "photo.jpg"
  os.makedirs(path.parent)
  Image.fromarray(stored).save(path, exif=exif, quality=95)
  image = _load_one(str(path), resolution=16).astype(int)
  # The centre 16x16 square: red above blue.
  assert image[:6, :, 0].min() > 200 and image[:6, :, 2].max() < 60
  assert image[10:, :, 2].min() > 200 and image[10:, :, 0].max() < 60


def test_cmyk_jpeg(tmp_path):
  path = tmp_path / "c" / "print.jpg"
  os.makedirs(path.parent)
  Image.new("CMYK", (8, 8), (255, 0, 0, 0)).save(path, quality=95)
  assert Image.open(path).mode == "CMYK"
  np.testing.assert_allclose(_load_one(str(path))[4, 4], (0, 255, 255),
                             atol=3)


def test_one_bit_scan(tmp_path):
  path = tmp_path / "c" / "scan.png"
  os.makedirs(path.parent)
  checker = (np.indices((8, 8)).sum(0) % 2).astype(bool)
  Image.fromarray(checker).save(path)
  assert Image.open(path).mode == "1"
  image = _load_one(str(path), channels=1)
  np.testing.assert_array_equal(image[..., 0], checker * 255)


def test_animated_gif_loads_its_first_frame(tmp_path):
  path = tmp_path / "c" / "anim.gif"
  os.makedirs(path.parent)
  frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
  frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
  assert Image.open(path).n_frames == 2
  np.testing.assert_allclose(_load_one(str(path))[4, 4], (255, 0, 0), atol=3)


def _s15(value):
  return struct.pack(">i", int(round(value * 65536)))


def _icc_profile(space, tags):
  """A minimal ICC v2 display profile; `tags` maps signatures to tag data."""
  tags = dict(tags)
  text = b"test profile\x00"
  tags[b"desc"] = (b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text
                   + b"\0" * 4 + b"\0" * 4 + b"\0" * 3 + b"\0" * 67)
  tags[b"wtpt"] = b"XYZ \0\0\0\0" + _s15(0.9642) + _s15(1.0) + _s15(0.8249)
  table, body = b"", b""
  offset = 128 + 4 + 12 * len(tags)
  for signature, data in tags.items():
    data += b"\0" * (-len(data) % 4)
    table += signature + struct.pack(">II", offset + len(body), len(data))
    body += data
  size = offset + len(body)
  header = (struct.pack(">I", size) + b"\0" * 4 + b"\x02\x10\0\0" + b"mntr"
            + space + b"XYZ " + b"\0" * 12 + b"acsp" + b"\0" * 28
            + _s15(0.9642) + _s15(1.0) + _s15(0.8249) + b"\0" * 48)
  assert len(header) == 128
  return header + struct.pack(">I", len(tags)) + table + body


def _curve(gamma):
  return b"curv\0\0\0\0" + struct.pack(">IH", 1, int(gamma * 256))


def _xyz(x, y, z):
  return b"XYZ \0\0\0\0" + _s15(x) + _s15(y) + _s15(z)


def test_rgb_icc_profile_is_applied(tmp_path):
  # sRGB's primaries (D50) with red and green swapped: the file's pure red is
  # sRGB's pure green.
  profile = _icc_profile(b"RGB ", {
      b"rXYZ": _xyz(0.3851, 0.7169, 0.0971),
      b"gXYZ": _xyz(0.4361, 0.2225, 0.0139),
      b"bXYZ": _xyz(0.1431, 0.0606, 0.7141),
      b"rTRC": _curve(2.2), b"gTRC": _curve(2.2), b"bTRC": _curve(2.2)})
  path = tmp_path / "c" / "wide.png"
  os.makedirs(path.parent)
  Image.new("RGB", (8, 8), (255, 0, 0)).save(path, icc_profile=profile)
  np.testing.assert_allclose(_load_one(str(path))[4, 4], (0, 255, 0), atol=8)


def test_greyscale_icc_profile_is_applied(tmp_path):
  # A linear grey profile: the file's 128 is half the light, sRGB's 188.
  path = tmp_path / "c" / "linear.png"
  os.makedirs(path.parent)
  Image.new("L", (8, 8), 128).save(
      path, icc_profile=_icc_profile(b"GRAY", {b"kTRC": _curve(1.0)}))
  value = _load_one(str(path), channels=1)[4, 4, 0]
  assert 185 <= value <= 191


def test_greyscale_with_an_rgb_profile_keeps_its_values(tmp_path, log):
  # Scanners and editors tag greyscale files with an RGB profile, which does
  # not fit them: the values are read as they are.
  srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
  path = tmp_path / "c" / "scan.jpg"
  os.makedirs(path.parent)
  ramp = np.tile(RAMP8, (16, 1))
  Image.fromarray(ramp).save(path, icc_profile=srgb, quality=100)
  assert Image.open(path).info.get("icc_profile")
  image = _load_one(str(path), resolution=16, channels=1)
  np.testing.assert_allclose(image[8, :, 0], RAMP8, atol=3)
  assert "Ignored the colour profile of" in log.text


# Numeric folder names.


def _numbered_folder(root):
  """Folders 1..10; the pixels of folder k all have the value 20 * k."""
  for k in range(1, 11):
    _png(root / str(k) / "0.png", value=(20 * k,) * 3)
  return lambda split, resolution, channels: sources.image_folder(
      root=str(root), resolution=resolution, channels=channels, split=split)


def test_numeric_folder_id_that_a_name_could_mean_is_refused(tmp_path, log):
  source = _numbered_folder(tmp_path)
  with pytest.raises(UserInputError, match=(
      r"load_training_data.classes: 1 is ambiguous in the dataset: it could "
      r"mean the class with id 1 \('10'\) or the class named '1' \(id 0\)\. "
      r"Write 'id:0' for '1' or 'id:1' for '10'.*0='1', 1='10', 2='2'")):
    pipeline.load_training_data(8, 3, source=source, classes=[1])
  assert "10 classes (id=name: images): 0='1': 1, 1='10': 1, 2='2': 1" in (
      log.text)


@pytest.mark.parametrize("classes,folders", [
    (["1"], [1]), (["10", "2"], [10, 2]), (["id:1"], [10]),
    # No name spells 0, and no id is 10: each reads one way only.
    ([0], [1]), ([10], [10])])
def test_numeric_folder_names_select_what_was_meant(tmp_path, log, classes,
                                                    folders):
  source = _numbered_folder(tmp_path)
  images, _, selection = pipeline.load_training_data(8, 3, source=source,
                                                     classes=classes)
  assert selection.names == [str(k) for k in folders]
  assert [int(im[0, 0, 0]) // 20 for im in images] == folders
  assert "Selected classes (model id=name [dataset id]): 0=" in log.text


def test_recorded_selection_selects_again_by_id(tmp_path):
  # What the evaluator does with a run's classes.json: its ids are ids.
  source = _numbered_folder(tmp_path)
  _, _, trained = pipeline.load_training_data(8, 3, source=source,
                                              classes=["10"])
  recorded = json.loads(json.dumps(trained.to_json()))
  assert recorded == {"source_ids": [1], "names": ["10"], "label_offset": 0}
  again = pipeline.ClassSelection(**recorded)
  images, _, found = pipeline.load_training_data(
      8, 3, source=source, classes=list(again.source_ids))
  assert found.names == ["10"] and images[0, 0, 0, 0] == 200


def test_numeric_names_matching_their_ids_are_plain_ids(tmp_path):
  for k in range(3):
    _png(tmp_path / str(k) / "0.png")
  _, _, selection = pipeline.load_training_data(
      8, 3, source=lambda **kw: sources.image_folder(root=str(tmp_path), **kw),
      classes=[2, 0])
  assert selection.names == ["2", "0"]


def test_quoted_number_that_is_no_name_says_how_to_write_an_id(tmp_path):
  _png(tmp_path / "cat" / "0.png")
  _png(tmp_path / "dog" / "0.png")
  with pytest.raises(UserInputError, match="'1' is not in the dataset.*write "
                     "it as a number or as 'id:1'"):
    pipeline.load_training_data(
        8, 3, source=lambda **kw: sources.image_folder(root=str(tmp_path),
                                                       **kw), classes=["1"])


def test_sample_refuses_a_number_that_a_class_name_spells():
  # A transfer from the 10 Fashion-MNIST classes to folders 1..10.
  names = FASHION_NAMES + sorted(str(k) for k in range(1, 11))
  with pytest.raises(UserInputError, match=(
      r"--classes: 1 is ambiguous in the model: it could mean the class with "
      r"id 1 \('Trouser'\) or the class named '1' \(id 10\)\. Write 'id:1' "
      r"for 'Trouser' or 'id:10' for '1'")):
    sample.class_ids(["1"], names)
  assert sample.class_ids(["id:1", "id:10", "Trouser", "Bag"], names) == [
      1, 10, 1, 8]
  # Without numeric names, numbers are ids as before, and may repeat.
  assert sample.class_ids(["8", "9", "8"], FASHION_NAMES) == [8, 9, 8]
  with pytest.raises(UserInputError, match="'Cat' is not in the model"):
    sample.class_ids(["Cat"], FASHION_NAMES)


# A target class that the source already has.


def test_target_class_named_like_a_source_class_is_refused_before_training(
    tmp_path):
  train_lib.parse_config(
      [os.path.join(REPO, "gin_configs/fashion_mnist/cgantransfer.gin")],
      ["load_training_data.classes = ['Bag', 'Sandal']",
       "load_training_data.images_per_class = 2",
       # Kept short in case the check is missing.
       "train.num_steps = 0", "train.evaluator = None"])
  with pytest.raises(UserInputError, match=(
      r"load_training_data.classes selects 'Sandal', which the source model "
      r"already has \(model id 5\).*rename its sub-folder.*5='Sandal'")):
    train_lib.train(str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run" / "checkpoint")
  assert not os.path.exists(tmp_path / "run" / "classes.json")


def test_new_class_names_are_logged_with_the_source_ones(log):
  selection = pipeline.ClassSelection([8, 9], ["Bag", "Ankle boot"], 8)
  pipeline.check_new_class_names(FASHION_NAMES[:8], selection)
  assert "Model classes (id=name): 0='T-shirt/top'" in log.text
  assert "8='Bag', 9='Ankle boot'." in log.text


def test_sample_refuses_a_name_two_classes_share():
  # A model trained before the check: Sandal at ids 5 and 9.
  names = FASHION_NAMES[:8] + ["Bag", "Sandal"]
  with pytest.raises(UserInputError, match="the model has 2 classes named "
                     "'Sandal' .ids 5, 9.. Select one by id: id:5 or id:9"):
    sample.class_ids(["Sandal"], names)
  assert sample.class_ids(["id:9"], names) == [9]
