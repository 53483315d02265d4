"""How each annotator's answers enter the consensus, as its class declares (agents/base.py): as a
vote whose reliability the run learns, as a calibrated probability (`Annotator.calibrated`), or not
at all on the clips where an annotator that reads all of its input answered (`Annotator.subsumes`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.judge.reliability import CalibratedAnswers, SoftVotes, calibrated_offset
from schemas import EmoforgeConfig


@dataclass(frozen=True)
class Roles:
    calibrated: np.ndarray  # (J,) bool, by annotator index
    subsumed: dict[int, list[int]]  # annotator -> the annotators whose votes it replaces on the clips it answers

    def votes(self, votes: SoftVotes) -> tuple[SoftVotes, CalibratedAnswers | None]:
        """The votes the confusion-matrix fit takes, and the calibrated answers' log-likelihoods."""
        keep = np.ones(len(votes.clip), dtype=bool)
        for j, others in self.subsumed.items():
            covered = np.zeros(votes.n_clips, dtype=bool)
            covered[votes.clip[votes.annotator == j]] = True
            keep &= ~(np.isin(votes.annotator, others) & covered[votes.clip])
        if not keep.all():
            votes = SoftVotes(votes.clip[keep], votes.annotator[keep], votes.probs[keep], votes.n_clips, votes.n_annotators)
        return calibrated_offset(votes, self.calibrated)


def roles(config: EmoforgeConfig, annotator_ids: list[str]) -> Roles:
    """Annotators the panel does not name (answers read from files) are plain votes."""
    from agents.base import UnknownBackend, backend_class

    classes = {}
    for spec in config.annotate.panel:
        try:
            classes[spec.id] = (spec.backend, backend_class(spec))
        except UnknownBackend:
            continue  # a plugin this process cannot import answers nothing here; its answers are plain votes
    backend_of = {a: classes[a][0] for a in annotator_ids if a in classes}
    calibrated = np.array([a in classes and classes[a][1].calibrated for a in annotator_ids], dtype=bool)
    subsumed = {}
    for j, a in enumerate(annotator_ids):
        covers = classes[a][1].subsumes if a in classes else frozenset()
        others = [i for i, b in enumerate(annotator_ids) if i != j and backend_of.get(b) in covers]
        if others:
            subsumed[j] = others
    return Roles(calibrated, subsumed)
