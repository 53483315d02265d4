"""Where a piece of evidence points into a clip's features (`Evidence.feature_ref`).

The text form is what annotators write and tables store, so it stays exactly as it was:
`kind[selector].field[key]`, e.g. `faces[track=0].action_units[AU12]`, `faces[3].expression`,
`words[5]`, `words[5].punctuation`, `words`, `prosody`, `prosody.functionals[F0semitoneFrom27.5Hz_sma3nz_amean]`.
`FeatureRef.parse` reads it, `str()` writes it; they round-trip."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

_REF = re.compile(r"^(?P<kind>faces|words|prosody)(?:\[(?P<selector>[^\]]*)\])?(?:\.(?P<field>\w+)(?:\[(?P<key>[^\]]+)\])?)?$")


class FeatureRef(BaseModel):
    """A parsed reference. `selector` is kept as written (`3`, `track=0`): a malformed index is the
    judge's to report as a contradiction, not a parse failure."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["faces", "words", "prosody"]
    selector: str | None = None
    field: str | None = None
    key: str | None = None

    @classmethod
    def parse(cls, text: str | None) -> FeatureRef | None:
        """The reference in `text`, or None when there is none or it is not one (the judge then checks
        the claim by its modality alone)."""
        m = _REF.match(text.strip()) if text else None
        return cls.model_construct(**m.groupdict()) if m else None  # the pattern has checked every part

    @classmethod
    def face(cls, *, index: int | None = None, track: int | None = None, field: str | None = None,
             key: str | None = None) -> FeatureRef:
        """One face frame (`index`), one face track (`track`), or the main face (neither)."""
        selector = f"track={track}" if track is not None else (None if index is None else str(index))
        return cls(kind="faces", selector=selector, field=field, key=key)

    @classmethod
    def word(cls, index: int | None = None, field: str | None = None) -> FeatureRef:
        """One word of the transcript, or (no index) the whole transcript; `field="punctuation"`: the
        sentence-final mark the recogniser wrote after the word."""
        return cls(kind="words", selector=None if index is None else str(index), field=field)

    @classmethod
    def prosody(cls, functional: str | None = None) -> FeatureRef:
        """The clip's prosody, or one of its openSMILE functionals."""
        return cls(kind="prosody", field=None if functional is None else "functionals", key=functional)

    def __str__(self) -> str:
        out = self.kind
        if self.selector is not None:
            out += f"[{self.selector}]"
        if self.field is not None:
            out += f".{self.field}"
            if self.key is not None:
                out += f"[{self.key}]"
        return out
