"""The agreement gates of stage 5: agreement statistics (schemas.review.AgreementStat) held to
schemas.config.AgreementGates, and the decision that follows: "accepted", or "escalated" with reasons."""

from __future__ import annotations

from typing import Literal, NamedTuple

from schemas.config import AgreementGates
from schemas.review import AgreementStat

Decision = Literal["accepted", "escalated"]
ICC_GATED = "icc2"


class GateDecision(NamedTuple):
    decision: Decision
    reasons: list[str]
    stats: list[AgreementStat]  # copies of the statistics given, the gated ones with gate and passed set


def apply_gates(stats: list[AgreementStat], gates: AgreementGates) -> GateDecision:
    """Hold the statistics to the gates (strictly greater), mark ``gate``/``passed`` on the gated ones,
    and decide: "accepted" when every gate passed, else "escalated" with the reasons.

    kappa gate: ``fleiss_kappa`` (when its level is nominal) and ``cohen_kappa_mean``; every one that
    has a value must pass, and at least one must have a value. icc gate: ``icc2``. alpha gate (when set):
    ``krippendorff_alpha``. A gated statistic without a value leaves ``passed`` None. The statistics
    given are left as they are: the decision carries copies, the gated ones with gate and passed set."""
    gated = [s.model_copy() for s in stats]
    by_name = {s.name: s for s in gated}
    reasons: list[str] = []
    any_gate = False

    def hold(group: list[AgreementStat], threshold: float, what: str) -> None:
        nonlocal any_gate
        if not group:
            return
        any_gate = True
        for s in group:
            s.gate = threshold
            s.passed = None if s.value is None else bool(s.value > threshold)
            if s.passed is False:
                reasons.append(f"{s.name} {s.value:.3f} is not above the {what} gate {threshold:g}")
        if all(s.value is None for s in group):
            why = "; ".join(f"{s.name}: {getattr(s, 'reason', None) or 'no value'}" for s in group)
            reasons.append(f"{what} gate: no statistic could be computed ({why})")

    kappa = [s for n in ("fleiss_kappa", "cohen_kappa_mean") if (s := by_name.get(n)) is not None
             and not (n == "fleiss_kappa" and getattr(s, "level", "nominal") not in (None, "nominal"))]
    hold(kappa, gates.kappa, "kappa")
    hold([by_name[ICC_GATED]] if ICC_GATED in by_name else [], gates.icc, "icc")
    if gates.alpha is not None:
        hold([by_name["krippendorff_alpha"]] if "krippendorff_alpha" in by_name else [], gates.alpha, "alpha")
    if not any_gate:
        reasons.append("no gated statistic (kappa, icc2 or alpha) among the statistics")
    return GateDecision("escalated" if reasons else "accepted", reasons, gated)
