"""Clip rules: turn speech regions and shots into clip spans.

- With speech: regions are padded, then neighbours closer than `merge_gap_s` join unless a shot cut
  lies in the gap or the result would pass `max_clip_s`. A region longer than `max_clip_s` is split
  into equal parts. A clip shorter than `min_clip_s` grows around its centre (inside its shot where
  it fits). A region that runs across a cut is not cut mid-speech; the clip lists both shots.
- Video without speech: one clip per shot; long shots split evenly, short ones joined to a neighbour.
- Video with speech: the stretches between speech clips where the picture goes on in silence (a face
  reacting, laughing, crying) become shot clips by the same rule when they last at least
  `min_clip_s`; shorter ones are pauses between phrases. Nothing after the picture ends is clipped
  for the picture's sake.
- Audio-only without speech: no clips (nothing to annotate), reported by the caller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from schemas import Shot, Span
from schemas.config import ClipRules


@dataclass
class ClipSpan:
    start: float
    end: float
    kind: str
    speech: list[Span]

    @property
    def duration(self) -> float:
        return self.end - self.start


def _split_even(start: float, end: float, max_len: float) -> list[tuple[float, float]]:
    n = max(1, math.ceil((end - start) / max_len - 1e-9))
    step = (end - start) / n
    return [(start + i * step, start + (i + 1) * step if i < n - 1 else end) for i in range(n)]


def _cut_between(cuts: list[float], a: float, b: float) -> bool:
    return any(a < c <= b for c in cuts)


def _shot_at(shots: list[Shot], t: float) -> Shot | None:
    return next((s for s in shots if s.start <= t < s.end), shots[-1] if shots else None)


def _grow(start: float, end: float, min_len: float, lo: float, hi: float) -> tuple[float, float]:
    """Widen [start, end] around its centre to min_len, staying inside [lo, hi] where possible."""
    if end - start >= min_len or hi - lo <= 0:
        return start, end
    if hi - lo < min_len:
        return lo, hi
    centre = (start + end) / 2
    s = min(max(lo, centre - min_len / 2), hi - min_len)
    return s, s + min_len


def speech_clips(speech: list[Span], shots: list[Shot], duration: float, rules: ClipRules, kind: str) -> list[ClipSpan]:
    cuts = [s.start for s in shots[1:]]
    padded = [
        (max(0.0, s.start - rules.context_pad_s), min(duration, s.end + rules.context_pad_s), s)
        for s in sorted(speech, key=lambda s: s.start)
        if s.end > s.start
    ]
    groups: list[list] = []
    for start, end, span in padded:
        if groups:
            g_start, g_end = groups[-1][0], groups[-1][1]
            if (
                start - g_end <= rules.merge_gap_s
                and not _cut_between(cuts, g_end, start)
                and max(end, g_end) - g_start <= rules.max_clip_s
            ):
                groups[-1][1] = max(g_end, end)
                groups[-1][2].append(span)
                continue
        groups.append([start, end, [span]])
    out: list[ClipSpan] = []
    for start, end, spans in groups:
        for a, b in _split_even(start, end, rules.max_clip_s):
            shot = _shot_at(shots, (a + b) / 2)
            lo, hi = (shot.start, shot.end) if shot and shot.end - shot.start >= rules.min_clip_s else (0.0, duration)
            a, b = _grow(a, b, rules.min_clip_s, lo, hi)
            inside = [Span(start=max(a, s.start), end=min(b, s.end)) for s in spans if s.end > a and s.start < b]
            out.append(ClipSpan(a, b, kind, inside))
    # growing can make neighbours overlap; trim so clips stay disjoint and ordered
    for prev, cur in zip(out, out[1:]):
        if cur.start < prev.end:
            mid = (prev.end + cur.start) / 2
            prev.end, cur.start = mid, mid
    return [c for c in out if c.duration > 0]


def shot_clips(shots: list[Shot], rules: ClipRules) -> list[ClipSpan]:
    spans: list[list[float]] = []
    for shot in shots:
        for a, b in _split_even(shot.start, shot.end, rules.max_clip_s):
            spans.append([a, b])
    merged: list[list[float]] = []
    for span in spans:
        if merged and (span[1] - span[0] < rules.min_clip_s or merged[-1][1] - merged[-1][0] < rules.min_clip_s):
            if span[1] - merged[-1][0] <= rules.max_clip_s:
                merged[-1][1] = span[1]
                continue
        merged.append(span)
    return [ClipSpan(a, b, "shot", []) for a, b in merged if b > a]


def silent_video_clips(clips: list[ClipSpan], shots: list[Shot], video_end: float, rules: ClipRules) -> list[ClipSpan]:
    """Shot clips for the stretches of picture between (and around) the speech clips."""
    bounds = [0.0] + [x for c in clips for x in (c.start, c.end)] + [max(video_end, 0.0)]
    out: list[ClipSpan] = []
    for a, b in zip(bounds[::2], bounds[1::2]):
        b = min(b, video_end)
        if b - a < rules.min_clip_s:
            continue
        inside = [Shot(index=s.index, start=max(a, s.start), end=min(b, s.end)) for s in shots if s.end > a and s.start < b]
        out += [c for c in shot_clips(inside or [Shot(index=0, start=a, end=b)], rules) if c.duration >= rules.min_clip_s]
    return out


def make_clips(
    duration: float, speech: list[Span], shots: list[Shot], has_video: bool, rules: ClipRules, video_end: float | None = None
) -> list[ClipSpan]:
    """`video_end`: where the picture stops (default: `duration`), for a sound track that runs on after it."""
    end = duration if video_end is None else min(video_end, duration)
    if speech:
        clips = speech_clips(speech, shots, duration, rules, "speech" if has_video else "audio")
        if has_video:
            clips = sorted(clips + silent_video_clips(clips, shots, end, rules), key=lambda c: c.start)
        return clips
    if has_video:
        return shot_clips([Shot(index=s.index, start=s.start, end=min(s.end, end)) for s in shots if s.start < end], rules)
    return []
