"""The punctuation agent: answers from the sentence-final marks the recogniser wrote, read with the
table in evidence/punctuation.py (sources cited there), which the judge reads claims with too."""

from __future__ import annotations

from agents.base import PerClipAnnotator, register
from evidence.punctuation import EXCLAIM, MARK_NAMES, POINTS_TO, QUESTION, STOP, mark_distribution, sentence_marks
from schemas import Annotation, AnnotatorInput, Evidence
from schemas.feature_ref import FeatureRef
from schemas.features import LabelProb
from schemas.rationale import normalise


@register
class PunctuationAgent(PerClipAnnotator):
    backend = "punctuation"
    model_id = "asr-sentence-marks(arousal)"
    model_version = "1"

    def annotate_one(self, item: AnnotatorInput, run_id: str) -> Annotation:
        words = item.features.words if item.features else []
        if not words:
            return self.abstain(item, run_id, "no transcript")
        marks = sentence_marks(words)
        counts = {m: sum(1 for _, x in marks if x == m) for m in (EXCLAIM, STOP, QUESTION)}
        taxonomy = self.context.taxonomy
        dist = mark_distribution(counts, taxonomy)
        if dist is None:
            why = "only questions" if counts[QUESTION] else "no sentence-final mark"
            return self.abstain(item, run_id, f"the recogniser wrote {why} in the transcript: nothing about how it was said")
        if max(dist.values()) - min(dist.values()) < 1e-9:
            return self.abstain(item, run_id, "the taxonomy has none of the emotions the marks point to")
        main = max((m for m in POINTS_TO if counts[m]), key=lambda m: counts[m])
        # the mark does not say which of its emotions: the answer names the first of them the
        # taxonomy has (anger for a shout, neutral for a statement), and its distribution keeps the tie
        first = [e for e in POINTS_TO[main] if e in taxonomy]
        ranked = sorted(dist.items(), key=lambda kv: (-kv[1], kv[0] not in first[:1]))
        label = ranked[0][0]
        tied = [e for e, p in ranked if abs(p - ranked[0][1]) < 1e-9]
        evidence = []
        for k, (i, m) in enumerate([x for x in marks if x[1] in POINTS_TO][-3:]):
            w = words[i]
            # modality audio: the mark is the recogniser's reading of the sound ("Stop" gets '!' or '.' as
            # it was said), not of what the words mean
            evidence.append(Evidence(evidence_id=f"e{k + 1}", modality="audio", start=w.start, end=w.end,
                                     cue=f"the recogniser ended '{w.text.strip()}' with {MARK_NAMES[m]} ('{m}')",
                                     feature_ref=str(FeatureRef.word(i, field="punctuation"))))
        ids = [e.evidence_id for e in evidence]
        said = ", ".join(f"{counts[m]} {MARK_NAMES[m].split(' ', 1)[1]}{'s' if counts[m] > 1 else ''}" for m in counts if counts[m])
        reading = ("a raised, excited voice: an aroused emotion" if main == EXCLAIM
                   else "a plain statement, whisper's default mark: weakly, a calm voice")
        steps = normalise([
            f"The recogniser ended the transcript's sentences with {said}.",
            f"{'Mostly ' + MARK_NAMES[main] if sum(1 for n in counts.values() if n) > 1 else MARK_NAMES[main].capitalize()}, "
            f"which in transcripts records {reading} "
            f"({', '.join(tied)} alike at {ranked[0][1]:.2f}; the mark does not say which).",
            f"Therefore the most prominent emotion is {label}, "
            + ("as likely as " + ", ".join(t for t in tied if t != label) if len(tied) > 1 else "the likeliest") + ".",
        ], label, [ids, ids, ids])
        return Annotation(**self.base(item, run_id), label=label, labels=[label],
                          label_distribution=[LabelProb(label=e, prob=round(p, 4)) for e, p in ranked if p > 0],
                          intensity=round(counts[EXCLAIM] / max(1, counts[EXCLAIM] + counts[STOP]), 3),
                          steps=steps, evidence=evidence)
