"""DeepMind's TF-Hub BigGAN modules as tfgt BigGAN bundles.

The modules `deepmind/biggan-128/2`, `-256/2` and `-512/2` (Brock et al.
2019, TF1 Hub format) hold the ImageNet generator only. `import_tfhub_biggan`
finds one with `hub.resolve` (a handle, a URL, a local folder, or the copy
in TFHUB_CACHE_DIR), reads its variables from the module's checkpoint, maps
them onto `tfgt.models.biggan.BigGANGenerator` and returns the models and a
report; `verify` runs the module's own graph (`hub.load`) beside the
import.

The names are those BigGAN-PyTorch's TFHub/converter.py reads (below the
module's root, e.g. `Generator/GBlock_1/conv0/w/ema_b999900`):
  * `linear/w` [N, S]: the shared class embedding (one-hot in, no bias);
  * `Generator/G_Z/G_linear/{w,b,u0}`: the first layer, from the first chunk
    of z, its outputs already in (4, 4, C) order;
  * `Generator/GBlock[_i]/{conv0,conv1,conv_sc}/{w,b,u0}`: block i's
    convolutions ([kh, kw, in, out], tfgt's layout);
  * `Generator/GBlock[_i]/HyperBN[_1]/{gamma,beta}/{w,u0}`: the projections
    of the conditioning vector [z chunk, class embedding] to gain (added to
    1) and shift; tfgt concatenates [class embedding, z chunk], so the rows
    are reordered;
  * `Generator/GBlock[_i]/CrossReplicaBN[_1]/accumulated_{mean,var}` and
    `Generator/ScaledCrossReplicaBNbn/accumulated_{mean,var}`: the batch
    norms' statistics, used as they are (BigGAN-PyTorch's converter does the
    same; `accumulation_counter` is reported, not used);
  * `Generator/attention/{theta,phi,g,o_conv}/{w,u0}` and `gamma`;
  * `Generator/ScaledCrossReplicaBN/{gamma,beta}` and `Generator/conv_2d`.
Weights, biases, gains and the attention gate come twice: the raw variable
and its moving average `<name>/ema_b999900`, which the module samples from
and which is imported by default (`network="G_ema"`; "G" takes the raw
ones). Spectral norm keeps `u0` (output space) and a second vector `u1`,
which is not used. The batch norms' epsilon is 1e-4.

What the weights alone cannot show, and `verify` checks on the real module:
  * spectral norm in inference: like BigGAN-PyTorch's port of the modules,
    the import takes sigma as one power iteration from `u0`
    (`biggan.match_sigma` moves `u0` to the vector that gives that sigma in
    tfgt);
  * the module's `truncation` input: the stored statistics are those of
    untruncated z (the port's notes), so the import is compared with the
    module at truncation 1. tfgt samples other truncations with the same
    statistics.
"""

from __future__ import annotations

import os
import re
from typing import Sequence

import numpy as np

from tfgt.errors import UserInputError
from tfgt.importers import biggan as biggan_pytorch
from tfgt.importers import mapping
from tfgt.importers.mapping import Assignment
from tfgt.importers.mapping import Imported
from tfgt.models import architectures
from tfgt.models import biggan

WHAT = "TF-Hub BigGAN (deepmind/biggan-*)"
# The modules' batch-norm epsilon.
BN_EPSILON = 1e-4
# The suffix of the moving-average copy of a weight.
EMA_SUFFIX = "/ema_b999900"
NETWORKS = ("G_ema", "G")
HUB_ROOT = "https://tfhub.dev/"
# The generator's self-attention sits after the block whose output has this
# resolution (BigGAN's ImageNet models; checked against the widths).
ATTENTION_RESOLUTION = {128: 64, 256: 128, 512: 64}
_EXPECTED_UNUSED = {
    r".*/u1": "second spectral-norm vector; sigma comes from u0",
}
_CONV = {"conv0": "conv1", "conv1": "conv2", "conv_sc": "shortcut"}
_ATTENTION = {"theta": "query", "phi": "key", "g": "value",
              "o_conv": "output_conv"}
_STATS = {"mean": "moving_mean", "var": "moving_variance"}


def resolve_handle(handle: str) -> str:
  """A local folder as it is; `deepmind/biggan-128/2` as its tfhub.dev URL;
  URLs as they are.

  Raises:
    UserInputError: a path that is no folder (an archive not unpacked, a
      missing folder), or neither a path nor a handle.
  """
  if os.path.isdir(handle) or "://" in handle:
    return handle
  if os.path.isfile(handle):
    unpack = (" Unpack it (tar -xzf) into a folder and pass the folder."
              if handle.endswith((".tar.gz", ".tgz", ".tar")) else "")
    raise UserInputError(f"--input={handle} is a file; a TF-Hub module is a "
                         f"folder (saved_model.pb, variables/).{unpack}")
  if re.fullmatch(r"[\w.-]+/[\w.-]+/\d+", handle):
    return HUB_ROOT + handle  # A relative folder of this form does not exist.
  if handle.startswith(("/", ".", "~")) or os.sep in handle:
    raise UserInputError(f"--input={handle}: no such folder.")
  raise UserInputError(
      f"--input={handle!r}: neither a folder nor a TF-Hub handle. Give the "
      "module's folder (the one with saved_model.pb and tfhub_module.pb), a "
      "handle such as deepmind/biggan-128/2, or its URL.")


def resolve_module(handle: str) -> str:
  """The module's local folder: `handle` itself if it is a folder, else
  fetched by `hub.resolve` (into TFHUB_CACHE_DIR, or found there).

  Raises:
    UserInputError: the module cannot be fetched, or the folder is not a
      module; the message says how to get it onto the machine.
  """
  import tensorflow_hub as hub  # pylint: disable=g-import-not-at-top
  resolved = resolve_handle(handle)
  if not os.path.isdir(resolved):
    try:
      resolved = hub.resolve(resolved)
    except Exception as e:  # pylint: disable=broad-except
      text = str(e).strip()
      reason = type(e).__name__ + (
          f": {text.splitlines()[0][:300]}" if text else "")
      archive = (f"{resolved}?tf-hub-format=compressed"
                 if resolved.startswith(HUB_ROOT) else resolved)
      raise UserInputError(
          f"--input={handle}: TF-Hub could not fetch the module ({reason}). "
          "If you meant a folder, it does not exist. Without access to "
          f"tfhub.dev (now served by Kaggle Models), download {archive} "
          "elsewhere, unpack it (tar -xzf) and pass the folder; or copy the "
          "TFHUB_CACHE_DIR of a machine that loaded it and set "
          "TFHUB_CACHE_DIR to the copy.") from e
  if not os.path.isfile(os.path.join(resolved, "saved_model.pb")):
    raise UserInputError(
        f"{resolved} holds no saved_model.pb: not a TF-Hub module folder. "
        "Unpack the module's .tar.gz (e.g. from "
        "https://tfhub.dev/deepmind/biggan-128/2?tf-hub-format=compressed) "
        "into a folder and pass that folder.")
  return resolved


def load_module(folder: str):
  """The module at `folder` (resolve_module's) loaded by `hub.load`, to run
  its `default` signature (TF1 Hub format, tags [])."""
  import logging  # pylint: disable=g-import-not-at-top
  import tensorflow_hub as hub  # pylint: disable=g-import-not-at-top
  # TF warns once per reference variable of a TF1 module (every variable of
  # 2018's modules) that it has no Python object; the graph runs anyway.
  tf_logger = logging.getLogger("tensorflow")
  level = tf_logger.level
  tf_logger.setLevel(logging.ERROR)
  try:
    return hub.load(folder)
  except Exception as e:  # pylint: disable=broad-except
    raise UserInputError(f"{folder}: TF-Hub cannot load this module "
                         f"({type(e).__name__}: {e}).") from e
  finally:
    tf_logger.setLevel(level)


def module_arrays(folder: str) -> dict[str, np.ndarray]:
  """The module's variables by name (as in its graph, without a leading
  "module/"), read from its checkpoint `variables/variables`.

  Raises:
    UserInputError: no readable checkpoint, or no variables in it.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  prefix = os.path.join(folder, "variables", "variables")
  try:
    reader = tf.train.load_checkpoint(prefix)
  except Exception as e:  # pylint: disable=broad-except
    raise UserInputError(f"{folder}: no readable variables/variables "
                         f"checkpoint ({type(e).__name__}); is the module "
                         "unpacked completely?") from e
  arrays = {re.sub(r"^module/", "", name): reader.get_tensor(name)
            for name in sorted(reader.get_variable_to_shape_map())}
  if not arrays:
    raise UserInputError(f"{folder}: the module holds no variables: not a "
                         "BigGAN generator module.")
  return arrays


def _block_index(scope: str) -> int:
  """GBlock -> 0, GBlock_3 -> 3."""
  return int(scope[len("GBlock_"):]) if scope != "GBlock" else 0


def _sn_rule(prefix: str, kind: str, value: np.ndarray
             ) -> tuple[str, np.ndarray, str] | None:
  """A spectrally normalised layer's w, b or u0 (layouts as tfgt's)."""
  if kind == "w":
    return f"{prefix}/kernel", value, ""
  if kind == "b":
    return f"{prefix}/bias", value.reshape(-1), ""
  if kind == "u0":
    return f"{prefix}/sn_u", value.reshape(1, -1), ""
  return None


def generator_rule(name: str, value: np.ndarray, z_chunk: int
                   ) -> tuple[str, np.ndarray, str] | None:
  """The tfgt variable, array and note for the module's array `name` (the
  weight's name without EMA_SUFFIX); None when it has no place.
  `z_chunk`: the width of z's chunk in each batch norm's condition."""
  if name == "linear/w":
    return "shared_embedding/embeddings", value, ""
  m = re.fullmatch(r"Generator/G_Z/G_linear/(\w+)", name)
  if m:
    return _sn_rule("linear", m.group(1), value)
  m = re.fullmatch(r"Generator/(GBlock(?:_\d+)?)/(conv0|conv1|conv_sc)/(\w+)",
                   name)
  if m:
    return _sn_rule(f"block{_block_index(m.group(1))}/{_CONV[m.group(2)]}",
                    m.group(3), value)
  m = re.fullmatch(r"Generator/(GBlock(?:_\d+)?)/HyperBN(_1)?/(gamma|beta)/"
                   r"(\w+)", name)
  if m:
    layer = "gain_projection" if m.group(3) == "gamma" else "shift_projection"
    prefix = (f"block{_block_index(m.group(1))}/"
              f"{'bn2' if m.group(2) else 'bn1'}/{layer}")
    if m.group(4) == "w":
      return (f"{prefix}/kernel", np.concatenate(
          [value[z_chunk:], value[:z_chunk]]),
              "rows [z chunk, class embedding] -> [class embedding, z chunk]")
    return _sn_rule(prefix, m.group(4), value)
  m = re.fullmatch(r"Generator/(GBlock(?:_\d+)?)/CrossReplicaBN(_1)?/"
                   r"accumulated_(mean|var)", name)
  if m:
    return (f"block{_block_index(m.group(1))}/"
            f"{'bn2' if m.group(2) else 'bn1'}/{_STATS[m.group(3)]}",
            value.reshape(-1), "")
  m = re.fullmatch(r"Generator/attention/(theta|phi|g|o_conv)/(\w+)", name)
  if m:
    return _sn_rule(f"attention/{_ATTENTION[m.group(1)]}", m.group(2), value)
  if name == "Generator/attention/gamma":
    return "attention/gate", value.reshape(()), ""
  m = re.fullmatch(r"Generator/ScaledCrossReplicaBN/(gamma|beta)", name)
  if m:
    return f"output_bn/{m.group(1)}", value.reshape(-1), ""
  m = re.fullmatch(r"Generator/ScaledCrossReplicaBNbn/accumulated_(mean|var)",
                   name)
  if m:
    return f"output_bn/{_STATS[m.group(1)]}", value.reshape(-1), ""
  m = re.fullmatch(r"Generator/conv_2d/(\w+)", name)
  if m:
    return _sn_rule("output_conv", m.group(1), value)
  return None


def select_network(arrays: dict[str, np.ndarray], network: str
                   ) -> tuple[list[tuple[str, str, np.ndarray]],
                              list[Assignment]]:
  """([(source name, weight name, array)] of the chosen copy of every
  weight, report rows of the other copy).

  Raises:
    UserInputError: an unknown `network`, or G_ema from a module without
      moving averages.
  """
  if network not in NETWORKS:
    raise UserInputError(f"--network={network!r}: a TF-Hub BigGAN has "
                         f"{' or '.join(NETWORKS)}.")
  averaged = {n[:-len(EMA_SUFFIX)] for n in arrays if n.endswith(EMA_SUFFIX)}
  if network == "G_ema" and not averaged:
    raise UserInputError(f"The module has no moving-average weights "
                         f"(*{EMA_SUFFIX}); pass --network=G.")
  chosen, skipped = [], []
  for source, value in arrays.items():
    if source.endswith("/accumulation_counter"):
      skipped.append(Assignment(
          source, value.shape, None,
          f"unused: batches accumulated: {float(np.sum(value)):g}; the "
          "statistics are used as stored"))
      continue
    if source.endswith(EMA_SUFFIX):
      name, use = source[:-len(EMA_SUFFIX)], network == "G_ema"
      reason = "moving average; --network=G_ema imports it"
    else:
      name, use = source, network == "G" or source not in averaged
      reason = "raw weight; --network=G imports it"
    if use:
      chosen.append((source, name, value))
    else:
      skipped.append(Assignment(source, value.shape, None,
                                f"unused: {reason}"))
  return chosen, skipped


def generator_kwargs(arrays: dict[str, np.ndarray]) -> dict:
  """The BigGANGenerator arguments (and "num_classes") read from the
  weights' shapes (`arrays` by weight name, as select_network gives them).

  Raises:
    UserInputError: the arrays are not those of a BigGAN module.
  """
  for needed in ("linear/w", "Generator/G_Z/G_linear/w",
                 "Generator/GBlock/conv0/w", "Generator/GBlock/HyperBN/gamma/w",
                 "Generator/conv_2d/w"):
    if needed not in arrays:
      raise UserInputError(f"The module has no {needed}: not a BigGAN "
                           "generator module (deepmind/biggan-*; "
                           "BigGAN-deep is not supported).")
  blocks = sorted({_block_index(m.group(1)) for n in arrays if (
      m := re.fullmatch(r"Generator/(GBlock(?:_\d+)?)/conv0/w", n))})
  resolution = next((r for r, arch in biggan.ARCHITECTURES.items()
                     if len(arch[0]) - 1 == len(blocks)), None)
  if resolution is None or blocks != list(range(len(blocks))):
    raise UserInputError(
        f"The module has generator blocks {blocks}; tfgt's BigGAN has "
        f"{sorted(biggan.ARCHITECTURES)} px models of "
        f"{[len(a[0]) - 1 for a in biggan.ARCHITECTURES.values()]} blocks.")
  g_arch = biggan.ARCHITECTURES[resolution][0]
  conv0 = arrays["Generator/GBlock/conv0/w"]
  ch, rest = divmod(int(conv0.shape[2]), g_arch[0])
  if rest:
    raise UserInputError(f"Block 0 takes {conv0.shape[2]} channels, not a "
                         f"multiple of {g_arch[0]}.")
  num_classes, shared_dim = (int(s) for s in arrays["linear/w"].shape)
  z_chunk = int(arrays["Generator/G_Z/G_linear/w"].shape[0])
  condition = int(arrays["Generator/GBlock/HyperBN/gamma/w"].shape[0])
  if condition != z_chunk + shared_dim:
    raise UserInputError(
        f"The batch norms read {condition} values; a hierarchical-z BigGAN "
        f"reads the {z_chunk} of its z chunk and the {shared_dim} of the "
        "class embedding.")
  kwargs = dict(resolution=resolution,
                channels=int(arrays["Generator/conv_2d/w"].shape[-1]), ch=ch,
                dim_z=z_chunk * (len(blocks) + 1),
                conditioning="shared_embedding", shared_dim=shared_dim,
                hierarchical_z=True, bn_epsilon=BN_EPSILON,
                attention_resolution=0, num_classes=num_classes)
  theta = arrays.get("Generator/attention/theta/w")
  if theta is not None:
    at = ATTENTION_RESOLUTION.get(resolution, 0)
    if not at:
      raise UserInputError(
          f"The module has self-attention, which tfgt places only in the "
          f"{sorted(ATTENTION_RESOLUTION)} px models; this one is "
          f"{resolution} px.")
    width = g_arch[int(np.log2(at // 4))] * ch  # The block's output.
    if theta.shape[2] != width:
      raise UserInputError(
          f"The attention layer takes {theta.shape[2]} channels; tfgt's "
          f"{resolution} px BigGAN has attention after the block of {at} px, "
          f"of {width} channels.")
    kwargs["attention_resolution"] = at
  return kwargs


def fresh_discriminator(num_classes: int, resolution: int, channels: int,
                        ch: int) -> biggan.BigGANDiscriminator:
  """BigGAN's ImageNet discriminator of these sizes, untrained (attention at
  64 px)."""
  return biggan.BigGANDiscriminator(num_classes, resolution=resolution,
                                    channels=channels, ch=ch,
                                    attention_resolution=64)


def import_tfhub_biggan(handle: str, network: str = "G_ema",
                        class_names: Sequence[str] | None = None,
                        discriminator: str | None = None) -> Imported:
  """The generator of a TF-Hub BigGAN module as a tfgt model.

  Args:
    handle: the module's folder, handle (`deepmind/biggan-128/2`) or URL.
    network: "G_ema" (the moving-average weights the module samples from)
      or "G" (the raw ones).
    class_names: one name per class (default: ImageNet's names for a module
      of 1000 classes, else "class_<i>").
    discriminator: a BigGAN-PyTorch D.pth of the same classes and resolution
      (e.g. of the 128 px ImageNet run); without it the bundle gets a fresh,
      untrained discriminator, since the module has none.

  Returns:
    The models, class names and the report.

  Raises:
    UserInputError: a module that cannot be loaded or is not a BigGAN
      generator, a name count that does not fit, a discriminator of another
      model.
  """
  chosen, skipped = select_network(module_arrays(resolve_module(handle)),
                                   network)
  weights = {name: value for _, name, value in chosen}
  kwargs = generator_kwargs(weights)
  num_classes = kwargs.pop("num_classes")
  if class_names is None:
    class_names = biggan_pytorch.default_class_names(num_classes)
  class_names = list(class_names)
  if len(class_names) != num_classes:
    raise UserInputError(f"{handle}: the module has {num_classes} classes; "
                         f"{len(class_names)} class names were given "
                         "(--class_names / --class_names_file).")
  generator = biggan.BigGANGenerator(num_classes, **kwargs)
  if discriminator is not None:
    d_model, d_arrays = biggan_pytorch.read_discriminator(
        discriminator, num_classes, kwargs["resolution"], handle)
  else:
    d_model = fresh_discriminator(num_classes, kwargs["resolution"],
                                  kwargs["channels"], kwargs["ch"])
  architectures.build_by_calling(generator, d_model)
  notes: dict[str, str] = {}
  matched = biggan_pytorch.match_spectral_norms(
      weights, notes, separator="/", weight="w",
      as_out_in=lambda w: w.reshape(-1, w.shape[-1]).T,
      whose="the module's")
  z_chunk = kwargs["dim_z"] // (len(generator.blocks) + 1)

  rule = biggan_pytorch.noted(
      lambda name, value: generator_rule(name, value, z_chunk), notes)
  report: list[Assignment] = []
  mapping.assign(generator.name, generator.variables,
                 [(source, name, matched[name], rule)
                  for source, name, _ in chosen], report, handle, WHAT,
                 _EXPECTED_UNUSED)
  report += skipped
  if discriminator is not None:
    biggan_pytorch.assign_discriminator(d_model, d_arrays, discriminator,
                                        report)
  else:
    report.append(Assignment(
        "(none: the module has no discriminator)", (),
        f"{d_model.name}/* ({len(d_model.variables)} variables)",
        "fresh, untrained; --discriminator=D.pth imports BigGAN-PyTorch's"))
  return Imported(generator, d_model, class_names, report,
                  fresh_discriminator=discriminator is None)


def verify(module, generator, num_samples: int = 4, seed: int = 0,
           truncation: float = 1.0) -> float:
  """The largest pixel difference between the module and `generator` on the
  same inputs: z drawn from the normal truncated to [-2, 2] (as the modules
  are sampled), times `truncation`; random one-hot classes.

  Returns:
    max |module - import| over all pixels, in the images' [-1, 1] units
    (float32 round-off: 6.85e-07 on the tests' 128 px stand-in module,
    docs/IMPORT.md; a G import differs by design, since the module draws
    with G_ema).

  Raises:
    UserInputError: the module's `default` signature does not take z, y and
      truncation.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  signature = module.signatures.get("default") if hasattr(
      module, "signatures") else None
  inputs = set(signature.structured_input_signature[1]) if signature else set()
  if inputs != {"z", "y", "truncation"}:
    raise UserInputError(f"The module's default signature takes "
                         f"{sorted(inputs) or 'nothing'}, not z, y and "
                         "truncation: not a BigGAN module.")
  rng = np.random.default_rng(seed)
  z = rng.standard_normal([num_samples, generator.dim_z])
  while np.any(outside := np.abs(z) > 2):  # Redraw values outside [-2, 2].
    z[outside] = rng.standard_normal(int(outside.sum()))
  z = (truncation * z).astype(np.float32)
  labels = rng.integers(0, generator.num_classes, num_samples)
  y = np.eye(generator.num_classes, dtype=np.float32)[labels]
  theirs = signature(z=tf.constant(z), y=tf.constant(y),
                     truncation=tf.constant(truncation, tf.float32))
  theirs = next(iter(theirs.values())).numpy()
  ours = generator((z, labels), training=False).numpy()
  if theirs.shape != ours.shape:
    raise UserInputError(f"The module draws images of shape "
                         f"{list(theirs.shape)}, the import "
                         f"{list(ours.shape)}.")
  return float(np.max(np.abs(theirs - ours)))
