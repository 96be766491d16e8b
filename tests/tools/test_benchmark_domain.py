"""The second-domain benchmark (tools.benchmark_domain) and its configs
(gin_configs/glyphs), at tiny size.

Tiny stand-ins replace the shipped sources (a random 8-class BigGAN, a
random unconditional StyleGAN) and the glyph classifier (the classifier's
network at its random initialisation): every config builds its models on
the drawn digits, the table, claims and notes come from hand-written rows,
the benchmark refuses to start without the classifier (and reports from
its records without it), and the cells' extra scores are wired to the
run's own evaluator. No cell trains here: one run of the full trainer with
its evaluations took over 40 s on 2 shared cores; the trainer, the
evaluator's metrics and benchlib's cells are tested in their own files.
"""

import json
import os

import gin
import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import REPO
from tests.conftest import TINY
from tfgt import config as config_lib
from tfgt import run_folder
from tfgt import train as train_lib
from tfgt.data import pipeline
from tfgt.data import sources
from tfgt.errors import UserInputError
from tfgt.eval import features
from tfgt.models import architectures
from tfgt.models import biggan
from tfgt.models import bundle
from tfgt.models import stylegan
from tools import benchmark_domain
from tools.benchlib import cells as cells_lib

CONFIGS = {m: os.path.join("gin_configs", "glyphs", f"{m}.gin")
           for m in benchmark_domain.METHODS}
# The Fashion-MNIST configs they extend (with the evaluator the Fashion-MNIST
# benchmarks bind).
FM_EVAL = os.path.join("gin_configs", "fashion_mnist", "eval.gin")
FASHION_MNIST = {
    "cgantransfer": ["gin_configs/fashion_mnist/cgantransfer.gin"],
    "bsa": ["gin_configs/fashion_mnist/bsa.gin", FM_EVAL],
    "hypermod": ["gin_configs/fashion_mnist/hypermod.gin"],
    "gan_memory": ["gin_configs/fashion_mnist/gan_memory.gin"]}
# What the glyph configs may change: the data and the evaluator.
DATA_AND_EVALUATOR = ("load_training_data.", "Evaluator.",
                      "FashionMNISTClassifier.", "train.evaluator",
                      "train.best_metric", "GLYPH_CLASSIFIER", "import ")
# Few images: 10 per glyph class drawn (training subset, the evaluator's
# real images and the feature check's own domain alike).
SMALL = ["glyphs.images_per_class = 10", "IMAGES_PER_CLASS = 4",
         "HyperModulation.class_width = 6", "HyperModulation.class_depth = 2"]


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
  # Gin files include each other by paths relative to the repository.
  monkeypatch.chdir(REPO)


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
  """{"biggan", "stylegan": tiny source bundles, "classifier": weights of
  the glyph classifier's network, untrained}."""
  root = tmp_path_factory.mktemp("stand_ins")
  keras.utils.set_random_seed(0)
  g = biggan.BigGANGenerator(8, ch=4, dim_z=16)
  d = biggan.BigGANDiscriminator(8, ch=4, resolution=32, channels=1)
  biggan.build_models(g, d)
  for v in g.variables:  # Classes that differ.
    if v.path.endswith(("gain_offset", "/shift")):
      v.assign(tf.random.normal(v.shape, stddev=0.3))
  bundle.BundleWriter(str(root / "biggan" / "model"), g, d,
                      list(sources.FASHION_MNIST_CLASSES[:8]),
                      "scratch").save(1)
  g = stylegan.StyleGANGenerator(1, resolution=32, channels=1, dim_z=8,
                                 w_dim=8, mapping_layers=2, fmap_base=32,
                                 fmap_max=8)
  d = stylegan.StyleGANDiscriminator(1, resolution=32, channels=1,
                                     fmap_base=32, fmap_max=8)
  architectures.build_by_calling(g, d)
  bundle.BundleWriter(str(root / "stylegan"), g, d, ["merged"],
                      "scratch").save(0)
  weights = str(root / "classifier.weights.h5")
  features.fashion_mnist_classifier_model().save_weights(weights)
  return dict(biggan=str(root / "biggan"), stylegan=str(root / "stylegan"),
              classifier=weights)


def _params(method, stand_ins):
  source = stand_ins["biggan" if method in ("cgantransfer", "bsa")
                     else "stylegan"]
  return TINY + SMALL + [f"SOURCE = '{source}'",
                         f"GLYPH_CLASSIFIER = '{stand_ins['classifier']}'",
                         "ALIGNED = None"]


def _bindings(files):
  """{statement head: statement} of the gin config of `files` (a
  statement runs until the next line that starts in column 0)."""
  config_lib.parse(files, ["train.num_steps = 3"])
  statements = {}
  head = None
  for line in gin.config_str().splitlines():
    if line and not line[0].isspace() and not line.startswith("#"):
      head = line.split(" = ")[0]
      statements[head] = line
    elif head and line.strip() and not line.startswith("#"):
      statements[head] += "\n" + line
  gin.clear_config()
  return statements


@pytest.mark.parametrize("method", benchmark_domain.METHODS)
def test_glyph_config_changes_only_data_and_evaluator_and_builds(
    method, stand_ins):
  glyph, fashion = _bindings([CONFIGS[method]]), _bindings(FASHION_MNIST[
      method])
  changed = {k for k in set(glyph) | set(fashion)
             if glyph.get(k) != fashion.get(k)}
  assert changed and all(k.startswith(DATA_AND_EVALUATOR) for k in changed), (
      sorted(changed))
  assert "IMAGES_PER_CLASS = 100" in glyph.values()
  assert glyph["GLYPH_CLASSIFIER"] == (
      f"GLYPH_CLASSIFIER = '{benchmark_domain.DEFAULT_CLASSIFIER}'")

  train_lib.parse_config([CONFIGS[method]], _params(method, stand_ins))
  assert gin.query_parameter("load_training_data.source").selector == "glyphs"
  extractor = gin.query_parameter(
      "Evaluator.extractor").scoped_configurable_fn()
  assert extractor.weights == stand_ins["classifier"]
  assert extractor.domain()[0].shape == (100, 32, 32, 1)  # Its own domain.
  assert set(gin.query_parameter("Evaluator.metrics")) >= {
      "fid", "mfid", "mconsistency", "mdiversity", "mdiversity_pixels"}
  method_fn = gin.query_parameter("train.method").scoped_configurable_fn()
  info = method_fn.source_info()
  images, labels, selection = pipeline.load_training_data(
      resolution=info.resolution, channels=info.channels,
      label_offset=len(info.class_names))
  assert selection.names == ["glyph 3", "glyph 7"]
  assert images.shape == (8, 32, 32, 1) and images.max() > 100
  setup = method_fn.build(info.class_names + selection.names)
  y = tf.constant(labels[:2])
  out = setup.generator((tf.random.normal([2, setup.generator.dim_z]), y),
                        training=False)
  assert out.shape == (2, 32, 32, 1) and np.isfinite(out.numpy()).all()


def test_cells_run_every_method_and_seed_with_the_benchmark_protocol():
  todo = benchmark_domain.cells(benchmark_domain.METHODS, [100], [0, 1, 2],
                                aligned="runs/align")
  assert [c.run_name for c in todo[:4]] == [
      "cgantransfer_100_s0", "bsa_100_s0", "hypermod_100_s0",
      "gan_memory_100_s0"]
  assert len(todo) == 12 and all(os.path.exists(c.config) for c in todo)
  assert {c.params for c in todo if c.name == "hypermod"} == {
      ("ALIGNED = 'runs/align'",)}
  assert not any(c.params for c in todo if c.name != "hypermod")
  # cGANTransfer at the paper's rate and length, as in every benchmark.
  params = cells_lib.cell_params(todo[0], None, [])
  assert params[:2] == ["train.g_lr = 2e-4", "train.num_steps = 1200"]
  assert not cells_lib.protocol(todo[1])
  with pytest.raises(UserInputError, match="Unknown methods.*cgantransfer"):
    benchmark_domain.cells(["cgantransfr"], [100], [0])


def _row(method, seed, mfid, consistency, diversity):
  return dict(
      method=method, images_per_class=100, seed=seed, wall_time_s=600.0,
      steps_per_sec=1.0, gin_config="train.batch_size = 64\n",
      best_fid=mfid - 1, best_step=1200, final_fid=mfid,
      fid_history=[[600, mfid + 3], [1200, mfid - 1]], old_class_fid=None,
      cpu="a CPU", rescored=dict(num_samples=10000, best=dict(
          fid=mfid - 1, mfid=mfid, precision=0.9, recall=0.3,
          features_separation=0.98, features_min_spread=0.9)),
      trust=dict(mconsistency=consistency, mconsistency_real=0.99,
                 mdiversity=diversity, mdiversity_pixels=diversity + 0.1,
                 features_separation=0.98, features_min_spread=0.9,
                 per_class={"glyph 3": {"consistency": consistency}}))


HAND_ROWS = (
    [_row("cgantransfer", s, 10 + s, 0.95, 0.9 - 0.01 * s) for s in range(3)]
    + [_row("bsa", s, 15 + s, 0.95, 0.5 + 0.02 * s) for s in range(3)]
    + [_row("hypermod", s, 10 + s + 0.1 * s * s, 0.6 + 0.1 * s, 1.0)
       for s in range(3)]
    + [_row("gan_memory", s, 20 + s, 0.5, 0.2) for s in range(2)])


def test_report_shows_consistency_and_diversity_and_the_claims():
  text = benchmark_domain.markdown(HAND_ROWS, "the command",
                                   left_out=["gan_memory_100_s2"])
  head = next(l for l in text.splitlines() if l.startswith("| method |"))
  assert ("| FID | mFID | consistency | consistency (real) | diversity | "
          "pixel diversity | P | R |") in head
  line = next(l for l in text.splitlines() if l.startswith("| bsa |"))
  assert line.startswith("| bsa | 3 | 15.00 ± 1.00 | 16.00 ± 1.00 | "
                         "0.95 ± 0.00 | 0.99 ± 0.00 | 0.52 ± 0.02 | "
                         "0.62 ± 0.02 | 0.90 ± 0.00 | 0.30 ± 0.00 |")
  claims = {l.split(" (seeds")[0]: l for l in text.splitlines()
            if l.startswith("- 100/class, ")}
  assert set(claims) == {f"- 100/class, {m} against {b}" for m, b in (
      ("bsa", "cgantransfer"), ("hypermod", "cgantransfer"),
      ("gan_memory", "cgantransfer"), ("hypermod", "gan_memory"))}
  bsa = claims["- 100/class, bsa against cgantransfer"]
  assert "(seeds 0, 1, 2): mFID 16.00 ± 1.00 vs 11.00 ± 1.00: worse" in bsa
  assert "consistency 0.95 ± 0.00 vs 0.95 ± 0.00: within the spread" in bsa
  assert ("diversity 0.52 ± 0.02 vs 0.89 ± 0.01: worse (distance from 1, "
          "paired over 3 seeds") in bsa
  hyper = claims["- 100/class, hypermod against cgantransfer"]
  assert "diversity 1.00 ± 0.00 vs 0.89 ± 0.01: better" in hyper
  # GAN Memory has two seeds: the pairs use those.
  assert "gan_memory against cgantransfer (seeds 0, 1): mFID" in text
  assert ("- The feature check of the glyph classifier on the real images "
          "of the two classes: separation 0.98, smallest class spread 0.90 "
          "(both above 0.5") in text
  assert "- Old-class FID: not measured" in text
  assert "left out of these tables (1 run): gan_memory_100_s2." in text
  # The rows themselves keep their trust scores apart.
  assert "mconsistency" not in HAND_ROWS[0]["rescored"]["best"]
  # One classifier for every row: no note.
  assert "not all scored with the same glyph classifier" not in text


def test_report_says_when_rows_had_different_classifiers():
  rows = [dict(r, trust=dict(r.get("trust") or {})) for r in HAND_ROWS]
  for i, row in enumerate(rows):
    row["model_dir"] = f"runs/x/{row['method']}_100_s{row['seed']}"
    row["trust"]["extractor"] = {"name": "c", "weights": "aa" if i else "bb"}
  rows[-1]["trust"].pop("extractor")
  text = benchmark_domain.markdown(rows, "the command")
  line = next(l for l in text.splitlines() if "not all scored" in l)
  first = f"{rows[0]['method']}_100_s{rows[0]['seed']}"
  last = f"{rows[-1]['method']}_100_s{rows[-1]['seed']}"
  assert f"weights bb: {first}; not recorded: {last})" in line
  assert line.count("weights aa: ") == 1


def test_refuses_to_start_without_the_glyph_classifier(tmp_path, stand_ins):
  out_dir = str(tmp_path / "out")
  missing = str(tmp_path / "nowhere" / "classifier.weights.h5")
  with pytest.raises(UserInputError, match=(
      r"weights .*nowhere/classifier\.weights\.h5 do not exist.*`python -m "
      r"tools\.train_fashion_mnist_classifier --source=glyphs "
      r"--output_dir=.*nowhere`")):
    benchmark_domain.run_benchmark(out_dir, glyph_classifier=missing)
  assert not os.path.exists(out_dir)  # Refused before anything started.
  # An --aligned folder that is not a finished self-alignment.
  with pytest.raises(UserInputError, match="not a finished self-alignment"):
    benchmark_domain.run_benchmark(
        out_dir, ["hypermod"], aligned=str(tmp_path),
        glyph_classifier=stand_ins["classifier"])
  assert not os.path.exists(out_dir)


def test_reports_from_records_without_the_classifier(tmp_path):
  """--report_only reads the records; it needs no classifier weights."""
  records = tmp_path / "records"
  records.mkdir()
  missing = str(tmp_path / "classifier.weights.h5")
  params = [f"GLYPH_CLASSIFIER = '{missing}'"]
  for cell in benchmark_domain.cells(["cgantransfer", "bsa"], [100], [0]):
    config, steps = cells_lib.cell_config(cell, None, [], params)
    row = next(r for r in HAND_ROWS if r["method"] == cell.name)
    (records / f"{cell.run_name}.json").write_text(json.dumps(
        dict(row, gin_config=config, num_steps=steps)))
  out_dir = str(tmp_path / "out")
  rows = benchmark_domain.run_benchmark(
      out_dir, ["cgantransfer", "bsa"], seeds=[0], glyph_classifier=missing,
      report_only=True, record_dir=str(records), command="cmd")
  assert [r["method"] for r in rows] == ["cgantransfer", "bsa"]
  with open(os.path.join(out_dir, "results.md")) as f:
    assert "| cgantransfer | 1 | 9.00 | 10.00 | 0.95 |" in f.read()


def test_runs_score_trust_and_skip_the_old_classes(tmp_path, stand_ins,
                                                   monkeypatch):
  """The cells' extra scores: consistency and diversity of the best
  generator by the run's own evaluator, and no old-class FID."""
  # pylint: disable=g-import-not-at-top
  from tfgt import evaluate
  from tools.benchlib import runs
  # pylint: enable=g-import-not-at-top
  seen = {}

  def train_cells(todo, out_dir, num_steps, eval_gin, gin_params, *args,
                  extra_scores=None, record_dir=None):
    del out_dir, eval_gin, args, record_dir
    seen.update(cells=todo, params=gin_params, steps=num_steps,
                extra=extra_scores)
    return []

  def run(model_dir, checkpoint, overrides=None, output=None, **kwargs):
    del kwargs
    seen.update(run=(model_dir, checkpoint, overrides, output))
    return evaluate.evaluator_lib.EvalResult(
        metrics={"mconsistency": 0.5, "mdiversity": 0.25},
        per_class={"glyph 3": {"consistency": 0.5}},
        settings={"extractor": {"name": "c", "weights": "ab12"}}), output

  monkeypatch.setattr(runs, "train_cells", train_cells)
  monkeypatch.setattr(evaluate, "run", run)
  aligned = tmp_path / "align"  # A finished self-alignment, to the test.
  aligned.mkdir()
  (aligned / run_folder.SAMPLES).write_bytes(b"")
  out_dir = str(tmp_path / "out")
  benchmark_domain.run_benchmark(
      out_dir, ["cgantransfer", "hypermod"], seeds=[0],
      aligned=str(aligned), num_steps=2, gin_params=["A = 1"],
      rescore_samples=300, glyph_classifier=stand_ins["classifier"],
      only="cgantransfer_100_s0")
  assert [c.run_name for c in seen["cells"]] == [
      "cgantransfer_100_s0", "hypermod_100_s0"]
  assert seen["cells"][1].params == (f"ALIGNED = '{aligned}'",)
  assert seen["params"] == [
      "A = 1", f"GLYPH_CLASSIFIER = '{stand_ins['classifier']}'"]
  assert seen["extra"]["old_class_fid"]("any") is None
  assert seen["extra"]["trust"]("run") == {
      "mconsistency": 0.5, "mdiversity": 0.25,
      "per_class": {"glyph 3": {"consistency": 0.5}},
      "extractor": {"name": "c", "weights": "ab12"}}
  assert seen["run"] == ("run", "best", dict(
      num_samples=300, metrics=list(benchmark_domain.TRUST_METRICS)),
                         os.path.join("run", benchmark_domain.TRUST_FILE))
