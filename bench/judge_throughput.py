"""Benchmark: stage-4 throughput (grounded scoring + aggregation + flags) on synthetic answers shaped
like the offline panel's: four annotators per clip, each citing 1-4 pieces of evidence that point
into the clip's features, 10% of them planted hallucinations. Goal: 1M annotations in <= 60 s on 2
cores. Building the inputs is not timed, nor are the voice baselines, which the flow makes before
stage 3 and hands to the judge.

    .venv/bin/python bench/judge_throughput.py [--n 1000000] [--aggregation reliability]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.judge import judge_run  # noqa: E402
from agents.judge.processes import judge_processes  # noqa: E402
from agents.judge.aggregate import Votes, label_distributions  # noqa: E402
from agents.voice_baseline import voice_baselines  # noqa: E402
from schemas import Annotation, Evidence, Provenance, RationaleStep, load_config  # noqa: E402
from tests.fixtures.judge_cases import clip, features  # noqa: E402

PROV = Provenance(stage="bench", stage_config_hash="h", run_id="bench")
LABELS = ["happiness", "sadness", "anger", "neutral", "surprise"]


def evidence_pool() -> list[Evidence]:
    mk = Evidence.model_construct
    return [
        mk(evidence_id="e1", modality="face", cue="AU12 (lip corner puller) mean intensity 0.85, present in 2/2 frames", start=10.4, end=11.2,
           feature_ref="faces[track=0].action_units[AU12]"),
        mk(evidence_id="e2", modality="face", cue="expression model on the main face averages happiness 0.75 over 2 frames", start=10.4,
           end=11.2, feature_ref="faces[track=0].expression"),
        mk(evidence_id="e3", modality="text", cue="'happy' is an NRC joy word", start=10.7, end=11.1, feature_ref="words[3]"),
        mk(evidence_id="e4", modality="prosody", cue="mean pitch 220 Hz, sd 20 Hz", start=10.0, end=14.0, feature_ref="prosody"),
        mk(evidence_id="e5", modality="prosody", cue="speech rate 3.0 words/s", start=None, end=None, feature_ref="prosody"),
        mk(evidence_id="e6", modality="text", cue="they say 'so happy'", start=10.4, end=11.2, feature_ref=None),
    ]


LIES = [Evidence.model_construct(evidence_id="e9", modality="text", cue="the speaker shouts 'I am furious'", start=12.0, end=13.0,
                                 feature_ref=None),
        Evidence.model_construct(evidence_id="e9", modality="face", cue="AU04 brow lowerer", start=10.4, end=13.6,
                                 feature_ref="faces[track=0].action_units[AU04]")]


def _tag(i: int) -> str:
    """A letters-only tag (no digits, so no checker reads a number from it) that makes a cue unique."""
    out = ""
    while True:
        i, r = divmod(i, 26)
        out += chr(97 + r)
        if not i:
            return out


def build(n: int, seed: int = 0, unique_cues: bool = False):
    """unique_cues: every clip's cues carry its own tag, so the judge's per-cue parse cache never hits
    across clips (the worst case, as with free-text LLM answers); otherwise cues repeat across clips,
    as with templated agents."""
    rng = random.Random(seed)
    shared_pool = evidence_pool()
    n_clips = max(1, n // 4)
    clips, feats, answers = [], [], []
    base_clip, base_feat = clip("c"), features("c")
    for i in range(n_clips):
        cid = f"c{i}"
        pool = [e.model_copy(update={"cue": f"{e.cue} (ref {_tag(i)})"}) for e in shared_pool] if unique_cues else shared_pool
        clips.append(base_clip.model_copy(update={"clip_id": cid}))
        feats.append(base_feat.model_copy(update={"clip_id": cid}))
        for w in range(4):
            evs = rng.sample(pool, rng.randint(1, 4))
            if rng.random() < 0.1:
                evs = [*evs, rng.choice(LIES)]
            label = rng.choice(LABELS)
            ids = [e.evidence_id for e in evs]
            steps = [RationaleStep.model_construct(index=1, text="Step 1: the cues.", evidence_ids=ids, origin="annotator"),
                     RationaleStep.model_construct(index=2, text=f"Step 2: Therefore the emotion is {label}.", evidence_ids=[],
                                                   origin="annotator")]
            answers.append(Annotation.model_construct(
                annotation_id=f"w{w}:{cid}", clip_id=cid, annotator_id=f"w{w}", label=label, labels=[label], label_distribution=[],
                intensity=None, steps=steps, evidence=evs, status="ok", raw_answer=None, error=None, provenance=PROV))
    return clips, feats, answers


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--aggregation", default="reliability")
    ap.add_argument("--unique-cues", action="store_true", help="no cue repeats across clips (free-text answers)")
    ap.add_argument("--processes", type=int, default=None, help="runtime.judge_processes (default: one per core)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    clips, feats, answers = build(args.n, unique_cues=args.unique_cues)
    built = time.perf_counter() - t0
    config = load_config(overrides=[f"judge.aggregation={args.aggregation}", "judge.threshold.mode=budget",
                                    f"runtime.judge_processes={args.processes or 'null'}"])
    # as in the flow, the voice baselines are made before stage 3 (the vocal agents read them) and
    # handed to the judge: not stage-4 work
    voice = voice_baselines(clips, feats, config.annotate.baseline)
    t1 = time.perf_counter()
    res = judge_run(clips, feats, answers, config, "bench", voice=voice)
    judge_s = time.perf_counter() - t1
    # the aggregators alone, on the same votes (Dawid-Skene learns a confusion matrix per annotator)
    labels = config.taxonomy
    cpos = {c.clip_id: i for i, c in enumerate(clips)}
    votes = Votes(clip=np.array([cpos[a.clip_id] for a in answers]), annotator=np.array([int(a.annotator_id[1:]) for a in answers]),
                  label=np.array([labels.index(a.label) for a in answers]), weight=np.array([j.s_final for j in res.judgements]),
                  clip_ids=list(cpos), annotator_ids=["w0", "w1", "w2", "w3"], labels=labels)
    agg = {}
    for method in ("majority", "weighted", "dawid_skene"):
        t = time.perf_counter()
        label_distributions(votes, method)
        agg[method] = round(time.perf_counter() - t, 3)
    caught = sum(1 for a, j in zip(answers, res.judgements) if any(e.evidence_id == "e9" for e in a.evidence) and "hallucinated_evidence" in j.flags)
    planted = sum(1 for a in answers if any(e.evidence_id == "e9" for e in a.evidence))
    report = {
        "annotations": len(answers), "clips": len(clips), "unique_cues": args.unique_cues,
        "processes": judge_processes(config, len(answers), None), "build_s": round(built, 1),
        "judge_run_s": round(judge_s, 2), "annotations_per_s": round(len(answers) / judge_s),
        "projected_1M_s": round(judge_s * 1_000_000 / len(answers), 1), "goal_1M_s": 60,
        "aggregation_only_s": agg, "planted_hallucinations": planted, "caught": caught,
        "flagged_clips": sum(c.needs_review for c in res.consensus), "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
    }
    print(json.dumps(report, indent=2))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / f"judge_throughput{'_unique_cues' if args.unique_cues else ''}.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
