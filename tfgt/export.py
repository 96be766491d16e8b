r"""Exports a trained generator as a SavedModel for TF Serving.

    python -m tfgt.export --model_dir=/tmp/run --export_dir=/tmp/serving/gan \
        [--checkpoint=best|latest|N] [--version=N] [--precision=float32]

writes `<export_dir>/<version>/`, the layout `tensorflow_model_server
--model_base_path=<export_dir>` watches (version: one more than the highest
version already there, 1 for an empty folder). The exported generator is the
EMA generator of the run's bundle, with any transfer block already folded: no
training-only parameter is in the export.

`--precision=mixed_bfloat16` (or mixed_float16) exports a generator whose
layers compute in that dtype (`tfgt.precision`): the same signatures, inputs
and uint8 images, the weights stored float32; worth it where the serving CPU
has bfloat16 instructions (`tools/benchmark_export.py --precisions` measures
it). The metadata records the precision.

Signatures (B is the batch size, N the number of classes, old then new):

  serving_default     labels int32 [B], seeds int64 [B], truncation float32
                      (scalar or [B]) -> images uint8 [B, H, W, C], labels [B]
  from_z              labels int32 [B], z float32 [B, dim_z], truncation
                      -> images uint8 [B, H, W, C], labels [B]
  from_class_weights  class_weights float32 [B, N], seeds int64 [B], truncation
                      -> images uint8 [B, H, W, C]
  class_names         labels int32 [B] (may be empty)
                      -> class_names string [N], label_names string [B]
  unconditional       (a model of one class only) seeds int64 [B],
                      truncation -> images uint8 [B, H, W, C]

Truncation (the truncation trick of Brock et al. 2019, section 3.1): the
truncation t > 0 is a threshold on every component of z.
  * With seeds, z is drawn from the standard normal restricted to [-t, t]. The
    draw is exact, by inverting the normal CDF of a uniform sample (the same
    distribution as the paper's "resample the values above the threshold", but
    without a data-dependent number of draws), and stateless: the uniform
    sample depends on the seed alone (Philox, the same on CPU and GPU), so a
    seed gives the same z, bit for bit, in any batch and at every call, and
    lowering t moves each component of the same seed's z smoothly towards 0.
    The image of a seed is the same at every call with the same batch; in a
    batch of another size the generator's matrix products sum in another
    order, so a rare pixel may differ by one grey level (float rounding).
  * With z given, z is clipped to [-t, t] (resampling would replace the caller's
    z).
A large t (e.g. 100) leaves z untruncated; Brock et al. show t between 0.5
and 2. An architecture with a `truncated_call` hook (`tfgt.models.
architectures`) truncates inside the model instead: it gets untruncated z
(N(0, 1) from seeds, or z as given) and the truncation, whose meaning it
documents.

Bad input (labels out of range, z or class weights of the wrong width, batch
sizes that disagree, truncation <= 0, non-finite z or weights, negative class
weights or a row of them summing to 0) fails with InvalidArgument from
assertions inside the serving functions, before the generator runs.

Files in `<export_dir>/<version>/`:
  saved_model.pb, variables/    the graph and the generator's weights
  assets/class_names.txt        one class name per line, in label order
  assets.extra/tfgt_model.json  the architecture, class names and source
                                checkpoint, for people and tools
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from typing import Sequence

from absl import flags
from absl import logging
import keras
import numpy as np
import tensorflow as tf

from tfgt import cli
from tfgt import files
from tfgt import precision as precision_lib
from tfgt.data import pipeline
from tfgt.errors import UserInputError
from tfgt.models import architectures
from tfgt.models import bundle

CLASS_NAMES_FILE = "class_names.txt"
METADATA_FILE = "tfgt_model.json"
SIGNATURES = ("serving_default", "from_z", "from_class_weights", "class_names")
# The mean difference, in grey levels of 255, allowed between the images of
# a bfloat16 or float16 export and its generator's (`verify_saved_model`).
MIXED_PRECISION_MEAN_ERROR = 1.0
# Added for a model of one class (an unconditional GAN): no labels to send.
UNCONDITIONAL_SIGNATURE = "unconditional"


def signatures_of(generator: architectures.Generator) -> tuple[str, ...]:
  """The signature names of `generator`'s export."""
  if generator.num_classes == 1:
    return SIGNATURES + (UNCONDITIONAL_SIGNATURE,)
  return SIGNATURES
# Second word of every stateless seed, fixed: changing it would give every
# seed another image in new exports.
_SEED_STREAM = 0x74666774
# Keeps the inverse normal CDF finite for a uniform sample of exactly 0 (and
# caps |z| near 7 when t is huge, a 1e-12 tail).
_MIN_PROBABILITY = 1e-12


def latents_from_seeds(seeds: tf.Tensor, dim_z: int,
                       truncation: tf.Tensor) -> tf.Tensor:
  """Deterministic latents: one truncated standard normal z per seed.

  Args:
    seeds: int64 [B], any values.
    dim_z: width of z.
    truncation: float [B] > 0, the threshold t of each row.

  Returns:
    float32 [B, dim_z], each component in [-t, t], distributed as N(0, 1)
    restricted to [-t, t]. Row i depends only on seeds[i] and truncation[i].
  """
  seeds = tf.convert_to_tensor(seeds, tf.int64)

  def uniform(seed):
    return tf.random.stateless_uniform(
        [dim_z], seed=tf.stack([seed, tf.constant(_SEED_STREAM, tf.int64)]),
        dtype=tf.float64, alg="philox")

  # One stateless draw per row (map_fn) rather than one draw for the batch:
  # the image of a seed must not depend on its position in the batch.
  u = tf.map_fn(uniform, seeds,
                fn_output_signature=tf.TensorSpec([dim_z], tf.float64))
  # float64: in float32 the inverse CDF near 1 loses the tail beyond |z| ~ 5.
  t = tf.cast(tf.reshape(truncation, [-1, 1]), tf.float64)
  below = 0.5 * tf.math.erfc(t / np.sqrt(2.0))  # P(x < -t) = P(x > t).
  p = tf.clip_by_value(below + u * (1.0 - 2.0 * below), _MIN_PROBABILITY,
                       1.0 - _MIN_PROBABILITY)
  z = tf.clip_by_value(tf.math.ndtri(p), -t, t)
  return tf.cast(z, tf.float32)


def truncate_latents(z: tf.Tensor, truncation: tf.Tensor) -> tf.Tensor:
  """Clips z [B, dim_z] to [-t, t] per row; truncation: float [B] > 0."""
  t = tf.reshape(tf.cast(truncation, tf.float32), [-1, 1])
  return tf.clip_by_value(z, -t, t)


def _checked(checks: list, *tensors: tf.Tensor) -> list[tf.Tensor]:
  """The tensors, available only once every check has passed."""
  with tf.control_dependencies(checks):
    return [tf.identity(t) for t in tensors]


def _label_checks(labels: tf.Tensor, num_classes: int) -> list:
  # One-hot of an out-of-range label is a zero row: the generator would draw
  # an image of no class without any error.
  message = (f"labels must be class ids in [0, {num_classes}); the "
             "class_names signature lists the classes")
  return [tf.debugging.assert_non_negative(labels, message=message),
          tf.debugging.assert_less(labels, tf.constant(num_classes, tf.int32),
                                   message=message)]


def _class_weight_checks(class_weights: tf.Tensor) -> list:
  # A row of zeros conditions on no class, as an out-of-range label would;
  # negative weights leave the classes the model learned.
  message = ("class_weights must be >= 0 with a positive sum in every row "
             "(a one-hot row draws that class)")
  return [tf.debugging.assert_non_negative(class_weights, message=message),
          tf.debugging.assert_positive(tf.reduce_sum(class_weights, axis=1),
                                       message=message)]


def _batch_check(tensor: tf.Tensor, name: str, batch_size: tf.Tensor,
                 reference: str):
  return tf.debugging.assert_equal(
      tf.shape(tensor)[0], batch_size,
      message=f"{name} must have one row per entry of {reference}")


def _truncation_per_image(truncation: tf.Tensor, batch_size: tf.Tensor,
                          untruncated: float = architectures.Z_NO_TRUNCATION
                          ) -> tuple[tf.Tensor, list]:
  """Checks a scalar or [B] truncation; returns it as float32 [B] and checks.

  `untruncated` is the value that the error message names as "none".
  """
  flat = tf.reshape(truncation, [-1])
  size = tf.size(flat)
  checks = [
      tf.debugging.assert_rank_in(
          truncation, [0, 1],
          message="truncation must be a scalar or one value per image"),
      tf.debugging.Assert(
          tf.logical_or(tf.equal(size, 1), tf.equal(size, batch_size)),
          ["truncation must be a scalar or one value per image; got",
           size, "values for a batch of", batch_size]),
      tf.debugging.assert_positive(
          flat, message=f"truncation must be > 0 ({untruncated:g} means no "
          "truncation)"),
  ]
  with tf.control_dependencies(checks):
    return tf.broadcast_to(flat, [batch_size]), checks


def _width_check(tensor: tf.Tensor, name: str, width: int, what: str):
  return tf.debugging.assert_equal(
      tf.shape(tensor)[1], width,
      message=f"{name} must have shape [batch, {width}] ({what})")


def make_serving_functions(generator: architectures.Generator,
                           class_table: tf.lookup.StaticHashTable) -> dict:
  """The serving functions and their input signatures, by signature name.

  Args:
    generator: a built, plain generator (images in [-1, 1]).
    class_table: int64 label -> class name, with `generator.num_classes`
      entries.

  Returns:
    {name: (function, [tf.TensorSpec, ...])} for the names of
    `signatures_of(generator)`.
  """
  num_classes, dim_z = generator.num_classes, generator.dim_z
  on_z = architectures.truncates_z(generator)
  untruncated = architectures.no_truncation(generator)

  def draw(z, y, t):
    return pipeline.to_uint8(architectures.generate(generator, z, y, t))

  def seeded(seeds, t):
    # An architecture that truncates inside the model gets N(0, 1) latents.
    return latents_from_seeds(seeds, dim_z,
                              t if on_z else tf.fill(tf.shape(t), np.inf))

  def serving_default(labels, seeds, truncation):
    batch_size = tf.shape(labels)[0]
    t, checks = _truncation_per_image(truncation, batch_size, untruncated)
    checks += _label_checks(labels, num_classes)
    checks.append(_batch_check(seeds, "seeds", batch_size, "labels"))
    labels, seeds, t = _checked(checks, labels, seeds, t)
    return {"images": draw(seeded(seeds, t), labels, t), "labels": labels}

  def from_z(labels, z, truncation):
    batch_size = tf.shape(labels)[0]
    t, checks = _truncation_per_image(truncation, batch_size, untruncated)
    checks += _label_checks(labels, num_classes)
    checks.append(_width_check(z, "z", dim_z, "the generator's dim_z"))
    checks.append(_batch_check(z, "z", batch_size, "labels"))
    checks.append(tf.debugging.assert_all_finite(z, "z must be finite"))
    labels, z, t = _checked(checks, labels, z, t)
    z = tf.ensure_shape(z, [None, dim_z])
    if on_z:
      z = truncate_latents(z, t)
    return {"images": draw(z, labels, t), "labels": labels}

  def from_class_weights(class_weights, seeds, truncation):
    batch_size = tf.shape(class_weights)[0]
    t, checks = _truncation_per_image(truncation, batch_size, untruncated)
    checks.append(_width_check(class_weights, "class_weights", num_classes,
                               "one weight per class"))
    checks.append(_batch_check(seeds, "seeds", batch_size, "class_weights"))
    finite = tf.debugging.assert_all_finite(class_weights,
                                            "class_weights must be finite")
    checks.append(finite)
    # After the finiteness check, so that NaN gets its own message.
    with tf.control_dependencies([finite]):
      checks += _class_weight_checks(class_weights)
    class_weights, seeds, t = _checked(checks, class_weights, seeds, t)
    class_weights = tf.ensure_shape(class_weights, [None, num_classes])
    return {"images": draw(seeded(seeds, t), class_weights, t)}

  def class_names(labels):
    labels, = _checked(_label_checks(labels, num_classes), labels)
    return {
        "class_names": class_table.lookup(tf.range(num_classes,
                                                   dtype=tf.int64)),
        "label_names": class_table.lookup(tf.cast(labels, tf.int64)),
    }

  labels = tf.TensorSpec([None], tf.int32, name="labels")
  seeds = tf.TensorSpec([None], tf.int64, name="seeds")
  # Unknown rank: a scalar for the whole batch or one value per image (the
  # REST "instances" format batches per-instance scalars into [B]).
  truncation = tf.TensorSpec(None, tf.float32, name="truncation")
  # Widths are left open so that a wrong width reaches the assertions (with a
  # message) instead of failing on the placeholder's shape.
  z = tf.TensorSpec([None, None], tf.float32, name="z")
  weights = tf.TensorSpec([None, None], tf.float32, name="class_weights")
  functions = {
      "serving_default": (serving_default, [labels, seeds, truncation]),
      "from_z": (from_z, [labels, z, truncation]),
      "from_class_weights": (from_class_weights, [weights, seeds, truncation]),
      "class_names": (class_names, [labels]),
  }
  if num_classes == 1:
    def unconditional(seeds, truncation):
      return {"images": serving_default(tf.zeros_like(seeds, tf.int32), seeds,
                                        truncation)["images"]}
    functions[UNCONDITIONAL_SIGNATURE] = (unconditional, [seeds, truncation])
  return functions


def _class_table(path: str) -> tf.lookup.StaticHashTable:
  # Reading the names from a file makes the file an asset of the SavedModel:
  # the names ship once, as a file clients can read, and the signature
  # serves the same file.
  return tf.lookup.StaticHashTable(
      tf.lookup.TextFileInitializer(
          path, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER, tf.string,
          tf.lookup.TextFileIndex.WHOLE_LINE),
      default_value="")


def _check_class_names(class_names: Sequence[str], num_classes: int) -> None:
  if len(class_names) != num_classes:
    raise UserInputError(f"The model has {num_classes} classes but "
                         f"{len(class_names)} class names.")
  bad = [n for n in class_names if "\n" in n or "\r" in n]
  if bad:
    raise UserInputError(f"Class names cannot contain line breaks: {bad!r}. "
                         "Rename them in the bundle's model.json.")
  for name in class_names:
    try:
      name.encode("utf-8")
    except UnicodeEncodeError as e:
      raise UserInputError(
          f"The class name {name!r} is not valid Unicode text (it came from a "
          "folder name that is not UTF-8) and cannot be served: rename it in "
          "the bundle's model.json.") from e


def write_saved_model(generator: architectures.Generator,
                      class_names: Sequence[str], path: str,
                      metadata: dict | None = None) -> None:
  """Writes the serving SavedModel of `generator` to `path` (a new folder).

  Args:
    generator: a built, plain generator.
    class_names: one name per class, in label order.
    path: the SavedModel folder to create.
    metadata: written to assets.extra/tfgt_model.json when given.
  """
  _check_class_names(class_names, generator.num_classes)
  with tempfile.TemporaryDirectory() as scratch:
    names_path = os.path.join(scratch, CLASS_NAMES_FILE)
    with open(names_path, "w", encoding="utf-8") as f:
      f.write("".join(f"{name}\n" for name in class_names))
    table = _class_table(names_path)
    archive = keras.export.ExportArchive()
    # Only the table is tracked by hand. Tracking the generator would make the
    # SavedModel walk trace Keras' default float-input signature of the model,
    # which int labels cannot follow; the endpoints capture its variables.
    archive.track(table)
    for name, (function, signature) in make_serving_functions(
        generator, table).items():
      archive.add_endpoint(name, function, input_signature=signature)
    archive.write_out(path, verbose=False)
  if metadata is not None:
    extra = os.path.join(path, "assets.extra")
    os.makedirs(extra, exist_ok=True)
    files.write_json(os.path.join(extra, METADATA_FILE), metadata)


def verify_saved_model(path: str, generator: architectures.Generator,
                       class_names: Sequence[str], num_images: int = 4) -> None:
  """Reloads an export and checks it draws the generator's images.

  A float32 export must draw them to one grey level in every pixel. A
  bfloat16 or float16 one computes the same sums in another order once
  TensorFlow's graph optimiser has fused its ops, and its 8 (10) bits of
  mantissa turn that into differences of several grey levels in a few
  pixels (the shipped BigGAN in mixed_bfloat16: mean 0.18, largest 13 over
  64 images); it must draw them to `MIXED_PRECISION_MEAN_ERROR` grey levels
  on average, which a wrong weight or input exceeds many times over.

  Raises:
    RuntimeError: when class names differ or the images differ by more.
  """
  loaded = tf.saved_model.load(path)
  names = loaded.signatures["class_names"](
      labels=tf.constant([], tf.int32))["class_names"]
  if [n.decode("utf-8") for n in names.numpy()] != list(class_names):
    raise RuntimeError(f"The export in {path} lists other class names.")
  rng = np.random.RandomState(0)
  labels = tf.constant(rng.randint(0, generator.num_classes, num_images),
                       tf.int32)
  z = tf.constant(rng.randn(num_images, generator.dim_z), tf.float32)
  served = loaded.signatures["from_z"](
      labels=labels, z=z,
      truncation=tf.constant(architectures.no_truncation(generator)))["images"]
  expected = pipeline.to_uint8(generator((z, labels), training=False))
  diff = np.abs(served.numpy().astype(int) - expected.numpy().astype(int))
  if generator.dtype_policy.compute_dtype == "float32":
    broken = diff.max() > 1
  else:
    broken = diff.mean() > MIXED_PRECISION_MEAN_ERROR
  if broken:
    raise RuntimeError(f"The export in {path} draws other images than the "
                       f"generator (max pixel difference {diff.max()}, mean "
                       f"{diff.mean():.2f}).")


def _versions(export_dir: str) -> list[int]:
  """The numeric sub-folders of export_dir (TF Serving's versions); none if
  it does not exist."""
  if not os.path.isdir(export_dir):
    return []
  return [int(d) for d in os.listdir(export_dir)
          if re.fullmatch(r"\d+", d)
          and os.path.isdir(os.path.join(export_dir, d))]


def next_version(export_dir: str) -> int:
  """One more than the highest numeric sub-folder of export_dir, or 1."""
  return max(_versions(export_dir), default=0) + 1


def _warn_if_another_model(export_dir: str, version: int,
                           metadata: dict) -> None:
  """Warns when the highest version below `version` in export_dir serves
  another model (other classes or generator): TF Serving serves the highest
  version, so its clients would switch models without a sign."""
  versions = [v for v in _versions(export_dir) if v < version]
  if not versions:
    return
  previous = os.path.join(export_dir, str(max(versions)))
  try:
    with open(os.path.join(previous, "assets.extra", METADATA_FILE),
              encoding="utf-8") as f:
      old = json.load(f)
  except (OSError, ValueError):
    return  # Not a tfgt export: nothing to compare.
  changed = [key for key in ("class_names", "generator")
             if old.get(key) != metadata[key]]
  if changed:
    logging.warning(
        "%s serves another model than this export (%s differ): TF Serving "
        "serves the highest version, so clients of %s switch to this one. "
        "Give another --export_dir to serve both.", previous,
        " and ".join(changed), export_dir)


def _make_folders(path: str) -> list[str]:
  """Creates `path` and its missing parents.

  Returns:
    The folders created, outermost first.

  Raises:
    OSError: a folder cannot be created; none is left behind.
  """
  missing = []
  head = os.path.abspath(path)
  while not os.path.exists(head) and head != os.path.dirname(head):
    missing.append(head)
    head = os.path.dirname(head)
  created = []
  try:
    for folder in reversed(missing):
      os.mkdir(folder)
      created.append(folder)
  except OSError:
    _remove_empty(created)
    raise
  return created


def _remove_empty(folders: Sequence[str]) -> None:
  """Removes `folders` (outermost first) where they are empty, innermost
  first."""
  for folder in reversed(folders):
    try:
      os.rmdir(folder)
    except OSError:
      return  # Not empty (another process wrote there), or gone.


def _export_dir_error(export_dir: str, error: OSError) -> UserInputError:
  return UserInputError(f"Cannot use --export_dir {export_dir} ({error}): "
                        "give a folder you may create and write to.")


def export(model_dir: str, export_dir: str, checkpoint: str | int = "latest",
           version: int | None = None, verify: bool = True,
           precision: str = precision_lib.DEFAULT) -> str:
  """Exports the generator of a run for TF Serving.

  Args:
    model_dir: a training run's model_dir, its bundle folder or
      "pretrained:NAME".
    export_dir: the model base path of TF Serving; the export goes to
      `<export_dir>/<version>`.
    checkpoint: "latest", "best" or a step number.
    version: version number (>= 1); default: `next_version(export_dir)`.
    verify: reload the export and compare its images with the generator's.
    precision: the exported generator's compute precision
      (`tfgt.precision`); its weights are float32 in every one.

  Returns:
    The folder of the new version.

  A failed export leaves nothing behind: the version is written in a
  staging folder that is renamed when complete, and `export_dir` (with its
  parents) is removed again if this call created it.

  Raises:
    UserInputError: for a version that exists or is < 1, a checkpoint that
      does not exist, cannot be read (a truncated or corrupt file) or holds
      NaN or infinite weights, a folder that holds no model or an invalid
      model.json, class names that cannot be served, or an export_dir that
      cannot be written.
  """
  checkpoint = bundle.parse_checkpoint(checkpoint, "--checkpoint")
  precision = precision_lib.choose(precision)
  if version is None:
    try:
      version = next_version(export_dir)
    except OSError as e:
      raise _export_dir_error(export_dir, e) from e
  if version < 1:
    raise UserInputError(f"--version={version}: versions are integers >= 1.")
  target = os.path.join(export_dir, str(version))
  if os.path.exists(target):
    raise UserInputError(
        f"{target} exists. TF Serving versions are immutable: leave out "
        "--version to write the next one, or delete that folder.")
  directory = bundle.resolve_directory(model_dir)
  spec = bundle.read_spec(directory)
  # Resolved once: a live run may save a newer checkpoint (or delete this one)
  # at any time, and the metadata must name the checkpoint exported.
  prefix = bundle.checkpoint_path(directory, checkpoint)
  generator, _ = bundle.restore(
      spec, prefix, spec_file=os.path.join(directory, bundle.SPEC_FILE),
      precision=precision)
  broken = [v.path for v in generator.variables
            if not np.all(np.isfinite(np.asarray(v)))]
  if broken:
    raise UserInputError(
        f"The generator of {prefix} has NaN or infinite weights "
        f"({', '.join(broken[:3])}{', ...' if len(broken) > 3 else ''}): its "
        "run diverged. Export an earlier checkpoint (--checkpoint=STEP or "
        "best).")
  if hasattr(generator, "prepare_serving"):
    # Work that a label draw would repeat on every request is done once
    # (the per-class kernels of a hyper-modulated generator).
    generator.prepare_serving()
  metadata = dict(
      format="tfgt serving export 1",
      signatures=list(signatures_of(generator)),
      source=dict(model_dir=os.path.abspath(directory),
                  checkpoint=os.path.abspath(prefix),
                  method=spec.get("method")),
      generator=spec["generator"], class_names=spec["class_names"],
      precision=precision,
      truncation=(
          "seeds: N(0, 1) restricted to [-t, t]; z: clipped to [-t, t]"
          if architectures.truncates_z(generator)
          else generator.truncation_meaning))
  _warn_if_another_model(export_dir, version, metadata)
  created = []
  try:
    created = _make_folders(export_dir)
    # TF Serving polls export_dir and loads any new numeric folder at once:
    # the version appears only complete, by renaming a staging folder.
    staging = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=export_dir)
  except OSError as e:
    _remove_empty(created)
    raise _export_dir_error(export_dir, e) from e
  try:
    path = os.path.join(staging, "model")
    write_saved_model(generator, spec["class_names"], path, metadata)
    if verify:
      verify_saved_model(path, generator, spec["class_names"])
    os.rename(path, target)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    # A failed export leaves no folder it made behind.
    _remove_empty(created)
    raise
  shutil.rmtree(staging, ignore_errors=True)
  logging.info("Exported %s (%s) to %s.", metadata["source"]["checkpoint"],
               ", ".join(metadata["signatures"]), target)
  return target


FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command line's flags, defined only when it runs.

  Defining them at import would clash with other modules' flags of the same
  names (tfgt.train's --model_dir) wherever both modules are imported.
  """
  flags.DEFINE_string("model_dir", None, "Training run, bundle folder or "
                      "pretrained:NAME to export.")
  flags.DEFINE_string("export_dir", None, "TF Serving model base path; the "
                      "export goes to <export_dir>/<version>.")
  flags.DEFINE_string("checkpoint", "latest", "'best', 'latest' or a step.")
  flags.DEFINE_integer("version", None, "Version number (default: the next "
                       "one in export_dir).")
  flags.DEFINE_bool("verify", True, "Reload the export and compare its images "
                    "with the in-process generator's.")
  precision_lib.define_flag("The exported generator computes in")
  # Listed in --help with the command's own flags.
  flags.adopt_module_key_flags(precision_lib)


def main(argv: Sequence[str]) -> None:
  cli.check_arguments(argv, required=("model_dir", "export_dir"))
  with cli.exit_on_bad_input():
    target = export(FLAGS.model_dir, FLAGS.export_dir, FLAGS.checkpoint,
                    FLAGS.version, FLAGS.verify, FLAGS.precision)
  with open(os.path.join(target, "assets.extra", METADATA_FILE)) as f:
    metadata = json.load(f)
  g = metadata["generator"]
  # A hyper-modulated generator records its StyleGAN's options as "source".
  shape = g if "resolution" in g else g.get("source", {})
  print(f"SavedModel: {target}")
  print(f"  source:     {metadata['source']['checkpoint']}")
  print(f"  classes:    {g['num_classes']} "
        f"({', '.join(metadata['class_names'])})")
  print(f"  images:     {shape.get('resolution')}x{shape.get('resolution')}x"
        f"{shape.get('channels')} uint8, dim_z {shape.get('dim_z')}")
  print(f"  signatures: {', '.join(metadata['signatures'])}")
  print(f"  precision:  {metadata['precision']}")
  base_path = os.path.abspath(FLAGS.export_dir)
  name = serving_name(base_path)
  print("Serve with: tensorflow_model_server --rest_api_port=8501 "
        f"--model_name={name} --model_base_path={base_path}")
  print(f"  then POST http://localhost:8501/v1/models/{name}:predict "
        "(docs/SERVING.md)")


def serving_name(base_path: str) -> str:
  """TF Serving's --model_name for an export folder: its name, with
  characters outside [A-Za-z0-9_.-] replaced by "_" ("gan" if none are
  left)."""
  name = re.sub(r"[^A-Za-z0-9_.-]", "_",
                os.path.basename(os.path.normpath(base_path)))
  return name.strip("._") or "gan"


if __name__ == "__main__":
  define_flags()
  cli.run(main)
