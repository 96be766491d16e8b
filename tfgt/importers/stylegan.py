"""NVlabs StyleGAN (v1) pickles as tfgt StyleGAN bundles.

The source of Hyper-Modulation's 256 px settings is an FFHQ StyleGAN
(Karras et al. 2019). NVlabs' pickles (`karras2019stylegan-ffhq-1024x1024.pkl`,
or any `network-snapshot-*.pkl` of their code) hold three dnnlib networks:
G, D and Gs (the generator's moving average). `import_nvlabs` reads them with
`checkpoint_files.load_nvlabs_pickle` (no TF1, no dnnlib, no code from the
file runs), maps every variable by name onto `tfgt.models.stylegan`, whose
layers follow NVlabs' names, changes the layouts where the two differ, and
returns the models and a report of where each array went.

Layout changes (docs/STYLEGAN.md): `const` [1, C, 4, 4] -> [1, 4, 4, C];
noise buffers [1, 1, H, W] -> [1, H, W, 1]; D's `4x4/Dense0` rows flattened
as (C, H, W) -> (H, W, C); kernels of `Conv0_up` at 128 px and above, where
NVlabs fuses upsampling into a transposed convolution, flipped in both
spatial axes. Widths, resolution, latent sizes and class count are read
from the arrays (with the pickle's own keyword arguments where it has
them), not assumed.
"""

from __future__ import annotations

import math
import re
from typing import Sequence

import numpy as np

from tfgt.errors import UserInputError
from tfgt.importers import checkpoint_files
from tfgt.importers import mapping
from tfgt.importers import registry
from tfgt.importers.mapping import Assignment
from tfgt.importers.mapping import Imported
from tfgt.models import architectures
from tfgt.models import stylegan

# NVlabs fuses upsampling into Conv0_up from this resolution on
# (`fused_scale="auto"`: when the output is at least 128 px).
FUSED_UP_RESOLUTION = 128
# Arrays of the pickles that tfgt has no use for: the progressive-growing
# outputs of lower levels of detail, and the level of detail itself.
_EXPECTED_UNUSED = {r"ToRGB_lod[1-9]\d*/.*": "progressive growing",
                    r"FromRGB_lod[1-9]\d*/.*": "progressive growing",
                    r"lod": "progressive growing"}
_WHAT = "StyleGAN v1 (networks_stylegan.py)"


def _layer_target(resolution: str, layer: str, rest: str) -> str | None:
  names = {"weight": "conv/kernel", "bias": "bias/bias",
           "Noise/weight": "Noise/weight",
           "StyleMod/weight": "StyleMod/dense/kernel",
           "StyleMod/bias": "StyleMod/dense/bias"}
  if rest not in names or (layer == "Const" and rest == "weight"):
    return None
  return f"G_synthesis/{resolution}x{resolution}_{layer}/{names[rest]}"


def _synthesis_rule(name: str, value: np.ndarray
                    ) -> tuple[str, np.ndarray, str] | None:
  """(tfgt path, array in tfgt's layout, note) of a G_synthesis array."""
  m = re.fullmatch(r"(\d+)x\1/Const/const", name)
  if m:
    return ("G_synthesis/const", np.transpose(value, (0, 2, 3, 1)),
            "[1, C, 4, 4] -> [1, 4, 4, C]")
  m = re.fullmatch(r"noise(\d+)", name)
  if m:
    return (f"G_synthesis/noise{m.group(1)}",
            np.transpose(value, (0, 2, 3, 1)), "[1, 1, H, W] -> [1, H, W, 1]")
  m = re.fullmatch(r"ToRGB_lod0/(weight|bias)", name)
  if m:
    return (f"G_synthesis/ToRGB_lod0/"
            f"{'kernel' if m.group(1) == 'weight' else 'bias'}", value, "")
  m = re.fullmatch(r"(\d+)x\1/(Const|Conv|Conv0_up|Conv1)/(.+)", name)
  if m:
    resolution, layer, rest = m.group(1), m.group(2), m.group(3)
    target = _layer_target(resolution, layer, rest)
    if target is None:
      return None
    if (layer == "Conv0_up" and rest == "weight" and
        int(resolution) >= FUSED_UP_RESOLUTION):
      return target, value[::-1, ::-1], "flipped (fused upsampling)"
    return target, value, ""
  return None


def _mapping_rule(name: str, value: np.ndarray
                  ) -> tuple[str, np.ndarray, str] | None:
  m = re.fullmatch(r"Dense(\d+)/(weight|bias)", name)
  if m:
    kind = "kernel" if m.group(2) == "weight" else "bias"
    return f"G_mapping/Dense{m.group(1)}/{kind}", value, ""
  if name == "LabelConcat/weight":
    return "G_mapping/LabelConcat", value, ""
  return None


def _discriminator_rule(name: str, value: np.ndarray
                        ) -> tuple[str, np.ndarray, str] | None:
  m = re.fullmatch(r"FromRGB_lod0/(weight|bias)", name)
  if m:
    return (f"FromRGB_lod0/{'kernel' if m.group(1) == 'weight' else 'bias'}",
            value, "")
  m = re.fullmatch(r"(\d+)x\1/(Conv0|Conv1_down|Conv|Dense0|Dense1)/"
                   r"(weight|bias)", name)
  if not m:
    return None
  target = (f"{m.group(1)}x{m.group(1)}_{m.group(2)}/"
            f"{'kernel' if m.group(3) == 'weight' else 'bias'}")
  if m.group(2) == "Dense0" and m.group(3) == "weight":
    rows, out = value.shape
    channels = rows // 16
    value = value.reshape(channels, 4, 4, out).transpose(1, 2, 0, 3).reshape(
        rows, out)
    return target, value, "rows (C, H, W) -> (H, W, C)"
  return target, value, ""


def _resolutions(names: Sequence[str]) -> list[int]:
  return sorted({int(m.group(1)) for n in names
                 if (m := re.match(r"(\d+)x\1/", n))})


def infer_widths(channels_by_resolution: dict[int, int],
                 known: dict) -> tuple[int, int, float]:
  """(fmap_base, fmap_max, fmap_decay) that give these channels per
  resolution (NVlabs' nf), preferring the pickle's own keyword arguments.

  Raises:
    UserInputError: no such widths exist.
  """
  decay = float(known.get("fmap_decay", 1.0))
  fmap_max = int(known.get("fmap_max", max(channels_by_resolution.values())))
  candidates = [int(known["fmap_base"])] if "fmap_base" in known else []
  for resolution, c in sorted(channels_by_resolution.items()):
    stage = int(math.log2(resolution)) - 1
    if c < fmap_max:
      candidates.append(int(math.ceil(c * 2.0 ** (stage * decay))))
  top = int(math.log2(max(channels_by_resolution))) - 1
  candidates.append(int(fmap_max * 2.0 ** (top * decay)))
  for base in candidates:
    if all(stylegan.num_features(int(math.log2(r)) - 1, base, fmap_max,
                                 decay) == c
           for r, c in channels_by_resolution.items()):
      return base, fmap_max, decay
  raise UserInputError(
      f"No fmap_base/fmap_max/fmap_decay give the channels per resolution "
      f"{channels_by_resolution} as StyleGAN's nf() does: not a StyleGAN v1 "
      "network of standard widths.")


def networks_by_name(path: str) -> dict:
  """The dnnlib networks of an NVlabs pickle by name ("G", "D", "Gs"; a
  tuple of three is in that order when the names are missing)."""
  networks = checkpoint_files.load_nvlabs_pickle(path)
  by_name = {n.name: n for n in networks}
  if len(networks) == 3:  # The tuple's order is G, D, Gs.
    by_name.setdefault("G", networks[0])
    by_name.setdefault("D", networks[1])
    by_name.setdefault("Gs", networks[2])
  return by_name


def import_nvlabs(path: str, network: str = "Gs",
                  class_names: Sequence[str] | None = None,
                  noise_mode: str = "z") -> Imported:
  """The generator (`network`: "Gs", the moving average, or "G") and the
  discriminator of an NVlabs StyleGAN pickle, as tfgt models.

  Args:
    path: the pickle.
    network: which generator to import.
    class_names: names of the classes (unconditional: one name, default
      the file's stem; conditional: one per label, default "class_<i>").
    noise_mode: the generator's noise ("z": per sample, as NVlabs'
      randomize_noise=True; "const": the pickle's noise buffers).

  Returns:
    The models, their class names and the report.

  Raises:
    UserInputError: not an NVlabs StyleGAN v1 pickle, or shapes that do not
      fit (checkpoint_files.UnsafeCheckpointError for a hostile file).
  """
  by_name = networks_by_name(path)
  if network not in by_name:
    raise UserInputError(f"{path}: no network {network!r}; it has "
                         f"{sorted(by_name)}.")
  g_net = by_name[network]
  try:
    mapping_net = g_net.components["mapping"]
    synthesis = g_net.components["synthesis"]
  except KeyError as e:
    raise UserInputError(f"{path}: {network} has no {e} component: not a "
                         "StyleGAN (G_style) network.") from e
  m_vars, s_vars = mapping_net.variables, synthesis.variables
  dense = sorted(int(m.group(1)) for n in m_vars
                 if (m := re.fullmatch(r"Dense(\d+)/weight", n)))
  if not dense or "ToRGB_lod0/weight" not in s_vars:
    raise UserInputError(f"{path}: {network} lacks G_mapping/Dense0 or "
                         "G_synthesis/ToRGB_lod0: not a StyleGAN v1 network.")
  label = m_vars.get("LabelConcat/weight")
  num_classes = 1 if label is None else int(label.shape[0])
  w_dim = int(m_vars[f"Dense{dense[-1]}/weight"].shape[1])
  dim_z = int(m_vars["Dense0/weight"].shape[0]) // (1 if label is None else 2)
  resolutions = _resolutions(s_vars)
  channels_at = {}
  for r in resolutions:
    layer = "Const" if r == 4 else "Conv1"
    channels_at[r] = int(s_vars[f"{r}x{r}/{layer}/bias"].shape[0])
  known = {**synthesis.static_kwargs, **g_net.static_kwargs}
  fmap_base, fmap_max, fmap_decay = infer_widths(channels_at, known)
  kwargs = dict(
      resolution=resolutions[-1],
      channels=int(s_vars["ToRGB_lod0/weight"].shape[-1]), dim_z=dim_z,
      w_dim=w_dim, mapping_layers=len(dense),
      mapping_lr_multiplier=float(mapping_net.static_kwargs.get(
          "mapping_lrmul", known.get("mapping_lrmul", 0.01))),
      fmap_base=fmap_base, fmap_max=fmap_max, fmap_decay=fmap_decay,
      style_mixing_prob=float(known.get("style_mixing_prob", 0.9)),
      truncation_cutoff=int(known.get("truncation_cutoff", 8)),
      noise_mode=noise_mode)
  if class_names is None:
    stem = re.sub(r"\.pkl$", "", path.rsplit("/", 1)[-1])
    class_names = ([stem] if num_classes == 1 else
                   [f"class_{i}" for i in range(num_classes)])
  class_names = list(class_names)
  if len(class_names) != num_classes:
    raise UserInputError(f"{path}: the network has {num_classes} classes; "
                         f"{len(class_names)} class names were given.")
  generator = stylegan.StyleGANGenerator(num_classes, **kwargs)
  discriminator = None
  d_net = by_name.get("D")
  if d_net is not None:
    discriminator = stylegan.StyleGANDiscriminator(
        num_classes, resolution=kwargs["resolution"],
        channels=kwargs["channels"], fmap_base=fmap_base, fmap_max=fmap_max,
        fmap_decay=fmap_decay,
        mbstd_group_size=int(d_net.static_kwargs.get("mbstd_group_size", 4)))
  architectures.build_by_calling(generator, discriminator)
  report: list[Assignment] = []
  for name, value in g_net.variables.items():
    if name == "dlatent_avg":
      generator.w_avg.assign(np.asarray(value, np.float32))
      report.append(Assignment(f"{network}/dlatent_avg", np.shape(value),
                               generator.w_avg.path, ""))
    elif name != "lod":
      raise UserInputError(f"{path}: unexpected array {network}/{name}.")
  # dlatent_avg sits on the top-level network, assigned above.
  mapping.assign(generator.name,
                 [v for v in generator.variables if v is not generator.w_avg],
                 [(f"{network}/mapping/{n}", n, v, _mapping_rule)
                  for n, v in m_vars.items()] +
                 [(f"{network}/synthesis/{n}", n, v, _synthesis_rule)
                  for n, v in s_vars.items()], report, path, _WHAT,
                 _EXPECTED_UNUSED)
  if discriminator is not None:
    mapping.assign(discriminator.name, discriminator.variables,
                   [(f"D/{n}", n, v, _discriminator_rule)
                    for n, v in d_net.variables.items()], report, path,
                   _WHAT, _EXPECTED_UNUSED)
  return Imported(generator, discriminator, class_names, report)


def _read(request: registry.Request) -> Imported:
  return import_nvlabs(request.input, request.network, request.class_names,
                       request.noise_mode)


IMPORTER = registry.Importer(
    name="stylegan_nvlabs",
    description=("NVlabs StyleGAN v1 pickles (network-snapshot-*.pkl, "
                 "karras2019stylegan-*.pkl): G, D and Gs, G's moving "
                 "average"),
    read=_read,
    default_network="Gs",
    other_networks=("G",),
    example=("--input=karras2019stylegan-ffhq-1024x1024.pkl "
             "--out=sources/ffhq"),
    sources=(registry.Source(
        "ffhq_256", "--input=<an FFHQ StyleGAN pickle at 256 px>",
        "NVlabs' own"),))
