"""Does the speech recogniser itself hear the emotion? Two probes of the packaged whisper, scored on a
finished label-quality run (its clips, transcripts and the manifest's emotions). Neither is an agent:
this measures whether one is worth building.

- `prompts`: zero-shot classification by scoring label text (Ma, Liusie, Gales & Knill 2024,
  "Investigating the emergent audio classification ability of ASR foundation models", NAACL):
  the teacher-forced log p(tag | audio) of a tag per emotion ("(angry)", "(shouting)", " angry", ...)
  after whisper's task tokens, each tag's score centred over the run (contextual calibration, Zhao et
  al. 2021, "Calibrate before use") so a tag whisper favours everywhere does not win everywhere.
- `mark`: a graded form of the punctuation agent: log p('!') - log p('.') right after the run's own
  transcript (its final mark stripped), z-scored per manifest group, against the binary mark the
  run wrote. AUROC for each pair of the corpus's classes.

    .venv/bin/python bench/whisper_probe.py RUN_DIR MANIFEST [--model CT2_DIR] [--out results.json]

`--model` takes any CTranslate2 whisper directory (a larger one than the packaged base, where a user
has it)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from itertools import combinations
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# a tag per emotion of the taxonomy, in each of four wordings whisper's subtitle-trained decoder may know
TAGS = {
    "parenthesised adjective": {"anger": "(angry)", "fear": "(scared)", "sadness": "(sad)", "happiness": "(happy)",
                                "disgust": "(disgusted)", "surprise": "(surprised)", "neutral": "(calm)"},
    "parenthesised adverb": {"anger": "(angrily)", "fear": "(fearfully)", "sadness": "(sadly)", "happiness": "(happily)",
                             "disgust": "(disgusted)", "surprise": "(surprised)", "neutral": "(calmly)"},
    "sound-event caption": {"anger": "(shouting)", "fear": "(whimpering)", "sadness": "(crying)", "happiness": "(laughing)",
                            "disgust": "(groaning)", "surprise": "(gasps)", "neutral": "(speaking)"},
    "plain word": {"anger": " angry", "fear": " afraid", "sadness": " sad", "happiness": " happy",
                   "disgust": " disgusted", "surprise": " surprised", "neutral": " neutral"},
}


class Whisper:
    def __init__(self, model_dir: Path):
        import ctranslate2
        import tokenizers
        from faster_whisper.feature_extractor import FeatureExtractor

        self.ct2 = ctranslate2
        self.model = ctranslate2.models.Whisper(str(model_dir), device="cpu", compute_type="int8")
        self.tok = tokenizers.Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.features = FeatureExtractor(feature_size=self.model.n_mels)

    def ids(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids

    def prefix(self, language: str | None) -> list[int]:
        lang = self.tok.token_to_id(f"<|{language}|>") if language else None
        return [self.tok.token_to_id("<|startoftranscript|>"), lang or self.tok.token_to_id("<|en|>"),
                self.tok.token_to_id("<|transcribe|>"), self.tok.token_to_id("<|notimestamps|>")]

    def encode(self, audio: np.ndarray):
        mel = self.features(audio, chunk_length=30)[None, :, :3000].astype(np.float32)
        return np.asarray(self.model.encode(self.ct2.StorageView.from_array(np.ascontiguousarray(mel)), to_cpu=True))

    def forced_logprobs(self, encoded: np.ndarray, prompts: list[list[int]]) -> list[np.ndarray]:
        """For each prompt of n tokens after the task tokens, an (n + 1, vocab) array: row i is
        log p(token i | audio, tokens before i), teacher-forced; row n is the next token's. CTranslate2
        decodes the tokens a prompt adds to the task tokens as a forced prefix and returns their logits
        too; how max_length counts them is not documented, so it asks for more steps until there are
        n + 1 and keeps those."""
        out: list[np.ndarray | None] = [None] * len(prompts)
        by_length: dict[int, list[int]] = {}
        for i, p in enumerate(prompts):
            by_length.setdefault(len(p), []).append(i)
        for length, idx in by_length.items():
            n = length - 4
            batch = self.ct2.StorageView.from_array(np.ascontiguousarray(np.repeat(encoded, len(idx), axis=0)))
            max_length = length + 4
            while True:
                res = self.model.generate(batch, [prompts[i] for i in idx], max_length=max_length, beam_size=1,
                                          return_logits_vocab=True, suppress_blank=False, suppress_tokens=[])
                # a step short of n + 1 only where the length ran out before the prompt did (not at an end of text)
                if all(len(r.logits[0]) >= n + 1 for r in res) or max_length >= 448:
                    break
                max_length = min(448, 2 * max_length)
            for i, r in zip(idx, res):
                if len(r.logits[0]) < n + 1:
                    raise RuntimeError(f"whisper returned {len(r.logits[0])} steps for a prompt of {n} forced tokens")
                logits = np.array([np.asarray(step, dtype=np.float64) for step in r.logits[0][:n + 1]])
                out[i] = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
        return out

    def text_logprob(self, encoded: np.ndarray, language: str | None, texts: list[str]) -> np.ndarray:
        """log p(text | audio) for each text, teacher-forced token by token."""
        tokens = [self.ids(t) for t in texts]
        rows = self.forced_logprobs(encoded, [self.prefix(language) + t for t in tokens])
        return np.array([float(lp[np.arange(len(t)), t].sum()) for lp, t in zip(rows, tokens)])


def clips_with_gold(run_dir: Path, manifest: Path):
    """(clip, emotion, group, words, language) for every clip with sound whose source the manifest
    labels, joined as the label-quality bench joins them."""
    from bench.label_quality import clip_items, read_manifest, sha256_file
    from schemas.config import DEFAULT_TAXONOMY
    from storage import RunDir

    items = read_manifest(manifest, list(DEFAULT_TAXONOMY))
    for it in items:
        it.sha256 = sha256_file(it.path)
    run = RunDir(run_dir)
    item_of = clip_items(run, items)
    feats = {f.clip_id: f for f in run.read("features")}
    for c in run.read("clips"):
        it = item_of.get(c.clip_id)
        if it is not None and c.has_audio:
            f = feats.get(c.clip_id)
            yield c, it.emotion, it.group, (f.words if f else []), (f.language if f else None)


def main(argv: list[str] | None = None) -> int:
    from faster_whisper.audio import decode_audio

    from bench.label_quality import _f
    from pipeline.export.label_quality import auroc, classification, kappa
    from pipeline.preprocess.weights import whisper_base_dir

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("manifest", type=Path)
    ap.add_argument("--model", type=Path, default=None, help="CTranslate2 whisper directory (default: the packaged base)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    whisper = Whisper(args.model or whisper_base_dir())

    rows, audio_of = [], {}
    for clip, emotion, group, words, language in clips_with_gold(args.run_dir, args.manifest):
        if clip.source_path not in audio_of:
            audio_of = {clip.source_path: decode_audio(clip.source_path, sampling_rate=16000)}
        encoded = whisper.encode(audio_of[clip.source_path][int(clip.start * 16000):int(clip.end * 16000)])
        row = {"clip": clip.clip_id, "emotion": emotion, "group": group}
        tagged = [(wording, label, tag) for wording, tags in TAGS.items() for label, tag in tags.items()]
        scores = whisper.text_logprob(encoded, language, [tag for _, _, tag in tagged])
        for (wording, label, _), lp in zip(tagged, scores.tolist()):
            row.setdefault(wording, {})[label] = lp
        text = " ".join(w.text for w in words).strip()
        body = re.sub(r"[\s.!?…,;:]+$", "", text)
        if body:
            lp = whisper.forced_logprobs(encoded, [whisper.prefix(language) + whisper.ids(" " + body)])[0][-1]
            row["mark"] = float(lp[whisper.ids("!")[0]] - lp[whisper.ids(".")[0]])
            row["written_exclamation"] = text.endswith("!")
        rows.append(row)

    gold = np.array([r["emotion"] for r in rows])
    classes = sorted(set(gold))
    report: dict = {"clips": len(rows), "classes": classes, "prompts": {}, "mark": {}}
    print(f"{len(rows)} clips with audio, classes {', '.join(classes)}")
    for wording in TAGS:
        scores = np.array([[r[wording][e] for e in classes] for r in rows])
        centred = scores - scores.mean(axis=0)
        for how, s in (("raw", scores), ("centred", centred)):
            pred = [classes[i] for i in s.argmax(axis=1)]
            scored = classification(list(gold), pred)
            res = {"accuracy": scored["accuracy"], "uar": scored["uar"], "kappa": kappa(list(gold), pred)}
            report["prompts"][f"{wording}, {how}"] = res
            print(f"prompts  {wording:24} {how:8} accuracy {res['accuracy']:.2f}  UAR {res['uar']:.2f}  kappa {_f(res['kappa'])}")
    marked = [r for r in rows if "mark" in r]
    g = np.array([r["emotion"] for r in marked])
    groups = np.array([r["group"] for r in marked])
    graded = np.array([r["mark"] for r in marked])
    for grp in set(groups):  # per speaker, as the vocal agents read their cues
        m = groups == grp
        graded[m] = (graded[m] - np.median(graded[m])) / (graded[m].std() + 1e-9)
    written = np.array([float(r["written_exclamation"]) for r in marked])
    for a, b in combinations(classes, 2):
        m = (g == a) | (g == b)
        if len(set(g[m])) < 2:
            continue
        # the project's AUROC: P(a clip of the first class scores above one of the second)
        pair = {"graded": auroc(graded[m], g[m] == a), "written": auroc(written[m], g[m] == a), "clips": int(m.sum())}
        report["mark"][f"{a} vs {b}"] = pair
        print(f"mark     {a} vs {b} ({pair['clips']} clips): AUROC graded {_f(pair['graded'])}, written '!' {_f(pair['written'])}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
