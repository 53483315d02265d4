"""Stage 4, the judge agent: grounded scores per answer (S_rec, S_reason, S_cot, S_final), conflict
resolution per clip, and flags for human review."""

from agents.judge.stage import judge_run

__all__ = ["judge_run"]
