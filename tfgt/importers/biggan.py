"""BigGAN-PyTorch checkpoints as tfgt BigGAN bundles.

cGANTransfer starts from the ImageNet BigGAN at 128 px of BigGAN-PyTorch
(Brock et al. 2019; the `138k` weights: `G_ema.pth` and `D.pth`, state dicts
saved by `torch.save`). `import_biggan_pytorch` reads them with
`checkpoint_files.load_torch` (no PyTorch, nothing in the file runs), maps
every array onto `tfgt.models.biggan` and returns the models and a report.

The two implementations compute the same function; the arrays change layout:
  * convolution kernels [out, in, kh, kw] -> [kh, kw, in, out]; linear
    weights [out, in] -> [in, out];
  * the first linear layer's outputs, reshaped as (C, 4, 4) there and as
    (4, 4, C) here, are permuted (with their bias and power-iteration vector);
  * the spectral-norm vector `u0` is tfgt's `sn_u` (both in the output space),
    except for the discriminator's class embedding, whose `u0` lives in the
    class space: tfgt keeps v = normalize(u0 W) in the feature space, which
    gives the same sigma;
  * the discriminator's last blocks have no shortcut convolution there (same
    width, no downsampling): tfgt's gets the identity, exactly the same;
  * `stored_mean` / `stored_var` are the batch norms' moving statistics; the
    logged singular values `sv0` are not used.
Resolution, widths, latent size, class count, attention and the
conditioning (shared embedding with hierarchical z, or per-class tables as
in the CIFAR models) are read from the arrays. BigGAN-PyTorch's batch-norm
epsilon (1e-5) is kept.

Spectral norm's sigma is estimated differently: in inference BigGAN-PyTorch
refines `u0` by one power iteration and divides by v0 W^T u1, tfgt divides
by v W^T u for its stored u. The vectors of G_ema are moving averages of G's,
not singular vectors of G_ema's weights, so the two estimates differ (by
about 1e-3 relative on stand-ins with vectors two iterations from random).
`match_sigma` moves each `u0` along its power-iteration step to the vector
whose tfgt sigma is BigGAN-PyTorch's, so the import computes the same
function; the report gives each layer's gap before the move.
"""

from __future__ import annotations

import os
import re
from typing import Callable, Sequence

import numpy as np

from tfgt.errors import UserInputError
from tfgt.importers import checkpoint_files
from tfgt.importers import mapping
from tfgt.importers import registry
from tfgt.importers.mapping import Assignment
from tfgt.importers.mapping import Imported
from tfgt.models import architectures
from tfgt.models import biggan

WHAT = "BigGAN-PyTorch (BigGAN.py)"
# BigGAN-PyTorch's batch-norm epsilon (its BN_eps default and ImageNet run).
BN_EPSILON = 1e-5
_EXPECTED_UNUSED = {
    r".*\.sv\d+": "singular value kept for logging",
    r".*\.num_batches_tracked": "batch-norm bookkeeping",
    r".*\.accumulation_counter": "batch-norm bookkeeping",
}
_CONV = {"conv1": "conv1", "conv2": "conv2", "conv_sc": "shortcut"}
_ATTENTION = {"theta": "query", "phi": "key", "g": "value", "o": "output_conv"}
_STATS = {"stored_mean": "moving_mean", "stored_var": "moving_variance",
          "running_mean": "moving_mean", "running_var": "moving_variance"}
# ImageNet's class names in label order (tools.imagenet_class_names).
IMAGENET_CLASS_NAMES = os.path.join(os.path.dirname(__file__),
                                    "imagenet_class_names.txt")


def imagenet_class_names() -> list[str]:
  """ImageNet's 1000 class names in the label order of the ImageNet BigGANs
  (ILSVRC-2012's sorted WordNet ids): each synset's lemmas, "tench, Tinca
  tinca"."""
  with open(IMAGENET_CLASS_NAMES, encoding="utf-8") as f:
    return [line.rstrip("\n") for line in f]


def default_class_names(num_classes: int) -> list[str]:
  """ImageNet's names for a model of 1000 classes, else "class_<i>"."""
  if num_classes == 1000:
    return imagenet_class_names()
  return [f"class_{i}" for i in range(num_classes)]


def _sn_rule(prefix: str, kind: str, value: np.ndarray
             ) -> tuple[str, np.ndarray, str] | None:
  """A spectrally normalised layer's array: weight, bias or u0."""
  if kind == "weight":
    if value.ndim == 4:
      return f"{prefix}/kernel", value.transpose(2, 3, 1, 0), \
          "[out, in, kh, kw] -> [kh, kw, in, out]"
    return f"{prefix}/kernel", value.T, "[out, in] -> [in, out]"
  if kind == "bias":
    return f"{prefix}/bias", value, ""
  if kind == "u0":
    return f"{prefix}/sn_u", value, ""
  return None


def _stats_rule(prefix: str, name: str, value: np.ndarray
                ) -> tuple[str, np.ndarray, str] | None:
  m = re.fullmatch(r"(?:bn\.)?(stored_mean|stored_var|running_mean|"
                   r"running_var)", name)
  if m:
    return f"{prefix}/{_STATS[m.group(1)]}", value, ""
  return None


def _linear_permutation(channels: int) -> np.ndarray:
  """Index array p: tfgt output j = (h, w, c) takes PyTorch output p[j] =
  (c, h, w) of the first linear layer (4x4 bottom)."""
  return np.arange(channels * 16).reshape(channels, 4, 4).transpose(
      1, 2, 0).reshape(-1)


def _generator_rule(name: str, value: np.ndarray, shared: bool = True
                    ) -> tuple[str, np.ndarray, str] | None:
  """The rule of a generator array; `shared`: whether the batch norms
  project a shared embedding (else they hold per-class tables)."""
  if name == "shared.weight":
    return "shared_embedding/embeddings", value, ""
  m = re.fullmatch(r"linear\.(weight|bias|u0)", name)
  if m:
    kind = m.group(1)
    out = value.shape[0] if kind != "u0" else value.shape[1]
    perm = _linear_permutation(out // 16)
    note = "outputs (C, 4, 4) -> (4, 4, C)"
    if kind == "weight":
      return "linear/kernel", value.T[:, perm], f"[out, in] -> [in, out]; {note}"
    if kind == "bias":
      return "linear/bias", value[perm], note
    return "linear/sn_u", value[:, perm], note
  m = re.fullmatch(r"blocks\.(\d+)\.0\.(conv1|conv2|conv_sc)\.(\w+)", name)
  if m:
    return _sn_rule(f"block{m.group(1)}/{_CONV[m.group(2)]}", m.group(3), value)
  m = re.fullmatch(r"blocks\.(\d+)\.0\.(bn1|bn2)\.(.+)", name)
  if m:
    prefix, rest = f"block{m.group(1)}/{m.group(2)}", m.group(3)
    stats = _stats_rule(prefix, rest, value)
    if stats:
      return stats
    m2 = re.fullmatch(r"(gain|bias)\.(weight|u0)", rest)
    if not m2:
      return None
    if m2.group(2) == "weight" and not shared:
      # Per-class tables (nn.Embedding [N, C]): BigGAN's CIFAR generator.
      target = "gain_offset" if m2.group(1) == "gain" else "shift"
      return f"{prefix}/{target}", value, ""
    layer = "gain_projection" if m2.group(1) == "gain" else "shift_projection"
    return _sn_rule(f"{prefix}/{layer}", m2.group(2), value)
  m = re.fullmatch(r"blocks\.(\d+)\.1\.(.+)", name)
  if m:
    return _attention_rule(m.group(2), value)
  m = re.fullmatch(r"output_layer\.0\.(?:bn\.)?(gain|bias|stored_mean|"
                   r"stored_var|running_mean|running_var)", name)
  if m:
    kind = m.group(1)
    if kind in ("gain", "bias"):
      return f"output_bn/{'gamma' if kind == 'gain' else 'beta'}", value, ""
    return f"output_bn/{_STATS[kind]}", value, ""
  m = re.fullmatch(r"output_layer\.2\.(\w+)", name)
  if m:
    return _sn_rule("output_conv", m.group(1), value)
  return None


def _attention_rule(rest: str, value: np.ndarray
                    ) -> tuple[str, np.ndarray, str] | None:
  if rest == "gamma":
    return "attention/gate", value.reshape(()), ""
  m = re.fullmatch(r"(theta|phi|g|o)\.(\w+)", rest)
  if m:
    return _sn_rule(f"attention/{_ATTENTION[m.group(1)]}", m.group(2), value)
  return None


def _discriminator_rule(name: str, value: np.ndarray
                        ) -> tuple[str, np.ndarray, str] | None:
  m = re.fullmatch(r"blocks\.(\d+)\.0\.(conv1|conv2|conv_sc)\.(\w+)", name)
  if m:
    return _sn_rule(f"block{m.group(1)}/{_CONV[m.group(2)]}", m.group(3), value)
  m = re.fullmatch(r"blocks\.(\d+)\.1\.(.+)", name)
  if m:
    return _attention_rule(m.group(2), value)
  m = re.fullmatch(r"linear\.(\w+)", name)
  if m:
    return _sn_rule("linear", m.group(1), value)
  if name == "embed.weight":
    return "embedding/embeddings", value, ""
  if name == "embed.v":  # Made by _discriminator_arrays from embed.u0.
    return "embedding/sn_u", value, "u0 [1, N] -> v = normalize(u0 W) [1, F]"
  return None


def _state_dict(path: str) -> dict[str, np.ndarray]:
  """The file's arrays by name, without DataParallel's `module.` prefix."""
  obj = checkpoint_files.load_torch(path)
  if isinstance(obj, dict) and "state_dict" in obj and isinstance(
      obj["state_dict"], dict):
    obj = obj["state_dict"]
  arrays = checkpoint_files.flatten(obj)
  if not arrays:
    raise UserInputError(f"{path}: holds no arrays: not a state dict of a "
                         "BigGAN-PyTorch network.")
  return {re.sub(r"^module\.", "", k): v for k, v in arrays.items()}


def _indices(names, pattern: str) -> list[int]:
  return sorted({int(m.group(1)) for n in names
                 if (m := re.fullmatch(pattern, n))})


def _resolution(num_blocks: int, path: str, what: str) -> int:
  for resolution, arch in biggan.ARCHITECTURES.items():
    count = len(arch[0]) - 1 if what == "generator" else len(arch[1])
    if count == num_blocks:
      return resolution
  raise UserInputError(
      f"{path}: a {what} of {num_blocks} blocks; tfgt's BigGAN has "
      f"{sorted(biggan.ARCHITECTURES)} px models. Is it a BigGAN-PyTorch "
      f"{what} (BigGAN.py; BigGANdeep is not supported)?")


def _one_attention(indices: list[int], path: str) -> int | None:
  if len(indices) > 1:
    raise UserInputError(f"{path}: self-attention after blocks {indices}; "
                         "tfgt's BigGAN has at most one attention layer.")
  return indices[0] if indices else None


def generator_kwargs(arrays: dict[str, np.ndarray], path: str) -> dict:
  """The BigGANGenerator arguments (and "num_classes") that these arrays
  fit, read from their shapes.

  Raises:
    UserInputError: the arrays are not those of a BigGAN-PyTorch generator.
  """
  for needed in ("linear.weight", "output_layer.2.weight",
                 "blocks.0.0.conv1.weight", "blocks.0.0.bn1.gain.weight"):
    if needed not in arrays:
      raise UserInputError(f"{path}: no {needed}: not a BigGAN-PyTorch "
                           "generator (G.pth / G_ema.pth).")
  blocks = _indices(arrays, r"blocks\.(\d+)\.0\.conv1\.weight")
  resolution = _resolution(len(blocks), path, "generator")
  g_arch = biggan.ARCHITECTURES[resolution][0]
  ch, rest = divmod(int(arrays["blocks.0.0.conv1.weight"].shape[1]), g_arch[0])
  if rest:
    raise UserInputError(f"{path}: block 0 takes "
                         f"{arrays['blocks.0.0.conv1.weight'].shape[1]} "
                         f"channels, not a multiple of {g_arch[0]}.")
  gain = arrays["blocks.0.0.bn1.gain.weight"]
  linear_in = int(arrays["linear.weight"].shape[1])
  kwargs = dict(resolution=resolution,
                channels=int(arrays["output_layer.2.weight"].shape[0]), ch=ch,
                bn_epsilon=BN_EPSILON)
  if "shared.weight" in arrays:
    num_classes, shared_dim = (int(s) for s in arrays["shared.weight"].shape)
    z_chunk = int(gain.shape[1]) - shared_dim
    hierarchical = z_chunk > 0
    if hierarchical and z_chunk != linear_in:
      raise UserInputError(
          f"{path}: the batch norms read {z_chunk} values of z beside the "
          f"class embedding, the first layer {linear_in}: not a "
          "hierarchical-z BigGAN.")
    kwargs.update(conditioning="shared_embedding", shared_dim=shared_dim,
                  hierarchical_z=hierarchical,
                  dim_z=linear_in * (len(blocks) + 1) if hierarchical
                  else linear_in)
  else:
    num_classes = int(gain.shape[0])
    kwargs.update(conditioning="table", dim_z=linear_in)
  attention = _one_attention(_indices(arrays, r"blocks\.(\d+)\.1\.gamma"), path)
  kwargs["attention_resolution"] = (0 if attention is None
                                    else 4 * 2 ** (attention + 1))
  kwargs["num_classes"] = num_classes
  return kwargs


def discriminator_kwargs(arrays: dict[str, np.ndarray], path: str) -> dict:
  """The BigGANDiscriminator arguments (and "num_classes") of these arrays.

  Raises:
    UserInputError: the arrays are not those of a BigGAN-PyTorch
      discriminator.
  """
  for needed in ("blocks.0.0.conv1.weight", "linear.weight", "embed.weight"):
    if needed not in arrays:
      raise UserInputError(f"{path}: no {needed}: not a BigGAN-PyTorch "
                           "discriminator (D.pth).")
  blocks = _indices(arrays, r"blocks\.(\d+)\.0\.conv1\.weight")
  resolution = _resolution(len(blocks), path, "discriminator")
  _, d_arch, d_down = biggan.ARCHITECTURES[resolution]
  conv1 = arrays["blocks.0.0.conv1.weight"]
  ch, rest = divmod(int(conv1.shape[0]), d_arch[0])
  if rest:
    raise UserInputError(f"{path}: block 0 has {conv1.shape[0]} channels, "
                         f"not a multiple of {d_arch[0]}.")
  attention = _one_attention(_indices(arrays, r"blocks\.(\d+)\.1\.gamma"), path)
  attention_resolution = 0
  if attention is not None:
    attention_resolution = resolution // 2 ** sum(d_down[:attention + 1])
  return dict(num_classes=int(arrays["embed.weight"].shape[0]),
              resolution=resolution, channels=int(conv1.shape[1]), ch=ch,
              attention_resolution=attention_resolution)


def _normalize(x: np.ndarray) -> np.ndarray:
  return x / max(float(np.linalg.norm(x)), 1e-12)


def _tfgt_sigma(w: np.ndarray, u: np.ndarray) -> float:
  """tfgt's inference estimate (`spectral_norm.spectral_normalize` with no
  iteration) for W [out, in] and u [1, out]."""
  u = _normalize(u)
  return float(((_normalize(u @ w) @ w.T) @ u.T).item())


def match_sigma(weight: np.ndarray, u0: np.ndarray
                ) -> tuple[np.ndarray, float]:
  """(u [1, out] float32, relative gap before) such that tfgt's sigma with u
  equals BigGAN-PyTorch's inference sigma with u0 (`layers.SN.W_()`: one
  power iteration, no update).

  With u1 = normalize(normalize(u0 W) W^T), tfgt's estimate is at most
  PyTorch's at u0 and at least it at u1 (Cauchy-Schwarz), so bisection on the
  arc from u0 to u1 finds the vector.

  Args:
    weight: the layer's weight in PyTorch's layout ([out, in] or
      [out, in, kh, kw]).
    u0: its vector [1, out].
  """
  w = np.asarray(weight, np.float64).reshape(weight.shape[0], -1)
  u0 = _normalize(np.asarray(u0, np.float64).reshape(1, -1))
  v0 = _normalize(u0 @ w)
  u1 = _normalize(v0 @ w.T)
  target = float((v0 @ w.T @ u1.T).item())
  gap = abs(_tfgt_sigma(w, u0) - target) / max(abs(target), 1e-30)
  if gap < 1e-9:
    return u0.astype(np.float32), gap
  arc = lambda t: _normalize((1.0 - t) * u0 + t * u1)
  lo, hi = 0.0, 1.0
  for _ in range(60):
    mid = 0.5 * (lo + hi)
    if _tfgt_sigma(w, arc(mid)) < target:
      lo = mid
    else:
      hi = mid
  return arc(0.5 * (lo + hi)).astype(np.float32), gap


def match_spectral_norms(arrays: dict[str, np.ndarray], notes: dict[str, str],
                         skip: Sequence[str] = (), separator: str = ".",
                         weight: str = "weight",
                         as_out_in: Callable[[np.ndarray], np.ndarray] =
                         lambda w: w,
                         whose: str = "BigGAN-PyTorch's"
                         ) -> dict[str, np.ndarray]:
  """The arrays with every `<layer><separator>u0` replaced by `match_sigma`'s
  vector [1, out], and a note per replaced vector.

  Both BigGAN importers call it: BigGAN-PyTorch's state dicts
  (`blocks.0.0.conv1.u0` beside `.weight` [out, in, kh, kw]) with the
  defaults, TF-Hub's modules (`.../conv1/u0` beside `/w` [kh, kw, in, out])
  with `separator="/"`, `weight="w"` and `as_out_in` giving [out, in].

  Args:
    arrays: name -> array of one network.
    notes: name -> remark; a note is added for each moved vector.
    skip: layer names (without the suffix) left as they are.
    separator: what joins a layer's name and its array's name.
    weight: the name of the weight beside each `u0`; a `u0` without one is
      left as it is.
    as_out_in: the weight in `match_sigma`'s layout, [out, ...].
    whose: the owner of the sigma matched, for the notes.
  """
  out = dict(arrays)
  suffix = f"{separator}u0"
  for name, u0 in arrays.items():
    layer = name[:-len(suffix)]
    w_name = f"{layer}{separator}{weight}"
    if not name.endswith(suffix) or layer in skip or w_name not in arrays:
      continue
    out[name], gap = match_sigma(as_out_in(arrays[w_name]),
                                 u0.reshape(1, -1))
    notes[name] = f"moved to give {whose} sigma (gap before {gap:.1e})"
  return out


def _discriminator_arrays(arrays: dict[str, np.ndarray], resolution: int,
                          ch: int) -> list[tuple[str, str, np.ndarray]]:
  """(source label, rule name, array) of the discriminator, with identity
  shortcuts where BigGAN-PyTorch has none and the embedding's vector moved
  to the feature space."""
  out = [(f"D/{n}", n, v) for n, v in arrays.items() if n != "embed.u0"]
  if "embed.u0" in arrays:
    v = _normalize(arrays["embed.u0"] @ arrays["embed.weight"])
    out.append(("D/embed.u0", "embed.v", v))
  _, d_arch, _ = biggan.ARCHITECTURES[resolution]
  for i, mult in enumerate(d_arch):
    if f"blocks.{i}.0.conv_sc.weight" in arrays:
      continue
    c = mult * ch
    label = f"(identity: D/blocks.{i}.0 has no conv_sc)"
    unit = np.zeros([1, c], np.float32)
    unit[0, 0] = 1.0
    out += [(label, f"blocks.{i}.0.conv_sc.weight",
             np.eye(c, dtype=np.float32).reshape(c, c, 1, 1)),
            (label, f"blocks.{i}.0.conv_sc.bias", np.zeros([c], np.float32)),
            (label, f"blocks.{i}.0.conv_sc.u0", unit)]
  return out


def noted(rule, notes: dict[str, str]):
  """`rule` with the note of `notes` for the arrays it names."""
  def with_notes(name, value):
    mapped = rule(name, value)
    if mapped is None or name not in notes:
      return mapped
    target, array, note = mapped
    return target, array, "; ".join(filter(None, [note, notes[name]]))
  return with_notes


def _files(path: str, network: str, discriminator: str | None
           ) -> tuple[str, str | None]:
  """(generator file, discriminator file or None) for a folder or a file."""
  if os.path.isdir(path):
    g_path = os.path.join(path, f"{network}.pth")
    if not os.path.isfile(g_path):
      present = sorted(f for f in os.listdir(path) if f.endswith(".pth"))
      raise UserInputError(
          f"{path} has no {network}.pth (it has {present or 'no .pth file'}); "
          "pass --network=G_ema or G, or the file itself as --input.")
    folder = path
  else:
    g_path, folder = path, os.path.dirname(path) or "."
  if discriminator is None:
    candidate = os.path.join(folder, "D.pth")
    discriminator = candidate if os.path.isfile(candidate) else None
  return g_path, discriminator


def import_biggan_pytorch(path: str, network: str = "G_ema",
                          class_names: Sequence[str] | None = None,
                          discriminator: str | None = None) -> Imported:
  """The generator and discriminator of a BigGAN-PyTorch run as tfgt models.

  Args:
    path: a weights folder of BigGAN-PyTorch (with G_ema.pth, G.pth, D.pth)
      or a generator file.
    network: in a folder, the generator to import: "G_ema" (the moving
      average that BigGAN-PyTorch samples from) or "G".
    class_names: one name per class (default: ImageNet's names for a
      model of 1000 classes, else "class_<i>").
    discriminator: the D.pth to import (default: D.pth beside the generator,
      if there is one; without it the bundle has no discriminator).

  Returns:
    The models, class names and the report.

  Raises:
    UserInputError: files missing or not BigGAN-PyTorch networks, shapes
      that do not fit, G and D of different class counts
      (checkpoint_files.UnsafeCheckpointError for a hostile file).
  """
  g_path, d_path = _files(path, network, discriminator)
  g_arrays = _state_dict(g_path)
  kwargs = generator_kwargs(g_arrays, g_path)
  num_classes = kwargs.pop("num_classes")
  if class_names is None:
    class_names = default_class_names(num_classes)
  class_names = list(class_names)
  if len(class_names) != num_classes:
    raise UserInputError(f"{g_path}: the generator has {num_classes} classes; "
                         f"{len(class_names)} class names were given.")
  generator = biggan.BigGANGenerator(num_classes, **kwargs)
  d_model, d_arrays = None, None
  if d_path is not None:
    d_model, d_arrays = read_discriminator(d_path, num_classes,
                                           kwargs["resolution"], g_path)
  architectures.build_by_calling(generator, d_model)
  report: list[Assignment] = []
  shared = kwargs["conditioning"] == "shared_embedding"
  notes: dict[str, str] = {}
  g_arrays = match_spectral_norms(g_arrays, notes)
  g_label = os.path.splitext(os.path.basename(g_path))[0]
  mapping.assign(generator.name, generator.variables,
                 [(f"{g_label}/{n}", n, v,
                   noted(lambda n, v: _generator_rule(n, v, shared), notes))
                  for n, v in g_arrays.items()], report, g_path, WHAT,
                 _EXPECTED_UNUSED)
  if d_model is not None:
    assign_discriminator(d_model, d_arrays, d_path, report)
  return Imported(generator, d_model, class_names, report)


def read_discriminator(d_path: str, num_classes: int, resolution: int,
                       g_path: str
                       ) -> tuple[biggan.BigGANDiscriminator,
                                  dict[str, np.ndarray]]:
  """(unbuilt discriminator, its arrays) of a BigGAN-PyTorch D.pth that
  fits a generator of `num_classes` classes at `resolution` px (`g_path`
  names the generator in errors). `assign_discriminator` fills the model
  once it is built.

  Raises:
    UserInputError: not a BigGAN-PyTorch discriminator, or not one of the
      generator's class count and resolution.
  """
  d_arrays = _state_dict(d_path)
  d_kwargs = discriminator_kwargs(d_arrays, d_path)
  if d_kwargs.pop("num_classes") != num_classes:
    raise UserInputError(
        f"{d_path} has {d_arrays['embed.weight'].shape[0]} classes, the "
        f"generator {g_path} {num_classes}: not the same run.")
  if d_kwargs["resolution"] != resolution:
    raise UserInputError(
        f"{d_path} is a discriminator of {d_kwargs['resolution']} px, the "
        f"generator {g_path} draws {resolution} px: not the same run.")
  return biggan.BigGANDiscriminator(num_classes, **d_kwargs), d_arrays


def assign_discriminator(d_model: biggan.BigGANDiscriminator,
                         d_arrays: dict[str, np.ndarray], d_path: str,
                         report: list[Assignment]) -> None:
  """Fills the built `d_model` from `read_discriminator`'s arrays; rows
  are appended to `report`.

  Raises:
    UserInputError: an array with no place or a variable without an array.
  """
  d_notes: dict[str, str] = {}
  d_arrays = match_spectral_norms(d_arrays, d_notes, skip=("embed",))
  mapping.assign(d_model.name, d_model.variables,
                 [(label, n, v, noted(_discriminator_rule, d_notes))
                  for label, n, v in
                  _discriminator_arrays(d_arrays, d_model.resolution,
                                        d_model.ctor_kwargs["ch"])],
                 report, d_path, WHAT, _EXPECTED_UNUSED)


def check_discriminator_file(path: str | None) -> None:
  """Refuses a --discriminator that names no file, before anything is read.

  Raises:
    UserInputError: `path` is given and is not a file.
  """
  if path and not os.path.isfile(path):
    raise UserInputError(f"--discriminator={path}: no such file (a "
                         "BigGAN-PyTorch D.pth).")


def _read(request: registry.Request) -> Imported:
  check_discriminator_file(request.discriminator)
  return import_biggan_pytorch(request.input, request.network,
                               request.class_names, request.discriminator)


IMPORTER = registry.Importer(
    name="biggan_pytorch",
    description=("BigGAN-PyTorch weights: a folder with G_ema.pth (or G.pth) "
                 "and D.pth, or a generator file"),
    read=_read,
    default_network="G_ema",
    other_networks=("G",),
    example="--input=weights/138k --out=sources/biggan_imagenet_128",
    options={"discriminator": "the D.pth (default: D.pth beside the "
                              "generator, if any)"},
    sources=(registry.Source(
        "biggan_imagenet_128",
        "--input=<BigGAN-PyTorch's 138k weights folder>", "the papers' source",
        preferred=True),))
