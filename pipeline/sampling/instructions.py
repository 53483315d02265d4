"""Versioned instruction templates. A template's text is never edited in place: a change is a new
version, so the hash in every clip's provenance always names the exact words a model was given."""

from __future__ import annotations

import hashlib
from string import Template

from schemas import Instruction

# what every version asks after its opening line (the versions differ in how they name the clip)
_COT_BODY = (
    "Available modalities: ${modalities}.\n"
    "Identify the most prominent emotion of the main person, choosing one label from: ${labels}.\n"
    "Reason step by step (Step 1, Step 2, ...). In each step cite the modality-specific evidence "
    "you rely on: what is said (text), how it is said (pitch, loudness, pauses, rate), and what "
    "the face and body show (action units, expression), with the time it happens.\n"
    "The final step must state the label.\n"
    "Answer as JSON with the keys: label, intensity (0-1), steps (list of strings), "
    "evidence (list of {modality, cue, start, end})."
)
TEMPLATES: dict[str, dict[str, str]] = {
    "emotion-cot": {
        "v1": "You are annotating a ${duration}-second ${media} clip for an emotion dataset.\n" + _COT_BODY,
        # v2: the opening names what is annotated, so a photo is not called a 0.0-second clip
        "v2": "You are annotating ${subject} for an emotion dataset.\n" + _COT_BODY,
    },
}


class UnknownTemplate(KeyError):
    pass


def template_text(template_id: str, version: str) -> str:
    try:
        return TEMPLATES[template_id][version]
    except KeyError:
        known = ", ".join(f"{t}:{v}" for t, vs in TEMPLATES.items() for v in vs)
        raise UnknownTemplate(f"no instruction template {template_id}:{version} (known: {known})") from None


def template_hash(template_id: str, version: str) -> str:
    return hashlib.sha256(template_text(template_id, version).encode()).hexdigest()[:16]


def render(template_id: str, version: str, *, duration: float, has_video: bool, has_speech: bool, has_audio: bool,
           labels: list[str], still: bool = False) -> Instruction:
    modalities = []
    if still:
        modalities.append("a photo (face, gestures)")
    elif has_video:
        modalities.append("video frames (face, gestures)")
    if has_audio:
        modalities.append("audio (voice, prosody)")
    if has_speech:
        modalities.append("speech transcript")
    media = "video" if has_video else "audio"
    text = Template(template_text(template_id, version)).substitute(
        subject="a photo" if still else f"a {duration:.1f}-second {media} clip",
        duration=f"{duration:.1f}",
        media="photo" if still else media,
        modalities=", ".join(modalities) or "none",
        labels=", ".join(labels),
    )
    return Instruction(
        template_id=template_id, template_version=version, template_hash=template_hash(template_id, version), text=text
    )
