"""The public API (tfgt/api.py, docs/API.md): the command lines' results from
Python, their errors raised, and the README's example run as written.

One tiny run is trained through `tfgt.train` (2 steps, evaluated at step 2),
then loaded, drawn from, evaluated and exported through the API; draws are
compared with tfgt.sample's own functions (what `python -m tfgt.sample`
runs), scores with tfgt.evaluate.run's.
"""

import json
import math
import os
import re
import subprocess
import sys

import gin
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import FASHION_MNIST_DIR, REPO, TINY, load_tool
import tfgt
from tfgt import errors
from tfgt import evaluate as evaluate_lib
from tfgt import run_lock
from tfgt import sample
from tfgt.errors import UserInputError

PRETRAINED = "pretrained:fashion_mnist_biggan"
BASE = os.path.join(REPO, "gin_configs/fashion_mnist/base.gin")
# A 2-step Scratch run on Bag and Ankle boot (as tests/test_evaluate.py's).
RUN_DATA = TINY + [
    f"fashion_mnist.data_dir = '{FASHION_MNIST_DIR}'",
    "train.method = @Scratch()",
    "load_training_data.split = 'test'",
    "load_training_data.images_per_class = 16",
    "train.num_steps = 2",
    "train.sample_every = 0",
]
RUN_BINDINGS = RUN_DATA + [
    "train.eval_every = 2",
    "train.evaluator = @Evaluator()",
    "Evaluator.metrics = ('fid', 'kid')",
    "Evaluator.num_samples = 32",
]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
  """(Run, cache_dir) of the run trained through tfgt.train."""
  root = tmp_path_factory.mktemp("api_run")
  cache_dir = str(root / "cache")
  gin.clear_config()
  run = tfgt.train(
      BASE, RUN_BINDINGS + ["load_training_data.classes = [8, 9]",
                            f"Evaluator.cache_dir = '{cache_dir}'"],
      model_dir=root / "run",
      # One replica: tracing the mirrored step is not what this is about.
      strategy=tf.distribute.get_strategy(), verbose=False)
  return run, cache_dir


@pytest.fixture(scope="module")
def pretrained():
  return tfgt.load(PRETRAINED)


def _grid_of(model_dir, **kwargs):
  picture, _, _ = sample.draw_grid(model_dir, **kwargs)
  return picture


# ------------------------------------------------------------- package
def test_import_tfgt_loads_no_tensorflow():
  code = ("import sys, tfgt; assert 'tensorflow' not in sys.modules; "
          "assert tfgt.__all__; print(sorted(m for m in sys.modules "
          "if m.startswith('tfgt')))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, cwd=REPO, timeout=120, check=False)
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.strip() == "['tfgt']"


def test_command_modules_stay_modules_and_call_the_api():
  import tfgt.export as export_module  # pylint: disable=g-import-not-at-top
  from tfgt import train as train_module  # pylint: disable=g-import-not-at-top
  assert tfgt.export is export_module and callable(export_module)
  assert callable(export_module.export) and export_module.SIGNATURES
  assert tfgt.train is train_module and callable(train_module.train)
  assert callable(tfgt.evaluate) and tfgt.evaluate.run is evaluate_lib.run
  assert callable(tfgt.import_source)
  assert tfgt.load is tfgt.api.load and tfgt.UserInputError is UserInputError
  for name in tfgt.__all__:
    assert getattr(tfgt, name) is not None
  # Calling a module calls the API function of its name.
  with pytest.raises(UserInputError, match=r"gin_files=\[\]"):
    tfgt.train([], model_dir="unused")
  with pytest.raises(AttributeError):
    tfgt.no_such_name  # pylint: disable=pointless-statement


# ------------------------------------------------------------- README
def test_readme_example_runs_as_written(tmp_path, monkeypatch):
  with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
    readme = f.read()
  section = readme.split("## From Python", 1)[1].split("\n## ", 1)[0]
  code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
  assert len(code.strip().splitlines()) <= 5
  monkeypatch.chdir(tmp_path)
  exec(compile(code, "README.md", "exec"), {})  # pylint: disable=exec-used
  from PIL import Image  # pylint: disable=g-import-not-at-top
  written = np.asarray(Image.open(tmp_path / "shoes.png"))
  want = _grid_of(PRETRAINED, classes=["Sandal", "Sneaker"])
  np.testing.assert_array_equal(written, want[..., 0])


# ---------------------------------------------------------------- load
def test_load_pretrained(pretrained):
  g = pretrained
  assert g.class_names[5] == "Sandal" and g.num_classes == 8
  assert (g.resolution, g.channels, g.architecture) == (32, 1, "biggan")
  assert g.dim_z == 64 and g.step == 5000 and g.method == "scratch"
  assert g.class_ids(["Sneaker", 0, "id:3"]) == [7, 0, 3]
  assert "biggan 32x32x1, 8 classes" in repr(g)
  assert g.precision == "float32"


def test_load_refuses_bad_paths_and_checkpoints(tiny_run, tmp_path):
  run, _ = tiny_run
  with pytest.raises(UserInputError, match="checkpoint='bset' names no "
                     "checkpoint: use 'best', 'latest' or a step number"):
    tfgt.load(run.model_dir, "bset")
  for bad in (-1, 2.0, True, None):
    with pytest.raises(UserInputError, match="names no checkpoint"):
      tfgt.load(run.model_dir, bad)
  with pytest.raises(UserInputError, match=r"No checkpoint 7 in .*steps "
                     r"available: \[2\]"):
    tfgt.load(run.model_dir, 7)
  with pytest.raises(UserInputError, match="does not exist. Give a training "
                     "run's model_dir"):
    tfgt.load(tmp_path / "nothing")
  with pytest.raises(UserInputError, match="model.json is missing"):
    tfgt.load(tmp_path)
  with pytest.raises(UserInputError, match="path=3: give a training run"):
    tfgt.load(3)
  with pytest.raises(UserInputError, match="pretrained:no_such_model is not "
                     "a model shipped with tfgt; the shipped ones are "
                     "pretrained:fashion_mnist_biggan, "
                     "pretrained:fashion_mnist_stylegan."):
    tfgt.load("pretrained:no_such_model")
  with pytest.raises(UserInputError, match="does not exist"):
    tfgt.Run(tmp_path / "nothing")


# ---------------------------------------------------------------- draw
def test_draw_gives_the_sample_commands_images(pretrained):
  g = pretrained
  # 40 columns: batches of 32 and 8, compiled as tfgt.sample compiles them
  # (the 8 in a relaxed trace; another trace could differ in rare pixels).
  # The README's example checks a single batch.
  wide = g.draw(["Sneaker", 0, "Sneaker"], per_class=40)
  assert wide.shape == (120, 32, 32, 1) and wide.dtype == np.uint8
  np.testing.assert_array_equal(
      tfgt.grid(wide, columns=40),
      _grid_of(PRETRAINED, classes=["Sneaker", "0", "Sneaker"], per_class=40))
  # Latent k of a seed is the same with more per_class (in another batch
  # size: the same image up to one grey level in rare pixels).
  first = g.draw(7, per_class=3, seed=0)
  assert np.abs(first.astype(int) - wide[:3].astype(int)).max() <= 1
  floats = g.draw(["Sandal"], per_class=3, seed=1, as_uint8=False)
  assert floats.dtype == np.float32 and -1 <= floats.min() < floats.max() <= 1
  np.testing.assert_array_equal(tfgt.grid(floats, 3), tfgt.grid(
      g.draw(["Sandal"], per_class=3, seed=1), 3))
  # Every class, as the command without --classes.
  assert g.draw(per_class=3).shape == (24, 32, 32, 1)


def test_draw_truncated_and_interpolate_as_the_command(pretrained):
  g = pretrained
  images = g.draw([5, 7], per_class=4, seed=3, truncation=[1.0, 0.5])
  np.testing.assert_array_equal(
      tfgt.grid(images, columns=4),
      _grid_of(PRETRAINED, classes=["5", "7"], per_class=4, seed=3,
               truncations=[1.0, 0.5]))
  np.testing.assert_array_equal(g.draw(7, per_class=4, seed=3,
                                       truncation=0.5), images[-4:])
  steps = g.interpolate("Sandal", "Sneaker", steps=5, rows=2, seed=4)
  assert steps.shape == (10, 32, 32, 1)
  picture, ids, _ = sample.draw_interpolation(
      PRETRAINED, ["Sandal", "Sneaker"], steps=5, rows=2, seed=4)
  assert ids == [5, 7]
  np.testing.assert_array_equal(tfgt.grid(steps, columns=5), picture)


def test_stylegan_truncation_psi_as_the_command():
  name = "pretrained:fashion_mnist_stylegan"
  g = tfgt.load(name)
  assert g.architecture == "stylegan" and g.num_classes == 1
  images = g.draw(None, per_class=3, seed=2, truncation=[1, 0.5])
  np.testing.assert_array_equal(
      tfgt.grid(images, columns=3),
      _grid_of(name, per_class=3, seed=2, truncations=[1, 0.5]))


def test_draw_refuses_bad_arguments(pretrained):
  g = pretrained
  with pytest.raises(UserInputError, match="Class 'Bagg' is not in the model. "
                     "Its classes are: T-shirt/top, Trouser"):
    g.draw(["Sandal", "Bagg"])
  with pytest.raises(UserInputError, match="classes: class id 8 is out of "
                     r"range: the model has 8 classes \(0-7\)"):
    g.draw(8)
  with pytest.raises(UserInputError, match=r"classes=\[\]: give one or more"):
    g.draw([])
  with pytest.raises(UserInputError, match="per_class=0: draw at least 1"):
    g.draw(0, per_class=0)
  with pytest.raises(UserInputError, match="as_uint8='no': give True"):
    g.draw(0, per_class=1, as_uint8="no")
  with pytest.raises(UserInputError, match="as_uint8=1: give True"):
    g.interpolate(0, 1, as_uint8=1)
  with pytest.raises(UserInputError, match="per_class=2.5: give a whole"):
    g.draw(0, per_class=2.5)
  for seed in (1.5, True, "1", 2 ** 63, -2 ** 63 - 1):
    with pytest.raises(UserInputError, match=r"seed=.*: give a whole number "
                       r"from -2\*\*63"):
      g.draw(0, seed=seed)
  for truncation in (0, -1.0, float("nan"), float("inf"), "x", [1, None], []):
    with pytest.raises(UserInputError, match="truncation"):
      g.draw(0, per_class=1, truncation=truncation)
  with pytest.raises(UserInputError, match="name class 'Sandal' twice"):
    g.interpolate("Sandal", 5)
  with pytest.raises(UserInputError, match="class_b: class id 9 is out of"):
    g.interpolate("Sandal", 9)
  with pytest.raises(UserInputError, match="steps=1: an interpolation needs "
                     "at least 2 columns"):
    g.interpolate(0, 1, steps=1)
  with pytest.raises(UserInputError, match="rows=0: an interpolation needs"):
    g.interpolate(0, 1, rows=0)


def test_grid_and_save_png(tmp_path):
  images = np.zeros([6, 4, 4, 1], np.uint8)
  assert tfgt.grid(images, columns=3).shape == (11, 16, 1)
  assert tfgt.grid(images).shape == (6, 31, 1)
  with pytest.raises(UserInputError, match="6 images do not fill rows of "
                     "columns=4"):
    tfgt.grid(images, columns=4)
  with pytest.raises(UserInputError, match="dtype int64"):
    tfgt.grid(images.astype(np.int64), columns=3)
  with pytest.raises(UserInputError, match=r"shape \[4, 4, 1\]"):
    tfgt.grid(images[0])
  path = tfgt.save_png(tfgt.grid(images, 3), tmp_path / "a" / "b.png")
  assert os.path.getsize(path) > 0
  with pytest.raises(UserInputError, match="give uint8 \\[H, W, C\\]"):
    tfgt.save_png(np.zeros([4, 4, 1], np.float32), tmp_path / "c.png")
  with pytest.raises(UserInputError, match="Cannot write --out=.*give a PNG "
                     "path in a folder you may write to"):
    tfgt.save_png(images[0], os.path.join(path, "under_a_file.png"))


# ------------------------------------------------------------ the run
def test_run_records_and_its_generator(tiny_run, tmp_path):
  run, _ = tiny_run
  with open(os.path.join(run.model_dir, "best.json")) as f:
    best = json.load(f)
  assert run.best() == best and best["step"] == 2 and best["fid"] > 0
  scores = run.scores()
  assert list(scores) == [2] and set(scores[2]) == set(best) - {"step"}
  assert math.isclose(scores[2]["fid"], best["fid"], rel_tol=1e-5)
  assert run.steps() == [2]
  assert tfgt.Run(tmp_path).best() is None and tfgt.Run(tmp_path).scores() == {}
  g = run.generator()
  assert g.class_names == ["Bag", "Ankle boot"] and g.step == 2
  assert (g.num_classes, g.resolution, g.channels) == (2, 32, 1)
  # (The draws of a run's generator are the pretrained ones' code path.)
  images = g.draw(["Ankle boot", "Bag", 0], per_class=3, seed=1)
  assert images.shape == (9, 32, 32, 1) and images.dtype == np.uint8
  best_g = tfgt.load(run, "best")
  assert best_g.checkpoint.endswith(os.path.join("model", "best", "ckpt-2"))
  for best_v, v in zip(best_g.model.variables, g.model.variables):
    np.testing.assert_array_equal(best_v.numpy(), v.numpy())


def test_train_errors_are_raised_and_gin_is_put_back(tiny_run, tmp_path):
  run, _ = tiny_run
  gin.parse_config("Evaluator.seed = 5")
  with pytest.raises(UserInputError, match="Gin file nope.gin does not "
                     "exist"):
    tfgt.train(["nope.gin"], model_dir=tmp_path / "new")
  with pytest.raises(UserInputError, match='Gin binding "trian.num_steps = '
                     '2": no configurable is named trian'):
    tfgt.train(BASE, ["trian.num_steps = 2"], model_dir=tmp_path / "new")
  with pytest.raises(UserInputError, match="bindings=3: give a string"):
    tfgt.train(BASE, 3, model_dir=tmp_path / "new")
  assert not os.path.exists(tmp_path / "new")
  # One trainer per run folder, as the command: refused at once.
  with run_lock.RunLock(run.model_dir):
    with pytest.raises(UserInputError, match=f"{re.escape(run.model_dir)} "
                       f"is being trained by process {os.getpid()}") as info:
      tfgt.train(BASE, RUN_DATA + ["load_training_data.classes = [8, 9]"],
                 model_dir=run.model_dir,
                 strategy=tf.distribute.get_strategy(), verbose=False)
  # The command's one line: raised inside the gin-configured trainer, without
  # gin's "In call to configurable 'train' (<function ...>)" lines.
  assert "\n" not in str(info.value), str(info.value)
  with pytest.raises(UserInputError, match="log_every must be >= 1") as info:
    tfgt.train(BASE, RUN_DATA + ["train.log_every = 0"],
               model_dir=tmp_path / "new")
  assert "In call to configurable" not in str(info.value)
  assert not os.path.exists(tmp_path / "new")
  assert gin.query_parameter("Evaluator.seed") == 5
  assert run.steps() == [2]


# ------------------------------------------------------------ evaluate
def test_evaluate_gives_the_commands_numbers(tiny_run, tmp_path,
                                            monkeypatch):
  run, cache_dir = tiny_run
  calls, command_run = [], evaluate_lib.run

  def spy(*args, **kwargs):
    calls.append((args, kwargs))
    return command_run(*args, **kwargs)

  monkeypatch.setattr(evaluate_lib, "run", spy)
  g = run.generator()
  got = tfgt.evaluate(g, metrics="fid", num_samples=30, cache_dir=cache_dir,
                      output=tmp_path / "api.json")
  # The command's own function, with what `python -m tfgt.evaluate
  # --model_dir=RUN --checkpoint=2 --metrics=fid --num_samples=30
  # --cache_dir=C --output=O` passes it (the step as a number).
  assert calls == [((run.model_dir, 2, dict(
      num_samples=30, batch_size=None, seed=None, cache_dir=cache_dir,
      metrics="fid"), [], [], str(tmp_path / "api.json")),
                    dict(precision="float32"))]
  # FID and the feature check's numbers (docs/EVALUATION.md).
  assert set(got.metrics) == {"fid", "features_separation",
                              "features_min_spread"}
  assert got.metrics["fid"] > 0
  assert "fid" in got.table() and got.settings["generated"] == 30
  assert got.settings["checkpoint"] == g.checkpoint
  with open(got.path) as f:
    written = json.load(f)
  assert got.path == str(tmp_path / "api.json")
  assert written["metrics"] == got.metrics
  assert written["per_class"] == got.per_class
  with pytest.raises(UserInputError, match="checkpoint='best' with a "
                     "Generator"):
    tfgt.evaluate(g, "best")
  with pytest.raises(UserInputError, match=r"Unknown metric\(s\) \['fod'\]"):
    tfgt.evaluate(run, metrics="fod")
  with pytest.raises(UserInputError, match="without the config.gin"):
    tfgt.evaluate(PRETRAINED)
  with pytest.raises(UserInputError, match="No checkpoint 7"):
    tfgt.evaluate(run, 7)
  with pytest.raises(UserInputError, match=r"--features=.*nope\.keras is "
                     "neither one of"):
    tfgt.evaluate(run, features=tmp_path / "nope.keras")


# -------------------------------------------------------------- export
def test_export_round_trip(tiny_run, tmp_path):
  run, _ = tiny_run
  g = tfgt.load(run, "best")
  version = tfgt.export(g, tmp_path / "serving", verify=False)
  assert version == str(tmp_path / "serving" / "1")
  with open(os.path.join(version, "assets.extra", "tfgt_model.json")) as f:
    assert json.load(f)["source"]["checkpoint"] == g.checkpoint
  with pytest.raises(UserInputError, match="is a TF Serving export"):
    tfgt.load(tmp_path / "serving")
  with pytest.raises(UserInputError, match="is a TF Serving export"):
    tfgt.load(version)
  with pytest.raises(UserInputError, match="exists. TF Serving versions are "
                     "immutable"):
    tfgt.export(run, tmp_path / "serving", version=1)
  loaded = tf.saved_model.load(version)
  names = loaded.signatures["class_names"](labels=tf.constant([], tf.int32))
  assert [n.decode() for n in names["class_names"].numpy()] == g.class_names
  per_class = 3
  z = tf.random.stateless_normal([per_class, g.dim_z], seed=[0, 0])
  served = loaded.signatures["from_z"](
      labels=tf.constant([1] * per_class + [0] * per_class, tf.int32),
      z=tf.concat([z, z], 0), truncation=tf.constant(100.0))["images"]
  drawn = g.draw([1, 0], per_class=per_class)
  assert np.abs(served.numpy().astype(int) - drawn.astype(int)).max() <= 1
  # A Generator loaded in bfloat16 exports in bfloat16 (docs/TRAINING.md).
  g16 = tfgt.load(run, "best", precision="mixed_bfloat16")
  assert g16.precision == "mixed_bfloat16"
  version = tfgt.export(g16, tmp_path / "serving16", verify=False)
  with open(os.path.join(version, "assets.extra", "tfgt_model.json")) as f:
    assert json.load(f)["precision"] == "mixed_bfloat16"
  with pytest.raises(UserInputError, match="Unknown precision 'half'"):
    tfgt.load(run, precision="half")


# ---------------------------------------------------------- similarity
def test_score_heatmaps_are_the_tools_picture(tiny_run, tmp_path,
                                              monkeypatch):
  # A cGANTransfer run of 0 steps from the shipped source, with random
  # scores (one step would move the uniform ones by about 1e-5): its
  # training checkpoint is saved without a step traced.
  monkeypatch.chdir(REPO)  # The gin files include each other from there.
  run = tfgt.train(
      "gin_configs/fashion_mnist/cgantransfer.gin",
      [f"fashion_mnist.data_dir = '{FASHION_MNIST_DIR}'",
       "load_training_data.split = 'test'", "IMAGES_PER_CLASS = 8",
       "train.batch_size = 8", "train.num_steps = 0", "train.sample_every = 0",
       "train.evaluator = None", "CGANTransfer.score_init = 'random'"],
      model_dir=tmp_path / "cgantransfer",
      strategy=tf.distribute.get_strategy(), verbose=False)
  gin.parse_config("Evaluator.seed = 5")
  picture = run.score_heatmaps()
  assert gin.query_parameter("Evaluator.seed") == 5  # The caller's config.
  assert picture.dtype == np.uint8 and picture.ndim == 3
  assert picture.shape[2] == 3 and min(picture.shape[:2]) > 300
  tool = load_tool("plot_similarity")
  # Its two other pictures (tests/methods/test_methods.py's) would take a third of
  # this test's time.
  for name in ("pseudo_class_grid", "layer_substitution_grid"):
    monkeypatch.setattr(tool, name, lambda *args: np.zeros((1, 1, 3),
                                                           np.uint8))
  paths = tool.plot(run.model_dir, str(tmp_path / "similarity"), samples=1)
  from PIL import Image  # pylint: disable=g-import-not-at-top
  np.testing.assert_array_equal(picture, np.asarray(Image.open(
      paths["scores"])))
  with pytest.raises(UserInputError, match=r"No training checkpoint 7 in "
                     r".*at steps \[0\]"):
    run.score_heatmaps(7)
  with pytest.raises(UserInputError, match="not in its model/best bundle: "
                     "give 'latest' or a step number"):
    run.score_heatmaps("best")
  scratch, _ = tiny_run
  with pytest.raises(UserInputError, match="trained with scratch; only "
                     "cGANTransfer runs have similarity scores"):
    scratch.score_heatmaps()
  with pytest.raises(UserInputError, match="is not a training run"):
    tfgt.Run(tmp_path).score_heatmaps()


# -------------------------------------------------------------- import
def test_import_source_writes_a_bundle_that_loads(tmp_path):
  from tests.importers import test_biggan as biggan_files  # pylint: disable=g-import-not-at-top
  weights = tmp_path / "weights"
  weights.mkdir()
  biggan_files.save(biggan_files.g_state_dict(32, 4, 3, 16, 8, False, True),
                    str(weights / "G_ema.pth"))
  names = tmp_path / "names.txt"
  names.write_text("tench\ngoldfish\nwhite shark\n")
  out = tmp_path / "source"
  g = tfgt.import_source("biggan_pytorch", weights, out,
                         class_names_file=names)
  assert g.class_names == ["tench", "goldfish", "white shark"]
  assert (g.architecture, g.channels, g.step) == ("biggan", 3, 0)
  again = tfgt.load(out)
  assert again.class_names == g.class_names
  for read, written in zip(again.model.variables, g.model.variables):
    np.testing.assert_array_equal(read.numpy(), written.numpy())
  with pytest.raises(UserInputError, match="already holds a model"):
    tfgt.import_source("biggan_pytorch", weights, out)
  with pytest.raises(UserInputError, match="--from='nope': importable "
                     "formats are"):
    tfgt.import_source("nope", weights, tmp_path / "other")
  with pytest.raises(UserInputError, match="Give class_names or "
                     "class_names_file, not both"):
    tfgt.import_source("biggan_pytorch", weights, tmp_path / "other",
                       class_names=["a"], class_names_file=names)
  assert errors.message(UserInputError("x")) == "x"
