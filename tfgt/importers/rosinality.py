"""rosinality's StyleGAN v1 port (`style-based-gan-pytorch`) as tfgt
StyleGAN bundles.

The official Hyper-Modulation code starts from these checkpoints (FFHQ,
256 px). rosinality's train.py saves a torch file holding the state dicts
`generator`, `discriminator`, `g_running` (the generator's moving average)
and the optimizers'; a file may also be one bare generator state dict.
`checkpoint_files.load_torch` reads either without PyTorch.

The port differs from NVlabs' StyleGAN in ways that tfgt's StyleGAN takes
as options (`bias_before_blur`, `block_noise`, `instance_norm_epsilon`;
D: `from_rgb_activation`, `mbstd_group_size=None`, `widen_in_conv0`) and in
ways that are a change of the stored arrays (docs/IMPORT.md):
- equalised learning rate with gain sqrt(2) everywhere: style affines,
  to-RGB and D's last linear layer (gain 1 in tfgt, as NVlabs) are scaled by
  sqrt(2); the mapping network has no learning-rate multiplier (tfgt keeps
  NVlabs' 0.01: the stored values are divided by it, the same function);
- noise strengths are equalised too (times sqrt(2 / C));
- style affines output gamma (bias 1 at initialisation), tfgt 1 + y_s: 1 is
  taken off the gamma half of the bias;
- the fused upsampling (128 px and above) is a transposed convolution of the
  four shifted kernels averaged (/4): the same as nearest upsampling and a
  3x3 convolution of the kernel flipped, transposed and divided by 4;
- PyTorch layouts: [out, in, kh, kw] -> [kh, kw, in, out]; `[in, out]` of
  the fused transposed convolution; D's last 4x4 convolution without padding
  is `4x4_Dense0` with rows in (H, W, C) order.
The checkpoint holds every block up to 1024 px whatever resolution was
trained, and not the resolution itself: it is given (`resolution`). It holds
no noise buffers nor average w: tfgt draws the buffers (seeded; both layers
of a block share one, as rosinality's noise does) and sets `w_avg` to the
mean w of `W_AVG_SAMPLES` latents (rosinality's generate.py averages
10 x 1024).
"""

from __future__ import annotations

import math
import re
from typing import Sequence

import numpy as np
import tensorflow as tf

from tfgt.errors import UserInputError
from tfgt.importers import checkpoint_files
from tfgt.importers import mapping
from tfgt.importers import registry
from tfgt.importers.mapping import Assignment
from tfgt.importers.mapping import Imported
from tfgt.importers.stylegan import infer_widths
from tfgt.models import architectures
from tfgt.models import stylegan

# rosinality's networks: 9 blocks, 4 px to 1024 px.
NUM_BLOCKS = 9
# The mapping network's learning-rate multiplier that tfgt keeps (NVlabs').
MAPPING_LR_MULTIPLIER = 0.01
# Latents averaged for w_avg, and the seed of them and of the noise buffers.
W_AVG_SAMPLES = 10240
SEED = 0
NETWORKS = ("g_running", "generator")
_WHAT = "rosinality style-based-gan-pytorch (model.py)"
_SQRT2 = math.sqrt(2.0)
_BLUR = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]) / 16.0
# The Blur modules' buffers (kernel and flipped kernel) in each network.
_G_BLUR = r"generator\.progression\.\d+\.conv1\.[12]\.(weight|weight_flip)"
_D_BLUR = r"progression\.\d+\.conv2\.0\.(weight|weight_flip)"


def _conv_kernel(value: np.ndarray) -> np.ndarray:
  """[out, in, kh, kw] -> [kh, kw, in, out]."""
  return np.transpose(value, (2, 3, 1, 0))


def _generator_rule(step: int):
  """The rule (mapping.Rule) of a generator state dict trained at
  4 * 2^step px."""

  def rule(name: str, value: np.ndarray):
    m = re.fullmatch(r"style\.(\d+)\.linear\.(weight_orig|bias)", name)
    if m:
      layer = (int(m.group(1)) - 1) // 2
      if m.group(2) == "bias":
        return (f"G_mapping/Dense{layer}/bias",
                value / MAPPING_LR_MULTIPLIER, "/ lr multiplier 0.01")
      return (f"G_mapping/Dense{layer}/kernel",
              value.T / MAPPING_LR_MULTIPLIER,
              "[out, in] -> [in, out], / lr multiplier 0.01")
    m = re.fullmatch(r"generator\.to_rgb\.(\d+)\.conv\.(weight_orig|bias)",
                     name)
    if m:
      if int(m.group(1)) != step:
        return None
      if m.group(2) == "bias":
        return "G_synthesis/ToRGB_lod0/bias", value, ""
      return ("G_synthesis/ToRGB_lod0/kernel", _conv_kernel(value) * _SQRT2,
              "[out, in, 1, 1] -> [1, 1, in, out], gain sqrt(2) -> 1")
    m = re.fullmatch(r"generator\.progression\.(\d+)\.(.+)", name)
    if not m or int(m.group(1)) > step:
      return None
    block, rest = int(m.group(1)), m.group(2)
    size = 4 * 2 ** block
    first = "4x4_Const" if block == 0 else f"{size}x{size}_Conv0_up"
    second = "4x4_Conv" if block == 0 else f"{size}x{size}_Conv1"
    prefix = "G_synthesis/"
    m = re.fullmatch(r"(noise|adain)([12])\.(.+)", rest)
    if m:
      layer = prefix + (first if m.group(2) == "1" else second)
      if m.group(1) == "noise":
        channels = value.shape[1]
        return (f"{layer}/Noise/weight",
                value.reshape(-1) * math.sqrt(2.0 / channels),
                "[1, C, 1, 1] -> [C], equalised: * sqrt(2 / C)")
      if m.group(3) == "style.linear.weight_orig":
        return (f"{layer}/StyleMod/dense/kernel", value.T * _SQRT2,
                "[2C, w] -> [w, 2C], gain sqrt(2) -> 1")
      if m.group(3) == "style.linear.bias":
        channels = value.shape[0] // 2
        return (f"{layer}/StyleMod/dense/bias",
                value - np.repeat([1.0, 0.0], channels),
                "gamma -> 1 + y_s: 1 off the gamma half")
      return None
    if rest in ("conv1.1.conv.weight_orig", "conv2.conv.weight_orig"):
      layer = first if rest.startswith("conv1") else second
      return f"{prefix}{layer}/conv/kernel", _conv_kernel(value), (
          "[out, in, kh, kw] -> [kh, kw, in, out]")
    if rest in ("conv1.1.conv.bias", "conv2.conv.bias", "conv1.0.bias"):
      layer = second if rest.startswith("conv2") else first
      return f"{prefix}{layer}/bias/bias", value, ""
    if rest == "conv1.0.weight":  # FusedUpsample: [in, out, kh, kw].
      kernel = np.transpose(value[:, :, ::-1, ::-1], (2, 3, 0, 1)) / 4.0
      return (f"{prefix}{first}/conv/kernel", kernel,
              "fused [in, out, kh, kw] -> flipped [kh, kw, in, out] / 4")
    return None

  return rule


def _discriminator_rule(step: int):
  """The rule of a discriminator state dict used at 4 * 2^step px."""
  top = NUM_BLOCKS - 1 - step  # The index of from_rgb and first block.

  def rule(name: str, value: np.ndarray):
    m = re.fullmatch(r"from_rgb\.(\d+)(?:\.0)?\.conv\.(weight_orig|bias)",
                     name)
    if m:
      if int(m.group(1)) != top:
        return None
      if m.group(2) == "bias":
        return "FromRGB_lod0/bias", value, ""
      return "FromRGB_lod0/kernel", _conv_kernel(value), (
          "[out, in, 1, 1] -> [1, 1, in, out]")
    m = re.fullmatch(r"linear\.linear\.(weight_orig|bias)", name)
    if m:
      if m.group(1) == "bias":
        return "4x4_Dense1/bias", value, ""
      return "4x4_Dense1/kernel", value.T * _SQRT2, (
          "[1, C] -> [C, 1], gain sqrt(2) -> 1")
    m = re.fullmatch(r"progression\.(\d+)\.(.+)", name)
    if not m or int(m.group(1)) < top:
      return None
    index, rest = int(m.group(1)), m.group(2)
    kind = "kernel" if rest.endswith("weight") or rest.endswith(
        "weight_orig") else "bias"
    if index == NUM_BLOCKS - 1:  # The 4x4 block.
      if rest.startswith("conv1.0.conv."):
        return (f"4x4_Conv/{kind}",
                _conv_kernel(value) if kind == "kernel" else value,
                "[out, in, kh, kw] -> [kh, kw, in, out]"
                if kind == "kernel" else "")
      if rest.startswith("conv2.0.conv."):
        if kind == "bias":
          return "4x4_Dense0/bias", value, ""
        rows = _conv_kernel(value).reshape(-1, value.shape[0])
        return ("4x4_Dense0/kernel", rows,
                "4x4 conv without padding [out, C, 4, 4] -> dense rows "
                "(H, W, C)")
      return None
    size = 4 * 2 ** (NUM_BLOCKS - 1 - index)
    if rest.startswith("conv1.0.conv."):
      layer = f"{size}x{size}_Conv0"
    elif rest in ("conv2.1.weight", "conv2.1.bias", "conv2.1.conv.weight_orig",
                  "conv2.1.conv.bias"):
      layer = f"{size}x{size}_Conv1_down"
    else:
      return None
    if kind == "bias":
      return f"{layer}/bias", value, ""
    fused = " (fused: the same as conv, then 2x2 mean)" if (
        rest == "conv2.1.weight") else ""
    return f"{layer}/kernel", _conv_kernel(value), (
        "[out, in, kh, kw] -> [kh, kw, in, out]" + fused)

  return rule


def _unused(step: int, what: str) -> dict[str, str]:
  """{name pattern: reason} of the arrays that have no place at `step`."""
  above = "|".join(str(b) for b in range(step + 1, NUM_BLOCKS)) or "x"
  blur = "the fixed [1, 2, 1] blur, built into tfgt's layer"
  if what == "generator":
    others = "|".join(str(b) for b in range(NUM_BLOCKS) if b != step)
    return {rf"generator\.progression\.({above})\..*":
                "above the imported resolution",
            _G_BLUR: blur,
            rf"generator\.to_rgb\.({others})\..*":
                "progressive growing (other resolutions)"}
  top = NUM_BLOCKS - 1 - step
  below = "|".join(str(b) for b in range(top)) or "x"
  others = "|".join(str(b) for b in range(NUM_BLOCKS) if b != top)
  return {rf"progression\.({below})\..*": "above the imported resolution",
          _D_BLUR: blur,
          rf"from_rgb\.({others})\..*":
              "progressive growing (other resolutions)"}


def _check_blurs(arrays: dict[str, np.ndarray], pattern: str,
                 path: str) -> None:
  """The blur buffers must be the fixed kernel that tfgt's layers apply."""
  for name, value in arrays.items():
    if re.fullmatch(pattern, name):
      if value.shape[1:] != (1, 3, 3) or not np.allclose(
          value, _BLUR[None, None], atol=1e-6):
        raise UserInputError(
            f"{path}: {name} is not the [1, 2, 1] blur of rosinality's "
            f"model.py; tfgt's StyleGAN only has that one. Is it a {_WHAT} "
            "checkpoint?")


def _state_dicts(path: str, network: str
                 ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray],
                            list[str]]:
  """(generator arrays, discriminator arrays or {}) by state-dict name, and
  the file's other entries (optimizer state, the other generator)."""
  if network not in NETWORKS:
    raise UserInputError(f"--network={network!r}: a rosinality checkpoint "
                         f"holds {', '.join(NETWORKS)}.")
  obj = checkpoint_files.load_torch(path)
  if not isinstance(obj, dict):
    raise UserInputError(f"{path}: holds a {type(obj).__name__}, not the "
                         f"state dicts of {_WHAT}.")
  if any(k in obj for k in (*NETWORKS, "discriminator")):
    if network not in obj:
      raise UserInputError(f"{path}: no {network!r} in it; it holds "
                           f"{', '.join(map(str, obj))}.")
    g = checkpoint_files.flatten(obj[network])
    d = checkpoint_files.flatten(obj.get("discriminator", {}))
    others = [str(k) for k in obj if k not in (network, "discriminator")]
  else:  # A bare generator state dict (a file of g_running alone).
    g, d, others = checkpoint_files.flatten(obj), {}, []
    network = "the file's state dict"
  g = {re.sub(r"^module\.", "", k): v for k, v in g.items()}
  d = {re.sub(r"^module\.", "", k): v for k, v in d.items()}
  if "generator.progression.0.conv1.input" not in g:
    raise UserInputError(f"{path}: no generator.progression.0.conv1.input "
                         f"in {network}: not a StyledGenerator of {_WHAT}; "
                         "check --from (docs/IMPORT.md names each format's "
                         "files).")
  return g, d, others


def _widths(g: dict[str, np.ndarray], step: int, path: str
            ) -> dict[int, int]:
  """Channels per resolution up to 4 * 2^step, from conv2's kernels."""
  widths = {}
  for block in range(step + 1):
    name = f"generator.progression.{block}.conv2.conv.weight_orig"
    if name not in g:
      raise UserInputError(
          f"{path}: no {name}: the checkpoint has no block at "
          f"{4 * 2 ** block} px; give the --resolution it was trained at.")
    widths[4 * 2 ** block] = int(g[name].shape[0])
  # Noise strengths start at zero and a block that never trained keeps them
  # there: the file holds every block, so this is what tells a resolution
  # that was not reached.
  strengths = [g.get(f"generator.progression.{step}.noise{i}.weight_orig")
               for i in (1, 2)]
  if all(v is not None and not np.any(v) for v in strengths):
    trained = [b for b in range(NUM_BLOCKS) if np.any(g.get(
        f"generator.progression.{b}.noise1.weight_orig", 0))]
    reached = 4 * 2 ** max(trained) if trained else None
    raise UserInputError(
        f"{path}: the block at {4 * 2 ** step} px was never trained (its "
        f"noise strengths are still zero); the file reached "
        f"{reached or 'no'} px. Give --resolution={reached} (rosinality's "
        "train.py names a file after the step it starts next: "
        "train_step-N.model holds resolution 4 * 2^(N-1)).")
  return widths


def import_rosinality(path: str, resolution: int, network: str = "g_running",
                      class_names: Sequence[str] | None = None,
                      noise_mode: str = "z") -> Imported:
  """The generator (`network`: "g_running", the moving average, or
  "generator") and the discriminator of a rosinality StyleGAN checkpoint,
  as tfgt models (see the module docstring).

  Args:
    path: the torch file (`train_step-*.model`, or a bare generator state
      dict).
    resolution: the resolution it was trained at (the file holds all
      blocks): a power of 2 in [8, 1024]; the Hyper-Modulation code uses
      256.
    network: which generator to import.
    class_names: one name (it is unconditional); default the file's stem.
    noise_mode: "z" (noise per sample, as rosinality draws it) or "const"
      (the seeded buffers).

  Returns:
    The models (discriminator None for a file without one), the class
    names and the report.

  Raises:
    UserInputError: a file that is not such a checkpoint, a resolution it
      does not hold, or shapes that do not fit
      (checkpoint_files.UnsafeCheckpointError for a hostile file).
  """
  log2 = int(round(math.log2(resolution))) if resolution > 0 else 0
  if 2 ** log2 != resolution or not 8 <= resolution <= 1024:
    raise UserInputError(f"--resolution must be a power of 2 in [8, 1024] "
                         f"(the resolution the checkpoint was trained at), "
                         f"got {resolution}.")
  step = log2 - 2
  g_arrays, d_arrays, others = _state_dicts(path, network)
  _check_blurs(g_arrays, _G_BLUR, path)
  _check_blurs(d_arrays, _D_BLUR, path)
  widths = _widths(g_arrays, step, path)
  fmap_base, fmap_max, fmap_decay = infer_widths(widths, {})
  dense = sorted(int(m.group(1)) for n in g_arrays
                 if (m := re.fullmatch(r"style\.(\d+)\.linear\.weight_orig",
                                       n)))
  if not dense:
    raise UserInputError(f"{path}: no style.<i>.linear layers: not a "
                         f"StyledGenerator of {_WHAT}.")
  dim = int(g_arrays[f"style.{dense[0]}.linear.weight_orig"].shape[1])
  if class_names is None:
    class_names = [re.sub(r"\.(model|pt|pth)$", "", path.rsplit("/", 1)[-1])]
  class_names = list(class_names)
  if len(class_names) != 1:
    raise UserInputError(f"{path}: the network is unconditional (one "
                         f"class); {len(class_names)} class names were "
                         "given.")
  generator = stylegan.StyleGANGenerator(
      1, resolution=resolution, channels=3, dim_z=dim, w_dim=dim,
      mapping_layers=len(dense), mapping_lr_multiplier=MAPPING_LR_MULTIPLIER,
      fmap_base=fmap_base, fmap_max=fmap_max, fmap_decay=fmap_decay,
      noise_mode=noise_mode, bias_before_blur=True, block_noise=True,
      instance_norm_epsilon=1e-5)
  discriminator = None
  if d_arrays:
    # model.py at first had no activation after from-RGB; later versions
    # add a leaky ReLU (`from_rgb_activate`, train.py's default), which
    # nests the layer: from_rgb.<i>.0.conv.
    activated = any(re.fullmatch(r"from_rgb\.\d+\.0\.conv\..*", n)
                    for n in d_arrays)
    discriminator = stylegan.StyleGANDiscriminator(
        1, resolution=resolution, channels=3, fmap_base=fmap_base,
        fmap_max=fmap_max, fmap_decay=fmap_decay, mbstd_group_size=None,
        from_rgb_activation=activated, widen_in_conv0=True)
  architectures.build_by_calling(generator, discriminator)
  report = [Assignment(k, (), None, "unused: " + (
      "optimizer state" if "optimizer" in k else "not the imported network"))
            for k in others]
  synthesis = generator.synthesis
  # What the file does not hold: the constant layer's bias (rosinality's
  # constant has none), the noise buffers and w_avg (set below).
  const_bias = synthesis.layers_in_order[0].bias.bias
  const_bias.assign(tf.zeros_like(const_bias))
  report.append(Assignment("-", tuple(const_bias.shape),
                           f"{generator.name}/{const_bias.path.split('/', 1)[1]}",
                           "zeros: rosinality's constant input has no bias"))
  rng = np.random.RandomState(SEED)
  buffers = synthesis.const_noise()
  for i in range(0, len(buffers), 2):
    noise = rng.standard_normal(buffers[i].shape).astype(np.float32)
    for buffer in buffers[i:i + 2]:
      buffer.assign(noise)
      report.append(Assignment("-", tuple(buffer.shape),
                               f"{generator.name}/"
                               f"{buffer.path.split('/', 1)[1]}",
                               f"drawn (seed {SEED}), one per block: the "
                               "file holds no noise"))
  const = g_arrays.pop("generator.progression.0.conv1.input")
  synthesis.const.assign(np.transpose(const, (0, 2, 3, 1)))
  report.append(Assignment(f"{network}/generator.progression.0.conv1.input",
                           const.shape, f"{generator.name}/G_synthesis/const",
                           "[1, C, 4, 4] -> [1, 4, 4, C]"))
  own = {id(v) for v in [const_bias, synthesis.const, generator.w_avg,
                         *buffers]}
  mapping.assign(generator.name,
                 [v for v in generator.variables if id(v) not in own],
                 [(f"{network}/{n}", n, v, _generator_rule(step))
                  for n, v in g_arrays.items()], report, path, _WHAT,
                 _unused(step, "generator"))
  z = tf.random.stateless_normal([W_AVG_SAMPLES, dim], seed=[SEED, 1])
  w = generator.map(z, tf.zeros([W_AVG_SAMPLES], tf.int32))
  generator.w_avg.assign(tf.reduce_mean(w, axis=0))
  report.append(Assignment("-", tuple(generator.w_avg.shape),
                           f"{generator.name}/dlatent_avg",
                           f"the mean w of {W_AVG_SAMPLES} latents (seed "
                           f"{SEED}): the file holds none"))
  if discriminator is not None:
    mapping.assign(discriminator.name, discriminator.variables,
                   [(f"discriminator/{n}", n, v, _discriminator_rule(step))
                    for n, v in d_arrays.items()], report, path, _WHAT,
                   _unused(step, "discriminator"))
  return Imported(generator, discriminator, class_names, report)


def _read(request: registry.Request) -> Imported:
  return import_rosinality(request.input, request.resolution, request.network,
                           request.class_names, request.noise_mode)


IMPORTER = registry.Importer(
    name="stylegan_rosinality",
    description=("rosinality's StyleGAN v1 port (style-based-gan-pytorch), "
                 "its train.py checkpoints: generator, discriminator and "
                 "g_running, the generator's moving average"),
    read=_read,
    default_network=NETWORKS[0],
    other_networks=NETWORKS[1:],
    example=("--input=stylegan-256px-new.model --resolution=256 "
             "--out=sources/ffhq_256"),
    options={"resolution": "the resolution the checkpoint was trained at "
                           "(e.g. 256)"},
    required={"resolution": (
        "--resolution is required for stylegan_rosinality (the resolution "
        "the checkpoint was trained at, e.g. 256: its file holds every block "
        "up to 1024 px)")},
    sources=(registry.Source(
        "ffhq_256", "--input=<stylegan-256px-new.model> --resolution=256",
        "the official Hyper-Modulation code's source", preferred=True),))
