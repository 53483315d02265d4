"""Records round-trip through Parquet; configuration is validated with clear errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest

from schemas import (
    SCHEMA_VERSION, AgreementStat, ClaimCheck, Annotation, AnnotatorAnswer, Clip, ClipFeatures, ConfigError, Consensus, DatasetRow,
    Evidence, FaceObservation, Instruction, Judgement, JudgeWeights, KeyFrame, Provenance, RationaleStep, Reject, Review,
    ReviewerAnswer, Shot, SourceMedia, Span, Word, arrow_schema, load_config,
)
from schemas.features import ActionUnit, BoundingBox, LabelProb, NamedValue, Point, Prosody, ProsodyWindow, SpeakerTurn
from storage import RunDir, TableError, read_records, write_records

PROV = Provenance(stage="test", stage_config_hash="abc", run_id="r1", model_id="m", model_version="1", prompt_hash="p",
                  created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))


def examples():
    clip = Clip(
        clip_id="c1", source_id="s1", source_path="/x.mp4", start=1.5, end=4.0, kind="speech", has_video=True,
        has_audio=True, shots=[Shot(index=0, start=0.0, end=3.0), Shot(index=1, start=3.0, end=9.0)],
        speech=[Span(start=1.6, end=3.9)],
        keyframes=[KeyFrame(time=1.5, frame_index=36, path="media/s1/c1/kf.jpg", score=0.3, method="orb")],
        instruction=Instruction(template_id="t", template_version="v1", template_hash="h", text="Identify…"),
        provenance=PROV,
    )
    features = ClipFeatures(
        clip_id="c1", language="en",
        words=[Word(text="hello", start=1.7, end=2.0, speaker="SPEAKER_00", confidence=0.9), Word(text="uh", start=None, end=None)],
        speakers=[SpeakerTurn(speaker="SPEAKER_00", start=1.6, end=3.9)],
        prosody=Prosody(pitch_mean_hz=180.0, functionals=[NamedValue(name="F0semitoneFrom27.5Hz_sma3nz_amean", value=30.1)],
                        windows=[ProsodyWindow(start=1.7, end=2.0, pitch_hz=None, intensity_db=60.0, word_index=0)]),
        faces=[FaceObservation(time=2.0, frame_index=48, track_id=0, bbox=BoundingBox(x=1, y=2, width=3, height=4),
                               detection_score=0.99, landmarks=[Point(x=1.0, y=2.0)],
                               action_units=[ActionUnit(au="AU12", intensity=0.8, present=True, source="geometry-proxy")],
                               expression=[LabelProb(label="happiness", prob=0.7)])],
        main_track_id=0, main_track_reason="largest face", notes=["single-speaker fallback"], provenance=PROV,
    )
    ann = Annotation(
        annotation_id="a1", clip_id="c1", annotator_id="panel/x", label="happiness", labels=["happiness"],
        label_distribution=[LabelProb(label="happiness", prob=1.0)], intensity=0.6,
        steps=[RationaleStep(index=1, text="Step 1: smile", evidence_ids=["e1"]), RationaleStep(index=2, text="Step 2: happiness")],
        evidence=[Evidence(evidence_id="e1", modality="face", cue="AU12 active", start=2.0, end=2.5, feature_ref="faces[0].action_units[AU12]")],
        provenance=PROV,
    )
    judgement = Judgement(annotation_id="a1", clip_id="c1", annotator_id="panel/x", label="happiness", s_rec=1.0, s_reason=0.5,
                          s_cot=0.75, s_final=0.75, s_rec_basis="peers", weights=JudgeWeights(alpha=0.5, beta=0.25, gamma=0.25),
                          claims=[ClaimCheck(evidence_id="e1", verdict="supported", reason="AU12 present at 2.1 s")],
                          flags=["thin_margin"], provenance=PROV)
    consensus = Consensus(clip_id="c1", label="happiness", distribution=[LabelProb(label="happiness", prob=0.8)], method="majority",
                          margin=0.6, entropy=0.5, uncertainty=0.2, flags=["disagreement"], needs_review=True, provenance=PROV)
    review = Review(clip_id="c1", task_id=7, answers=[ReviewerAnswer(reviewer="r@x", labels=["happiness"], intensity=0.5,
                    evidence_correct=True, submitted_at=datetime(2026, 1, 1, tzinfo=UTC))],
                    final_label="happiness", final_source="human",
                    agreement=[AgreementStat(name="cohen_kappa", value=0.85, n_items=10, gate=0.8, passed=True)],
                    decision="accepted", provenance=PROV)
    row = DatasetRow(clip_id="c1", source_id="s1", split="test", start=1.5, end=4.0, label=None, steps=ann.steps,
                     evidence=ann.evidence, answers=[AnnotatorAnswer(annotator_id="panel/x", label="happiness", s_final=0.75)],
                     provenance=PROV)
    source = SourceMedia(source_id="s1", path="/x.mp4", sha256="f" * 64, size_bytes=10, container="mp4", duration_s=9.0,
                         has_video=True, has_audio=False, width=640, height=360, fps=25.0, provenance=PROV)
    reject = Reject(run_id="r1", stage="sampling", path="/bad.mp4", reason="/bad.mp4: empty file (0 bytes)", error_type="MediaError")
    return [source, clip, features, ann, judgement, consensus, review, row, reject]


@pytest.mark.parametrize("record", examples(), ids=lambda r: type(r).__name__)
def test_every_record_round_trips_through_parquet(tmp_path, record):
    path = tmp_path / "t.parquet"
    assert write_records(path, [record, record.model_copy()], type(record)) == 2
    back = read_records(path, type(record))
    assert back == [record, record]
    meta = pq.read_schema(path).metadata
    assert meta[b"emoforge.record"] == type(record).__name__.encode()
    assert meta[b"emoforge.schema_version"] == SCHEMA_VERSION.encode()


def test_arrow_schema_types_follow_the_record():
    s = arrow_schema(Clip)
    assert str(s.field("start").type) == "double"
    assert str(s.field("keyframes").type.value_type.field("frame_index").type) == "int64"
    assert s.field("provenance").type.field("created_at").type.tz == "UTC"
    assert arrow_schema(Word).field("start").nullable


def test_a_table_written_before_a_field_existed_still_reads(tmp_path):
    import pyarrow as pa

    ann = examples()[3]
    row = ann.model_dump(mode="python")
    for step in row["steps"]:
        del step["origin"]  # RationaleStep.origin arrived after this table was written
    old = pa.Table.from_pylist([row]).replace_schema_metadata({b"emoforge.record": b"Annotation"})
    pq.write_table(old, tmp_path / "annotations.parquet")
    [back] = read_records(tmp_path / "annotations.parquet", Annotation)
    assert [st.origin for st in back.steps] == ["annotator", "annotator"] and back.label == ann.label


def test_reading_a_table_as_the_wrong_record_is_an_error(tmp_path):
    path = tmp_path / "clips.parquet"
    write_records(path, [examples()[-1]], Reject)
    with pytest.raises(TableError, match="holds Reject records, not Clip"):
        read_records(path, Clip)


def test_failed_write_leaves_the_previous_table_intact(tmp_path):
    run = RunDir.create(tmp_path)
    reject = examples()[-1]
    run.write("rejects", [reject])

    class Boom(Reject):
        def model_dump(self, **kw):
            raise RuntimeError("crash while writing")

    with pytest.raises(RuntimeError):
        run.write("rejects", [reject, Boom.model_validate(reject.model_dump())])
    assert run.read("rejects") == [reject]
    assert not [p for p in (tmp_path / "tables").iterdir() if p.name.startswith(".")]


def test_judge_weights_must_be_a_convex_combination():
    assert JudgeWeights(alpha=0.2, beta=0.3, gamma=0.5).gamma == 0.5
    with pytest.raises(ValueError, match="sum to 1"):
        JudgeWeights(alpha=0.5, beta=0.5, gamma=0.5)
    with pytest.raises(ValueError, match="non-negative"):
        JudgeWeights(alpha=1.2, beta=-0.2, gamma=0.0)


def test_config_file_and_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("sampling:\n  clips:\n    max_clip_s: 12\n  keyframes:\n    method: orb\n")
    cfg = load_config(f, ["sampling.clips.min_clip_s=2.5", "runtime.workers=1"])
    assert cfg.sampling.clips.max_clip_s == 12
    assert cfg.sampling.clips.min_clip_s == 2.5
    assert cfg.sampling.keyframes.method == "orb"
    assert cfg.stage_hash("sampling") != load_config().stage_hash("sampling")
    assert load_config().stage_hash("sampling") == load_config().stage_hash("sampling")


@pytest.mark.parametrize(
    "text,overrides,message",
    [
        ("sampling:\n  clipz: {}\n", [], "sampling.clipz: Extra inputs are not permitted"),
        ("sampling: [1, 2\n", [], "not valid YAML"),
        ("- a\n- b\n", [], "expected a mapping"),
        ("", ["sampling.clips.min_clip_s=20"], "min_clip_s (20.0) exceeds max_clip_s"),
        ("", ["sampling.keyframes.method=sift"], "sampling.keyframes.method"),
        ("taxonomy: [joy, Joy]\n", [], "unique"),
    ],
)
def test_bad_configuration_names_the_file_and_the_key(tmp_path, text, overrides, message):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(f, overrides)
    assert message in str(exc.value)
    assert str(f) in str(exc.value)


def test_malformed_override_is_named():
    with pytest.raises(ConfigError, match="override 'workers' is not KEY=VALUE"):
        load_config(None, ["workers"])


def test_missing_config_file_is_named():
    with pytest.raises(ConfigError, match="nope.yaml: config file not found"):
        load_config("nope.yaml")


def test_shipped_offline_config_is_the_default():
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[1] / "configs" / "offline.yaml"
    assert load_config(shipped) == load_config()


def test_shipped_gpu_config_validates():
    from pathlib import Path

    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "gpu.yaml")
    assert cfg.preprocess.asr.model == "large-v3" and cfg.preprocess.asr.device == "cuda"


@pytest.mark.parametrize(
    "spec,message",
    [
        ('{"id": "x", "backend": "gpt-9"}', "annotate.panel.0.backend: unknown backend 'gpt-9' (known: face-expression"),
        ('{"id": "x"}', "annotate.panel.0.backend: missing"),
        ('{"id": "x", "backend": "lexical", "model": "m"}', "annotate.panel.0.model: not a setting of backend 'lexical'"),
        ('{"id": "x", "backend": "openai"}', "annotate.panel.0.endpoint: Field required"),
        ('{"id": "x", "backend": "transformers", "model": "m", "endpoint": "http://h"}',
         "annotate.panel.0.endpoint: not a setting of backend 'transformers'"),
        ('{"id": "x", "backend": "llm-gguf", "temperature": 0.5}', "annotate.panel.0.temperature: not a setting of backend 'llm-gguf'"),
        ('{"id": "x", "backend": "my lab:Agent"}', "annotate.panel.0.backend: String should match pattern"),
        ('{"id": "x", "backend": "lab.agents:Mine", "temperature": 1}', "annotate.panel.0.temperature: not a plugin setting"),
    ],
)
def test_each_annotator_backend_accepts_only_its_own_settings(spec, message):
    with pytest.raises(ConfigError) as exc:
        load_config(None, [f"annotate.panel=[{spec}]"])
    assert message in str(exc.value)


def test_annotator_specs_are_one_model_per_backend():
    from schemas.config import GGUFSpec, OpenAISpec, PluginSpec, RuleAgentSpec, TransformersSpec

    panel = ('[{"id": "a", "backend": "lexical"}, {"id": "b", "backend": "openai", "endpoint": "http://h/v1"},'
             ' {"id": "c", "backend": "transformers", "model": "m"}, {"id": "d", "backend": "llm-gguf"},'
             ' {"id": "e", "backend": "lab.agents:Mine", "options": {"depth": 3}}]')
    cfg = load_config(None, [f"annotate.panel={panel}"])
    assert [type(s) for s in cfg.annotate.panel] == [RuleAgentSpec, OpenAISpec, TransformersSpec, GGUFSpec, PluginSpec]
    assert cfg.annotate.panel[4].options == {"depth": 3}
    dumped = json.dumps(cfg.model_dump(mode="json")["annotate"]["panel"])
    assert load_config(None, [f"annotate.panel={dumped}"]) == cfg  # a dump reloads


def test_retired_keys_at_their_old_default_load_silently(tmp_path, recwarn):
    f = tmp_path / "old.yaml"  # as `emoforge config` printed it before the keys were retired
    f.write_text("annotate:\n  panel:\n  - {id: lexical, backend: lexical, model: null, prompt_template: emotion-cot, prompt_version: v1}\n"
                 "  - {id: r, backend: openai, endpoint: 'http://h/v1', device: null, min_pixels: 200704, prompt_version: v1}\n"
                 "review:\n  label_studio:\n    webhook_port: null\n")
    cfg = load_config(f)
    assert [s.id for s in cfg.annotate.panel] == ["lexical", "r"]
    assert not [w for w in recwarn if issubclass(w.category, FutureWarning)]


def test_retired_keys_that_were_set_warn_naming_the_file_and_key(tmp_path):
    from schemas.config_legacy import ConfigDeprecationWarning

    f = tmp_path / "old.yaml"
    f.write_text("annotate:\n  panel:\n  - {id: lexical, backend: lexical, prompt_template: my-template}\n"
                 "review:\n  label_studio:\n    webhook_port: 8099\n")
    with pytest.warns(ConfigDeprecationWarning) as caught:
        cfg = load_config(f)
    messages = [str(w.message) for w in caught]
    assert messages[0].startswith(f"{f}: annotate.panel.0.prompt_template is retired and ignored")
    assert "sampling.instruction" in messages[0]
    assert messages[1].startswith(f"{f}: review.label_studio.webhook_port is retired and ignored")
    assert cfg == load_config(None, ['annotate.panel=[{"id": "lexical", "backend": "lexical"}]'])
    # a key of another backend set to something other than its old default is still an error
    f.write_text("annotate:\n  panel:\n  - {id: lexical, backend: lexical, model: some-model}\n")
    with pytest.raises(ConfigError, match="annotate.panel.0.model: not a setting of backend 'lexical'"):
        load_config(f)


@pytest.mark.parametrize("text", [
    "faces[track=0].action_units[AU12]", "faces[3].expression", "faces[3].action_units", "faces[track=1].expression",
    "words[5]", "words", "prosody", "prosody.functionals[F0semitoneFrom27.5Hz_sma3nz_amean]", "faces[x].expression",
])
def test_a_feature_ref_reads_and_writes_the_stored_text_unchanged(text):
    from schemas import FeatureRef

    ref = FeatureRef.parse(text)
    assert ref is not None and str(ref) == text and FeatureRef.parse(f"  {text} ") == ref


def test_feature_ref_builders_write_what_annotators_always_wrote():
    from schemas import FeatureRef

    built = [FeatureRef.face(track=0, field="action_units", key="AU12"), FeatureRef.face(index=7, field="expression"),
             FeatureRef.face(index=0, field="action_units"), FeatureRef.word(), FeatureRef.word(12), FeatureRef.prosody(),
             FeatureRef.prosody("jitterLocal_sma3nz_amean")]
    assert [str(r) for r in built] == ["faces[track=0].action_units[AU12]", "faces[7].expression", "faces[0].action_units", "words",
                                       "words[12]", "prosody", "prosody.functionals[jitterLocal_sma3nz_amean]"]
    assert FeatureRef.parse("faces[track=2].expression").selector == "track=2"
    assert FeatureRef.parse("faces[x]").selector == "x"  # kept as written: the judge reports the malformed index
    for not_a_ref in (None, "", "face[1]", "words[1].x[", "the transcript"):
        assert FeatureRef.parse(not_a_ref) is None


def test_run_manifest_round_trips_and_a_bad_one_is_named(tmp_path):
    import json

    from schemas import RunManifest, StageCounts, TableCounts

    run = RunDir.create(tmp_path / "run")
    assert run.read_manifest() is None
    manifest = RunManifest(run_id="r1", finished_at=datetime(2026, 1, 2, tzinfo=UTC), inputs=["a.mp4"],
                           stages=[StageCounts(stage="judge", items=4, seconds=0.5)], tables=TableCounts(clips=3, review_threshold=0.4))
    run.write_manifest(manifest)
    assert run.read_manifest() == manifest and run.read_manifest().stage("judge").items == 4
    raw = json.loads(run.tables_dir.joinpath("run.json").read_text())
    assert raw["finished_at"] == "2026-01-02T00:00:00+00:00" and raw["tables"]["clips"] == 3
    (run.tables_dir / "run.json").write_text(json.dumps({"run_id": "old"}))  # an older, sparser run.json still reads
    assert run.read_manifest() == RunManifest(run_id="old")
    (run.tables_dir / "run.json").write_text(json.dumps({"run_id": "r", "stages": [{"stage": "x", "items": "many"}]}))
    with pytest.raises(ValueError, match=r"run\.json: not a run manifest \(stages\.0\.items"):
        run.read_manifest()


def test_trusted_records_share_one_fields_set_only_when_every_field_is_given():
    from schemas.judgement import ClaimCheck
    from schemas.trusted import trusted

    a, b = trusted(LabelProb, label="anger", prob=0.1), trusted(LabelProb, label="fear", prob=0.2)
    assert a.model_fields_set == {"label", "prob"} and a.__pydantic_fields_set__ is b.__pydantic_fields_set__
    a.prob = 0.3  # pydantic adds the assigned name to the (shared) set: it is there already
    assert b.model_fields_set == {"label", "prob"} and (a.prob, b.prob) == (0.3, 0.2)
    partial = trusted(ClaimCheck, evidence_id="e1", verdict="supported", reason="measured")
    assert partial.model_fields_set == {"evidence_id", "verdict", "reason"}
    assert trusted(ClaimCheck, evidence_id="e2", verdict="supported", reason="r", support=None).model_fields_set == {
        "evidence_id", "verdict", "reason", "support"}
