"""Tests of the TF Serving export (tfgt/export.py).

A tiny bundle (ch=4) with two checkpoints is exported once per module, by the
command line, from its first checkpoint. The
export is then read the way TF Serving reads it: by the TF1 SavedModel loader
in a tf.compat.v1 Session (in a fresh process, and in this one for the error
cases) and by `saved_model_cli run`; its images must match the in-process
generator's for the same inputs to within one grey level.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgt import export
from tfgt.data import pipeline
from tfgt.errors import UserInputError
from tfgt.models import biggan
from tfgt.models import bundle

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
               "Shirt", "Sneaker", "Bag", "Ankle boot"]
DIM_Z = 16
# Inputs shared by the fresh-process runs and the in-process references.
LABELS = np.array([8, 9, 0, 8], np.int32)
SEEDS = np.array([1, 2, 3, 123456789012], np.int64)
TRUNCATION = np.array([1.0, 0.5, 2.0, 100.0], np.float32)
Z = np.random.RandomState(1).randn(4, DIM_Z).astype(np.float32) * 2.0
WEIGHTS = np.array([[0.0] * 8 + [1.0, 0.0], [0.0] * 8 + [0.5, 0.5],
                    [0.25] * 4 + [0.0] * 6, [0.0] * 9 + [1.0]], np.float32)


def _env() -> dict:
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
  return env


def _run(args: list, **kwargs) -> subprocess.CompletedProcess:
  return subprocess.run(["nice", "-n", "15"] + args, env=_env(), cwd=REPO,
                        capture_output=True, text=True, timeout=600, **kwargs)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
  """A bundle of a tiny generator with checkpoints 1 and 2 (other weights)."""
  directory = str(tmp_path_factory.mktemp("bundle"))
  keras.utils.set_random_seed(0)
  generator = biggan.BigGANGenerator(10, ch=4, dim_z=DIM_Z)
  discriminator = biggan.BigGANDiscriminator(10, ch=4)
  biggan.build_models(generator, discriminator)
  writer = bundle.BundleWriter(directory, generator, discriminator,
                               CLASS_NAMES, "scratch")
  writer.save(1)
  for v in generator.trainable_variables:
    v.assign(v * 1.5)
  writer.save(2)
  return directory


@pytest.fixture(scope="module")
def exported(model_dir, tmp_path_factory):
  """(export_dir, version folder, generators of checkpoints 1 and 2).

  The command line exports checkpoint 1 (not the latest) as version 3.
  """
  export_dir = str(tmp_path_factory.mktemp("serving"))
  result = _run([sys.executable, "-m", "tfgt.export",
                 f"--model_dir={model_dir}", f"--export_dir={export_dir}",
                 "--checkpoint=1", "--version=3"])
  assert result.returncode == 0, result.stderr[-3000:]
  path = os.path.join(export_dir, "3")
  assert "SavedModel: " + path in result.stdout
  assert "precision:  float32" in result.stdout
  first, _, _ = bundle.load(model_dir, checkpoint=1)
  latest, _, _ = bundle.load(model_dir)
  return export_dir, path, first, latest


def _reference(generator, z, y) -> np.ndarray:
  return pipeline.to_uint8(generator((z, y), training=False)).numpy()


def _seed_images(generator, y, seeds=SEEDS, truncation=TRUNCATION):
  z = export.latents_from_seeds(tf.constant(seeds), DIM_Z,
                                tf.constant(truncation))
  return _reference(generator, z, y)


def _assert_close(served: np.ndarray, expected: np.ndarray) -> None:
  assert served.dtype == np.uint8 and served.shape == expected.shape
  diff = np.abs(served.astype(int) - expected.astype(int))
  assert diff.max() <= 1, f"max pixel difference {diff.max()}"
  # Off-by-one from float rounding is allowed, different images are not.
  assert (diff > 0).mean() < 0.05


def test_layout_assets_and_only_generator_weights(exported):
  export_dir, path, first, _ = exported
  # Only the version folder: no staging folder left behind.
  assert os.listdir(export_dir) == ["3"]
  assert export.next_version(export_dir) == 4
  with open(os.path.join(path, "assets", export.CLASS_NAMES_FILE)) as f:
    assert f.read().splitlines() == CLASS_NAMES
  with open(os.path.join(path, "assets.extra", export.METADATA_FILE)) as f:
    metadata = json.load(f)
  assert metadata["generator"]["dim_z"] == DIM_Z
  assert metadata["source"]["checkpoint"].endswith("ckpt-1")
  # The generator's weights and nothing else (no discriminator, optimizer or
  # transfer parameters): the saved shapes are exactly the generator's.
  saved = sorted(tuple(shape) for name, shape in tf.train.list_variables(
      os.path.join(path, "variables", "variables"))
                 if name.startswith("_all_variables/"))
  assert saved == sorted(tuple(v.shape) for v in first.variables)


def test_tf1_loader_in_fresh_process(exported, tmp_path):
  _, path, generator, latest = exported
  inputs = str(tmp_path / "inputs.npz")
  outputs = str(tmp_path / "outputs.npz")
  np.savez(inputs, labels=LABELS, seeds=SEEDS, truncation=TRUNCATION, z=Z,
           class_weights=WEIGHTS)
  script = textwrap.dedent(f"""
      import numpy as np
      import tensorflow as tf
      x = np.load({inputs!r})
      calls = dict(
          serving_default=dict(labels=x["labels"], seeds=x["seeds"],
                               truncation=x["truncation"]),
          scalar_truncation=dict(labels=x["labels"], seeds=x["seeds"],
                                 truncation=np.float32(1.0)),
          from_z=dict(labels=x["labels"], z=x["z"], truncation=np.float32(1.5)),
          from_class_weights=dict(class_weights=x["class_weights"],
                                  seeds=x["seeds"], truncation=x["truncation"]),
          class_names=dict(labels=x["labels"]))
      results = {{}}
      with tf.compat.v1.Session(graph=tf.Graph()) as sess:
        meta = tf.compat.v1.saved_model.load(sess, ["serve"], {path!r})
        for name, feeds in calls.items():
          sig = meta.signature_def[name.replace("scalar_truncation",
                                                "serving_default")]
          out = sess.run({{k: v.name for k, v in sig.outputs.items()}},
                         {{sig.inputs[k].name: v for k, v in feeds.items()}})
          results.update({{name + "/" + k: v for k, v in out.items()}})
      np.savez({outputs!r}, **results)
  """)
  result = _run([sys.executable, "-c", script])
  assert result.returncode == 0, result.stderr[-3000:]
  out = np.load(outputs, allow_pickle=True)

  _assert_close(out["serving_default/images"], _seed_images(generator, LABELS))
  np.testing.assert_array_equal(out["serving_default/labels"], LABELS)
  _assert_close(out["scalar_truncation/images"],
                _seed_images(generator, LABELS, truncation=np.ones(4, "f")))
  _assert_close(out["from_z/images"],
                _reference(generator, np.clip(Z, -1.5, 1.5), LABELS))
  _assert_close(out["from_class_weights/images"],
                _seed_images(generator, WEIGHTS))
  assert [n.decode() for n in out["class_names/class_names"]] == CLASS_NAMES
  assert [n.decode() for n in out["class_names/label_names"]] == [
      CLASS_NAMES[i] for i in LABELS]
  # The z signature really clips: z beyond 1.5 gives other images.
  assert np.abs(out["from_z/images"].astype(int)
                - _reference(generator, Z, LABELS).astype(int)).max() > 1
  # --checkpoint=1 exported checkpoint 1, not the latest.
  assert np.abs(out["from_z/images"].astype(int) - _reference(
      latest, np.clip(Z, -1.5, 1.5), LABELS).astype(int)).max() > 1


def test_saved_model_cli_run(exported, tmp_path):
  _, path, generator, _ = exported
  outdir = str(tmp_path / "cli")
  # The console script users run, from the environment of this Python.
  cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
  cli = [cli] if os.path.exists(cli) else [shutil.which("saved_model_cli")]
  result = _run(cli + [
      "run",
      "--dir", path, "--tag_set", "serve", "--signature_def",
      "serving_default", "--outdir", outdir, "--input_exprs",
      "labels=[8, 9, 0, 8];seeds=[1, 2, 3, 123456789012];"
      "truncation=[1.0, 0.5, 2.0, 100.0]"])
  assert result.returncode == 0, result.stderr[-3000:]
  _assert_close(np.load(os.path.join(outdir, "images.npy")),
                _seed_images(generator, LABELS))


@pytest.fixture(scope="module")
def tf1_session(exported):
  """The export loaded by the TF1 loader TF Serving uses, in a Session."""
  _, path, _, _ = exported
  graph = tf.Graph()
  with graph.as_default():
    session = tf.compat.v1.Session(graph=graph)
    meta = tf.compat.v1.saved_model.load(session, ["serve"], path)

  def run(signature, **feeds):
    sig = meta.signature_def[signature]
    return session.run({k: v.name for k, v in sig.outputs.items()},
                       {sig.inputs[k].name: v for k, v in feeds.items()})

  yield run
  session.close()


def test_same_seed_same_image_in_any_batch(tf1_session):
  a = tf1_session("serving_default", labels=[8, 9, 8], seeds=[5, 6, 7],
                  truncation=1.0)["images"]
  b = tf1_session("serving_default", labels=[8], seeds=[7],
                  truncation=[1.0])["images"]
  # The same z; the float sums of another batch size may round a rare pixel
  # to the neighbouring grey level, and on some CPUs they do.
  difference = np.abs(a[2].astype(int) - b[0].astype(int))
  assert difference.max() <= 1 and np.mean(difference > 0) < 0.01
  again = tf1_session("serving_default", labels=[8, 9, 8], seeds=[5, 6, 7],
                      truncation=1.0)["images"]
  np.testing.assert_array_equal(again, a)  # Same batch: the same bits.
  assert np.abs(a[0].astype(int) - a[2].astype(int)).max() > 1  # Other seed.


def test_class_names_with_no_labels(tf1_session):
  out = tf1_session("class_names", labels=np.zeros([0], np.int32))
  assert [n.decode() for n in out["class_names"]] == CLASS_NAMES
  assert out["label_names"].shape == (0,)


GOOD = dict(labels=[8, 9], seeds=[1, 2], truncation=1.0)
# Rows with a positive sum, one with a negative weight; a row of zeros.
NEGATIVE_WEIGHTS = np.array([[0.0] * 8 + [1.0, 0.0],
                             [0.0] * 8 + [1.5, -0.5]], np.float32)
ZERO_ROW_WEIGHTS = np.array([[0.0] * 8 + [1.0, 0.0], [0.0] * 10], np.float32)
WEIGHTS_MESSAGE = "class_weights must be >= 0 with a positive sum in every row"


@pytest.mark.parametrize("signature,feeds,message", [
    ("serving_default", dict(GOOD, labels=[8, 10]), "class ids in [0, 10)"),
    ("serving_default", dict(GOOD, labels=[-1, 9]), "class ids in [0, 10)"),
    ("serving_default", dict(GOOD, truncation=0.0), "truncation must be > 0"),
    ("serving_default", dict(GOOD, truncation=[1.0, -0.5]),
     "truncation must be > 0"),
    ("serving_default", dict(GOOD, truncation=[1.0, 1.0, 1.0]),
     "one value per image"),
    ("serving_default", dict(GOOD, seeds=[1]), "one row per entry of labels"),
    ("from_z", dict(labels=[8, 9], z=np.zeros([2, DIM_Z - 1], "f"),
                    truncation=1.0), f"shape [batch, {DIM_Z}]"),
    ("from_z", dict(labels=[8, 9], z=np.full([2, DIM_Z], np.nan, "f"),
                    truncation=1.0), "z must be finite"),
    ("from_z", dict(labels=[8, 12], z=np.zeros([2, DIM_Z], "f"),
                    truncation=1.0), "class ids in [0, 10)"),
    ("from_class_weights", dict(class_weights=np.ones([2, 9], "f"),
                                seeds=[1, 2], truncation=1.0),
     "shape [batch, 10]"),
    ("from_class_weights", dict(class_weights=np.ones([2, 10], "f"),
                                seeds=[1, 2], truncation=-1.0),
     "truncation must be > 0"),
    ("from_class_weights", dict(class_weights=NEGATIVE_WEIGHTS, seeds=[1, 2],
                                truncation=1.0), WEIGHTS_MESSAGE),
    ("from_class_weights", dict(class_weights=ZERO_ROW_WEIGHTS, seeds=[1, 2],
                                truncation=1.0), WEIGHTS_MESSAGE),
    ("from_class_weights", dict(class_weights=np.full([2, 10], np.nan, "f"),
                                seeds=[1, 2], truncation=1.0),
     "class_weights must be finite"),
    ("class_names", dict(labels=[10]), "class ids in [0, 10)"),
], ids=["label_too_big", "label_negative", "truncation_zero",
        "truncation_negative", "truncation_size", "seeds_batch", "z_width",
        "z_nan", "z_label", "weights_width", "weights_truncation",
        "weights_negative", "weights_zero_row", "weights_nan", "names_label"])
def test_bad_input_is_invalid_argument(tf1_session, signature, feeds, message):
  with pytest.raises(tf.errors.InvalidArgumentError) as error:
    tf1_session(signature, **feeds)
  assert message in error.value.message


def test_latents_are_truncated_normal():
  seeds = tf.range(2000, dtype=tf.int64)
  draw = tf.function(lambda t: export.latents_from_seeds(seeds, 64, t))
  wide = draw(tf.fill([2000], 100.0)).numpy()
  assert abs(wide.mean()) < 0.01 and abs(wide.std() - 1.0) < 0.01
  narrow = draw(tf.fill([2000], 1.0)).numpy()
  assert np.abs(narrow).max() <= 1.0
  # Standard deviation of N(0, 1) restricted to [-1, 1]: 0.5396.
  assert abs(narrow.std() - 0.5396) < 0.01
  # Each component keeps its sign and shrinks as t shrinks.
  assert np.all(np.sign(narrow) == np.sign(wide))
  assert np.all(np.abs(narrow) <= np.abs(wide) + 1e-6)
  # A seed's z does not depend on its batch: the same bits alone and in 2000.
  alone = export.latents_from_seeds(seeds[1234:1235], 64, tf.fill([1], 1.0))
  np.testing.assert_array_equal(alone[0].numpy(), narrow[1234])


def test_next_version(tmp_path):
  assert export.next_version(str(tmp_path / "missing")) == 1
  for name in ("1", "12", "7", "13.tmp", ".tmp-20-x"):
    os.makedirs(tmp_path / name)
  (tmp_path / "30").write_text("a file, not a version")
  assert export.next_version(str(tmp_path)) == 13


def test_a_version_of_another_model_is_warned_of(tmp_path, caplog):
  meta = dict(class_names=["a", "b"], generator=dict(num_classes=2))
  extra = tmp_path / "1" / "assets.extra"
  extra.mkdir(parents=True)
  (extra / export.METADATA_FILE).write_text(json.dumps(meta))
  (tmp_path / "7").mkdir()  # A later version is not what clients had.
  with caplog.at_level("WARNING"):
    export._warn_if_another_model(str(tmp_path), 2, meta)
    assert not caplog.records  # The same model: a new version of it.
    export._warn_if_another_model(
        str(tmp_path), 2, dict(meta, class_names=["a", "b", "c"]))
  (record,) = caplog.records
  assert ("serves another model than this export (class_names differ)"
          in record.getMessage())
  # A folder that is not a tfgt export is left alone.
  caplog.clear()
  export._warn_if_another_model(str(tmp_path / "none"), 2, meta)
  assert not caplog.records


def test_export_refuses_bad_requests(exported, model_dir):
  export_dir, _, _, _ = exported
  with pytest.raises(UserInputError, match="exists"):
    export.export(model_dir, export_dir, version=3)
  with pytest.raises(UserInputError, match="integers >= 1"):
    export.export(model_dir, export_dir, version=0)
  with pytest.raises(UserInputError, match="step number"):
    export.export(model_dir, export_dir, checkpoint="newest")
  with pytest.raises(UserInputError, match="steps available: \\[1, 2\\]"):
    export.export(model_dir, export_dir, checkpoint=3, version=9)
  assert [d for d in os.listdir(export_dir) if not d.isdigit()] == []
  assert "9" not in os.listdir(export_dir)


def test_a_failed_export_leaves_no_folder_behind(model_dir, tmp_path,
                                                 monkeypatch):
  def fail(*args, **kwargs):
    del args, kwargs
    raise RuntimeError("the disk broke")

  monkeypatch.setattr(export, "write_saved_model", fail)
  # export_dir and a parent it made are removed again.
  with pytest.raises(RuntimeError, match="the disk broke"):
    export.export(model_dir, str(tmp_path / "new" / "serving"))
  assert os.listdir(tmp_path) == []
  # A folder that was there stays, without the staging folder.
  (tmp_path / "serving").mkdir()
  with pytest.raises(RuntimeError, match="the disk broke"):
    export.export(model_dir, str(tmp_path / "serving"))
  assert os.listdir(tmp_path / "serving") == []


def test_class_name_that_is_not_text_is_refused_before_export(tmp_path):
  # What a class folder named b"caf\xe9" made before such folders were
  # refused: a lone surrogate in model.json.
  generator = biggan.BigGANGenerator(2, ch=4, dim_z=DIM_Z)
  biggan.build_models(generator)
  bundle.BundleWriter(str(tmp_path / "bundle"), generator, None,
                      ["caf\udce9", "tea"], "scratch").save(1)
  with pytest.raises(UserInputError, match=r"class name \"caf\\xe9\" is not "
                     "valid Unicode text.*Edit the file"):
    export.export(str(tmp_path / "bundle"), str(tmp_path / "serving"))
  assert not (tmp_path / "serving").exists()
  with pytest.raises(UserInputError, match="not valid Unicode text"):
    export.write_saved_model(generator, ["caf\udce9", "tea"],
                             str(tmp_path / "direct"))
  assert not (tmp_path / "direct").exists()


def test_export_records_the_checkpoint_it_exports(model_dir, tmp_path,
                                                  monkeypatch):
  """A live run saving a checkpoint during the export changes nothing."""
  live = str(tmp_path / "live")
  shutil.copytree(model_dir, live)
  lookups = []
  real_checkpoint_path = bundle.checkpoint_path

  def look_up_then_save(directory, checkpoint="latest"):
    path = real_checkpoint_path(directory, checkpoint)
    lookups.append(path)
    # The run saves step 3 just after the look-up.
    for name in os.listdir(live):
      if name.startswith("ckpt-2."):
        shutil.copy(os.path.join(live, name),
                    os.path.join(live, name.replace("ckpt-2", "ckpt-3")))
    tf.compat.v1.train.update_checkpoint_state(live,
                                               os.path.join(live, "ckpt-3"))
    return path

  monkeypatch.setattr(bundle, "checkpoint_path", look_up_then_save)
  target = export.export(live, str(tmp_path / "serving"), verify=False)
  with open(os.path.join(target, "assets.extra", export.METADATA_FILE)) as f:
    metadata = json.load(f)
  assert lookups == [os.path.join(live, "ckpt-2")]
  assert metadata["source"]["checkpoint"] == os.path.abspath(lookups[0])


def test_unwritable_export_dir_is_named(model_dir, tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a folder")
  export_dir = str(blocker / "serving")
  with pytest.raises(UserInputError, match="Cannot use --export_dir "
                     f"{re.escape(export_dir)} .*a folder you may create"):
    export.export(model_dir, export_dir)
  assert blocker.read_text() == "not a folder"


# ------------------------------------------------------------ model bundles
@pytest.mark.parametrize("value,expected", [
    ("best", "best"), ("latest", "latest"), ("12", 12), (12, 12),
    (np.int64(3), 3)])
def test_parse_checkpoint(value, expected):
  assert bundle.parse_checkpoint(value) == expected


def test_bad_checkpoint_names_are_user_errors(model_dir):
  for value in ("bset", "Latest", "-1", "1.5", "", -1, True, 2.0, None):
    with pytest.raises(UserInputError, match="names no checkpoint: use "
                       "'best', 'latest' or a step number"):
      bundle.parse_checkpoint(value, "--checkpoint")
  with pytest.raises(UserInputError, match="'best', 'latest', 'auto' or a "
                     "step number"):
    bundle.parse_checkpoint("x", also=("auto",))
  with pytest.raises(UserInputError, match="checkpoint='bset' names no "
                     "checkpoint"):
    bundle.checkpoint_path(model_dir, "bset")
  with pytest.raises(UserInputError, match="checkpoint='bset'"):
    bundle.load(model_dir, "bset")


def test_sample_command_refuses_a_bad_checkpoint_name(model_dir, tmp_path):
  out = tmp_path / "grid.png"
  result = _run([sys.executable, "-m", "tfgt.sample",
                 f"--model_dir={model_dir}", "--checkpoint=bset",
                 f"--out={out}"])
  assert result.returncode == 2, result.stderr[-3000:]
  assert ("--checkpoint='bset' names no checkpoint: use 'best', 'latest' or "
          "a step number") in result.stderr
  assert "Traceback" not in result.stderr
  assert not out.exists()


def test_interrupted_spec_write_keeps_the_old_spec(tmp_path, monkeypatch):
  generator = biggan.BigGANGenerator(2, ch=4, dim_z=DIM_Z)
  discriminator = biggan.BigGANDiscriminator(2, ch=4)
  bundle.BundleWriter(str(tmp_path), generator, discriminator, ["a", "b"],
                      "scratch")
  before = (tmp_path / bundle.SPEC_FILE).read_text()

  def interrupted_sync(fd):
    # The new spec is in the temporary file, not yet in place.
    del fd
    raise KeyboardInterrupt

  monkeypatch.setattr(os, "fsync", interrupted_sync)
  with pytest.raises(KeyboardInterrupt):
    bundle.BundleWriter(str(tmp_path), generator, discriminator, ["c", "d"],
                        "scratch")
  monkeypatch.undo()
  assert (tmp_path / bundle.SPEC_FILE).read_text() == before
  assert os.listdir(tmp_path) == [bundle.SPEC_FILE]
  assert bundle.read_spec(str(tmp_path))["class_names"] == ["a", "b"]


def test_a_diverged_checkpoint_is_not_exported(tmp_path):
  generator = biggan.BigGANGenerator(10, ch=4, dim_z=DIM_Z)
  discriminator = biggan.BigGANDiscriminator(10, ch=4)
  biggan.build_models(generator, discriminator)
  writer = bundle.BundleWriter(str(tmp_path / "bundle"), generator,
                               discriminator, CLASS_NAMES, "scratch")
  generator.trainable_variables[0].assign(
      generator.trainable_variables[0] * np.nan)
  writer.save(3)
  with pytest.raises(UserInputError, match="NaN or infinite weights.*"
                     "Export an earlier checkpoint"):
    export.export(str(tmp_path / "bundle"), str(tmp_path / "serving"))
  assert not (tmp_path / "serving" / "1").exists()


def test_export_benchmark_times_every_signature(tmp_path):
  """`tools.benchmark_export` on the shipped BigGAN, one short round."""
  from tests.conftest import load_tool  # pylint: disable=g-import-not-at-top
  tool = load_tool("benchmark_export")
  rows = tool.benchmark("pretrained:fashion_mnist_biggan", "latest", [2], 1,
                        0.01, str(tmp_path / "serving"),
                        ["float32", "mixed_bfloat16"])
  by_case = {r["case"]: r for r in rows}
  cases = {"in_process", "saved_model/z", "saved_model/seed",
           "tf1_session/seed", "in_process/weights", "saved_model/weights"}
  assert set(by_case) == cases | {c + " mixed_bfloat16" for c in cases}
  assert {r["precision"] for r in rows} == {"float32", "mixed_bfloat16"}
  # Each ratio is to the in-process case with the same input, in float32.
  assert by_case["in_process"]["ratio"] == 1.0
  assert by_case["in_process/weights"]["ratio"] == 1.0
  assert by_case["in_process mixed_bfloat16"]["ratio"] != 1.0
  assert all(r["images_per_sec"] > 0 and r["batch_size"] == 2 for r in rows)
  # Pixel differences are to the same case in float32: none there, a few
  # grey levels in bfloat16.
  assert all(r["max_difference"] == r["mean_difference"] == 0
             for r in rows if r["precision"] == "float32")
  bf16 = by_case["saved_model/seed mixed_bfloat16"]
  assert 0 < bf16["mean_difference"] < 4 and bf16["max_difference"] < 255
  with open(tmp_path / "serving" / "mixed_bfloat16" / "1" / "assets.extra" /
            export.METADATA_FILE) as f:
    assert json.load(f)["precision"] == "mixed_bfloat16"


def test_export_benchmark_feeds_every_path_the_same_request(tmp_path):
  """TF Serving's loader is given the request the SavedModel signature gets:
  a StyleGAN's untruncated psi is 1 (a BigGAN threshold would extrapolate
  w), so both draw the same images."""
  from tests.conftest import load_tool  # pylint: disable=g-import-not-at-top
  from tfgt.models import bundle  # pylint: disable=g-import-not-at-top
  tool = load_tool("benchmark_export")
  model = "pretrained:fashion_mnist_stylegan"
  path = export.export(model, str(tmp_path / "serving"))
  generator, _, _ = bundle.load(model)
  cases = tool._cases(generator, path, 3,  # pylint: disable=protected-access
                      tool._tf1_runner(path))  # pylint: disable=protected-access
  # The same graph through two loaders: equal up to a rounding that a
  # different graph optimisation may flip (a psi of 100 moves most pixels
  # by far more).
  a = cases["tf1_session/seed"]().astype(int)
  b = cases["saved_model/seed"]().astype(int)
  assert a.shape == b.shape and np.abs(a - b).max() <= 1


def test_serving_name_is_the_export_folder_name():
  assert export.serving_name("/srv/models/fashion_gan") == "fashion_gan"
  assert export.serving_name("/srv/models/my gan!/") == "my_gan"
  assert export.serving_name("/") == "gan"
