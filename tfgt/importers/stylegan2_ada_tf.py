"""NVlabs' TensorFlow StyleGAN2 and StyleGAN2-ADA pickles as tfgt StyleGAN2
bundles.

Before stylegan2-ada-pytorch, NVlabs released StyleGAN2 (stylegan2-*-config-f
pickles: FFHQ, cars, cats, churches, horses) and StyleGAN2-ADA (AFHQ,
MetFaces, BreCaHAD, the class-conditional CIFAR-10) in TensorFlow 1: pickles
of three dnnlib networks, G, D and Gs (G's moving average), each the state
of a `dnnlib.tflib.network.Network` with the source of its module as text.
`import_tensorflow` reads them with `checkpoint_files.load_nvlabs_pickle`
(no TF1, no dnnlib, nothing from the file runs), derives the constructor
arguments of NVlabs' PyTorch networks from each network's static keyword
arguments (the correspondence stylegan2-ada-pytorch's `legacy.py` uses:
latent_size -> z_dim, label_size -> c_dim, fmap_base -> channel_base / 2,
...), checks them as the PyTorch pickles' importer does
(`stylegan2_ada.generator_options_of`) and places every array by name:

  * G_mapping: `Dense<i>` -> `mapping/fc<i>`, `LabelEmbed` ->
    `mapping/embed`; `dlatent_avg` -> `w_avg`;
  * G_synthesis: `<r>x<r>/Const/const` [1, C, 4, 4] -> `b4/const`
    [4, 4, C]; `4x4/Conv`, `<r>x<r>/Conv0_up`, `<r>x<r>/Conv1` ->
    `b<r>/conv1`, `conv0`, `conv1`; `ToRGB`, `Skip` -> `torgb`, `skip`;
    `noise<k>` [1, 1, H, W] -> the layer's `noise_const` [H, W] (k = 0 for
    b4's conv1, then conv0 and conv1 of each resolution in turn);
    `mod_weight` / `mod_bias` -> `affine/weight` / `affine/bias` + 1 (the
    TensorFlow layer adds the 1 at run time); `ToRGB_lod<i>` (the "orig"
    architecture's one output) -> the torgb of resolution R / 2^i;
  * D: `<r>x<r>/FromRGB`, `Conv0`, `Conv1_down`, `Skip` -> `b<r>/fromrgb`,
    `conv0`, `conv1`, `skip`; `4x4/Conv`, `4x4/Dense0`, `Output` ->
    `b4/conv`, `b4/fc`, `b4/out`; `LabelEmbed`, `Mapping<i>` ->
    `mapping/embed`, `mapping/fc<i>`.

Kernels are [kh, kw, in, out] and dense weights [in, out] in both; the
upsampling kernels of G (`Conv0_up`, `Skip`) are flipped in both spatial
axes, since TensorFlow's transposed convolution correlates where tfgt's (and
PyTorch's) upsampling convolution convolves. D's `4x4/Dense0` reads its
input channel-major (NCHW) in both.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

from tfgt.errors import UserInputError
from tfgt.importers import mapping
from tfgt.importers import registry
from tfgt.importers import stylegan
from tfgt.importers import stylegan2_ada
from tfgt.importers.mapping import Assignment
from tfgt.importers.mapping import Imported

_WHAT = "TensorFlow StyleGAN2 / StyleGAN2-ADA (training/networks_stylegan2.py)"
GENERATORS = ("Gs", "G")

# The networks' static keyword arguments that the import reads, with
# NVlabs' defaults (legacy.py's correspondence); arguments of sampling and
# training that change no weight are accepted and ignored.
_G_KWARGS = dict(latent_size=512, label_size=0, dlatent_size=512,
                 resolution=1024, num_channels=3, mapping_layers=8,
                 label_fmaps=None, mapping_fmaps=None,
                 mapping_nonlinearity="lrelu", mapping_lrmul=0.01,
                 w_avg_beta=0.995, fmap_base=16384, fmap_max=512,
                 num_fp16_res=0, conv_clamp=None, architecture="skip",
                 resample_kernel=[1, 3, 3, 1], use_noise=True,
                 nonlinearity="lrelu")
_D_KWARGS = dict(label_size=0, resolution=1024, num_channels=3,
                 architecture="resnet", fmap_base=16384, fmap_max=512,
                 num_fp16_res=0, conv_clamp=None, mapping_fmaps=None,
                 nonlinearity="lrelu", resample_kernel=[1, 3, 3, 1],
                 freeze_layers=0, mapping_layers=0, mapping_lrmul=0.1,
                 mbstd_group_size=None, mbstd_num_features=1)
_IGNORED = ("truncation_psi", "truncation_cutoff", "style_mixing_prob",
            "structure", "is_template_graph", "components", "func_name",
            "num_fp16_res_g", "randomize_noise", "dtype")
_EXPECTED_UNUSED = {r"lod": "progressive growing's level of detail"}


def _fail(path: str, message: str) -> UserInputError:
  return UserInputError(f"{path}: {message}")


def _kwargs(path: str, label: str, static: dict,
            defaults: dict) -> dict[str, Any]:
  unknown = sorted(set(static) - set(defaults) - set(_IGNORED))
  if unknown:
    raise _fail(path, f"{label} has the static argument(s) "
                f"{', '.join(unknown)}, which NVlabs' StyleGAN2 networks do "
                f"not have: a network of modified code; tfgt imports "
                f"{', '.join(defaults)}.")
  return {**defaults, **{k: v for k, v in static.items() if k in defaults}}


def _fmap_base(path: str, label: str, value: Any) -> int:
  if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or (
      value < 1):
    raise _fail(path, f"{label}.fmap_base={value!r}: expected an int >= 1.")
  return 2 * int(value)  # NVlabs' TF nf() halves what PyTorch's does not.


def generator_arguments(path: str, label: str, static: dict,
                        orig: bool) -> dict[str, Any]:
  """The constructor arguments of NVlabs' PyTorch `Generator` that a
  TensorFlow G's static keyword arguments stand for (`orig`: the pickle
  has the "orig" architecture's ToRGB_lod outputs)."""
  k = _kwargs(path, label, static, _G_KWARGS)
  return dict(
      z_dim=k["latent_size"], c_dim=k["label_size"], w_dim=k["dlatent_size"],
      img_resolution=k["resolution"], img_channels=k["num_channels"],
      mapping_kwargs=dict(
          num_layers=k["mapping_layers"], embed_features=k["label_fmaps"],
          layer_features=k["mapping_fmaps"],
          activation=k["mapping_nonlinearity"],
          lr_multiplier=k["mapping_lrmul"],
          # None: no tracked average (legacy.py's 1), which tfgt refuses.
          w_avg_beta=1 if k["w_avg_beta"] is None else k["w_avg_beta"]),
      synthesis_kwargs=dict(
          channel_base=_fmap_base(path, label, k["fmap_base"]),
          channel_max=k["fmap_max"], num_fp16_res=k["num_fp16_res"],
          conv_clamp=k["conv_clamp"],
          architecture="orig" if orig else k["architecture"],
          resample_filter=k["resample_kernel"], use_noise=k["use_noise"],
          activation=k["nonlinearity"]))


def discriminator_arguments(path: str, static: dict,
                            orig: bool) -> dict[str, Any]:
  """The constructor arguments of NVlabs' PyTorch `Discriminator` that a
  TensorFlow D's static keyword arguments stand for."""
  k = _kwargs(path, "D", static, _D_KWARGS)
  return dict(
      c_dim=k["label_size"], img_resolution=k["resolution"],
      img_channels=k["num_channels"],
      architecture="orig" if orig else k["architecture"],
      channel_base=_fmap_base(path, "D", k["fmap_base"]),
      channel_max=k["fmap_max"], num_fp16_res=k["num_fp16_res"],
      conv_clamp=k["conv_clamp"], cmap_dim=k["mapping_fmaps"],
      block_kwargs=dict(activation=k["nonlinearity"],
                        resample_filter=k["resample_kernel"],
                        freeze_layers=k["freeze_layers"]),
      mapping_kwargs=dict(num_layers=k["mapping_layers"],
                          embed_features=k["mapping_fmaps"],
                          layer_features=k["mapping_fmaps"],
                          activation=k["nonlinearity"],
                          lr_multiplier=float(k["mapping_lrmul"])),
      epilogue_kwargs=dict(mbstd_group_size=k["mbstd_group_size"],
                           mbstd_num_channels=k["mbstd_num_features"],
                           activation=k["nonlinearity"]))


def _layer(resolution: str, layer: str) -> str | None:
  """The tfgt layer of a G_synthesis layer scope."""
  if resolution == "4":
    return {"Conv": "b4/conv1", "ToRGB": "b4/torgb"}.get(layer)
  return {"Conv0_up": f"b{resolution}/conv0", "Conv1": f"b{resolution}/conv1",
          "ToRGB": f"b{resolution}/torgb",
          "Skip": f"b{resolution}/skip"}.get(layer)


def _noise_layer(index: int) -> str:
  """The layer of `noise<index>`: b4's conv1, then conv0 and conv1 of each
  resolution (legacy.py: noise 2 log2(r) - 5 and 2 log2(r) - 4)."""
  if index == 0:
    return "b4/conv1"
  if index % 2:
    return f"b{2 ** ((index + 5) // 2)}/conv0"
  return f"b{2 ** ((index + 4) // 2)}/conv1"


def _synthesis_rule(resolution: int):
  def rule(name: str, value: np.ndarray
           ) -> tuple[str, np.ndarray, str] | None:
    m = re.fullmatch(r"ToRGB_lod(\d+)/(.+)", name)
    if m:
      r = resolution // 2 ** int(m.group(1))
      name = f"{r}x{r}/ToRGB/{m.group(2)}"
    # An array of another rank keeps its shape, which the assignment
    # refuses as not fitting.
    four = value.ndim == 4 and value.shape[0] == 1
    m = re.fullmatch(r"4x4/Const/const", name)
    if m:
      return ("synthesis/b4/const",
              np.transpose(value[0], (1, 2, 0)) if four else value,
              "[1, C, 4, 4] -> [4, 4, C]")
    m = re.fullmatch(r"noise(\d+)", name)
    if m:
      return (f"synthesis/{_noise_layer(int(m.group(1)))}/noise_const",
              value[0, 0] if four and value.shape[1] == 1 else value,
              "[1, 1, H, W] -> [H, W]")
    m = re.fullmatch(r"(\d+)x\1/(\w+)/(\w+)", name)
    if not m:
      return None
    layer = _layer(m.group(1), m.group(2))
    leaf = {"weight": "weight", "bias": "bias",
            "noise_strength": "noise_strength",
            "mod_weight": "affine/weight",
            "mod_bias": "affine/bias"}.get(m.group(3))
    if layer is None or leaf is None:
      return None
    target = f"synthesis/{layer}/{leaf}"
    if leaf == "affine/bias":
      return target, value + np.float32(1), "+ 1 (added at run time in TF)"
    if leaf == "weight" and m.group(2) in ("Conv0_up", "Skip") and (
        value.ndim == 4):
      return (target, value[::-1, ::-1],
              "flipped in both spatial axes (transposed convolution)")
    return target, value, ""
  return rule


def _mapping_rule(name: str, value: np.ndarray
                  ) -> tuple[str, np.ndarray, str] | None:
  m = re.fullmatch(r"Dense(\d+)/(weight|bias)", name)
  if m:
    return f"mapping/fc{m.group(1)}/{m.group(2)}", value, ""
  m = re.fullmatch(r"LabelEmbed/(weight|bias)", name)
  if m:
    return f"mapping/embed/{m.group(1)}", value, ""
  return None


def _discriminator_rule(name: str, value: np.ndarray
                        ) -> tuple[str, np.ndarray, str] | None:
  m = re.fullmatch(r"(\d+)x\1/(FromRGB|Conv0|Conv1_down|Skip|Conv|Dense0)/"
                   r"(weight|bias)", name)
  if m:
    layer = {"FromRGB": "fromrgb", "Conv0": "conv0", "Conv1_down": "conv1",
             "Skip": "skip", "Conv": "conv", "Dense0": "fc"}[m.group(2)]
    return f"b{m.group(1)}/{layer}/{m.group(3)}", value, ""
  m = re.fullmatch(r"Output/(weight|bias)", name)
  if m:
    return f"b4/out/{m.group(1)}", value, ""
  m = re.fullmatch(r"LabelEmbed/(weight|bias)", name)
  if m:
    return f"mapping/embed/{m.group(1)}", value, ""
  m = re.fullmatch(r"Mapping(\d+)/(weight|bias)", name)
  if m:
    return f"mapping/fc{m.group(1)}/{m.group(2)}", value, ""
  return None


def _has_lod(variables: dict, prefix: str) -> bool:
  return any(re.fullmatch(prefix + r"_lod\d+/.+", n) for n in variables)


def import_tensorflow(path: str, network: str = "Gs",
                      class_names: Sequence[str] | None = None,
                      noise_mode: str = "z") -> Imported:
  """The generator (`network`: "Gs", the moving average NVlabs samples
  from, or "G") and the discriminator D of an NVlabs TensorFlow StyleGAN2
  or StyleGAN2-ADA pickle, as tfgt StyleGAN2 models.

  Args:
    path: the pickle (`stylegan2-ffhq-config-f.pkl`, `network-snapshot-
      *.pkl` of stylegan2-ada, ...).
    network: which generator to import.
    class_names: unconditional: one name (default the file's stem);
      conditional: one per class (default "class_<i>").
    noise_mode: the generator's noise ("z": per sample, seeded by z;
      "const": the pickle's `noise<k>` arrays).

  Returns:
    The models (the discriminator None when the pickle has none), their
    class names and the report of where each array went.

  Raises:
    UserInputError: not such a pickle (a StyleGAN v1 pickle is named as
      one), arguments tfgt cannot build, G and D that disagree, or arrays
      that do not fit (checkpoint_files.UnsafeCheckpointError for a hostile
      file).
  """
  by_name = stylegan.networks_by_name(path)
  if network not in GENERATORS:
    raise _fail(path, f"--network={network!r}: a TensorFlow StyleGAN2 "
                f"pickle's generators are {', '.join(GENERATORS)}.")
  if network not in by_name:
    raise _fail(path, f"no network {network!r}; it has {sorted(by_name)}.")
  g_net = by_name[network]
  parts = {}
  for child in ("mapping", "synthesis"):
    parts[child] = g_net.components.get(child)
    if parts[child] is None:
      raise _fail(path, f"{network} has no {child} component: not a "
                  "StyleGAN2 generator (G_main).")
  s_vars = parts["synthesis"].variables
  if "4x4/Conv/mod_weight" not in s_vars:
    hint = (" It has the layers of StyleGAN v1: import it with "
            "--from=stylegan_nvlabs." if "4x4/Conv/weight" in s_vars or
            "4x4/Const/StyleMod/weight" in s_vars else "")
    raise _fail(path, f"{network}/synthesis has no 4x4/Conv/mod_weight: not "
                f"a StyleGAN2 synthesis network.{hint}")
  static = {**parts["mapping"].static_kwargs,
            **parts["synthesis"].static_kwargs, **g_net.static_kwargs}
  g_args = generator_arguments(path, network, static,
                               _has_lod(s_vars, "ToRGB"))
  num_classes, g_options = stylegan2_ada.generator_options_of(
      path, network, g_args, noise_mode)
  d_net = by_name.get("D")
  d_part = None
  if d_net is not None:
    d_args = discriminator_arguments(path, d_net.static_kwargs,
                                     _has_lod(d_net.variables, "FromRGB"))
    d_part = stylegan2_ada.discriminator_options_of(path, d_args)
  generator, discriminator, class_names = stylegan2_ada.build_models(
      path, network, (num_classes, g_options), d_part, class_names)
  report: list[Assignment] = []
  resolution = g_options["resolution"]
  top = {n: v for n, v in g_net.variables.items()}
  avg = top.pop("dlatent_avg", None)
  if avg is None:
    raise _fail(path, f"{network} has no dlatent_avg (the average w that "
                "truncation needs).")
  arrays = [(f"{network}/dlatent_avg", "dlatent_avg", avg,
             lambda n, v: ("w_avg", v, ""))]
  arrays += [(f"{network}/{n}", n, v, lambda n, v: None)
             for n, v in top.items()]
  arrays += [(f"{network}/mapping/{n}", n, v, _mapping_rule)
             for n, v in parts["mapping"].variables.items()]
  arrays += [(f"{network}/synthesis/{n}", n, v, _synthesis_rule(resolution))
             for n, v in s_vars.items()]
  mapping.assign(generator.name, generator.variables, arrays, report, path,
                 _WHAT, _EXPECTED_UNUSED)
  if discriminator is not None:
    d_vars = {}
    for n, v in d_net.variables.items():
      m = re.fullmatch(r"FromRGB_lod(\d+)/(.+)", n)
      if m:
        r = resolution // 2 ** int(m.group(1))
        n = f"{r}x{r}/FromRGB/{m.group(2)}"
      d_vars[n] = v
    mapping.assign(discriminator.name, discriminator.variables,
                   [(f"D/{n}", n, v, _discriminator_rule)
                    for n, v in d_vars.items()], report, path, _WHAT,
                   _EXPECTED_UNUSED)
  return Imported(generator, discriminator, class_names, report)


def _read(request: registry.Request) -> Imported:
  return import_tensorflow(request.input, request.network,
                           request.class_names, request.noise_mode)


IMPORTER = registry.Importer(
    name="stylegan2_ada_tf",
    description=("NVlabs' TensorFlow StyleGAN2 and StyleGAN2-ADA pickles "
                 "(stylegan2-*-config-f.pkl, network-snapshot-*.pkl of "
                 "stylegan2-ada): Gs, G's moving average, or G, and D; read "
                 "without running the code they carry"),
    read=_read,
    default_network="Gs",
    other_networks=("G",),
    example="--input=stylegan2-ffhq-config-f.pkl --out=sources/ffhq_stylegan2")
