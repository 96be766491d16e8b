"""NVlabs' TensorFlow StyleGAN2(-ADA) pickles into tfgt: the stand-in
networks of tests/importers/test_stylegan2_ada.py are written as the
TensorFlow code pickles them (dnnlib Networks G, D, Gs with G's mapping and
synthesis components; TensorFlow's names, layouts, static keyword arguments
and the affine biases without their run-time 1), imported, and compared with
the NumPy forward pass of StyleGAN2 on the PyTorch-layout tensors."""

import math
import os

import numpy as np
import pytest

from tests import checkpoint_writers as writers
from tests.importers import test_stylegan2_ada as pytorch_case
from tfgt import import_source
from tfgt.errors import UserInputError
from tfgt.importers import stylegan2_ada_tf as importer

RESOLUTION = pytorch_case.RESOLUTION


def _scope(layer: str, r: int) -> str:
  if r == 4:
    return {"conv1": "Conv", "torgb": "ToRGB"}[layer]
  return {"conv0": "Conv0_up", "conv1": "Conv1", "torgb": "ToRGB",
          "skip": "Skip"}[layer]


def _noise_index(layer: str, r: int) -> int:
  if r == 4:
    return 0
  return 2 * int(math.log2(r)) - (5 if layer == "conv0" else 4)


def tf_generator(net, g_kwargs, name="Gs", static_extra=None):
  """The TensorFlow G_main network of a stand-in PyTorch Generator."""
  top, mapping, synthesis = {}, {}, {}
  for key, value in net.tensors().items():
    parts = key.split(".")
    if parts[-1] == "resample_filter":
      continue  # TensorFlow makes its filters in the graph.
    if key == "mapping.w_avg":
      top["dlatent_avg"] = value
    elif parts[0] == "mapping":
      scope = ("LabelEmbed" if parts[1] == "embed" else
               f"Dense{parts[1][2:]}")
      mapping[f"{scope}/{parts[2]}"] = value.T if parts[2] == "weight" else (
          value)
    else:
      r = int(parts[1][1:])
      if parts[2] == "const":
        synthesis["4x4/Const/const"] = value[None]
        continue
      layer, rest = parts[2], parts[3:]
      scope = f"{r}x{r}/{_scope(layer, r)}"
      if rest == ["noise_const"]:
        synthesis[f"noise{_noise_index(layer, r)}"] = value[None, None]
      elif rest == ["affine", "weight"]:
        synthesis[f"{scope}/mod_weight"] = value.T
      elif rest == ["affine", "bias"]:
        synthesis[f"{scope}/mod_bias"] = value - np.float32(1)
      elif rest == ["weight"]:
        kernel = value.transpose(2, 3, 1, 0)
        if layer in ("conv0", "skip"):
          kernel = kernel[::-1, ::-1]
        synthesis[f"{scope}/weight"] = np.ascontiguousarray(kernel)
      else:
        synthesis[f"{scope}/{rest[0]}"] = value
  s = g_kwargs.get("synthesis_kwargs", {})
  static = dict(
      latent_size=g_kwargs["z_dim"], label_size=g_kwargs["c_dim"],
      dlatent_size=g_kwargs["w_dim"], resolution=g_kwargs["img_resolution"],
      num_channels=g_kwargs["img_channels"],
      mapping_layers=g_kwargs["mapping_kwargs"]["num_layers"],
      fmap_base=s.get("channel_base", 32768) // 2,
      fmap_max=s.get("channel_max", 512),
      architecture=s.get("architecture", "skip"),
      conv_clamp=s.get("conv_clamp"),
      num_fp16_res=s.get("num_fp16_res", 0), truncation_psi=0.5,
      **(static_extra or {}))
  return writers.Network(name, top, static, components=dict(
      mapping=writers.Network("G_mapping", mapping,
                              build_func_name="G_mapping"),
      synthesis=writers.Network("G_synthesis", synthesis,
                                build_func_name="G_synthesis")),
                         build_func_name="G_main")


def tf_discriminator(net, d_kwargs):
  """The TensorFlow D_main network of a stand-in PyTorch Discriminator."""
  variables = {}
  for key, value in net.tensors().items():
    parts = key.split(".")
    if parts[-1] == "resample_filter":
      continue
    if parts[0] == "mapping":
      scope = ("LabelEmbed" if parts[1] == "embed" else
               f"Mapping{parts[1][2:]}")
      variables[f"{scope}/{parts[2]}"] = (value.T if parts[2] == "weight"
                                          else value)
      continue
    r, layer, leaf = int(parts[0][1:]), parts[1], parts[2]
    scope = ("Output" if layer == "out" else f"{r}x{r}/" + {
        "fromrgb": "FromRGB", "conv0": "Conv0", "conv1": "Conv1_down",
        "skip": "Skip", "conv": "Conv", "fc": "Dense0"}[layer])
    if leaf == "weight":
      value = value.transpose(2, 3, 1, 0) if value.ndim == 4 else value.T
    variables[f"{scope}/{leaf}"] = np.ascontiguousarray(value)
  m = d_kwargs.get("mapping_kwargs", {})
  e = d_kwargs.get("epilogue_kwargs", {})
  static = dict(
      label_size=d_kwargs["c_dim"], resolution=d_kwargs["img_resolution"],
      num_channels=d_kwargs["img_channels"],
      architecture=d_kwargs.get("architecture", "resnet"),
      fmap_base=d_kwargs.get("channel_base", 32768) // 2,
      fmap_max=d_kwargs.get("channel_max", 512),
      num_fp16_res=d_kwargs.get("num_fp16_res", 0),
      conv_clamp=d_kwargs.get("conv_clamp"),
      mapping_layers=m.get("num_layers", 8),
      mapping_lrmul=m.get("lr_multiplier", 0.01),
      mbstd_group_size=e.get("mbstd_group_size", 4),
      mbstd_num_features=e.get("mbstd_num_channels", 1))
  return writers.Network("D", variables, static, build_func_name="D_main")


def _pickle(path, g_kwargs, d_kwargs, seed=0):
  """Writes (G, D, Gs) as the TensorFlow code pickles them; returns the
  stand-in PyTorch snapshot they were made from."""
  snapshot = writers.stylegan2_ada_snapshot(np.random.RandomState(seed),
                                            g_kwargs, d_kwargs)
  writers.save_nvlabs([tf_generator(snapshot["G"], g_kwargs, "G"),
                       tf_discriminator(snapshot["D"], d_kwargs),
                       tf_generator(snapshot["G_ema"], g_kwargs, "Gs")],
                      str(path))
  return snapshot


# NVlabs' TensorFlow defaults for a conditional D: the normalised label
# embedding is the mapping (no layer after it), at learning rate x0.1.
TF_CONDITIONAL_D = dict(pytorch_case.CONDITIONAL[1],
                        mapping_kwargs=dict(num_layers=0, lr_multiplier=0.1))


@pytest.mark.parametrize("case", ["conditional", "unconditional",
                                  "tf_defaults"])
def test_imported_networks_compute_nvlabs_stylegan2(case, tmp_path):
  g_kwargs, d_kwargs = (pytorch_case.UNCONDITIONAL if case == "unconditional"
                        else pytorch_case.CONDITIONAL)
  if case == "tf_defaults":
    d_kwargs = TF_CONDITIONAL_D
  path = tmp_path / "stylegan2-config-f.pkl"
  snapshot = _pickle(path, g_kwargs, d_kwargs)
  imported = importer.import_tensorflow(str(path), noise_mode="const")
  pytorch_case.check_generator(imported.generator, snapshot["G_ema"],
                               g_kwargs)
  pytorch_case.check_discriminator(imported.discriminator, snapshot["D"],
                                   d_kwargs)
  d_options = imported.discriminator.ctor_kwargs
  if case == "tf_defaults":
    assert d_options["mapping_layers"] == 0
    assert d_options["mapping_lr_multiplier"] == 0.1
  assert imported.generator.ctor_kwargs["channel_base"] == (
      g_kwargs["synthesis_kwargs"]["channel_base"])
  if case == "conditional":
    raw = importer.import_tensorflow(str(path), network="G",
                                     noise_mode="const")
    pytorch_case.check_generator(raw.generator, snapshot["G"], g_kwargs)
  report = {row.source: row for row in imported.report}
  assert report["Gs/dlatent_avg"].target == "generator/w_avg"
  assert report["Gs/synthesis/4x4/Const/const"].target == (
      "generator/synthesis/b4/const")
  assert "flipped" in report["Gs/synthesis/16x16/Conv0_up/weight"].note
  assert report["Gs/synthesis/noise3"].target == (
      "generator/synthesis/b16/conv0/noise_const")


def test_import_command_writes_a_bundle_and_refuses_what_it_cannot_read(
    tmp_path):
  import tfgt  # pylint: disable=g-import-not-at-top
  path = tmp_path / "cifar10.pkl"
  _pickle(path, *pytorch_case.CONDITIONAL)
  out = str(tmp_path / "sources" / "cifar10")
  import_source.run("stylegan2_ada_tf", str(path), out,
                    class_names=["cat", "dog", "frog"])
  images = tfgt.load(out).draw(["frog"], per_class=2, seed=1,
                               as_uint8=False)
  assert images.shape[-3:] == (RESOLUTION, RESOLUTION, 3)
  with pytest.raises(UserInputError, match="NumPy forward pass"):
    import_source.run("stylegan2_ada_tf", str(path), out + "2", verify=True)
  assert not os.path.exists(out + "2")
  # A static argument of modified code, named.
  g_kwargs, d_kwargs = pytorch_case.CONDITIONAL
  odd = tmp_path / "odd.pkl"
  snapshot = writers.stylegan2_ada_snapshot(np.random.RandomState(0),
                                            g_kwargs, d_kwargs)
  writers.save_nvlabs([tf_generator(snapshot["G_ema"], g_kwargs, "Gs",
                                    static_extra=dict(use_wscale=False))],
                      str(odd))
  with pytest.raises(UserInputError, match="use_wscale.*modified code"):
    importer.import_tensorflow(str(odd))
  # Arrays of another shape or rank, each refused in one line.
  for name, bad in (("4x4/Const/const", np.zeros([], np.float32)),
                    ("noise1", np.zeros([8], np.float32)),
                    ("8x8/Conv0_up/weight", np.zeros([3, 3], np.float32)),
                    ("16x16/Conv1/mod_bias", np.zeros([2], np.float32))):
    g = tf_generator(snapshot["G_ema"], g_kwargs, "Gs")
    g.state["components"]["synthesis"].state["variables"] = [
        (n, bad if n == name else v) for n, v in
        g.state["components"]["synthesis"].state["variables"]]
    writers.save_nvlabs([g], str(odd))
    with pytest.raises(UserInputError) as error:
      importer.import_tensorflow(str(odd))
    assert name in str(error.value) and "\n" not in str(error.value)
  # A StyleGAN v1 pickle is named as one.
  v1 = tmp_path / "v1.pkl"
  writers.save_nvlabs([writers.Network("Gs", {"dlatent_avg": np.zeros(
      [4], np.float32)}, components=dict(
          mapping=writers.Network("G_mapping", {}),
          synthesis=writers.Network("G_synthesis", {
              "4x4/Const/StyleMod/weight": np.zeros([4, 8], np.float32)})))],
                      str(v1))
  with pytest.raises(UserInputError, match="--from=stylegan_nvlabs"):
    importer.import_tensorflow(str(v1))
