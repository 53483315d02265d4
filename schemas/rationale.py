"""Normalise any rationale into `Step 1..N`, the last step stating the label."""

from __future__ import annotations

import re

from schemas.annotation import RationaleStep

_STEP = re.compile(r"^\s*(?:step\s*\d+\s*[:.)-]|\d+\s*[.)]|[-*•])\s*", re.IGNORECASE)
_INLINE_STEPS = re.compile(r"(?i)\bstep\s*\d+\s*[:.)-]\s*")


def split_steps(text_or_steps: str | list) -> list[str]:
    """Steps from a list, from 'Step k:' markers, from numbered or bulleted lines, or from sentences."""
    if isinstance(text_or_steps, list):
        parts = [str(s) for s in text_or_steps]
    else:
        text = text_or_steps.strip()
        if len(_INLINE_STEPS.findall(text)) >= 2:
            parts = [p for p in _INLINE_STEPS.split(text)]
        else:
            lines = [ln for ln in text.splitlines() if ln.strip()]
            parts = lines if len(lines) > 1 else re.split(r"(?<=[.!?])\s+", text)
    cleaned = [_STEP.sub("", p).strip() for p in parts]
    return [c for c in cleaned if c]


_CONCLUSIVE = re.compile(r"(?i)\b(therefore|thus|hence|so|overall|in conclusion|conclude|final|most prominent|the emotion is|label)\b")


def states_label(step: str, label: str) -> bool:
    """A conclusion, not a passing mention: the label plus a concluding cue."""
    return label.lower() in step.lower() and bool(_CONCLUSIVE.search(step))


def normalise(text_or_steps: str | list, label: str | None, evidence_ids: list[list[str]] | None = None) -> list[RationaleStep]:
    steps = split_steps(text_or_steps)
    added = bool(label and (not steps or not states_label(steps[-1], label)))
    if added:
        steps.append(f"Therefore the most prominent emotion is {label}.")
    ev = evidence_ids or []
    return [
        RationaleStep(index=i + 1, text=f"Step {i + 1}: {s}", evidence_ids=ev[i] if i < len(ev) else [],
                      origin="normaliser" if added and i == len(steps) - 1 else "annotator")
        for i, s in enumerate(steps)
    ]
