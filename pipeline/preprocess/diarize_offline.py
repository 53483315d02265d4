"""The offline diarizer: pyannote's recipe from registry weights, per speech turn.

1. Segmentation (segmentation-3.0) hears up to three local speakers per 10 s window.
2. Neighbouring windows overlap; their local speakers are linked where they talk in the same frames
   (the best one-to-one match), so a local speaker becomes a track through the span, and each
   instant is read from the window it is most central in.
3. A turn is a track's speech until it pauses for longer than MAX_PAUSE_S. Each turn gets one
   d-vector, from the speech it speaks alone.
4. Agglomerative clustering (scikit-learn, cosine, average linkage) of the turns' d-vectors gives the
   source's speakers, their number estimated (cluster_embeddings) or bounded/given by the config.

Runs once per source, over the merged spans of its speech clips, so labels hold across the clips.
A source heard as one track throughout (one voice) skips steps 3-4, and so does one window (the
model tells apart the speakers of one window itself)."""

from __future__ import annotations

import threading

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from pipeline.preprocess.segmentation import FRAME_STEP_S, SAMPLE_RATE, WINDOW_S, Segmenter, Window
from pipeline.preprocess.speaker_embedding import SpeakerEmbedder
from schemas.config import DiarizationConfig
from schemas.features import SpeakerTurn

MAX_SPEAKERS = 10  # the estimate's ceiling when the config gives none
MIN_OVERLAP_S = 0.5  # this much overlapped speech in a window means at least two speakers
MAX_PAUSE_S = 0.5  # a track silent this long starts a new turn (embedded and clustered on its own)


@dataclass
class Turn:
    track: int
    frames: np.ndarray  # frame indices on the diarizer's grid where the track talks
    alone: np.ndarray  # the ones where nobody else talks
    embedding: np.ndarray | None = None
    cluster: int = -1

    @property
    def alone_s(self) -> float:
        return self.alone.size * FRAME_STEP_S


class OfflineDiarizer:
    def __init__(self, config: DiarizationConfig):
        self.config = config
        self.segmenter = Segmenter()
        self._embedder: SpeakerEmbedder | None = None
        self._embedder_lock = threading.Lock()
        self.stats = {"windows": 0, "turns": 0, "embeddings": 0}  # the last call's work, for the bench and tests

    @property
    def embedder(self) -> SpeakerEmbedder:
        with self._embedder_lock:  # sources run in parallel threads: load it once
            if self._embedder is None:  # loaded by the first source that needs it; short clips never do
                self._embedder = SpeakerEmbedder()
        return self._embedder

    def __call__(self, audio: np.ndarray, spans: list[tuple[float, float]], speech: list[tuple[float, float]] | None = None) -> list[SpeakerTurn]:
        """Speaker turns on the source timeline for the 16 kHz mono source `audio`, looked at only
        inside `spans` (seconds, sorted, not overlapping). `speech` (stage 1's voice activity and the
        ASR's words), when given, is the only place anyone talks: the segmentation model alone
        sometimes hears one long voice through pauses and across a change of speaker."""
        cfg = self.config
        spans = [(a, min(b, audio.size / SAMPLE_RATE)) for a, b in spans if min(b, audio.size / SAMPLE_RATE) - a > 0]
        if not spans:
            return []
        t0 = spans[0][0]
        n = int(np.ceil((spans[-1][1] - t0) / FRAME_STEP_S)) + 1
        tracks: list[list[np.ndarray]] = []
        talking = np.zeros(n, np.int8)  # how many tracks talk at each frame
        heard = np.ones(n, bool)
        if speech is not None:
            heard[:] = False
            for a, b in speech:
                heard[max(0, int((a - t0) / FRAME_STEP_S)):max(0, int(np.ceil((b - t0) / FRAME_STEP_S)) + 1)] = True
        windows, together = 0, False
        for a, b in spans:
            got = self.segmenter(audio[int(a * SAMPLE_RATE):int(b * SAMPLE_RATE)], a, cfg.step_s)
            windows += len(got)
            _track(got, a, b, t0, heard, tracks, talking)
            together = together or any(_at_once(w, heard, t0) >= MIN_OVERLAP_S for w in got)
        turns = _split_turns(tracks, talking, cfg.min_turn_s)
        self.stats = {"windows": windows, "turns": len(turns), "embeddings": 0}
        if not turns:
            return []
        if windows == 1 or len({t.track for t in turns}) == 1:
            for t in turns:  # tracks are already speakers: one window's, or one voice throughout
                t.cluster = t.track
        else:
            for t in turns:
                frames = t.alone if t.alone_s >= cfg.min_turn_s else t.frames  # never alone: overlapped speech
                t.embedding = self.embedder(_samples(audio, t0, frames))
            self.stats["embeddings"] = len(turns)
            _cluster(turns, cfg, at_least=2 if together else 1)
        return _speaker_turns(turns, t0, n, cfg.min_turn_s)


def _track(windows: list[Window], a: float, b: float, t0: float, heard: np.ndarray, tracks: list[list[np.ndarray]], talking: np.ndarray) -> None:
    """Add one span's windows to `tracks` (frame indices per track) and `talking`. Each window speaks
    for the frames nearer its centre than any other window's; its local speakers continue the tracks
    of the previous window's local speakers they talk with in the frames both windows hear."""
    from scipy.optimize import linear_sum_assignment

    centres = [w.start + WINDOW_S / 2 for w in windows]
    prev: dict[int, int] = {}  # previous window's local speaker -> track
    for i, win in enumerate(windows):
        times = win.frame_times()
        lo = a if i == 0 else (centres[i - 1] + centres[i]) / 2
        hi = b if i == len(windows) - 1 else (centres[i] + centres[i + 1]) / 2
        owned = (times >= lo) & (times < hi)
        idx = np.round((times - t0) / FRAME_STEP_S).astype(int).clip(0, heard.size - 1)
        owned &= heard[idx]
        current: dict[int, int] = {}
        if i > 0:
            before = windows[i - 1]
            shift = round((win.start - before.start) / FRAME_STEP_S)
            both = min(before.activity.shape[0] - shift, win.activity.shape[0])
            if both > 0:
                agree = before.activity[shift:shift + both].T.astype(int) @ win.activity[:both].astype(int)  # [prev k, this j]
                for k, j in zip(*linear_sum_assignment(-agree)):
                    if agree[k, j] > 0 and k in prev:
                        current[j] = prev[k]
        for j in range(win.activity.shape[1]):
            frames = idx[owned & win.activity[:, j]]
            if j not in current:
                if not frames.size and not win.activity[:, j].any():
                    continue
                current[j] = len(tracks)
                tracks.append([])
            if frames.size:
                tracks[current[j]].append(frames)
                talking[frames] += 1
        prev = current


def _split_turns(tracks: list[list[np.ndarray]], talking: np.ndarray, min_turn_s: float) -> list[Turn]:
    turns = []
    pause = round(MAX_PAUSE_S / FRAME_STEP_S)
    for track, pieces in enumerate(tracks):
        if not pieces:
            continue
        frames = np.unique(np.concatenate(pieces))
        for run in np.split(frames, np.flatnonzero(np.diff(frames) > pause) + 1):
            if run.size * FRAME_STEP_S >= min_turn_s:
                turns.append(Turn(track=track, frames=run, alone=run[talking[run] == 1]))
    return turns


def _samples(audio: np.ndarray, t0: float, frames: np.ndarray) -> np.ndarray:
    """The audio under the given frames, concatenated."""
    hop = round(FRAME_STEP_S * SAMPLE_RATE)
    starts = ((t0 + frames * FRAME_STEP_S) * SAMPLE_RATE).astype(int)
    idx = (starts[:, None] + np.arange(hop)).ravel()
    return audio[idx[(idx >= 0) & (idx < audio.size)]]


def _at_once(win: Window, heard: np.ndarray, t0: float) -> float:
    """Seconds of a window where the model hears two people at once, where people talk. Two voices
    at once are two people however alike their d-vectors look (overlapped speech mixes them)."""
    idx = np.round((win.frame_times() - t0) / FRAME_STEP_S).astype(int).clip(0, heard.size - 1)
    return float(((win.activity.sum(1) >= 2) & heard[idx]).sum() * FRAME_STEP_S)


def _cluster(turns: list[Turn], cfg: DiarizationConfig, at_least: int = 1) -> None:
    """Turns with enough speech alone shape the clusters; the others join the nearest centroid."""
    fit = [t for t in turns if t.alone_s >= cfg.min_embedding_s] or sorted(turns, key=lambda t: -t.alone_s)[:1]
    X = np.stack([t.embedding for t in fit])
    labels = cluster_embeddings(X, cfg, at_least)
    centroids = np.stack([X[labels == c].mean(0) for c in range(labels.max() + 1)])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    for t in turns:
        t.cluster = int(np.argmax(centroids @ t.embedding))


def cluster_embeddings(X: np.ndarray, cfg: DiarizationConfig, at_least: int = 1) -> np.ndarray:
    """Agglomerative clustering (cosine, average linkage). The number of speakers: the configured
    one; else one speaker when even the last merge joins clusters closer than `threshold`; else the
    count in [min, max] whose partition has the best silhouette. A fixed distance cut alone splits
    one person whose voice varies (acted emotions) before it separates two similar voices; the
    silhouette compares the partitions instead."""
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.metrics import silhouette_score

    n = len(X)
    if n == 1:
        return np.zeros(1, int)

    def partition(k: int) -> np.ndarray:
        return AgglomerativeClustering(n_clusters=k, metric="cosine", linkage="average").fit_predict(X)

    if cfg.num_speakers:
        return partition(min(cfg.num_speakers, n))
    hi = min(cfg.max_speakers or MAX_SPEAKERS, n)
    lo = min(max(cfg.min_speakers or 1, at_least), hi)
    tree = AgglomerativeClustering(n_clusters=None, distance_threshold=0.0, metric="cosine", linkage="average",
                                   compute_full_tree=True).fit(X)
    if lo <= 1 and tree.distances_[-1] < cfg.threshold:
        return np.zeros(n, int)
    candidates = range(max(2, lo), min(hi, n - 1) + 1)
    if not candidates:  # too few embeddings to compare partitions: the bounds decide
        return partition(max(2, min(lo, n)) if hi >= 2 else 1)
    best = max(candidates, key=lambda k: silhouette_score(X, partition(k), metric="cosine"))
    return partition(best)


def _speaker_turns(turns: list[Turn], t0: float, n: int, min_turn_s: float) -> list[SpeakerTurn]:
    """Speakers renamed by first appearance; a turn is split where another speaker starts or stops
    talking over it, and says so (`overlap`)."""
    clusters = sorted({t.cluster for t in turns})
    grid = np.zeros((n, len(clusters)), bool)
    for t in turns:
        grid[t.frames, clusters.index(t.cluster)] = True
    gap = max(1, round(min_turn_s / FRAME_STEP_S))  # a shorter pause does not end a turn
    for c in range(grid.shape[1]):
        grid[:, c] = _close_gaps(grid[:, c], gap)
    order = sorted(range(grid.shape[1]), key=lambda c: np.argmax(grid[:, c]))
    overlap = grid.sum(1) >= 2
    out = []
    for rank, c in enumerate(order):
        state = np.where(grid[:, c], 1 + overlap, 0)
        edges = np.flatnonzero(np.diff(np.r_[0, state, 0]) != 0)
        for a, b in pairwise(edges):
            if state[a]:
                out.append(SpeakerTurn(speaker=f"SPEAKER_{rank:02d}", start=round(t0 + a * FRAME_STEP_S, 3),
                                       end=round(t0 + b * FRAME_STEP_S, 3), overlap=bool(state[a] == 2)))
    return sorted(out, key=lambda t: (t.start, t.speaker))


def _close_gaps(x: np.ndarray, gap: int) -> np.ndarray:
    x = x.copy()
    on = np.flatnonzero(x)
    if on.size:
        for a, b in pairwise(on):
            if 1 < b - a <= gap:
                x[a:b] = True
    return x
