"""A declared person's own neutral face across files, for the action units the FACS agent reads.

Stage 2 measures the main face's AUs against the person's neutral from the same source when the
source shows the face long enough (`faces.neutral_min_span_s`), else against population-typical
values. A corpus of one short utterance per file (CREMA-D, RAVDESS) never gets there: each file
holds one expression for two seconds. When the run declares who is in each file
(`annotate.baseline.speakers`, the file the voice baselines read; the speaker is the person on
camera), the main faces of all that person's files are pooled, and where they reach the same
frame count and span the person's neutral is their least expressive frames over all of them:
the neutral take, the calm moments of the others. The AUs are re-measured against it here, after
stage 2 and before the features are stored, so the judge checks cited AUs against the same values
the agent read."""

from __future__ import annotations

from collections import defaultdict

from agents.voice_baseline import declared_speaker, load_speakers
from pipeline.preprocess.faces import person_neutral
from pipeline.preprocess.stage import AU_REFERENCE_NOTE, with_au_reference
from schemas import Clip, ClipFeatures
from schemas.config import FaceConfig


def against_declared_neutral(clips: list[Clip], features: list[ClipFeatures], speakers_file: str | None,
                             config: FaceConfig) -> list[ClipFeatures]:
    """The features with each declared person's main-face AUs against their neutral over all their
    files; features of undeclared files, or of a person seen too little, are returned as they are."""
    if not speakers_file:
        return features
    speakers = load_speakers(speakers_file)
    by_id = {c.clip_id: c for c in clips}
    person: dict[str, str] = {}
    for f in features:
        clip = by_id.get(f.clip_id)
        if clip is not None and f.main_track_id is not None and (who := declared_speaker(clip.source_path, speakers)):
            person[f.clip_id] = who
    frames: dict[str, list] = defaultdict(list)
    spans: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for f in features:
        if f.clip_id in person:
            for o in f.faces:
                if o.track_id == f.main_track_id:
                    frames[person[f.clip_id]].append({g.name: g.value for g in o.geometry})
                    spans[person[f.clip_id]][by_id[f.clip_id].source_id].append(o.time)
    neutral = {}
    for who, geoms in frames.items():
        seen = sum(max(ts) - min(ts) for ts in spans[who].values())
        if seen >= config.neutral_min_span_s and (n := person_neutral(geoms, config.neutral_calm_share, config.neutral_min_frames)):
            neutral[who] = (n, len(geoms), len(spans[who]), seen)
    out = []
    for f in features:
        who = person.get(f.clip_id)
        if who not in neutral:
            out.append(f)
            continue
        n, count, files, seen = neutral[who]
        # stage 2's note on the AUs' reference is replaced by this one
        out.append(with_au_reference(f, n, f"{AU_REFERENCE_NOTE}of the main face against declared person {who}'s own neutral "
                                           f"(median of the least expressive {config.neutral_calm_share:.0%} of {count} frames "
                                           f"in {files} files, {seen:.1f} s of face)"))
    return out
