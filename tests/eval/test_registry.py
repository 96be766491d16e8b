"""The metric registry: the built-in entries say what the former tables said,
and a new metric is one `registry.register` call plus its function."""

import json

import numpy as np
import pytest

from tests.conftest import ScriptedEvaluator, event_values, run_evaluated
from tests.eval.test_evaluator import (LinearGenerator, PooledPixels,
                                       bind_folder, make_folder)
from tests.eval.test_ppl import _ClassMixGenerator
from tfgt import evaluate as evaluate_lib
from tfgt.errors import UserInputError
from tfgt.eval import evaluator as evaluator_lib
from tfgt.eval import metrics as metrics_lib
from tfgt.eval import registry

PRDC = ("precision", "recall", "density", "coverage")
CONSISTENCY = ("mconsistency", "mconsistency_real", "mdiversity",
               "mdiversity_real", "mdiversity_pixels", "mdiversity_pixels_real")
LPIPS = ("mdiversity_lpips", "mdiversity_lpips_real")
# The metrics that run without files of the user's (LPIPS needs two).
WITHOUT_FILES = ("fid", "kid", "mfid", "mkid", "kmmd", "prdc", "mprdc", "ppl",
                 "mconsistency", "mdiversity", "mdiversity_pixels")


def test_builtin_entries_say_what_the_former_tables_said():
  assert registry.names() == WITHOUT_FILES + ("mdiversity_lpips",)
  assert {m.name for m in registry.metrics() if m.per_class} == {
      "mfid", "mkid", "mprdc", "mconsistency", "mdiversity",
      "mdiversity_pixels", "mdiversity_lpips"}
  keys = {k for m in registry.metrics() for k in m.result_keys}
  assert keys == {"fid", "kid", "kid_std", "mfid", "mkid", "kmmd", "ppl_full",
                  "ppl_end", *PRDC, *("m" + p for p in PRDC), *CONSISTENCY,
                  *LPIPS}
  # Within-class diversity is best at 1 (the real images' own spread).
  higher = {*PRDC, *("m" + p for p in PRDC), "mconsistency",
            "mconsistency_real"}
  assert {k for k in keys if registry.higher_is_better(k)} == higher
  assert evaluator_lib.HIGHER_IS_BETTER == higher
  assert {k for k in keys if registry.target(k) is not None} == {
      "mdiversity", "mdiversity_pixels", "mdiversity_lpips"}
  assert registry.target("mdiversity") == 1.0
  assert {k for k in keys if registry.is_reference(k)} == {
      k for k in CONSISTENCY + LPIPS if k.endswith("_real")}
  assert {k for k in keys if registry.scale(k) != 1} == {"kid", "kid_std",
                                                         "mkid"}
  assert registry.for_result("kid_std").name == "kid"
  assert registry.for_result("mcoverage").name == "mprdc"
  assert registry.for_result("steps_per_sec") is None
  assert not registry.higher_is_better("steps_per_sec")
  # Minimum rows (real, generated) under the default settings.
  settings = evaluator_lib.Evaluator(metrics=WITHOUT_FILES)
  assert {m.name: m.minimum(settings) for m in registry.metrics()} == dict(
      fid=(2, 2), kid=(2, 2), mfid=(2, 2), mkid=(2, 2), kmmd=(2, 1),
      prdc=(6, 6), mprdc=(6, 6), ppl=None, mconsistency=(5, 1),
      mdiversity=(2, 2), mdiversity_pixels=(2, 2), mdiversity_lpips=(2, 2))
  assert registry.get("ppl").inputs == registry.GENERATOR
  assert registry.get("mdiversity_pixels").inputs == registry.PIXELS
  assert registry.get("MFID").name == "mfid"
  with pytest.raises(UserInputError, match="Unknown metric 'is': choose from "
                     "fid, kid, mfid, mkid, kmmd, prdc, mprdc, ppl, "
                     "mconsistency, mdiversity, mdiversity_pixels, "
                     "mdiversity_lpips"):
    registry.get("is")
  assert (evaluator_lib.format_results({"fid": 9.75, "kid": 0.00512,
                                        "mkid": 0.25, "recall": 0.3}) ==
          "fid 9.75, kid x100 0.512, mkid x100 25, recall 0.3")


def test_results_keep_their_order(tmp_path):
  # mprdc's means come before mfid's, as the files of earlier versions list
  # them; the per-class values follow the registry.
  bind_folder(make_folder(tmp_path / "images", {"a": 12, "b": 12}))
  evaluator = evaluator_lib.Evaluator(
      extractor=PooledPixels(), metrics=list(reversed(WITHOUT_FILES)),
      ppl_samples=4, cache_dir=str(tmp_path / "cache"))
  assert evaluator.metrics == WITHOUT_FILES
  result = evaluator.evaluate(_ClassMixGenerator())
  assert list(result.metrics) == [
      "fid", "kid", *("m" + p for p in PRDC), "mfid", "mkid", "kmmd", *PRDC,
      "ppl_full", "ppl_end", *CONSISTENCY,
      # The feature check's, last (no spread unit: a toy extractor).
      "features_separation"]  # (24 samples: one KID block, no kid_std)
  assert list(result.per_class["a"]) == [
      "model_id", "real", "generated", "fid", "kid", *PRDC, "consistency",
      "consistency_real", "diversity", "diversity_real", "diversity_pixels",
      "diversity_pixels_real"]
  assert result.settings["metrics"] == list(WITHOUT_FILES)


# The toy metric of docs/EVALUATION.md ("Add a metric"): the mean norm of the
# samples' features, per class. Its own function and one entry; nothing else.
def mean_feature_norm(real, fake, settings):
  """{"norm": mean L2 norm of the rows of fake [m, D]}."""
  del real, settings  # Depends on the samples alone.
  return {"norm": float(np.mean(np.linalg.norm(fake, axis=1)))}


MEAN_NORM = registry.Metric(
    name="mnorm", keys=("norm",), per_class=True, compute=mean_feature_norm,
    higher_is_better=True, scale=100, min_rows=(1, 3))


@pytest.fixture
def mean_norm():
  registry.register(MEAN_NORM)
  yield MEAN_NORM
  registry.unregister(MEAN_NORM.name)


def test_a_new_metric_is_one_entry(mean_norm, tmp_path):
  bind_folder(make_folder(tmp_path / "images", {"a": 12, "b": 6}))
  evaluator = evaluator_lib.Evaluator(
      extractor=PooledPixels(), metrics="fid,mnorm", num_samples=30,
      cache_dir=str(tmp_path / "cache"), check_features=False)
  assert evaluator.result_names() == {"fid", "mnorm"}
  evaluator.prepare()
  generator = LinearGenerator(2)
  result = evaluator.evaluate(generator)
  # Per class, against the same samples (the latents are seeded).
  fake = evaluator.sample_features(generator, {0: 20, 1: 10})
  for name, c in (("a", 0), ("b", 1)):
    want = np.mean(np.linalg.norm(fake[c], axis=1))
    assert result.per_class[name]["norm"] == pytest.approx(want, rel=1e-6)
    assert result.per_class[name]["generated"] == len(fake[c])
  assert list(result.metrics) == ["fid", "mnorm"]
  assert result.metrics["mnorm"] == pytest.approx(
      np.mean([e["norm"] for e in result.per_class.values()]), rel=1e-12)
  # Shown x100 on the terminal line and in the table, stored raw.
  line = evaluator_lib.format_results(result.metrics)
  assert f"mnorm x100 {result.metrics['mnorm'] * 100:.4g}" in line
  table = evaluate_lib.format_table(result)
  assert f"mnorm x100  {result.metrics['mnorm'] * 100:.4f}" in table
  assert "norm x100" in [l for l in table.splitlines()
                         if l.startswith("class ")][0]
  # Its minimum counts are checked like the built-in ones': 3 samples of
  # every class.
  short = evaluator_lib.Evaluator(
      extractor=PooledPixels(), metrics="mnorm", num_samples=7,
      cache_dir=str(tmp_path / "cache"))
  with pytest.raises(UserInputError, match=r"mnorm needs at least 3 "
                     r"generated samples of every class, but .* leaves class "
                     r"'b' 2\. Set Evaluator\.num_samples .* at least 8"):
    short.prepare()


def test_the_trainer_keeps_the_best_of_a_new_metric_by_its_direction(
    mean_norm, tmp_path):
  assert registry.higher_is_better("mnorm")
  run_evaluated(tmp_path / "run", 3, ScriptedEvaluator("mnorm",
                                                       [1.0, 3.0, 2.0]),
                "mnorm")
  record = json.loads((tmp_path / "run" / "best.json").read_text())
  assert record == {"mnorm": 3.0, "step": 2}  # higher is better
  logged = event_values(str(tmp_path / "run"))["eval/mnorm"]
  assert [(step, float(v)) for step, v in logged] == [(1, 1.0), (2, 3.0),
                                                      (3, 2.0)]


def test_registration_refuses_entries_that_cannot_work(mean_norm):
  with pytest.raises(ValueError, match="'mnorm' is registered already"):
    registry.register(MEAN_NORM)
  with pytest.raises(ValueError, match=r"would return \['mnorm'\], which "
                     r"\['mnorm'\] return already: rename its keys"):
    registry.register(registry.Metric(name="norm2", keys=("mnorm",),
                                      compute=mean_feature_norm))
  with pytest.raises(ValueError, match="per-class metric is computed on each "
                     "class's features"):
    registry.register(registry.Metric(
        name="mppl", keys=("x",), per_class=True, compute=mean_feature_norm,
        inputs=registry.GENERATOR))
  with pytest.raises(ValueError, match="keys must be a tuple"):
    registry.register(registry.Metric(name="norm3", keys="norm",
                                      compute=mean_feature_norm))
  with pytest.raises(ValueError, match="lower case letters"):
    registry.register(registry.Metric(name="Norm", keys=("n",),
                                      compute=mean_feature_norm))
  assert "norm2" not in registry.names()
  # A compute that returns a key its entry does not declare.
  entry = registry.Metric(name="liar", keys=("a",),
                          compute=lambda real, fake, settings: {"b": 1.0})
  with pytest.raises(ValueError, match=r"returned \['b'\], which its entry "
                     "does not declare"):
    entry(np.zeros((2, 1)), np.zeros((2, 1)), None)
  assert metrics_lib.PRDC_KEYS == PRDC


@pytest.mark.parametrize("key, values, best", [
    ("fid", [3.0, 1.0, 2.0], 1.0), ("mrecall", [0.1, 0.3, 0.2], 0.3),
    # Nearest 1: a collapse (0.4) and off-class noise (1.8) both lose.
    ("mdiversity", [0.4, 1.3, 0.9, 1.8], 0.9),
    ("mdiversity_pixels", [1.8, 0.7, 1.2], 1.2)])
def test_the_best_checkpoint_follows_each_result_s_direction(tmp_path, key,
                                                            values, best):
  from tfgt import run_folder  # pylint: disable=g-import-not-at-top
  folder = run_folder.RunFolder(str(tmp_path))
  for step, value in enumerate(values, start=1):
    improved = folder.is_new_best(
        value, key, lambda new, old: registry.better(key, new, old))
    folder.record_evaluation(step, {key: value}, improved)
  assert json.loads((tmp_path / "best.json").read_text())[key] == best


def test_reference_keys_must_be_keys_of_the_metric():
  with pytest.raises(ValueError, match="a target .* replaces the direction"):
    registry.register(registry.Metric(
        name="mbad", keys=("bad",), per_class=True,
        compute=mean_feature_norm, target=1.0, higher_is_better=True))
  with pytest.raises(ValueError, match="reference_keys must be a tuple of "
                     "some of its keys"):
    registry.register(registry.Metric(
        name="mbad", keys=("bad",), per_class=True,
        compute=mean_feature_norm, reference_keys=("bad_real",)))
  assert "mbad" not in registry.names()
