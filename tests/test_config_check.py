"""What a configuration names outside itself is checked before any work (flows/config_check.py)."""

from __future__ import annotations

import pytest

from flows.config_check import check_config, load_checked_config, problems
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


@pytest.mark.parametrize("content, message", [
    (None, "speakers file not found"),
    ("file,who\na.wav,s1\n", "a speakers file needs columns file and speaker (missing speaker)"),
    ("file,speaker\na.wav,s1\nb.wav,\n", "row 3: empty file or speaker"),
    ("file,speaker\nx/a.wav,s1\nx/a.wav,s2\n", "row 3: x/a.wav is listed with two speakers (s1, s2)"),
])
def test_a_bad_speakers_file_is_named_with_its_row_at_load(tmp_path, content, message):
    path = tmp_path / "speakers.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as err:
        load_checked_config(overrides=[f"annotate.baseline.speakers={path}"])
    assert f"annotate.baseline.speakers: {path}: {message}" in str(err.value)


def test_a_speakers_file_matches_sources_by_the_end_of_their_path(tmp_path):
    from agents.voice_baseline import declared_speaker, load_speakers

    path = tmp_path / "speakers.csv"
    path.write_text("file,speaker\n03a01Fa.wav,03\nActor_01/01.wav,a1\nActor_02/01.wav,a2\n")
    speakers = load_speakers(str(path))
    assert declared_speaker("/data/emodb/wav/03a01Fa.wav", speakers) == "03"
    assert declared_speaker("/data/ravdess/Actor_02/01.wav", speakers) == "a2"
    assert declared_speaker("/data/ravdess/Actor_03/01.wav", speakers) is None
    assert declared_speaker("/data/other/03a01Fa.wav.bak", speakers) is None
