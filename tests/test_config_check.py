"""What a configuration names outside itself is checked before any work (flows/config_check.py)."""

from __future__ import annotations

import pytest

from flows.config_check import check_config, problems
from schemas.config import ConfigError, load_config


def test_every_problem_is_listed_by_key():
    cfg = load_config(overrides=['annotate.panel=[{"id": "x", "backend": "no_such_pkg:A"}, {"id": "y", "backend": "pathlib:Path"}]',
                                 "sampling.instruction.template=emotion-plain", "judge.gold=missing-gold.csv",
                                 'judge.task_weights={"emotion-plain": {"alpha": 0.4, "beta": 0.3, "gamma": 0.3}}'])
    found = problems(cfg)
    assert [p.split(":", 1)[0] for p in found] == ["annotate.panel.0.backend", "annotate.panel.1.backend", "sampling.instruction",
                                                   "judge.task_weights.emotion-plain", "judge.gold"]
    assert "no instruction template 'emotion-plain' (known: emotion-cot)" in found[3]


def test_a_good_configuration_passes():
    check_config(load_config())  # the offline default
    check_config(load_config(overrides=['annotate.panel=[{"id": "p", "backend": "tests.plugins.crash_once:CrashOnceLexical"}]',
                                        'judge.task_weights={"emotion-cot": {"alpha": 0.4, "beta": 0.3, "gamma": 0.3}}']))


def test_gold_file_with_a_label_outside_the_taxonomy_is_named(tmp_path):
    gold = tmp_path / "gold.csv"
    gold.write_text("clip_id,label\nc1,happiness\nc2,joyful\n")
    with pytest.raises(ConfigError, match=r"judge.gold: .*gold.csv: row 3: label 'joyful' is not in the taxonomy"):
        check_config(load_config(overrides=[f"judge.gold={gold}"]))


def test_the_python_api_refuses_a_bad_configuration_before_any_work(tmp_path):
    from flows.pipeline_flow import run_pipeline

    cfg = load_config(overrides=['annotate.panel=[{"id": "x", "backend": "no_such_pkg.agents:Mine"}]'])
    with pytest.raises(ConfigError, match="annotate.panel.0.backend: cannot import backend 'no_such_pkg.agents:Mine'"):
        run_pipeline([str(tmp_path)], str(tmp_path / "out"), cfg)
    assert not (tmp_path / "out").exists()
