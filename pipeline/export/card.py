"""The dataset card (README.md): what is in the dataset, how it was made, how far to trust it."""

from __future__ import annotations

from collections import Counter

from schemas import AnswerKeyRow, DatasetRow, EmoforgeConfig, SourceMedia


def _table(head: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows]
    return "\n".join(out)


def summary(config: EmoforgeConfig, run_id: str) -> str:
    return ("Emotion labels with step-by-step rationales and the multimodal evidence behind them, made by "
            f"[emoforge](https://example.invalid/emoforge) (run `{run_id}`). Annotations: {config.export.licence}.")


def trust_lines(rows: list[DatasetRow]) -> list[str]:
    """How far the labels can be trusted: reviewers' labels, and the model labels accepted without review
    with their expected accuracy (mean calibrated confidence) and a 95% Jeffreys interval."""
    from scipy.stats import beta

    human = [r for r in rows if r.label_source == "human"]
    model = [r for r in rows if r.label_source == "model"]
    accepted = [r.confidence for r in model if not r.needs_review and r.confidence is not None]
    pending = [r.confidence for r in model if r.needs_review and r.confidence is not None]
    lines = [f"- {len(human)} labels were decided by reviewers."]
    if accepted:
        right = sum(accepted)
        lo, hi = beta.ppf([0.025, 0.975], right + 0.5, len(accepted) - right + 0.5)
        lines.append(f"- {len(accepted)} model labels were accepted without review; their expected accuracy is "
                     f"{right / len(accepted):.3f} (95% interval {lo:.3f}-{hi:.3f}), the mean of the judge's calibrated "
                     "confidence (`confidence` column).")
    if pending:
        lines.append(f"- {len(pending)} model labels were flagged for review and not yet decided by a person; "
                     f"their expected accuracy is {sum(pending) / len(pending):.3f}.")
    return lines


def media_lines(config: EmoforgeConfig) -> list[str]:
    mode = config.export.media
    if mode == "none":
        return ["This dataset ships no media: `media_path` is empty; clips are identified by source and span."]
    lines = ["- `media/keyframes/CLIP_ID/` holds each clip's key frames; the `keyframes` column decodes them as images."]
    if mode == "clips":
        lines.insert(0, "- `media/clips/` holds each clip's span of its source: H.264/AAC MP4, FLAC for audio-only "
                        "clips, the photo itself for photos (`media_path`); the `video`, `audio` and `image` columns decode them.")
    if config.export.formats:
        lines.append(f"- `instruct/` holds instruction-tuning files ({', '.join(config.export.formats)}): the clip's media and "
                     "instruction, answered by its rationale; LLaMA-Factory reads `instruct/dataset_info.json`.")
    return lines + ["", "The media are embedded in the split Parquet files as well, so they decode wherever the folder is."]


def dataset_card(splits: dict[str, list[DatasetRow]], answer_key: list[AnswerKeyRow], sources: list[SourceMedia],
                 config: EmoforgeConfig, run_id: str, version: int | None = None, rows: list[DatasetRow] | None = None) -> str:
    """`rows`: every exported row with its label (the test split's included) for the trust figures."""
    labels_by_split = {s: Counter(r.label for r in rows if r.label) for s, rows in splits.items()}
    if answer_key:
        labels_by_split["test"] = Counter(k.label for k in answer_key if k.label)
    taxonomy = config.taxonomy
    rows_all = [r for rows in splits.values() for r in rows]
    stats: dict[str, list[float]] = {}
    for r in rows_all:
        for a in r.agreement:
            if a.value is not None:
                stats.setdefault(a.name, []).append(a.value)
    # the test split's rows ship without labels or flags: count every clip from the full rows, so the
    # card's figures all count the same clips
    every = rows if rows is not None else rows_all
    human = sum(r.label_source == "human" for r in every)
    w = config.judge.weights
    panel = ", ".join(f"`{a.id}` ({a.backend}" + (f", {a.model}" if a.model else "") + ")" for a in config.annotate.panel)
    lic = Counter(s.licence or "unknown (check before redistributing)" for s in sources)
    import yaml

    front = {"license": config.export.licence.lower(), "pretty_name": config.export.name,
             "task_categories": ["video-classification"], "tags": ["emotion", "multimodal", "rationale"],
             # the label set, so evaluators know the taxonomy even for labels no clip ended up with
             "emoforge": {"taxonomy": list(taxonomy), "multi_label": config.multi_label, "run_id": run_id, "version": version},
             # the splits named outright, so `load_dataset(DIR)` reads them and nothing else in the folder
             "configs": [{"config_name": "default",
                          "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in splits]}]}
    parts = [
        "---", yaml.safe_dump(front, sort_keys=False).strip(), "---", "",
        f"# {config.export.name}",
        "",
        summary(config, run_id),
        "",
        "## Contents",
        "",
        _table(["split", "clips", "sources"], [[s, len(rows), len({r.source_id for r in rows})] for s, rows in splits.items()]),
        "",
        "No source appears in two splits (splits are grouped by source and stratified by label, seed "
        f"{config.export.seed}). " + ("The test split ships without labels, rationales or scores; its answer key is "
                                      "`answer_key/test.parquet`." if config.export.hide_test_labels else ""),
        "",
        "## Label distribution",
        "",
        _table(["label", *splits], [[lab, *(labels_by_split[s].get(lab, 0) for s in splits)] for lab in taxonomy
                                    if any(labels_by_split[s].get(lab) for s in splits)]),
        "",
        "## How it was made",
        "",
        "1. Sampling: voice-activity and shot detection cut sources into clips; key frames; one instruction per clip.",
        "2. Preprocessing: ASR with word timings, speakers, prosody, faces, action units and expressions on one timeline.",
        f"3. Annotators: {panel}.",
        f"4. Judge: S_final = {w.alpha}·S_rec + {w.beta}·S_reason + {w.gamma}·S_cot, evidence checked against the "
        f"measured features; labels resolved by `{config.judge.aggregation}` aggregation.",
        f"5. Human review: {human} of {len(every)} labelled clips decided by reviewers in Label Studio.",
        "",
        "## Agreement",
        "",
        (_table(["statistic", "mean", "items"], [[k, f"{sum(v) / len(v):.3f}", len(v)] for k, v in sorted(stats.items())])
         if stats else "No clip had several reviewers, so no human agreement figures are available."),
        "",
        f"Clips flagged by the judge: {sum(r.needs_review for r in every)} of {len(every)} "
        "(flags are in the `flags` column of train and validation rows).",
        "",
        "## How far to trust the labels",
        "",
        *trust_lines(every),
        "",
        "## Source media and their licences",
        "",
        _table(["licence", "sources"], [[k, v] for k, v in lic.most_common()]),
        "",
        "## Media",
        "",
        *media_lines(config),
        "",
        "## Loading",
        "",
        "```python",
        "from datasets import load_dataset",
        "ds = load_dataset(\"path/to/this/folder\")  # or pyarrow.parquet.read_table(\"data/train-00000-of-00001.parquet\")",
        "```",
        "",
    ]
    return "\n".join(parts)
