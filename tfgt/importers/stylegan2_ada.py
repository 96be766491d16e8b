"""NVlabs stylegan2-ada-pytorch pickles as tfgt StyleGAN2 bundles.

The StyleGAN2-ADA models that researchers hold (FFHQ, AFHQ, MetFaces,
BreCaHAD, LSUN, the class-conditional CIFAR-10, and every snapshot of
NVlabs' stylegan2-ada-pytorch: `network-snapshot-*.pkl`) are pickles of a
dict with `G`, `D`, `G_ema` (G's moving average), `augment_pipe` and
`training_set_kwargs`. The networks are `torch_utils.persistence` objects:
the pickle carries the Python source of their module and asks the loader to
execute it. `import_pytorch` reads the pickle with
`checkpoint_files.load_persistence_pickle` (no PyTorch, no NVlabs code,
nothing from the file runs), builds tfgt's StyleGAN2 (tfgt.models.stylegan2,
whose variable names follow NVlabs') from the networks' constructor
arguments, and places every tensor by name with these layout changes:

  * kernels [out, in, kh, kw] -> [kh, kw, in, out] (tfgt's upsampling
    convolution is a true convolution, as NVlabs', so no flip);
  * dense weights [out, in] -> [in, out] (the discriminator's `b4.fc` reads
    its input channel-major in both);
  * the constant `synthesis.b4.const` [C, 4, 4] -> [4, 4, C];
  * `mapping.w_avg` -> the generator's `w_avg`.

The `resample_filter` buffers are not variables in tfgt (its layers compute
the filter from the `resample_filter` option): those of the resampling layers
are checked to be the filter the constructor arguments give, the others
(layers that do not resample) are reported unused. Constructor arguments
that tfgt's StyleGAN2 cannot build (another activation or kernel size, no
noise, a label of one dimension, ...) are refused with the argument named.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping, Sequence

import numpy as np

from tfgt.errors import UserInputError
from tfgt.importers import checkpoint_files
from tfgt.importers import mapping
from tfgt.importers import registry
from tfgt.importers.mapping import Assignment
from tfgt.importers.mapping import Imported
from tfgt.models import architectures
from tfgt.models import stylegan2

_WHAT = "stylegan2-ada-pytorch (training/networks.py)"
GENERATORS = ("G_ema", "G")

# Constructor arguments of NVlabs' networks (training/networks.py) with
# their defaults: the positional order of `Generator` and `Discriminator`,
# and the nested keyword dicts.
_G_ARGS = dict(z_dim=None, c_dim=None, w_dim=None, img_resolution=None,
               img_channels=None, mapping_kwargs={}, synthesis_kwargs={})
_G_MAPPING = dict(num_layers=8, embed_features=None, layer_features=None,
                  activation="lrelu", lr_multiplier=0.01, w_avg_beta=0.995)
# SynthesisNetwork's own, SynthesisBlock's and SynthesisLayer's (the latter
# two reach the layers through **block_kwargs and **layer_kwargs).
_G_SYNTHESIS = dict(channel_base=32768, channel_max=512, num_fp16_res=0,
                    architecture="skip", resample_filter=[1, 3, 3, 1],
                    conv_clamp=None, fp16_channels_last=False,
                    kernel_size=3, use_noise=True, activation="lrelu")
_D_ARGS = dict(c_dim=None, img_resolution=None, img_channels=None,
               architecture="resnet", channel_base=32768, channel_max=512,
               num_fp16_res=0, conv_clamp=None, cmap_dim=None,
               block_kwargs={}, mapping_kwargs={}, epilogue_kwargs={})
_D_BLOCK = dict(activation="lrelu", resample_filter=[1, 3, 3, 1],
                fp16_channels_last=False, freeze_layers=0)
_D_MAPPING = dict(num_layers=8, embed_features=None, layer_features=None,
                  activation="lrelu", lr_multiplier=0.01)
_D_EPILOGUE = dict(mbstd_group_size=4, mbstd_num_channels=1,
                   activation="lrelu")

# The filters of the layers that resample (the others hold NVlabs' default
# filter, which they never apply).
_G_RESAMPLING = r"synthesis/b\d+/(conv0/|skip/)?resample_filter"
_D_RESAMPLING = r"b\d+/(conv1/|skip/)?resample_filter"
_UNUSED = {r"(.*/)?resample_filter": "the filter of a layer that does not "
                                      "resample"}


def _fail(path: str, message: str) -> UserInputError:
  return UserInputError(f"{path}: {message}")


def _arguments(path: str, label: str, obj: checkpoint_files.PersistentObject,
               defaults: Mapping[str, Any]) -> dict[str, Any]:
  """The constructor arguments of `obj` (positional ones by the order of
  `defaults`), every one known, with the defaults of those not given.

  Raises:
    UserInputError: an argument that NVlabs' constructor does not have (a
      network of other code), or one that is missing.
  """
  names = list(defaults)
  if len(obj.init_args) > len(names):
    raise _fail(path, f"{label} was built with {len(obj.init_args)} "
                f"positional arguments; NVlabs' {obj.class_name} takes "
                f"{len(names)}.")
  given = dict(zip(names, obj.init_args))
  for key, value in obj.init_kwargs.items():
    if key in given:
      raise _fail(path, f"{label} was given {key} twice.")
    given[key] = value
  return _options(path, label, given, defaults)


def _options(path: str, label: str, given: Any,
             defaults: Mapping[str, Any]) -> dict[str, Any]:
  """`defaults` updated by `given` (a dict of keyword arguments, or None).

  Raises:
    UserInputError: `given` is not a dict, or has keys `defaults` lacks.
  """
  if given is None:
    given = {}
  if not isinstance(given, dict):
    raise _fail(path, f"{label} is a {type(given).__name__}, not a dict of "
                "keyword arguments.")
  unknown = sorted(set(given) - set(defaults))
  if unknown:
    shown = ", ".join(f"{k}={_show(given[k])}" for k in unknown)
    raise _fail(path, f"{label} has the argument(s) {shown}, which "
                f"stylegan2-ada-pytorch's networks (and tfgt's StyleGAN2) do "
                f"not have: a network of modified code; tfgt imports "
                f"{', '.join(defaults)}.")
  return {**defaults, **given}


def _show(value: Any) -> str:
  text = repr(value)
  return text if len(text) <= 60 else text[:57] + "..."


def _require(path: str, label: str, ok: bool, value: Any,
             expected: str) -> None:
  """Refuses a constructor argument tfgt cannot build."""
  if not ok:
    raise _fail(path, f"{label}={_show(value)}: tfgt's StyleGAN2 builds "
                f"{expected}, so this network cannot be imported.")


def _int(value: Any, low: int = 0) -> bool:
  return isinstance(value, (int, np.integer)) and not isinstance(
      value, bool) and value >= low


def _taps(path: str, label: str, value: Any) -> list[float]:
  ok = (isinstance(value, (list, tuple)) and 0 < len(value) <= 64 and
        all(isinstance(t, (int, float, np.integer, np.floating)) and
            not isinstance(t, bool) and math.isfinite(t) for t in value) and
        sum(value) > 0)
  _require(path, label, ok, value, "1D FIR taps with a positive sum")
  return [float(t) for t in value]


def _clamp(path: str, label: str, value: Any) -> float | None:
  ok = value is None or (isinstance(value, (int, float, np.integer,
                                            np.floating)) and
                         not isinstance(value, bool) and
                         math.isfinite(value) and value > 0)
  _require(path, label, ok, value, "conv_clamp None or > 0")
  return None if value is None else float(value)


def _lrelu(path: str, label: str, value: Any) -> None:
  _require(path, label, isinstance(value, str) and value == "lrelu", value,
           "leaky ReLU layers only (activation 'lrelu')")


def _check_common(path: str, label: str, c_dim: Any, resolution: Any,
                  channels: Any) -> int:
  """Checks c_dim, img_resolution and img_channels; returns num_classes."""
  _require(path, f"{label}.c_dim", _int(c_dim) and c_dim != 1, c_dim,
           "unconditional models (c_dim 0) and conditional ones of at least "
           "two classes (c_dim >= 2)")
  _require(path, f"{label}.img_resolution",
           _int(resolution, stylegan2.MIN_RESOLUTION) and
           resolution <= stylegan2.MAX_RESOLUTION and
           resolution & (resolution - 1) == 0, resolution,
           f"resolutions that are powers of 2 in "
           f"[{stylegan2.MIN_RESOLUTION}, {stylegan2.MAX_RESOLUTION}]")
  _require(path, f"{label}.img_channels", _int(channels) and channels in (1, 3),
           channels,
           "1 or 3 image channels")
  return max(int(c_dim), 1)


def generator_options(path: str, label: str,
                      g: checkpoint_files.PersistentObject,
                      noise_mode: str) -> tuple[int, dict[str, Any]]:
  """(num_classes, tfgt StyleGAN2Generator keyword arguments) of an NVlabs
  `Generator`'s constructor arguments.

  Raises:
    UserInputError: not a Generator, or arguments tfgt cannot build.
  """
  if g.class_name != "Generator":
    raise _fail(path, f"{label} is a {g.class_name!r}, not a "
                "stylegan2-ada-pytorch Generator.")
  return generator_options_of(path, label, _arguments(path, label, g,
                                                      _G_ARGS), noise_mode)


def generator_options_of(path: str, label: str, given: Mapping[str, Any],
                         noise_mode: str) -> tuple[int, dict[str, Any]]:
  """`generator_options` from the arguments of NVlabs' `Generator` as a
  dict (z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs,
  synthesis_kwargs), as the TensorFlow pickles' importer derives them.

  Raises:
    UserInputError: an argument NVlabs' Generator lacks, or arguments tfgt
      cannot build.
  """
  args = _options(path, label, dict(given), _G_ARGS)
  for key in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"):
    if args[key] is None:
      raise _fail(path, f"{label} has no constructor argument {key}.")
  num_classes = _check_common(path, label, args["c_dim"],
                              args["img_resolution"], args["img_channels"])
  _require(path, f"{label}.z_dim", _int(args["z_dim"], 2), args["z_dim"],
           "latents of at least 2 values (z_dim >= 2: the noise is seeded "
           "by z)")
  _require(path, f"{label}.w_dim", _int(args["w_dim"], 1), args["w_dim"],
           "w_dim >= 1")
  m = _options(path, f"{label}.mapping_kwargs", args["mapping_kwargs"],
               _G_MAPPING)
  where = f"{label}.mapping_kwargs"
  _require(path, f"{where}.num_layers", _int(m["num_layers"], 1),
           m["num_layers"], "at least one mapping layer")
  for key in ("embed_features", "layer_features"):
    _require(path, f"{where}.{key}", m[key] is None or _int(m[key], 1),
             m[key], f"{key} None or >= 1")
  _lrelu(path, f"{where}.activation", m["activation"])
  lr = m["lr_multiplier"]
  _require(path, f"{where}.lr_multiplier",
           isinstance(lr, (int, float, np.integer, np.floating)) and
           not isinstance(lr, bool) and math.isfinite(lr) and lr > 0, lr,
           "lr_multiplier > 0")
  beta = m["w_avg_beta"]
  _require(path, f"{where}.w_avg_beta",
           isinstance(beta, (int, float, np.floating)) and
           not isinstance(beta, bool) and 0 <= beta < 1, beta,
           "a tracked average w (w_avg_beta in [0, 1)) for truncation")
  s = _options(path, f"{label}.synthesis_kwargs", args["synthesis_kwargs"],
               _G_SYNTHESIS)
  where = f"{label}.synthesis_kwargs"
  _require(path, f"{where}.architecture",
           isinstance(s["architecture"], str) and
           s["architecture"] in stylegan2.G_ARCHITECTURES, s["architecture"],
           f"the architectures {stylegan2.G_ARCHITECTURES}")
  _require(path, f"{where}.kernel_size",
           _int(s["kernel_size"]) and s["kernel_size"] == 3,
           s["kernel_size"], "3x3 modulated convolutions")
  _require(path, f"{where}.use_noise", s["use_noise"] is True,
           s["use_noise"], "noise inputs in every layer")
  _lrelu(path, f"{where}.activation", s["activation"])
  for key in ("channel_base", "channel_max", "num_fp16_res"):
    _require(path, f"{where}.{key}",
             _int(s[key], 0 if key == "num_fp16_res" else 1), s[key],
             f"{key} >= {0 if key == 'num_fp16_res' else 1}")
  options = dict(
      resolution=int(args["img_resolution"]),
      channels=int(args["img_channels"]), dim_z=int(args["z_dim"]),
      w_dim=int(args["w_dim"]), mapping_layers=int(m["num_layers"]),
      mapping_lr_multiplier=float(lr),
      embed_features=m["embed_features"], layer_features=m["layer_features"],
      w_avg_decay=float(beta), channel_base=int(s["channel_base"]),
      channel_max=int(s["channel_max"]),
      block_architecture=s["architecture"],
      conv_clamp=_clamp(path, f"{where}.conv_clamp", s["conv_clamp"]),
      num_fp16_res=int(s["num_fp16_res"]),
      resample_filter=_taps(path, f"{where}.resample_filter",
                            s["resample_filter"]),
      noise_mode=noise_mode)
  return num_classes, options


def discriminator_options(path: str, d: checkpoint_files.PersistentObject
                          ) -> tuple[int, dict[str, Any]]:
  """(num_classes, tfgt StyleGAN2Discriminator keyword arguments) of an
  NVlabs `Discriminator`'s constructor arguments.

  Raises:
    UserInputError: not a Discriminator, or arguments tfgt cannot build.
  """
  if d.class_name != "Discriminator":
    raise _fail(path, f"D is a {d.class_name!r}, not a stylegan2-ada-pytorch "
                "Discriminator.")
  return discriminator_options_of(path, _arguments(path, "D", d, _D_ARGS))


def discriminator_options_of(path: str, given: Mapping[str, Any]
                             ) -> tuple[int, dict[str, Any]]:
  """`discriminator_options` from the arguments of NVlabs' `Discriminator`
  as a dict, as the TensorFlow pickles' importer derives them.

  Raises:
    UserInputError: an argument NVlabs' Discriminator lacks, or arguments
      tfgt cannot build.
  """
  args = _options(path, "D", dict(given), _D_ARGS)
  for key in ("c_dim", "img_resolution", "img_channels"):
    if args[key] is None:
      raise _fail(path, f"D has no constructor argument {key}.")
  num_classes = _check_common(path, "D", args["c_dim"],
                              args["img_resolution"], args["img_channels"])
  _require(path, "D.architecture",
           isinstance(args["architecture"], str) and
           args["architecture"] in stylegan2.D_ARCHITECTURES,
           args["architecture"], f"the architectures "
           f"{stylegan2.D_ARCHITECTURES}")
  for key in ("channel_base", "channel_max", "num_fp16_res"):
    _require(path, f"D.{key}",
             _int(args[key], 0 if key == "num_fp16_res" else 1), args[key],
             f"{key} >= {0 if key == 'num_fp16_res' else 1}")
  cmap_dim = args["cmap_dim"]
  _require(path, "D.cmap_dim", cmap_dim is None or _int(cmap_dim, 1),
           cmap_dim, "cmap_dim None or >= 1")
  block = _options(path, "D.block_kwargs", args["block_kwargs"], _D_BLOCK)
  _lrelu(path, "D.block_kwargs.activation", block["activation"])
  _require(path, "D.block_kwargs.freeze_layers",
           _int(block["freeze_layers"]), block["freeze_layers"],
           "freeze_layers >= 0 (a training option: the frozen layers' "
           "weights are imported like the others)")
  m = _options(path, "D.mapping_kwargs", args["mapping_kwargs"], _D_MAPPING)
  _require(path, "D.mapping_kwargs.num_layers", _int(m["num_layers"]),
           m["num_layers"], "num_layers >= 0")
  _lrelu(path, "D.mapping_kwargs.activation", m["activation"])
  lr = m["lr_multiplier"]
  _require(path, "D.mapping_kwargs.lr_multiplier",
           isinstance(lr, (int, float, np.integer, np.floating)) and
           not isinstance(lr, bool) and math.isfinite(lr) and lr > 0, lr,
           "lr_multiplier > 0")
  nc = lambda r: min(int(args["channel_base"]) // r, int(args["channel_max"]))
  width = nc(4) if cmap_dim is None else cmap_dim
  for key in ("embed_features", "layer_features"):
    _require(path, f"D.mapping_kwargs.{key}",
             m[key] is None or (_int(m[key]) and m[key] == width), m[key],
             f"the label mapping {key} None (= cmap_dim, {width})")
  e = _options(path, "D.epilogue_kwargs", args["epilogue_kwargs"],
               _D_EPILOGUE)
  _lrelu(path, "D.epilogue_kwargs.activation", e["activation"])
  group = e["mbstd_group_size"]
  _require(path, "D.epilogue_kwargs.mbstd_group_size",
           group is None or _int(group, 1), group,
           "mbstd_group_size None or >= 1")
  _require(path, "D.epilogue_kwargs.mbstd_num_channels",
           _int(e["mbstd_num_channels"]), e["mbstd_num_channels"],
           "mbstd_num_channels >= 0")
  options = dict(
      resolution=int(args["img_resolution"]),
      channels=int(args["img_channels"]),
      channel_base=int(args["channel_base"]),
      channel_max=int(args["channel_max"]),
      block_architecture=args["architecture"],
      conv_clamp=_clamp(path, "D.conv_clamp", args["conv_clamp"]),
      num_fp16_res=int(args["num_fp16_res"]),
      resample_filter=_taps(path, "D.block_kwargs.resample_filter",
                            block["resample_filter"]),
      cmap_dim=None if cmap_dim is None else int(cmap_dim),
      mapping_layers=int(m["num_layers"]),
      mapping_lr_multiplier=float(lr),
      mbstd_group_size=None if group is None else int(group),
      mbstd_num_channels=int(e["mbstd_num_channels"]))
  return num_classes, options


def _rule(name: str, value: np.ndarray
          ) -> tuple[str, np.ndarray, str] | None:
  """(tfgt path, array in tfgt's layout, note) of an NVlabs tensor, its
  name with "/" for "."; None for the resampling filters."""
  leaf = name.rsplit("/", 1)[-1]
  if leaf == "resample_filter":
    return None
  if name == "mapping/w_avg":
    return "w_avg", value, ""
  if value.ndim == 4:
    return (name, np.transpose(value, (2, 3, 1, 0)),
            "[out, in, kh, kw] -> [kh, kw, in, out]")
  if leaf == "const" and value.ndim == 3:
    return name, np.transpose(value, (1, 2, 0)), "[C, 4, 4] -> [4, 4, C]"
  if leaf == "weight" and value.ndim == 2:
    return name, value.T, "[out, in] -> [in, out]"
  return name, value, ""


def _check_filters(path: str, label: str, tensors: Mapping[str, np.ndarray],
                   pattern: str, taps: Sequence[float]) -> dict[str, str]:
  """Checks the filters of the resampling layers against `taps` (as NVlabs'
  setup_filter makes them: 2D outer product, 1D from 8 taps, normalised to
  sum 1); returns the expected-unused table for mapping.assign.

  Raises:
    UserInputError: a filter that differs (tfgt would resample otherwise).
  """
  t = np.asarray(taps, np.float64)
  expected = t / t.sum() if t.size >= 8 else np.outer(t, t) / t.sum() ** 2
  for name, value in tensors.items():
    name = name.replace(".", "/")
    if not re.fullmatch(pattern, name):
      continue
    if value.shape != expected.shape or not np.allclose(
        value, expected, rtol=1e-5, atol=1e-7):
      raise _fail(path, f"{label}/{name} {list(value.shape)} is not the "
                  f"filter of resample_filter={list(taps)} that the "
                  "network's constructor arguments give; tfgt resamples "
                  "with that one, so the import would compute otherwise.")
  return {pattern: "the resampling filter, which tfgt makes from "
                   "resample_filter (checked equal)", **_UNUSED}


def _networks(path: str) -> dict[str, Any]:
  data = checkpoint_files.load_persistence_pickle(path)
  if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
    raise _fail(path, f"expected a stylegan2-ada-pytorch snapshot (a dict of "
                f"G, D, G_ema, ...), found a {type(data).__name__}.")
  return data


def build_models(path: str, network: str,
                 generator: tuple[int, dict[str, Any]],
                 discriminator: tuple[int, dict[str, Any]] | None,
                 class_names: Sequence[str] | None
                 ) -> tuple[stylegan2.StyleGAN2Generator,
                            stylegan2.StyleGAN2Discriminator | None,
                            list[str]]:
  """tfgt's StyleGAN2 models of an import, built, and their class names.

  Args:
    path: the file, for errors.
    network: the generator's name in the file ("G_ema", "Gs", ...).
    generator: (num_classes, StyleGAN2Generator options).
    discriminator: (num_classes, StyleGAN2Discriminator options), or None
      for a file without D.
    class_names: the names given, or None: the file's stem for an
      unconditional model, "class_<i>" for a conditional one.

  Raises:
    UserInputError: G and D that disagree in resolution, channels or
      classes, class names of another count, or options tfgt's StyleGAN2
      refuses.
  """
  num_classes, g_options = generator
  if discriminator is not None:
    d_classes, d_options = discriminator
    for key in ("resolution", "channels"):
      if d_options[key] != g_options[key]:
        raise _fail(path, f"{network} and D differ in {key} "
                    f"({g_options[key]} and {d_options[key]}).")
    if d_classes != num_classes:
      raise _fail(path, f"{network} has {num_classes} class(es) and D "
                  f"{d_classes}.")
  if class_names is None:
    stem = re.sub(r"\.pkl$", "", path.rstrip("/").rsplit("/", 1)[-1])
    class_names = ([stem] if num_classes == 1 else
                   [f"class_{i}" for i in range(num_classes)])
  class_names = list(class_names)
  if len(class_names) != num_classes:
    raise _fail(path, f"the network has {num_classes} class(es); "
                f"{len(class_names)} class name(s) were given.")
  try:
    g = stylegan2.StyleGAN2Generator(num_classes, **g_options)
    d = (None if discriminator is None else
         stylegan2.StyleGAN2Discriminator(num_classes, **discriminator[1]))
  except ValueError as e:
    raise _fail(path, f"tfgt's StyleGAN2 cannot be built with this "
                f"network's options: {e}") from None
  architectures.build_by_calling(g, d)
  return g, d, class_names


def import_pytorch(path: str, network: str = "G_ema",
                   class_names: Sequence[str] | None = None,
                   noise_mode: str = "z") -> Imported:
  """The generator (`network`: "G_ema", the moving average NVlabs samples
  from, or "G") and the discriminator D of a stylegan2-ada-pytorch pickle,
  as tfgt StyleGAN2 models.

  Args:
    path: the pickle (`network-snapshot-*.pkl`, `ffhq.pkl`, ...).
    network: which generator to import.
    class_names: unconditional: one name (default the file's stem);
      conditional: one per class (default "class_<i>").
    noise_mode: the generator's noise ("z": per sample, seeded by z;
      "const": the pickle's `noise_const` buffers, NVlabs'
      noise_mode="const").

  Returns:
    The models (the discriminator None when the pickle has no D), their
    class names and the report of where each tensor went.

  Raises:
    UserInputError: not such a pickle, constructor arguments tfgt cannot
      build, G and D that disagree, or tensors that do not fit
      (checkpoint_files.UnsafeCheckpointError for a hostile file).
  """
  data = _networks(path)
  if network not in GENERATORS:
    raise _fail(path, f"--network={network!r}: a stylegan2-ada-pytorch "
                f"pickle's generators are {', '.join(GENERATORS)} (D comes "
                "with either).")
  nets = {k: v for k, v in data.items()
          if isinstance(v, checkpoint_files.PersistentObject)}
  if network not in nets:
    raise _fail(path, f"no network {network!r}; it has {sorted(nets)}.")
  g_net = nets[network]
  num_classes, g_options = generator_options(path, network, g_net,
                                             noise_mode)
  d_net = nets.get("D")
  d_options = d_classes = None
  if d_net is not None:
    d_classes, d_options = discriminator_options(path, d_net)
  for child, cls in (("mapping", "MappingNetwork"),
                     ("synthesis", "SynthesisNetwork")):
    found = g_net.modules.get(child)
    if found is None or found.class_name != cls:
      raise _fail(path, f"{network}.{child} is "
                  f"{'missing' if found is None else repr(found.class_name)}"
                  f", not a {cls}.")
  generator, discriminator, class_names = build_models(
      path, network, (num_classes, g_options),
      None if d_options is None else (d_classes, d_options), class_names)
  report: list[Assignment] = []
  unused = _check_filters(path, network, g_net.tensors, _G_RESAMPLING,
                          g_options["resample_filter"])
  mapping.assign(generator.name, generator.variables,
                 [(f"{network}/{n}", n.replace(".", "/"), v, _rule)
                  for n, v in g_net.tensors.items()], report, path, _WHAT,
                 unused)
  if discriminator is not None:
    unused = _check_filters(path, "D", d_net.tensors, _D_RESAMPLING,
                            d_options["resample_filter"])
    mapping.assign(discriminator.name, discriminator.variables,
                   [(f"D/{n}", n.replace(".", "/"), v, _rule)
                    for n, v in d_net.tensors.items()], report, path, _WHAT,
                   unused)
  return Imported(generator, discriminator, class_names, report)


def _read(request: registry.Request) -> Imported:
  return import_pytorch(request.input, request.network, request.class_names,
                        request.noise_mode)


IMPORTER = registry.Importer(
    name="stylegan2_ada_pytorch",
    description=("NVlabs stylegan2-ada-pytorch pickles (network-snapshot-"
                 "*.pkl, ffhq.pkl, cifar10.pkl, ...): G_ema, G's moving "
                 "average, or G, and D; read without running the code they "
                 "carry"),
    read=_read,
    default_network="G_ema",
    other_networks=("G",),
    example="--input=ffhq.pkl --out=sources/ffhq_stylegan2")
