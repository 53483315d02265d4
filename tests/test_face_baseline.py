"""A declared person's neutral face across files: a corpus of one short utterance per file gets the
AUs the issue asks for (against the person's own neutral), from all of their files together."""

from __future__ import annotations

from agents.face_baseline import against_declared_neutral
from schemas import load_config
from schemas.features import NamedValue
from tests.fixtures.judge_cases import clip, features

DESCRIPTORS = ("brow_raise", "brow_furrow", "eye_aperture", "upper_lip_gap", "lip_corner_lift", "mouth_open")


def short_file(name: str, smile: float):
    """A 1.5 s file of one expression: 8 frames, the lips lifted by `smile` (a resting 0.30 otherwise)."""
    c = clip(clip_id=name, start=0.0, end=1.5).model_copy(update={"source_id": name, "source_path": f"/corpus/{name}.flv"})
    f = features(name)
    frames = []
    for k in range(8):
        geo = [NamedValue(name=n, value=0.30 + (smile + 0.002 * k if n == "lip_corner_lift" else 0.001 * k)) for n in DESCRIPTORS]
        frames.append(f.faces[0].model_copy(update={"time": 0.2 * k, "frame_index": k, "geometry": geo}))
    return c, f.model_copy(update={"faces": frames, "notes": ["action units against population-typical neutral values (...)"]})


def test_a_declared_persons_files_share_one_neutral(tmp_path):
    cfg = load_config().preprocess.faces
    files = [short_file("a_neutral", 0.0), short_file("a_happy", 0.12), short_file("a_angry", 0.01), short_file("b_happy", 0.12)]
    clips, feats = [c for c, _ in files], [f for _, f in files]
    speakers = tmp_path / "speakers.csv"
    speakers.write_text("file,speaker\na_neutral.flv,actor-a\na_happy.flv,actor-a\na_angry.flv,actor-a\n")
    out = {f.clip_id: f for f in against_declared_neutral(clips, feats, str(speakers), cfg)}

    def au12(f):
        return max(a.intensity for o in f.faces for a in o.action_units if a.au == "AU12")

    # 3 files of 1.4 s of face each: 4.2 s together, over the 4 s an expression can be held
    for name in ("a_neutral", "a_happy", "a_angry"):
        f = out[name]
        assert {a.source for o in f.faces for a in o.action_units} == {"geometry-own-neutral"}
        assert any("declared person actor-a's own neutral" in n and "24 frames in 3 files" in n for n in f.notes), f.notes
        assert not any("population-typical" in n for n in f.notes)
    # against the neutral take, the happy file's lift is a smile and the neutral file's is not
    assert au12(out["a_happy"]) >= 0.9 and au12(out["a_neutral"]) < 0.25
    # an undeclared file is left as stage 2 made it
    assert out["b_happy"] == feats[3]
    # one file of a person is 1.4 s of face: too little, left as it is
    speakers.write_text("file,speaker\na_happy.flv,actor-a\n")
    again = {f.clip_id: f for f in against_declared_neutral(clips, feats, str(speakers), cfg)}
    assert again["a_happy"] == feats[1]
    assert against_declared_neutral(clips, feats, None, cfg) == feats
