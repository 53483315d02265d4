"""Which of a clip's key frames a multimodal model sees: at most `n`, spread over the clip's time
span, so the end of a clip is seen as well as its start. Every backend (transformers, OpenAI-compatible
servers) calls this one function, so two backends given the same `max_images` see the same frames."""

from __future__ import annotations

from schemas.clip import Clip, KeyFrame


def spread_keyframes(clip: Clip, n: int) -> list[KeyFrame]:
    """Up to n key frames in time order: for each of n equal slices of the clip, the unused key frame
    nearest the slice's middle (all of them when there are no more than n)."""
    frames = sorted(clip.keyframes, key=lambda k: (k.time, k.frame_index))
    if n <= 0:
        return []
    if len(frames) <= n:
        return frames
    step = clip.duration / n
    chosen: set[int] = set()
    for slot in range(n):
        middle = clip.start + (slot + 0.5) * step
        free = [i for i in range(len(frames)) if i not in chosen]
        chosen.add(min(free, key=lambda i: (abs(frames[i].time - middle), i)))
    return [frames[i] for i in sorted(chosen)]


def frames_per_second(clip: Clip, frames: int) -> float:
    """The sampling rate a video of `frames` frames spread evenly over the clip has: what the Omni
    processor needs to place the frames at their real times (it assumes 2 fps otherwise)."""
    return frames / max(clip.duration, 1e-3)
