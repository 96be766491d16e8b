"""A new import format is one module and one registered entry.

The test is that module: a toy format (a .npz of a tiny BigGAN generator's
weights, named by tfgt variable path, written here) is declared as one
`registry.Importer` and added with `registry.register` only; then
`python -m tfgt.import_source --from=toy_npz ...` runs in this process
(its `define_flags` and `main`), lists the toy in --help and in the error
for a bad --from, checks its options as it checks tfgt's own formats, and
the bundle it writes draws what the toy's weights draw.
"""

from absl import flags
import numpy as np
import pytest
import tensorflow as tf

from tfgt import cli
from tfgt import import_source
from tfgt.errors import UserInputError
from tfgt.importers import mapping
from tfgt.importers import registry
from tfgt.methods import source
from tfgt.models import architectures
from tfgt.models import biggan
from tfgt.models import bundle

# The toy's one architecture: a 3-class 32 px BigGAN of width 4.
NUM_CLASSES = 3
TOY_KWARGS = dict(resolution=32, channels=1, ch=4, dim_z=8)


def read_toy(request: registry.Request) -> mapping.Imported:
  """The reader: the .npz's arrays, by tfgt variable path, into the model."""
  with np.load(request.input, allow_pickle=False) as npz:
    arrays = {name: npz[name] for name in npz.files}
  generator = biggan.BigGANGenerator(NUM_CLASSES, **TOY_KWARGS)
  architectures.build_by_calling(generator)
  report = []
  mapping.assign(generator.name, generator.variables,
                 [(name, name, value, lambda n, v: (n, v, ""))
                  for name, value in arrays.items()],
                 report, request.input, "toy .npz")
  names = list(request.class_names or
               [f"toy_{i}" for i in range(NUM_CLASSES)])
  return mapping.Imported(generator, None, names, report)


TOY = registry.Importer(
    name="toy_npz",
    description="a .npz of a tiny BigGAN generator's weights (the tests')",
    read=read_toy,
    default_network="G",
    example="--input=toy.npz --out=sources/toy",
    sources=(registry.Source("toy_source", "--input=<toy.npz>",
                             "the toy's own"),))


@pytest.fixture
def toy_format():
  registry.register(TOY)
  yield TOY
  registry.unregister(TOY.name)


def _toy_file(path):
  """A random toy generator and its .npz."""
  generator = biggan.BigGANGenerator(NUM_CLASSES, **TOY_KWARGS)
  architectures.build_by_calling(generator)
  rng = np.random.default_rng(0)
  arrays = {}
  for v in generator.variables:
    value = rng.normal(0.0, 0.2, v.shape).astype(np.float32)
    if "moving_variance" in v.path:
      value = np.abs(value) + 0.5
    v.assign(value)
    arrays[v.path.split("/", 1)[1]] = value
  np.savez(path, **arrays)
  return generator


def _command(*args):
  """`python -m tfgt.import_source ARGS`, in this process."""
  values = flags.FlagValues()
  import_source.define_flags(values)
  cli.define_help_flags(values)
  argv = cli.parse_flags(["import_source", *args], values)
  import_source.main(argv, values)
  return values


def test_a_registered_format_imports_through_the_command(toy_format,
                                                         tmp_path, capsys):
  assert registry.names()[-1] == "toy_npz"
  assert registry.names()[:6] == ("stylegan_nvlabs", "stylegan_rosinality",
                                  "stylegan2_ada_pytorch", "stylegan2_ada_tf",
                                  "biggan_pytorch", "tfhub_biggan")
  path = str(tmp_path / "toy.npz")
  original = _toy_file(path)
  out = str(tmp_path / "sources" / "toy")
  values = _command("--from=toy_npz", f"--input={path}", f"--out={out}",
                    "--class_names=a,b,c")
  printed = capsys.readouterr().out
  assert "block0/conv1/kernel" in printed
  assert ("Wrote" in printed and "3 class(es) (a, b, c)" in printed and
          "discriminator none; generator weights G." in printed)
  generator, _, spec = bundle.load(out)
  assert spec["class_names"] == ["a", "b", "c"]
  assert spec["method"] == "import:toy_npz"
  z = tf.random.stateless_normal([3, TOY_KWARGS["dim_z"]], [1, 2])
  y = tf.constant([0, 1, 2])
  np.testing.assert_array_equal(generator((z, y), training=False).numpy(),
                                original((z, y), training=False).numpy())
  # --help lists it, with its description and example.
  assert ("- toy_npz: a .npz of a tiny BigGAN generator's weights (the "
          "tests'); e.g. --from=toy_npz --input=toy.npz") in values["from"].help
  assert "toy_npz G (default)" in values["network"].help


def test_a_registered_format_is_listed_and_checked(toy_format, tmp_path,
                                                   capsys):
  values = flags.FlagValues()
  import_source.define_flags(values)
  with pytest.raises(SystemExit) as exit_:
    cli.parse_flags(["import_source", "--from=toy"], values)
  assert exit_.value.code == 2
  assert ("value should be one of <stylegan_nvlabs|stylegan_rosinality|"
          "stylegan2_ada_pytorch|stylegan2_ada_tf|biggan_pytorch|tfhub_biggan|"
          "toy_npz>") in capsys.readouterr().err
  with pytest.raises(UserInputError, match=r"--from='toy': importable "
                     r"formats are stylegan_nvlabs, .*, tfhub_biggan, "
                     r"toy_npz\."):
    import_source.run("toy", "toy.npz", str(tmp_path / "out"))
  # Options it does not accept are refused as for tfgt's own formats.
  path = str(tmp_path / "toy.npz")
  _toy_file(path)
  for options, error in [
      (dict(resolution=32), "--resolution is for stylegan_rosinality; a "
       "toy_npz file holds its resolution."),
      (dict(discriminator="D.pth"), "--discriminator is for biggan_pytorch "
       "and tfhub_biggan; a toy_npz file holds its discriminator."),
      (dict(verify=True), "--verify runs the original framework beside the "
       "import; for toy_npz that is not installed here")]:
    with pytest.raises(UserInputError) as refused:
      import_source.run("toy_npz", path, str(tmp_path / "out"), **options)
    assert error in str(refused.value)
  assert not (tmp_path / "out").exists()
  # The "missing source" message names the import that makes its source.
  with pytest.raises(UserInputError, match=(
      r"Make it with `python -m tfgt.import_source --from=toy_npz "
      r"--input=<toy.npz> --out=.*toy_source` \(the toy's own\)")):
    source.read_info(str(tmp_path / "sources" / "toy_source"))


def test_entries_that_cannot_work_are_refused(toy_format):
  with pytest.raises(ValueError, match="--from=toy_npz is already registered"):
    registry.register(TOY)
  with pytest.raises(ValueError, match=r"options \['noise'\] are not among"):
    registry.register(registry.Importer(
        "toy_two", "two", read_toy, "G", "", options={"noise": "how"}))
  with pytest.raises(ValueError, match="give both `verify` and"):
    registry.register(registry.Importer(
        "toy_two", "two", read_toy, "G", "", options={"verify": "compare"}))
  with pytest.raises(ValueError, match="every option of `required`"):
    registry.register(registry.Importer(
        "toy_two", "two", read_toy, "G", "",
        required={"resolution": "--resolution is required."}))
  with pytest.raises(ValueError, match="not a format that register"):
    registry.unregister("biggan_pytorch")
  assert "toy_two" not in registry.names()
