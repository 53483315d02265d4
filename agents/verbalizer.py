"""Map the words a model uses for an emotion onto the configured taxonomy ("joyful", "delighted"
-> happiness). Closed taxonomies reject anything else; open-vocabulary mode keeps it as said."""

from __future__ import annotations

import re

from evidence.lexicon import SYNONYMS


class UnknownLabel(ValueError):
    pass


def _norm(text: str) -> str:
    return re.sub(r"[^a-z ]+", " ", text.lower()).strip()


class Verbalizer:
    def __init__(self, taxonomy: list[str], open_vocabulary: bool = False):
        self.taxonomy = [t.lower() for t in taxonomy]
        self.open_vocabulary = open_vocabulary
        self.lookup: dict[str, str] = {t: t for t in self.taxonomy}
        for canonical, words in SYNONYMS.items():
            if canonical in self.taxonomy:
                for w in words:
                    self.lookup.setdefault(w, canonical)

    def map(self, said: str) -> str:
        """The taxonomy label for what a model said; raises UnknownLabel when there is none."""
        text = _norm(said)
        if not text:
            raise UnknownLabel("empty label")
        if text in self.lookup:
            return self.lookup[text]
        # "mostly joyful", "a feeling of anger": the first known word or phrase decides
        tokens = text.split()
        for n in (2, 1):
            for i in range(len(tokens) - n + 1):
                if (phrase := " ".join(tokens[i : i + n])) in self.lookup:
                    return self.lookup[phrase]
        if self.open_vocabulary:
            return text
        raise UnknownLabel(f"{said!r} is not in the taxonomy ({', '.join(self.taxonomy)}) and has no known synonym")
