"""How the speech recogniser punctuated what it heard, read as a cue to arousal.

Whisper (Radford et al. 2022, "Robust speech recognition via large-scale weak supervision") learned
its punctuation from human-written transcripts and subtitles, where an exclamation mark records a
raised, excited voice and a full stop a plain statement; punctuation is predicted from prosody as
much as from syntax (Christensen, Gotoh & Renals 2001, "Punctuation annotation using statistical
prosody models"). So the sentence-final marks whisper wrote are its own model's reading of the
delivery: a view of the voice that neither the eGeMAPS rules nor the words give, in any language
whisper transcribes.

An exclamation says "aroused", not which aroused emotion; the emotions it points to are the
high-arousal ones of the circumplex (Russell 1980; anger, fear, happiness, surprise), alike. A full
stop is whisper's default mark, so it points only weakly to the calm ones (neutral, sadness,
boredom). Disgust and contempt sit between and get neither. A question mark records a question, a
matter of syntax and intonation that says nothing of emotion: with only questions (or no marks) the
agent abstains. The agent is agents/punctuation.py; the judge reads its claims with this table.
Answers on single words and acted sentences: `bench/label_quality.py` (README, Benchmarks)."""

from __future__ import annotations

from schemas.features import Word

EXCLAIM, STOP, QUESTION = "!", ".", "?"
# sentence-final marks in the scripts whisper writes (Latin and Cyrillic; CJK full-width)
_MARKS = {"!": EXCLAIM, "！": EXCLAIM, ".": STOP, "。": STOP, "?": QUESTION, "？": QUESTION}
MARK_NAMES = {EXCLAIM: "an exclamation mark", STOP: "a full stop", QUESTION: "a question mark"}

AROUSED = ("anger", "fear", "happiness", "surprise")
CALM = ("neutral", "sadness", "boredom")
# weight of every other emotion against 1 for the emotions a mark points to: the exclamation is the
# clearer sign; the full stop is whisper's default and says little (round values, not fitted to the
# labelled media)
OTHERS = {EXCLAIM: 0.25, STOP: 0.5}
POINTS_TO = {EXCLAIM: AROUSED, STOP: CALM}


def word_mark(text: str) -> str | None:
    """The sentence-final mark a transcript word ends with ('!', '.', '?'), or None. An ellipsis is
    a trailing-off, not a full stop, and the last dot of an abbreviation with dots inside ("U.S.",
    "e.g.") ends no sentence."""
    t = text.rstrip().rstrip("\"'”’»)")
    if t.endswith(("...", "…")) or "." in t[:-1]:
        return None
    return _MARKS.get(t[-1:]) if t else None


def sentence_marks(words: list[Word]) -> list[tuple[int, str]]:
    """(word index, mark) for each word that ends a sentence."""
    return [(i, m) for i, w in enumerate(words) if (m := word_mark(w.text))]


def mark_distribution(counts: dict[str, int], taxonomy) -> dict[str, float] | None:
    """Marks counted over a transcript → a distribution over the taxonomy (each mark's leaning, mixed
    by how often it ends a sentence); None when no mark bears on emotion."""
    counts = {m: n for m, n in counts.items() if m in POINTS_TO and n > 0}
    total = sum(counts.values())
    if not total:
        return None
    out = dict.fromkeys(taxonomy, 0.0)
    for mark, n in counts.items():
        lean = {e: 1.0 if e in POINTS_TO[mark] else OTHERS[mark] for e in taxonomy}
        z = sum(lean.values())
        for e in taxonomy:
            out[e] += n / total * lean[e] / z
    return out


