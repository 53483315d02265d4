"""MERR-style JSON (the fine-grained annotation file of Emotion-LLaMA's MERR dataset, which
MER-Factory also writes): one object per clip, keyed by clip id, with the measured cues a reasoning
caption is built from and the caption itself.

    text                the transcript
    AU_list             action units present anywhere on the main face
    peak_index          frame of the main face's strongest expression (sum of present AU intensities)
    peak_AU_list        action units present at that frame
    visual_prior_list   the facial-expression classifier's top label at that frame
    audio_prior_list    the prosody summary (pitch, loudness, pauses, rate)
    smp_reason_caption  the rationale, its last step stating the label
    pseudo_label        the label

A row whose label is hidden (released test split) has no caption and no label."""

from __future__ import annotations

from schemas import ClipFeatures, DatasetRow


def merr_entry(row: DatasetRow, features: ClipFeatures | None, media: str | None, caption: str) -> dict:
    # the main face only (as the agents read it): with none chosen, several people's units would mix
    faces = [f for f in (features.faces if features else []) if features.main_track_id is not None and f.track_id == features.main_track_id]
    peak = max(faces, key=lambda f: (sum(a.intensity for a in f.action_units if a.present), -f.time), default=None)
    prosody = features.prosody if features else None
    entry = {
        "video": media,
        "text": " ".join(w.text for w in features.words) if features else "",
        "AU_list": sorted({a.au for f in faces for a in f.action_units if a.present}),
        "peak_index": peak.frame_index if peak else None,
        "peak_AU_list": sorted(a.au for a in peak.action_units if a.present) if peak else [],
        "visual_prior_list": [max(peak.expression, key=lambda e: e.prob).label] if peak and peak.expression else [],
        "audio_prior_list": ({k: getattr(prosody, k) for k in ("pitch_mean_hz", "pitch_std_hz", "intensity_mean_db", "pause_ratio",
                                                              "speech_rate_wps")} if prosody else {}),
    }
    if row.label is not None:
        entry |= {"smp_reason_caption": " ".join(caption.splitlines()), "pseudo_label": row.label}
    return entry
