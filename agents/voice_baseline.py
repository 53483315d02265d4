"""Voice baselines: what a speaker's voice normally sounds like, so the vocal agents judge a clip by
how far it departs from that speaker's own habits instead of from a population average (a low male
voice is not "sad" and a high female voice is not "excited"). Speech-emotion work normalises per
speaker for this reason (e.g. Schuller et al., "Acoustic emotion recognition", Speech Communication
2011; Busso, Lee & Narayanan, IEEE TASLP 2009).

Three scopes, chosen per clip:
- declared speaker: the clips of every source the speakers file (`annotate.baseline.speakers`)
  gives that speaker, when they reach `declared_min_clips` (a corpus of one utterance per file that
  names its speakers; its utterances are short, and each is one point of the baseline however
  long). Known to be one person, a speaker's few clips are a nearer reference than the run's other
  voices, which differ from each other more than one voice does across emotions;
- speaker: the clips of the same speaker in the same source, when the source holds at least
  `min_clips` of them and `min_speech_s` seconds (a long recording of one or several people);
- corpus: every clip of the run otherwise (single-utterance corpora such as EmoDB give one short
  source per file, so only the run knows the speaker's range).
Within a speaker's clips, those that say the same words (their transcript, lower-cased, without
punctuation) get a baseline of their own when they reach `min_clips` (`same_words`): an acted corpus
has each speaker say each sentence in every emotion, and against the same words spoken calmly a clip
differs only in how it was said, not in the words' own length, stress and sounds (on single words
the speaker's baseline mixes "tak" with "trzymaj").
Within the chosen clips the spread is the robust spread of all of them; the centre is, by default,
the median of the calmest 30% (`annotate.baseline.reference: calm`, `calm_share`; see `_calm_centres`). The
baselines are computed once over the run before stage 3 and travel in `AnnotatorInput`."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from schemas import Clip, ClipFeatures, Prosody
from schemas.config import VoiceBaselineConfig
from schemas.features import FeatureStat, VoiceBaseline

# quantity -> the eGeMAPS v02 functional it is read from (Eyben et al. 2016)
EGEMAPS = {
    "pitch_range_st": "F0semitoneFrom27.5Hz_sma3nz_pctlrange0-2",  # F0 range, 20th-80th percentile
    "loudness": "loudness_sma3_amean",  # perceived loudness (sones, gain-dependent: hence the baseline)
    "loudness_var": "loudness_sma3_stddevNorm",
    "syllable_rate": "loudnessPeaksPerSec",  # loudness peaks per second: a rate proxy that needs no words
    "jitter": "jitterLocal_sma3nz_amean",
    "shimmer_db": "shimmerLocaldB_sma3nz_amean",
    "hnr_db": "HNRdBACF_sma3nz_amean",
    "alpha_ratio_db": "alphaRatioV_sma3nz_amean",  # energy above 1 kHz vs below, voiced frames
    "hammarberg_db": "hammarbergIndexV_sma3nz_amean",  # strongest peak 0-2 kHz vs 2-5 kHz
    "h1h2_db": "logRelF0-H1-H2_sma3nz_amean",  # first two harmonics: breathy (high) vs pressed (low)
    "slope_db": "slopeV500-1500_sma3nz_amean",
}
# the cues that rise with arousal (Juslin & Laukka 2003), used to find a speaker's calm clips
AROUSAL = ("pitch_st", "pitch_range_st", "loudness", "syllable_rate")
# the fewest clips a centre is read from (as a spread is: `_stats`)
MIN_CALM = 3
# a pause share needs words to pause between: a one- or two-word clip has none to measure
MIN_WORDS_FOR_PAUSES = 4
# voice-quality functionals are 0 in openSMILE when no frame was voiced: not a measurement
_VOICED_ONLY = {"pitch_range_st", "jitter", "shimmer_db", "hnr_db", "alpha_ratio_db", "hammarberg_db", "h1h2_db", "slope_db"}


def measures(p: Prosody | None) -> dict[str, float]:
    """A clip's prosodic quantities by name (Praat statistics and eGeMAPS functionals); a quantity
    that was not measured is absent."""
    if p is None or p.pitch_mean_hz is None:
        return {}
    # F0 level in semitones (pitch is heard on a log scale), from the Praat mean the evidence cites
    out: dict[str, float] = {"pitch_hz": p.pitch_mean_hz, "pitch_st": 12 * float(np.log2(p.pitch_mean_hz / 27.5))}
    if p.intensity_mean_db is not None:
        out["intensity_db"] = p.intensity_mean_db
    if p.speech_rate_wps:
        out["rate_wps"] = p.speech_rate_wps
    if p.pause_ratio is not None and sum(w.word_index is not None for w in p.windows) >= MIN_WORDS_FOR_PAUSES:
        out["pause_ratio"] = p.pause_ratio
    funcs = {f.name: f.value for f in p.functionals}
    for name, key in EGEMAPS.items():
        v = funcs.get(key)
        if v is None or not np.isfinite(v) or (name in _VOICED_ONLY and v == 0.0):
            continue
        out[name] = float(v)
    return out


def _stats(rows: list[dict[str, float]], config: VoiceBaselineConfig) -> list[FeatureStat]:
    stats = []
    for name in sorted({k for r in rows for k in r}):
        vals = np.array([r[name] for r in rows if name in r])
        if vals.size < 3:
            continue
        center = float(np.median(vals))
        scale = 1.4826 * float(np.median(np.abs(vals - center)))  # MAD: one shouted clip does not widen it
        if scale <= 1e-9:
            scale = float(vals.std())
        if scale <= 1e-9:
            continue  # constant over the group: says nothing about any clip
        stats.append(FeatureStat(name=name, center=round(center, 6), scale=round(scale, 6), n=int(vals.size)))
    if config.reference == "calm":
        stats = _calm_centres(rows, stats, config.calm_share)
    return stats


def _calm_centres(rows: list[dict[str, float]], stats: list[FeatureStat], share: float) -> list[FeatureStat]:
    """Centre each quantity on the calmest `share` of the clips, and at least MIN_CALM of them
    (lowest mean z over pitch level, pitch range, loudness and rate), keeping the spread of all of
    them: the speaker's neutral voice is the reference, as in neutral-reference normalisation
    (Busso, Metallinou & Narayanan, "Iterative feature normalization for emotional speech
    detection", ICASSP 2011). In an acted corpus most clips are emotional and their median is no
    one's neutral voice; in mostly neutral speech the calm share sits a little below the median,
    which the neutral profile absorbs. Without the floor a small group's calm share was one or two
    clips, too few for a centre, and the group fell back to the median of all its clips."""
    # each clip's mean z over the arousal cues it has (clipped as zscores clips them), column by column
    total, count = np.zeros(len(rows)), np.zeros(len(rows))
    for st in stats:
        if st.name in AROUSAL:
            vals = np.array([r.get(st.name, np.nan) for r in rows], dtype=float)
            z = np.clip((vals - st.center) / st.scale, -3.0, 3.0)
            has = ~np.isnan(z)
            total[has] += z[has]
            count[has] += 1
    arousal = np.divide(total, count, out=np.zeros(len(rows)), where=count > 0)
    take = min(len(rows), max(MIN_CALM, int(np.ceil(share * len(rows)))))
    calm = [rows[i] for i in np.argsort(arousal, kind="stable")[:take]]
    out = []
    for s in stats:
        vals = [r[s.name] for r in calm if s.name in r]
        out.append(s.model_copy(update={"center": round(float(np.median(vals)), 6)}) if len(vals) >= 3 else s)
    return out


def said(f: ClipFeatures) -> str:
    """A clip's words as one comparable string, normalised as the judge compares quoted words
    (evidence.clip_index.norm_text: "Stop!" and "stop." are the same words said two ways)."""
    from evidence.clip_index import norm_text

    return norm_text(" ".join(w.text for w in f.words))


def clip_speaker(f: ClipFeatures) -> str:
    spoken = [w.speaker for w in f.words if w.speaker]
    return Counter(spoken).most_common(1)[0][0] if spoken else "SPEAKER_00"


class SpeakerFileError(ValueError):
    """A speakers file that cannot be used; the message names the file and the row."""


def load_speakers(path: str) -> dict[tuple[str, ...], str]:
    """The speakers file as {path parts of `file`: speaker}."""
    from agents.table_file import read_named_table

    table = read_named_table(path, ("file", "speaker"), "speakers", SpeakerFileError)
    out: dict[tuple[str, ...], str] = {}
    for row, (file, speaker) in enumerate(zip(table["file"].to_pylist(), table["speaker"].to_pylist()), start=2):
        file, speaker = (file or "").strip(), (speaker or "").strip()
        if not file or not speaker:
            raise SpeakerFileError(f"{path}: row {row}: empty file or speaker")
        parts = Path(file).parts
        if out.get(parts, speaker) != speaker:
            raise SpeakerFileError(f"{path}: row {row}: {file} is listed with two speakers ({out[parts]}, {speaker})")
        out[parts] = speaker
    return out


def declared_speaker(source_path: str, speakers: dict[tuple[str, ...], str]) -> str | None:
    """The speaker of the longest `file` that the source's path ends with, if any."""
    parts = Path(source_path).parts
    for n in range(len(parts), 0, -1):
        if (who := speakers.get(parts[-n:])) is not None:
            return who
    return None


def voice_baselines(clips: list[Clip], features: list[ClipFeatures], config: VoiceBaselineConfig) -> dict[str, VoiceBaseline]:
    """clip_id -> the baseline its prosody is z-scored against; clips without voiced speech, or a run
    too small for any baseline, get none (the vocal agents then abstain and say so)."""
    by_id = {c.clip_id: c for c in clips}
    # only clips with detected speech: the pitch of music or noise under a silent shot is no one's voice
    rows = {f.clip_id: m for f in features if f.clip_id in by_id and by_id[f.clip_id].speech and (m := measures(f.prosody))}
    speakers = load_speakers(config.speakers) if config.speakers else {}
    groups: dict[str, list[str]] = {}
    words: dict[tuple[str, str], list[str]] = {}
    for f in features:
        if f.clip_id in rows:
            clip = by_id[f.clip_id]
            who = declared_speaker(clip.source_path, speakers) if speakers else None
            key = f"declared:{who}" if who is not None else f"{clip.source_id}/{clip_speaker(f)}"
            groups.setdefault(key, []).append(f.clip_id)
            if config.same_words and (text := said(f)):
                words.setdefault((key, text), []).append(f.clip_id)

    def seconds(ids: list[str]) -> float:
        return round(sum(by_id[i].end - by_id[i].start for i in ids), 3)

    corpus = None
    if len(rows) >= config.min_clips:
        corpus = VoiceBaseline(scope="corpus", key="run", clips=len(rows), speech_s=seconds(list(rows)),
                               stats=_stats(list(rows.values()), config))
    out: dict[str, VoiceBaseline] = {}
    speaker_keys = set()
    for key, ids in groups.items():
        # a declared speaker is known to be one person: the clips are the sample, whatever they last;
        # a speaker found in a source needs enough speech too, so that a short stray turn is not one
        declared = key.startswith("declared:")
        if len(ids) >= (config.declared_min_clips if declared else config.min_clips) and (declared or seconds(ids) >= config.min_speech_s):
            speaker_keys.add(key)
            own = VoiceBaseline(scope="speaker", key=key, clips=len(ids), speech_s=seconds(ids), stats=_stats([rows[i] for i in ids], config))
            out.update({i: own for i in ids})
        elif corpus is not None:
            out.update({i: corpus for i in ids})
    for (key, text), ids in words.items():
        # a speaker's same words, said often enough: their own baseline
        if key in speaker_keys and len(ids) >= config.min_clips:
            own = VoiceBaseline(scope="speaker", key=key, clips=len(ids), speech_s=seconds(ids), stats=_stats([rows[i] for i in ids], config),
                                words=text)
            out.update({i: own for i in ids})
    return out


def zscores(m: dict[str, float], baseline: VoiceBaseline, clip_at: float = 3.0) -> dict[str, float]:
    """Each measured quantity in spreads from the baseline's centre, clipped so one extreme cue
    cannot outvote the rest."""
    out = {}
    for s in baseline.stats:
        if s.name in m:
            out[s.name] = max(-clip_at, min(clip_at, (m[s.name] - s.center) / s.scale))
    return out
