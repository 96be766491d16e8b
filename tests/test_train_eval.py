"""Evaluation during training: the best checkpoint, evaluations on resume."""

import glob
import json
import logging
import os

import tensorflow as tf

from tests.conftest import ScriptedEvaluator
from tests.conftest import run_evaluated
from tfgt.eval import evaluator as evaluator_lib


def test_best_checkpoint_follows_the_metric_direction(tmp_path, caplog):
  evaluator = ScriptedEvaluator("fid", [3.0, 1.0, 2.0])
  with caplog.at_level(logging.INFO, logger="absl"):
    run_evaluated(tmp_path / "run", 3, evaluator, "fid")
  # Each new best says so in the log; a worse evaluation does not.
  assert "New best fid 3 at step 1" in caplog.text
  assert "New best fid 1 at step 2" in caplog.text
  assert "at step 3:" not in caplog.text
  assert len(evaluator.steps) == 3
  record = json.loads((tmp_path / "run" / "best.json").read_text())
  assert record == {"fid": 1.0, "step": 2}
  assert tf.train.latest_checkpoint(
      str(tmp_path / "run" / "model" / "best")).endswith("ckpt-2")
  # Higher is better for these (the comparison itself: test_run_folder.py).
  assert evaluator_lib.HIGHER_IS_BETTER >= {"precision", "recall", "density",
                                            "coverage"}
  assert not evaluator_lib.HIGHER_IS_BETTER & {"fid", "kid", "mfid"}


def test_resume_redoes_a_lost_bundle_and_evaluation(tmp_path):
  model_dir = tmp_path / "run"
  run_evaluated(model_dir, 2, ScriptedEvaluator("fid", [5.0, 4.0]), "fid",
                 eval_every=2)
  # As if the run had died after its last checkpoint, before the bundle and
  # the evaluation of that step were written.
  bundle_dir = model_dir / "model"
  for path in glob.glob(str(bundle_dir / "ckpt-2.*")):
    os.remove(path)
  (bundle_dir / "checkpoint").unlink()
  (model_dir / "eval_state.json").unlink()
  evaluator = ScriptedEvaluator("fid", [3.0])
  run_evaluated(model_dir, 2, evaluator, "fid", eval_every=2)
  assert evaluator.steps == [0]
  assert tf.train.latest_checkpoint(str(bundle_dir)).endswith("ckpt-2")
  assert json.loads((model_dir / "best.json").read_text())["fid"] == 3.0
  # Once done, the same command evaluates nothing again.
  again = ScriptedEvaluator("fid", [])
  run_evaluated(model_dir, 2, again, "fid", eval_every=2)
  assert again.steps == []



def test_logged_results_print_kid_times_100():
  text = evaluator_lib.format_results({"fid": 9.75, "kid": 0.00512,
                                       "mkid": 0.25, "recall": 0.3})
  assert text == "fid 9.75, kid x100 0.512, mkid x100 25, recall 0.3"
