"""tfgt from Python: load, draw, train, evaluate, export, import.

    import tfgt
    generator = tfgt.load("pretrained:fashion_mnist_biggan")
    images = generator.draw(["Sandal", "Sneaker"], per_class=8)  # uint8
    tfgt.save_png(tfgt.grid(images, columns=8), "shoes.png")

Everything here is built on the command lines' own functions, so that the same
inputs give the same results:

  load, Generator.draw, .interpolate   `python -m tfgt.sample` (its latents,
                                        truncation, batches of 32 and compiled
                                        draws: the same images, bit for bit)
  grid, save_png                        the PNG tfgt.sample writes
  train                                 `python -m tfgt.train`
                                        (`tfgt.train.train`: resume, progress,
                                        run folder, errors)
  evaluate                              `python -m tfgt.evaluate`
                                        (`tfgt.evaluate.run`)
  export                                `python -m tfgt.export`
                                        (`tfgt.export.export`)
  import_source                         `python -m tfgt.import_source`
                                        (`tfgt.import_source.run`)
  Run.score_heatmaps                    tools.plot_similarity's scores.png
                                        (`tfgt.similarity`)

Bad input raises `tfgt.errors.UserInputError` with the command line's message
(where a command names a flag, e.g. --truncation, read the argument of the
same name); nothing is printed and nothing exits. docs/API.md lists the
stable names.

The package exposes these names at its top (`tfgt.load`, ...). There,
`tfgt.train`, `tfgt.evaluate`, `tfgt.export` and `tfgt.import_source` are the
command lines' modules, made callable: calling one calls the function of the
same name here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import numbers
import os
from typing import Any, Iterator, Sequence, Union

from absl import logging
import numpy as np
import tensorflow as tf

from tfgt import checkpoints
from tfgt import cli
from tfgt import errors
from tfgt import export as export_lib
from tfgt import images as images_lib
from tfgt import precision as precision_lib
from tfgt import run_events
from tfgt import run_folder
from tfgt import sample as sample_lib
from tfgt.data import class_lookup
from tfgt.data import pipeline
from tfgt.errors import UserInputError
from tfgt.models import bundle

__all__ = ["load", "Generator", "Run", "Evaluation", "train", "evaluate",
           "export", "import_source", "grid", "save_png", "UserInputError"]

PathLike = Union[str, "os.PathLike[str]"]
# One class: a model id (int) or a class name / "id:N" (str).
ClassLike = Union[int, str]

_INT64 = 2 ** 63


# ---------------------------------------------------------------- checks
def _model_path(value: Any, name: str = "path") -> str:
  """A run folder, bundle folder or "pretrained:NAME" as a str."""
  if isinstance(value, os.PathLike):
    value = os.fspath(value)
  if not isinstance(value, str) or not value:
    raise UserInputError(
        f"{name}={value!r}: give a training run's model_dir, its 'model' "
        "sub-folder or pretrained:NAME.")
  return value


def _folder_path(value: Any, name: str) -> str:
  """A path to write (a folder or file) as a str."""
  if isinstance(value, os.PathLike):
    value = os.fspath(value)
  if not isinstance(value, str) or not value:
    raise UserInputError(f"{name}={value!r}: give a path.")
  return value


def _whole(value: Any, name: str, minimum: int | None = None,
           fix: str = "") -> int:
  """`value` as an int (not a bool, not a float) >= `minimum`.

  Raises:
    UserInputError: naming the argument, with `fix` for a value too small.
  """
  if isinstance(value, bool) or not isinstance(value, numbers.Integral):
    raise UserInputError(f"{name}={value!r}: give a whole number.")
  value = int(value)
  if minimum is not None and value < minimum:
    raise UserInputError(f"{name}={value}: {fix or f'give {minimum} or more'}.")
  return value


def _seed(value: Any, what: str = "the seed of the latents, as "
          "tfgt.sample's --seed") -> int:
  """A seed: a whole number in int64's range."""
  if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
      or not -_INT64 <= int(value) < _INT64):
    raise UserInputError(
        f"seed={value!r}: give a whole number from -2**63 to 2**63 - 1 "
        f"({what}).")
  return int(value)


def _truncations(value: Any) -> list[float] | None:
  """None, a number or numbers > 0 as `sample.parse_truncations` reads
  them (its message on a bad value)."""
  if value is None:
    return None
  if isinstance(value, (numbers.Real, str)):
    values = [value]
  else:
    try:
      values = list(value)
    except TypeError:
      values = [value]
    if not values:
      raise UserInputError(
          f"truncation={value!r}: give a number > 0, several, or None for no "
          "truncation.")
  # parse_truncations reads numbers and strings; anything else is named as
  # text, which it refuses with its message.
  return sample_lib.parse_truncations([
      v if isinstance(v, numbers.Real) and not isinstance(v, bool) else str(v)
      for v in values])


def _strings(value: Any, name: str, example: str) -> list[str]:
  """A str or a sequence of str as a list."""
  if isinstance(value, (str, os.PathLike)):
    value = [value]
  try:
    items = [os.fspath(v) if isinstance(v, os.PathLike) else v
             for v in value]
  except TypeError:
    items = None
  if items is None or not all(isinstance(v, str) for v in items):
    raise UserInputError(f"{name}={value!r}: give a string or a list of "
                         f"strings, e.g. {example}.")
  return items


def _command_errors(function):
  """`function` raising the command lines' one-line UserInputError messages:
  without the "In call to configurable ..." lines that gin adds on the way
  out of a configured function (`errors.message`, as `tfgt.cli` prints)."""
  @functools.wraps(function)
  def wrapper(*args, **kwargs):
    try:
      return function(*args, **kwargs)
    except UserInputError as e:
      text = errors.message(e)
      if text == str(e):
        raise
      try:
        clean = type(e)(text)
      except TypeError:
        clean = UserInputError(text)
      raise clean.with_traceback(e.__traceback__) from None
  return wrapper


@contextlib.contextmanager
def _command_logging(verbose: bool) -> Iterator[None]:
  """What a command line shows on the terminal, during the block: absl's
  INFO lines (the trainer's progress) when `verbose`, TensorFlow's own
  warnings and above only (as tfgt.train's main sets); both levels are put
  back afterwards."""
  absl_level = logging.get_verbosity()
  tf_logger = tf.get_logger()
  tf_level = tf_logger.level
  if verbose:
    logging.set_verbosity(logging.INFO)
    cli.hide_tensorflow_info()
  tf_logger.setLevel("WARNING")
  try:
    yield
  finally:
    logging.set_verbosity(absl_level)
    tf_logger.setLevel(tf_level)


# ------------------------------------------------------------ generator
def _in_batches(draw, inputs: tf.Tensor) -> np.ndarray:
  """`draw` on `inputs`, `sample.BATCH_SIZE` rows at a time, as one float32
  array: `sample._in_batches` before its conversion to uint8 (an
  elementwise op, applied to the whole array by `_output`)."""
  size = sample_lib.BATCH_SIZE
  return np.concatenate([draw(inputs[i:i + size]).numpy()
                         for i in range(0, int(inputs.shape[0]), size)])


def _check_as_uint8(as_uint8: Any) -> bool:
  """`as_uint8` if it is True or False (checked before anything is drawn).

  Raises:
    UserInputError: any other value.
  """
  if not isinstance(as_uint8, (bool, np.bool_)):
    raise UserInputError(f"as_uint8={as_uint8!r}: give True (uint8 in "
                         "[0, 255]) or False (float32 in [-1, 1]).")
  return bool(as_uint8)


def _output(images: np.ndarray, as_uint8: bool) -> np.ndarray:
  """float32 images in [-1, 1] as returned: uint8 as tfgt.sample converts
  them (`pipeline.to_uint8`), or float32 as drawn.

  Raises:
    UserInputError: `as_uint8` is not True or False.
  """
  if _check_as_uint8(as_uint8):
    return pipeline.to_uint8(tf.constant(images)).numpy()
  return images.astype(np.float32, copy=False)


def _latents(count: int, dim_z: int, seed: int) -> tf.Tensor:
  """tfgt.sample's latents: `count` rows of N(0, 1) from `seed`. Row k does
  not depend on `count` (a stateless Philox stream)."""
  return tf.random.stateless_normal([count, dim_z], seed=[seed, 0])


class Generator:
  """A trained generator, as `tfgt.load` returns it.

  Attributes:
    class_names: list[str], the name of each class, id i at position i.
    num_classes: int, len(class_names).
    resolution: int, the images' height and width R.
    channels: int, the images' channels C (1 grey, 3 RGB).
    architecture: str, the registry name ("biggan", "stylegan", ...).
    dim_z: int, the width of the latents.
    method: str | None, the method that trained it (model.json's "method").
    path: str, the path it was loaded from, as given.
    checkpoint: str, the checkpoint prefix read (`<bundle>/ckpt-<step>`).
    step: int, that checkpoint's training step.
    precision: str, the precision its layers compute in (float32,
      mixed_bfloat16, mixed_float16; `tfgt.precision`).
    model: the Keras generator (`tfgt.models.architectures.Generator`):
      (z [B, dim_z], labels int32 [B] or class weights [B, N]) -> float32
      images [B, R, R, C] in [-1, 1]; `model((z, y), training=False)`.
  """

  def __init__(self, model, spec: dict, path: str, prefix: str):
    """Use `tfgt.load`; this wraps an already restored generator."""
    self.model = model
    self.class_names = list(spec["class_names"])
    self.method = spec.get("method")
    self.path = path
    self.checkpoint = prefix
    self.step = checkpoints.step_of(prefix)
    # Compiled draws, one per batch layout: the traces tfgt.sample makes in
    # one command, which give its exact float32 values.
    self._functions = {}

  num_classes = property(lambda self: int(self.model.num_classes),
                         doc="int: the number of classes.")
  resolution = property(lambda self: int(self.model.resolution),
                        doc="int: the images' height and width.")
  channels = property(lambda self: int(self.model.channels),
                      doc="int: the images' channels (1 grey, 3 RGB).")
  dim_z = property(lambda self: int(self.model.dim_z),
                   doc="int: the width of the latents z.")
  architecture = property(lambda self: str(self.model.architecture),
                          doc="str: the architecture's registry name.")
  precision = property(
      lambda self: str(self.model.dtype_policy.name),
      doc="str: the precision its layers compute in (`tfgt.load`'s "
      "precision): float32, mixed_bfloat16 or mixed_float16.")

  @property
  def directory(self) -> str:
    """The bundle folder that holds `checkpoint` (`<run>/model` or
    `<run>/model/best`)."""
    return os.path.dirname(self.checkpoint)

  def _from_best(self) -> bool:
    """Whether only the run's best bundle (`model/best`) holds this step. A
    step that `model/` holds too has the same weights there (the trainer
    saves both from the same generator)."""
    return os.path.basename(self.directory) == bundle.BEST_BUNDLE and (
        not os.path.exists(checkpoints.prefix(
            os.path.dirname(self.directory), self.step) + ".index"))

  def __repr__(self) -> str:
    return (f"<tfgt.Generator {self.architecture} {self.resolution}x"
            f"{self.resolution}x{self.channels}, {self.num_classes} classes, "
            f"step {self.step} of {self.path!r}>")

  def class_ids(self, classes: ClassLike | Sequence[ClassLike] | None,
                name: str = "classes") -> list[int]:
    """Model ids of classes given by id (int) or name (str, or "id:N").

    Args:
      classes: one class or a sequence of them (repeats allowed); None:
        every class, in id order.
      name: the argument's name, for messages.

    Returns:
      list[int], in the order given.

    Raises:
      UserInputError: an empty sequence, an unknown class, a name that
        several classes share, or an int that is also another class's name
        (classes "1" ... "10": write "id:N"); the message lists the classes.
    """
    if classes is None:
      return list(range(self.num_classes))
    if isinstance(classes, (str, numbers.Integral)):
      classes = [classes]
    try:
      values = list(classes)
    except TypeError:
      values = [classes]
    if not values:
      raise UserInputError(
          f"{name}={classes!r}: give one or more classes of the model, by "
          "name or id, or None for all. Its classes (id=name) are: "
          f"{class_lookup.class_table(self.class_names)}.")
    return class_lookup.resolve_classes(values, self.class_names,
                                        setting=name, where="the model",
                                        unique=False)

  def _compiled(self, key):
    """The compiled (z, y) -> images of one batch layout `key` (what
    tfgt.sample compiles for one command: the same traces, so the same
    float32 values)."""
    function = self._functions.get(key)
    if function is None:
      model = self.model
      function = tf.function(lambda z, y: model((z, y), training=False),
                             reduce_retracing=True)
      self._functions[key] = function
    return function

  def draw(self, classes: ClassLike | Sequence[ClassLike] | None = None,
           per_class: int = 8, seed: int = 0,
           truncation: float | Sequence[float] | None = None,
           as_uint8: bool = True) -> np.ndarray:
    """Images of classes: the cells of `python -m tfgt.sample`'s grid.

    `draw(classes, per_class, seed, truncation)` gives the images of
    `python -m tfgt.sample --model_dir=PATH --checkpoint=... --classes=...
    --per_class=N --seed=S --truncation=...`, bit for bit, row after row:
    `tfgt.grid(images, columns=per_class)` is its picture. Image k of every
    row has latent k of `seed` (N(0, 1), the same in every row and in any
    call with more per_class).

    Args:
      classes: one class or a sequence (ids as int, names as str, or
        "id:N"; a class may repeat); None: every class.
      per_class: images per class and truncation value (columns), >= 1.
      seed: the seed of the latents, a whole number in int64's range.
      truncation: None (no truncation), a number > 0 or a sequence of them
        (one row per class and value, classes first). BigGAN: a threshold t
        on every component of z (clipped to [-t, t]); StyleGAN: psi in w
        (1 = none, towards 0 = the average image).
      as_uint8: uint8 images in [0, 255] (as tfgt.sample saves them); False:
        float32 in [-1, 1], as the generator draws them.

    Returns:
      np.ndarray [rows * per_class, R, R, C], uint8 (or float32), rows =
      len(classes) x len(truncation values), image i in row i // per_class.

    Raises:
      UserInputError: a bad class (see `class_ids`), per_class < 1, a seed
        that is not a whole number in int64's range, a truncation that is
        not a number > 0, an as_uint8 that is not True or False.
    """
    _check_as_uint8(as_uint8)
    ids = self.class_ids(classes)
    per_class = _whole(per_class, "per_class", 1, "draw at least 1")
    seed = _seed(seed)
    truncations = _truncations(truncation)
    generator = self.model
    # tfgt.sample.draw_grid's draws, as floats.
    z = _latents(per_class, generator.dim_z, seed)
    rows = sample_lib.draw_rows(
        generator, ids, z, truncations,
        draw=None if truncations else self._compiled(("labels", per_class)),
        in_batches=_in_batches)
    return _output(np.concatenate(rows), as_uint8)

  def interpolate(self, class_a: ClassLike, class_b: ClassLike,
                  steps: int = 8, rows: int = 4, seed: int = 0,
                  as_uint8: bool = True) -> np.ndarray:
    """Images from class A to class B through the class weights.

    `interpolate(A, B, steps, rows, seed)` gives the images of
    `python -m tfgt.sample --model_dir=PATH --interpolate="A,B"
    --per_class=STEPS --rows=ROWS --seed=S`, bit for bit:
    `tfgt.grid(images, columns=steps)` is its picture. Row r has latent r of
    `seed`; column j the class weights (1 - a) A + a B, a = j / (steps - 1):
    the first column is class A's image, the last class B's. How classes mix
    is the generator's own (BigGAN: class embeddings and BN rows; a
    hyper-modulated StyleGAN: its class space V).

    Args:
      class_a: the first class (id, name or "id:N").
      class_b: the last class, another one.
      steps: columns, >= 2.
      rows: latents, one per row, >= 1.
      seed: the seed of the latents (see `draw`).
      as_uint8: uint8 in [0, 255]; False: float32 in [-1, 1].

    Returns:
      np.ndarray [rows * steps, R, R, C], uint8 (or float32), image i in
      row i // steps.

    Raises:
      UserInputError: an unknown class, the same class twice, steps < 2,
        rows < 1, a bad seed or an as_uint8 that is not True or False.
    """
    _check_as_uint8(as_uint8)
    first = self.class_ids([class_a], "class_a")[0]
    last = self.class_ids([class_b], "class_b")[0]
    if first == last:
      raise UserInputError(
          f"class_a={class_a!r} and class_b={class_b!r} name class "
          f"{self.class_names[first]!r} twice: give two different classes.")
    steps = _whole(steps, "steps", 2, "an interpolation needs at least 2 "
                   "columns")
    rows = _whole(rows, "rows", 1, "an interpolation needs at least 1 row")
    seed = _seed(seed)
    generator = self.model
    # tfgt.sample.draw_interpolation's draws, step by step.
    z = _latents(rows, generator.dim_z, seed)
    ends = tf.one_hot([first, last], generator.num_classes)
    a = tf.linspace(0.0, 1.0, steps)[:, None]
    weights = (1.0 - a) * ends[0] + a * ends[1]  # [steps, N]
    draw = self._compiled(("weights", steps))
    images = [_in_batches(lambda w, r=r: draw(
        tf.repeat(z[r:r + 1], tf.shape(w)[0], axis=0), w), weights)
              for r in range(rows)]
    return _output(np.concatenate(images), as_uint8)


def _is_export(directory: str) -> bool:
  """Whether a folder without model.json is a TF Serving export: a version
  folder (saved_model.pb) or the base path of versions."""
  if (not os.path.isdir(directory) or
      os.path.exists(os.path.join(directory, bundle.SPEC_FILE))):
    return False
  return os.path.isfile(os.path.join(directory, "saved_model.pb")) or any(
      os.path.isfile(os.path.join(directory, d, "saved_model.pb"))
      for d in os.listdir(directory) if d.isdigit())


def _shipped_models() -> list[str]:
  """The NAMEs of the generators shipped in the package, loadable as
  "pretrained:NAME" (sorted)."""
  root = bundle.PRETRAINED_DIR
  return sorted(name for name in os.listdir(root) if os.path.isfile(
      os.path.join(root, name, bundle.SPEC_FILE)))


@_command_errors
def load(path: PathLike | "Run", checkpoint: str | int = "latest",
         precision: str = "float32") -> Generator:
  """Loads the generator of a run, a bundle or a shipped model.

  Args:
    path: a training run's folder (its `model/` bundle is read), a bundle
      folder (with model.json, e.g. `<run>/model`, an import's --out),
      "pretrained:NAME" (a model shipped in the package:
      fashion_mnist_biggan, fashion_mnist_stylegan), or a `Run`.
    checkpoint: "latest", "best" (the run's best evaluation, `model/best`)
      or a step number (int, or a str of digits).
    precision: "float32", "mixed_bfloat16" or "mixed_float16": the dtype
      the generator's layers compute in (`tfgt.precision`, docs/TRAINING.md);
      "auto": mixed_bfloat16 where the hardware has native bfloat16, else
      float32 (`tfgt.precision.resolve`; `Generator.precision` says which).
      The weights are float32 and images come out as in float32.

  Returns:
    A `Generator`.

  Raises:
    UserInputError: a path that is no model (no model.json; a TF Serving
      export is named as such), a checkpoint that is not "latest", "best" or
      a step, no such checkpoint (the message lists the steps there), an
      invalid model.json, or a truncated or corrupt checkpoint file; the
      messages of `python -m tfgt.sample`.
  """
  if isinstance(path, Run):
    path = path.model_dir
  path = _model_path(path)
  choice = bundle.parse_checkpoint(checkpoint, "checkpoint")
  directory = bundle.resolve_directory(path)
  if (path.startswith(bundle.PRETRAINED_PREFIX) and
      not os.path.isdir(directory)):
    raise UserInputError(
        f"{path} is not a model shipped with tfgt; the shipped ones are " +
        ", ".join(bundle.PRETRAINED_PREFIX + name
                  for name in _shipped_models()) + ".")
  if _is_export(directory):
    raise UserInputError(
        f"{path} is a TF Serving export (saved_model.pb), which serves "
        "images but is not a tfgt model: load the run folder or bundle it "
        "was exported from (its assets.extra/tfgt_model.json names it), or "
        "serve it (docs/SERVING.md).")
  # bundle.load's steps, keeping the checkpoint's prefix.
  spec = bundle.read_spec(directory)
  prefix = bundle.checkpoint_path(directory, choice)
  model, _ = bundle.restore(spec, prefix,
                            spec_file=os.path.join(directory,
                                                   bundle.SPEC_FILE),
                            precision=precision_lib.choose(precision))
  return Generator(model, spec, path, prefix)


def grid(images: np.ndarray, columns: int | None = None) -> np.ndarray:
  """Tiles images into one picture, as tfgt.sample's PNG.

  Args:
    images: [N, H, W, C] (cells in rows of `columns`) or [rows, columns, H,
      W, C]; uint8, or float in [-1, 1] (converted as `draw` converts).
    columns: images per row for [N, H, W, C] (N must be a multiple); None:
      one row.

  Returns:
    np.ndarray uint8 [rows * (H + 1) + 1, columns * (W + 1) + 1, C]: the
    cells on a white background with 1-pixel borders.

  Raises:
    UserInputError: another shape, N not a multiple of columns, or another
      dtype.
  """
  array = np.asarray(images)
  if array.ndim == 4:
    columns = (array.shape[0] if columns is None else
               _whole(columns, "columns", 1, "give 1 or more"))
    if array.shape[0] == 0 or array.shape[0] % columns:
      raise UserInputError(
          f"grid: {array.shape[0]} images do not fill rows of "
          f"columns={columns}: give a number of images that is a multiple.")
    array = array.reshape((-1, columns) + array.shape[1:])
  elif array.ndim != 5 or 0 in array.shape[:2]:
    raise UserInputError(
        f"grid: images of shape {list(array.shape)}: give [N, H, W, C] with "
        "columns=, or [rows, columns, H, W, C].")
  if np.issubdtype(array.dtype, np.floating):
    array = _output(array.astype(np.float32), as_uint8=True)
  elif array.dtype != np.uint8:
    raise UserInputError(f"grid: images of dtype {array.dtype}: give uint8 "
                         "in [0, 255] or float in [-1, 1].")
  return images_lib.grid(array)


def save_png(image: np.ndarray, path: PathLike) -> str:
  """Writes a picture as a PNG file, as tfgt.sample writes --out.

  Args:
    image: uint8 [H, W, C] with C = 1 (grey), 3 (RGB) or 4 (RGBA), or
      [H, W] (grey).
    path: the file; missing folders are created; written atomically (an
      interrupted write leaves the old file).

  Returns:
    `path` as a str.

  Raises:
    UserInputError: another shape or dtype, or a path that cannot be
      written (tfgt.sample's message).
  """
  path = _folder_path(path, "path")
  array = np.asarray(image)
  if array.ndim == 2:
    array = array[..., None]
  if array.dtype != np.uint8 or array.ndim != 3 or array.shape[-1] not in (
      1, 3, 4):
    raise UserInputError(
        f"save_png: an image of shape {list(array.shape)} and dtype "
        f"{array.dtype}: give uint8 [H, W, C] with C = 1, 3 or 4 (tfgt.grid "
        "makes one of images).")
  try:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    images_lib.save_png(array, path)
  except OSError as e:
    raise UserInputError(f"Cannot write --out={path} ({e.strerror or e}): "
                         "give a PNG path in a folder you may write to."
                         ) from e
  return path


# ------------------------------------------------------------------ runs
class Run:
  """A training run's folder (the --model_dir of tfgt.train).

  `tfgt.train` returns one; `tfgt.Run(model_dir)` opens an existing run.
  It reads the files the trainer writes (tfgt.run_folder) at each call, so
  it sees a live run's progress.

  Attributes:
    model_dir: str, the folder.
  """

  def __init__(self, model_dir: PathLike):
    """Raises UserInputError: `model_dir` is not a folder."""
    model_dir = _folder_path(model_dir, "model_dir")
    if not os.path.isdir(model_dir):
      what = ("is a file, not a folder" if os.path.exists(model_dir)
              else "does not exist")
      raise UserInputError(f"{model_dir} {what}: give the --model_dir of a "
                           "training run.")
    self.model_dir = model_dir

  def __repr__(self) -> str:
    return f"<tfgt.Run {self.model_dir!r}>"

  def generator(self, checkpoint: str | int = "latest") -> Generator:
    """`tfgt.load(model_dir, checkpoint)`: "latest", "best" or a step."""
    return load(self.model_dir, checkpoint)

  def steps(self) -> list[int]:
    """The steps whose model `generator(step)` can load, ascending (the
    checkpoints of `model/`; "best" may name one no longer there)."""
    return checkpoints.steps_on_disk(
        os.path.join(self.model_dir, run_folder.BUNDLE))

  def best(self) -> dict[str, Any] | None:
    """The run's best evaluation, from its best.json.

    Returns:
      {"step": int, metric: float or None (non-finite), ...}: the scores of
      the step whose model is in `model/best` (`generator("best")`); None
      before a first evaluation with a finite best metric, or for a run
      without an evaluator.

    Raises:
      UserInputError: best.json is not valid JSON (the trainer's message).
    """
    best = run_folder.RunFolder(self.model_dir).read(run_folder.BEST)
    return dict(best) if isinstance(best, dict) else None

  def scores(self) -> dict[int, dict[str, float]]:
    """Every evaluation the trainer logged, by step.

    Read from the run's TensorBoard events (`train/`, tags `eval/<metric>`),
    every session of a resumed run; a step evaluated in two sessions keeps
    the later values. A torn last record (a live run) ends that file's
    reading.

    Returns:
      {step: {metric: float}}, steps ascending; {} without evaluations.
      KID and mKID as computed (not x100).
    """
    return run_events.scores(self.model_dir)

  def score_heatmaps(self, checkpoint: str | int = "latest") -> np.ndarray:
    """The similarity scores a cGANTransfer run learned, as heatmaps.

    The picture that `python -m tools.plot_similarity --model_dir=...
    --checkpoint=...` writes as scores.png, pixel for pixel
    (`tfgt.similarity.score_heatmaps`): one row per conditional BN layer,
    gain and shift scores side by side, each a table of new classes (rows)
    x old classes (columns) with its values written in. The scores are read
    from the run's training checkpoint (`ckpt-<step>`: the EMA generator);
    the bundles of `model/` no longer hold them. The caller's gin config is
    put back afterwards.

    Args:
      checkpoint: "latest" (the newest training checkpoint) or the step of
        one (an int, or a str of digits).

    Returns:
      np.ndarray uint8 [H, W, 3], RGB (about 1400 x 800 pixels for 8 old
      classes, 2 new and 6 layers): show it (matplotlib's imshow) or write
      it with `save_png`.

    Raises:
      UserInputError: the run is not a cGANTransfer run (another method,
        or not a training run: config.gin or model/model.json missing), a
        checkpoint that is not "latest" or a step, no such training
        checkpoint (the steps there are listed), an unreadable one, or a
        source that cannot be read.
    """
    from tfgt import similarity  # pylint: disable=g-import-not-at-top
    generator, class_names = similarity.load_run(self.model_dir, checkpoint)
    return similarity.score_heatmaps(generator, class_names)


@_command_errors
def train(gin_files: PathLike | Sequence[PathLike],
          bindings: str | Sequence[str] = (), *, model_dir: PathLike,
          seed: int | None = None,
          strategy: tf.distribute.Strategy | None = None,
          verbose: bool = True) -> Run:
  """Trains a config into a run folder, as `python -m tfgt.train`.

  The same function as the command's (`tfgt.train.train`), on a gin config of
  its own: the gin files, then the bindings (as --gin_file, --gin_param).
  The caller's gin config is put back afterwards. A folder with a checkpoint
  resumes from it, with the command's checks (same classes, models and
  course; one trainer per folder); a run that has reached train.num_steps
  only writes what was missing. Ctrl-C (KeyboardInterrupt) saves a
  checkpoint, then propagates. Call it from the main thread (the trainer
  saves on SIGTERM).

  Args:
    gin_files: one or more gin files, in order.
    bindings: gin bindings applied last, e.g. "train.num_steps = 300".
    model_dir: the run folder (tfgt.run_folder lists its files).
    seed: overrides train.seed (as --seed).
    strategy: a tf.distribute strategy; None: the config's make_strategy
      (default "auto", as the command).
    verbose: log the command's progress lines (step, rate, ETA, losses;
      absl INFO) during the call.

  Returns:
    The `Run` of `model_dir`.

  Raises:
    UserInputError: the command's errors, raised instead of printed (exit
      code 2): a missing gin file or a mistake in a binding (one line naming
      it and the fix), data or settings that cannot be used, a folder that
      holds another run or whose checkpoints cannot be read, a second trainer
      on the folder, a full disk, a loss or weights that become NaN or
      infinite (the last checkpoint is kept).
    tfgt.train.Interrupted: SIGTERM arrived (a checkpoint was saved).
    tfgt.train.WorkerLost: a worker of a multi-worker run stopped.
  """
  from tfgt import config as config_lib  # pylint: disable=g-import-not-at-top
  from tfgt import distribute  # pylint: disable=g-import-not-at-top
  from tfgt import train as train_lib  # pylint: disable=g-import-not-at-top
  gin_files = _strings(gin_files, "gin_files",
                       "'gin_configs/fashion_mnist/cgantransfer.gin'")
  if not gin_files:
    raise UserInputError("gin_files=[]: at least one gin file is required, "
                         "e.g. 'gin_configs/fashion_mnist/cgantransfer.gin'.")
  params = _strings(bindings, "bindings", "['train.num_steps = 300']")
  model_dir = _folder_path(model_dir, "model_dir")
  if seed is not None:
    params.append(f"train.seed = {_seed(seed, 'train.seed, as --seed')}")
  if strategy is not None and not isinstance(strategy,
                                             tf.distribute.Strategy):
    raise UserInputError(f"strategy={strategy!r}: give a "
                         "tf.distribute.Strategy, or None for the config's.")
  with config_lib.isolated(), _command_logging(verbose):
    train_lib.parse_config(gin_files, params)
    # As the command: the strategy before any TensorFlow op of the run.
    strategy = strategy or distribute.make_strategy()
    train_lib.train(model_dir, strategy=strategy)
  return Run(model_dir)


# ------------------------------------------------------------ evaluation
@dataclasses.dataclass(frozen=True)
class Evaluation:
  """The scores of `tfgt.evaluate`: what `python -m tfgt.evaluate` prints
  and writes.

  Attributes:
    metrics: {name: float}, e.g. "fid", "kid" (not x100), "mfid", ...
    per_class: {class name: {"model_id", "real", "generated", "fid",
      "kid", ...}} when a per-class metric was asked for.
    settings: how they were computed (samples, extractor, checkpoint, ...).
    path: the JSON file written (the command's output).
  """
  metrics: dict[str, float]
  per_class: dict[str, dict[str, float]]
  settings: dict[str, Any]
  path: str

  def table(self) -> str:
    """The command's table (KID and mKID x100)."""
    from tfgt import evaluate as evaluate_lib  # pylint: disable=g-import-not-at-top
    return evaluate_lib.format_table(self)


def _source(model: Any, checkpoint: str | int | None, default: str
            ) -> tuple[str, str | int, Generator | None]:
  """(path, checkpoint) of a path, Run or Generator for the commands that
  read a model from disk; a Generator's own checkpoint."""
  if isinstance(model, Generator):
    if checkpoint is not None:
      raise UserInputError(
          f"checkpoint={checkpoint!r} with a Generator: it is used at its own "
          f"checkpoint (step {model.step}); to choose another, give its path "
          f"({model.path!r}) or load that checkpoint.")
    from_best = model._from_best()  # pylint: disable=protected-access
    return model.path, ("best" if from_best else model.step), model
  if isinstance(model, Run):
    model = model.model_dir
  return (_model_path(model, "model"),
          default if checkpoint is None else checkpoint, None)


def _precision(precision: str | None, generator: Generator | None) -> str:
  """The precision a command builds its generator in: `precision`, else a
  given Generator's own, else float32."""
  if precision is not None:
    return str(precision)
  return generator.precision if generator is not None else "float32"


@_command_errors
def evaluate(model: PathLike | Generator | Run,
             checkpoint: str | int | None = None, *,
             metrics: str | Sequence[str] | None = None,
             num_samples: int | None = None, batch_size: int | None = None,
             seed: int | None = None, cache_dir: PathLike | None = None,
             gin_files: Sequence[PathLike] = (),
             bindings: Sequence[str] = (),
             output: PathLike | None = None,
             precision: str | None = None,
             features: PathLike | None = None) -> Evaluation:
  """Scores a generator, as `python -m tfgt.evaluate` (`tfgt.evaluate.run`).

  A run is scored on the data of its config.gin and classes.json; a bare
  bundle ("pretrained:NAME", an import) on the data that `gin_files` /
  `bindings` name. The numbers are the command's for the same arguments, and
  are written where it writes them (or to `output`).

  Args:
    model: a run folder, bundle or "pretrained:NAME", a `Run`, or a
      `Generator` (scored from the files it was loaded from, at its step; a
      best checkpoint at the run's best).
    checkpoint: "auto" (default: best if the run kept one, else latest),
      "best", "latest" or a step; not with a Generator.
    metrics: "fid,kid" or ["fid", "kid"] (the registered metrics, as
      --metrics); None: the config's Evaluator.metrics, else the default
      set.
    num_samples: generated images in total (default: as many as the real
      images of the classes).
    batch_size: images per forward pass.
    seed: seed of the latents.
    cache_dir: cache of real features (default $TFGT_CACHE_DIR or
      ~/.cache/tfgt/features).
    gin_files: gin files parsed after the run's config.gin.
    bindings: gin bindings parsed last.
    output: the JSON file to write (default: beside the checkpoint,
      `<checkpoint>.eval.json`; `NAME-<checkpoint>.eval.json` in the working
      directory for "pretrained:NAME").
    precision: the precision the generator draws in (float32,
      mixed_bfloat16, mixed_float16, or auto: `tfgt.precision.resolve`);
      default: a Generator's own, else float32. The scores are computed in
      float32 whatever it is; the result records the precision used.
    features: the feature extractor, as --features: "classifier",
      "inception" or the path of a .keras file or SavedModel folder
      (`tfgt.eval.features.LocalModel`); None: the config's
      Evaluator.extractor.

  Returns:
    An `Evaluation`.

  Raises:
    UserInputError: the command's errors: no such run, bundle or
      checkpoint, a bundle without config.gin and no data given, a mistake
      in the gin files or bindings, an unknown metric, data that do not fit
      the model, too few real images for a metric, an output that cannot be
      written; a checkpoint given with a Generator.
  """
  from tfgt import evaluate as evaluate_lib  # pylint: disable=g-import-not-at-top
  path, checkpoint, generator = _source(model, checkpoint, "auto")
  if metrics is not None and not isinstance(metrics, str):
    metrics = _strings(metrics, "metrics", "'fid,kid'")
  # As the command: the Evaluator checks the metric names once the gin files
  # are read (one may import a module that registers a metric).
  overrides = dict(num_samples=num_samples, batch_size=batch_size, seed=seed,
                   cache_dir=(None if cache_dir is None else
                              _folder_path(cache_dir, "cache_dir")),
                   metrics=metrics)
  result, written = evaluate_lib.run(
      path, checkpoint, overrides,
      _strings(gin_files, "gin_files", "['gin_configs/fashion_mnist/"
               "pretrain_biggan.gin']"),
      _strings(bindings, "bindings", "['Evaluator.num_samples = 1000']"),
      None if output is None else _folder_path(output, "output"),
      precision=_precision(precision, generator),
      **({} if features is None else dict(features=os.fspath(features))))
  return Evaluation(metrics=dict(result.metrics),
                    per_class=dict(result.per_class),
                    settings=dict(result.settings), path=written)


@_command_errors
def export(model: PathLike | Generator | Run, out: PathLike,
           checkpoint: str | int | None = None, *,
           version: int | None = None, verify: bool = True,
           precision: str | None = None) -> str:
  """Exports a generator for TF Serving, as `python -m tfgt.export`
  (`tfgt.export.export`; docs/SERVING.md lists the signatures).

  Args:
    model: a run folder, bundle or "pretrained:NAME", a `Run`, or a
      `Generator` (exported from the checkpoint it was loaded from).
    out: the model base path of TF Serving (--export_dir); the export goes
      to `<out>/<version>`.
    checkpoint: "latest" (default), "best" or a step; not with a Generator.
    version: the version (>= 1); default: one more than the highest there.
    verify: reload the export and compare its images with the generator's.
    precision: the precision the exported generator computes in (float32,
      mixed_bfloat16, mixed_float16, or auto: `tfgt.precision.resolve`);
      default: a Generator's own, else float32. The export's metadata
      records the precision used.

  Returns:
    The new version's folder, a str: `tf.saved_model.load(it)` serves
    `signatures["serving_default"]` (labels, seeds, truncation -> uint8
    images), "from_z", "from_class_weights" and "class_names".

  Raises:
    UserInputError: the command's errors: a version that exists or is < 1,
      no such checkpoint or an unreadable one, NaN or infinite weights, no
      model, class names that cannot be served, an `out` that cannot be
      written (a failed export leaves nothing behind); a checkpoint given
      with a Generator.
  """
  path, checkpoint, generator = _source(model, checkpoint, "latest")
  precision = _precision(precision, generator)
  if generator is not None:
    # The very checkpoint it holds: its bundle folder and step.
    path, checkpoint = generator.directory, generator.step
  if version is not None:
    version = _whole(version, "version")
  return export_lib.export(path, _folder_path(out, "out"), checkpoint,
                           version, bool(verify), precision)


@_command_errors
def import_source(source_format: str, input_path: PathLike, out: PathLike, *,
                  network: str | None = None,
                  class_names: Sequence[str] | None = None,
                  class_names_file: PathLike | None = None,
                  noise_mode: str = "z", discriminator: PathLike | None = None,
                  resolution: int | None = None,
                  verify: bool = False) -> Generator:
  """Turns a public pretrained GAN into a tfgt bundle, as
  `python -m tfgt.import_source` (`tfgt.import_source.run`; docs/IMPORT.md).

  Args:
    source_format: --from, a format of tfgt.importers.registry:
      "stylegan_nvlabs", "stylegan_rosinality", "stylegan2_ada_pytorch",
      "biggan_pytorch", "tfhub_biggan", ...
    input_path: --input, the file (or folder, handle or URL) to import.
    out: --out, a new or empty folder for the bundle.
    network: the generator to import (default: the format's, e.g. Gs,
      g_running, G_ema).
    class_names: the classes' names (default: the file's stem for one
      class, ImageNet's for a BigGAN of 1000, else class_<i>).
    class_names_file: a text file with one name per line, instead.
    noise_mode: StyleGAN noise per sample ("z") or the file's ("const").
    discriminator: a D.pth, for the formats that take one.
    resolution: the resolution a rosinality checkpoint was trained at.
    verify: run the original beside the import and refuse a difference of
      more than one grey level (tfhub_biggan).

  Returns:
    The `Generator` of the written bundle (step 0), as `tfgt.load(out)`
    would load it; configs name `out` as their SOURCE.

  Raises:
    UserInputError: the command's errors: an unknown format, an option the
      format does not take or a required one missing, a file it cannot
      import (in one line), an `out` that holds files, both class_names and
      class_names_file; checkpoint_files.UnsafeCheckpointError (a
      UserInputError) for a file that asks for code or memory it must not
      have.
  """
  from tfgt import import_source as import_lib  # pylint: disable=g-import-not-at-top
  out = _folder_path(out, "out")
  if class_names is not None and class_names_file is not None:
    raise UserInputError("Give class_names or class_names_file, not both.")
  if class_names_file is not None:
    class_names = import_lib.read_class_names(
        _folder_path(class_names_file, "class_names_file"))
  elif class_names is not None:
    class_names = _strings(class_names, "class_names", "['cat', 'dog']")
  imported = import_lib.run(
      source_format=source_format,
      input_path=_folder_path(input_path, "input_path"), out=out,
      network=network, class_names=class_names, noise_mode=noise_mode,
      discriminator=(None if discriminator is None else
                     _folder_path(discriminator, "discriminator")),
      resolution=resolution, verify=bool(verify))
  # The models just written: the same weights as reading them back.
  spec = bundle.read_spec(out)
  return Generator(imported.generator, spec, out,
                   bundle.checkpoint_path(out, "latest"))
