"""The run folder: identity and model checks, the best evaluation, stages."""

import json
import math

import pytest

from tfgt import run_folder
from tfgt.errors import UserInputError


def _strict(path):
  def refuse(token):
    raise ValueError(f"non-strict JSON token {token}")
  return json.loads(path.read_text(), parse_constant=refuse)


def _direction(higher):
  return (lambda new, old: new > old) if higher else (
      lambda new, old: new < old)


@pytest.mark.parametrize("higher", [False, True])
def test_a_non_finite_score_is_never_the_best(tmp_path, higher):
  folder = run_folder.RunFolder(str(tmp_path))
  higher = _direction(higher)
  good = 0.5
  for step, value in enumerate([math.nan, good, math.inf, -math.inf,
                                math.nan], start=1):
    improved = folder.is_new_best(value, "m", higher)
    assert improved == (value == good)
    folder.record_evaluation(step, {"m": value, "other": math.nan},
                             improved)
    assert _strict(tmp_path / run_folder.EVAL_STATE) == {"step": step}
  # Strict JSON: a non-finite value of another metric is written as null.
  assert _strict(tmp_path / run_folder.BEST) == {"m": good, "other": None,
                                                 "step": 2}
  up = higher(0.6, 0.4)
  assert folder.is_new_best(0.4 if not up else 0.6, "m", higher)
  assert not folder.is_new_best(0.6 if not up else 0.4, "m", higher)


def test_a_non_finite_best_from_an_older_version_is_beaten(tmp_path):
  (tmp_path / run_folder.BEST).write_text('{"fid": NaN, "step": 3}')
  assert run_folder.RunFolder(str(tmp_path)).is_new_best(
      80.0, "fid", _direction(False))


def test_files_are_written_as_strict_json(tmp_path):
  with pytest.raises(ValueError):
    run_folder.files.write_json(str(tmp_path / "x.json"), {"a": math.nan})
  assert not (tmp_path / "x.json").exists()


def test_restore_models_refuses_what_is_not_a_finished_stage(tmp_path):
  with pytest.raises(UserInputError, match="holds no training run"):
    run_folder.restore_models(str(tmp_path), ["a"])
