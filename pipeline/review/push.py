"""Push flagged clips to Label Studio as review tasks.

One task per clip the judge flagged (Consensus.needs_review). The task carries the clip's media URL,
transcript, the model's rationale and evidence, and the consensus answer as a prediction whose score
is the review score, so the Data Manager sorts the least certain clips first. Pushing is idempotent:
clips already in the project (looked up by clip_id) are left alone, so a re-run adds only new ones.
The overlap (a share of tasks with several reviewers, for agreement) is Label Studio's own project
setting; setting it per task took one slow request per task (~0.2 s each against SQLite).
"""

from __future__ import annotations

import html
import logging
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydantic import BaseModel

from pipeline.review import labeling
from pipeline.review.answer_files import answers_dir
from pipeline.review.label_studio import LabelStudioClient, LabelStudioError
from pipeline.review.media import check_under_root, cut_clip, document_root, local_files_url, probe_fps
from pipeline.review.mirror import TaskMirror
from schemas import Annotation, Clip, ClipFeatures, Consensus, EmoforgeConfig, Judgement
from schemas.review import ReviewTaskData, ReviewTaskPush, TaskPrediction, TranscriptLine
from storage import RunDir

log = logging.getLogger(__name__)
IMPORT_BATCH = 2000  # tasks per import request: large enough to be fast, small enough not to time out


class PushReport(BaseModel):
    project_id: int
    pushed: int = 0  # new tasks created
    already_there: int = 0  # flagged clips whose task existed (re-push)
    skipped: int = 0  # clips not flagged for review
    # the share of the project's tasks (percent) Label Studio asks config.review.reviewers_on_overlap
    # reviewers for; the server picks them and keeps the share as tasks are added (0: one reviewer each)
    overlap_percent: int = 0
    task_ids: dict[str, int] = {}  # clip_id -> task id, for every flagged clip in the project
    problems: list[str] = []  # clips that could not be pushed (media could not be cut, no clip record)
    answer_dir: str | None = None  # where Label Studio writes the project's answers (None: pulls export)


def model_version(c: Consensus) -> str:
    """Which judge produced the prediction: its aggregation method and settings hash (provenance)."""
    parts = ["emoforge-judge", c.method, c.provenance.stage_config_hash]
    if c.provenance.model_id:
        parts.append(c.provenance.model_id)
    return ":".join(parts)


def _transcript(feat: ClipFeatures | None) -> list[TranscriptLine]:
    # consecutive words of one speaker make one line of the dialogue
    lines: list[TranscriptLine] = []
    for w in feat.words if feat else []:
        who = w.speaker or "speaker"
        if lines and lines[-1].author == who:
            lines[-1].text += " " + w.text
            if w.end is not None:
                lines[-1].end = w.end
        else:
            lines.append(TranscriptLine(author=who, text=w.text, start=w.start, end=w.end))
    if feat is not None and feat.words_may_be_guessed:
        # the reviewer hears the clip: told that the words may be whisper's guess, they trust their ears
        lines.append(TranscriptLine(author="ASR", text=f"(unsure of the language: {feat.language} at {feat.language_probability:.2f}; "
                                                       "these words may be a guess, not what was said)"))
    # <Paragraphs> needs at least one line
    return lines or [TranscriptLine(author="-", text="(no speech transcribed)")]


def _pick_answer(c: Consensus, answers: list[Annotation], scores: dict[str, float]) -> Annotation | None:
    """The answer whose rationale the reviewer sees: the best-scored one that chose the consensus label."""
    usable = [a for a in answers if a.status in ("ok", "repaired") and a.steps]
    agreeing = [a for a in usable if a.label == c.label] or usable
    return max(agreeing, key=lambda a: scores.get(a.annotation_id, 0.0), default=None)


def _rationale_html(a: Annotation | None, s_final: float | None) -> str:
    if a is None:
        return "<p><i>No annotator gave a rationale for this clip.</i></p>"
    head = f"<p><b>{html.escape(a.annotator_id)}</b> said <b>{html.escape(a.label or '-')}</b>"
    head += f" (S_final {s_final:.2f})</p>" if s_final is not None else "</p>"
    steps = "".join(f"<li>{html.escape(s.text)}</li>" for s in sorted(a.steps, key=lambda s: s.index))
    return f"{head}<ol>{steps}</ol>"


def _evidence_html(a: Annotation | None, j: Judgement | None) -> str:
    if a is None or not a.evidence:
        return "<p><i>No evidence cited.</i></p>"
    verdicts = {ck.evidence_id: ck for ck in (j.claims if j else [])}
    items = []
    for e in a.evidence:
        when = f" {e.start:.2f}-{e.end:.2f} s" if e.start is not None and e.end is not None else ""
        ck = verdicts.get(e.evidence_id)
        judged = f" <i>(judge: {html.escape(ck.verdict)} - {html.escape(ck.reason)})</i>" if ck else ""
        items.append(f"<li>[{html.escape(e.evidence_id)}, {html.escape(e.modality)}{when}] {html.escape(e.cue)}{judged}</li>")
    return "<ul>" + "".join(items) + "</ul>"


def build_task(clip: Clip, c: Consensus, media_url: str, fps: float | None, *, answers: list[Annotation] = (),
               judgements: list[Judgement] = (), features: ClipFeatures | None = None,
               config: EmoforgeConfig | None = None) -> ReviewTaskPush:
    """One Label Studio task (data + the consensus as a prediction)."""
    scores = {j.annotation_id: j.s_final for j in judgements}
    shown = _pick_answer(c, list(answers), scores)
    j = next((j for j in judgements if shown and j.annotation_id == shown.annotation_id), None)
    data = ReviewTaskData(
        clip_id=c.clip_id, source_id=clip.source_id, clip_start=round(clip.start, 3), clip_end=round(clip.end, 3),
        video=media_url, audio=media_url, fps=fps or 25, transcript=_transcript(features),
        rationale=_rationale_html(shown, scores.get(shown.annotation_id) if shown else None), evidence=_evidence_html(shown, j),
        model_label=c.label or "-", review_score=round(c.review_score, 4), flags=",".join(c.flags),
        annotators=",".join(sorted({a.annotator_id for a in answers})),
    )
    if c.label is None:
        return ReviewTaskPush(data=data)
    labels = [c.label]
    if config is not None and config.multi_label:
        labels = [lp.label for lp in c.distribution if lp.prob >= 0.5] or [c.label]
    choice = {"from_name": labeling.EMOTION, "to_name": "video", "type": "choices", "value": {"choices": labels}}
    return ReviewTaskPush(data=data, predictions=[TaskPrediction(model_version=model_version(c), score=round(c.review_score, 4),
                                                                 result=[choice])])


def connect(config: EmoforgeConfig, client: LabelStudioClient | None = None) -> tuple[LabelStudioClient, int]:
    """The client and the review project (created with the labeling config when missing)."""
    client = client or LabelStudioClient.from_config(config)
    client.check()
    pid = client.ensure_project(config.review.label_studio.project_title, labeling.label_config(config))
    return client, pid


def push_review(run_dir: RunDir, config: EmoforgeConfig, client: LabelStudioClient | None = None, *,
                consensus: list[Consensus] | None = None, clips: list[Clip] | None = None,
                annotations: list[Annotation] | None = None, judgements: list[Judgement] | None = None,
                features: list[ClipFeatures] | None = None, workers: int = 4) -> PushReport:
    """Push the run's flagged clips; the records default to the run directory's tables."""
    root = document_root(config.review.label_studio.document_root)
    check_under_root(run_dir, root)  # before any work: media outside the root could never be served
    consensus = run_dir.consensus() if consensus is None else consensus
    clips_by_id = {c.clip_id: c for c in (run_dir.clips() if clips is None else clips)}
    answers: dict[str, list[Annotation]] = defaultdict(list)
    for a in run_dir.annotations() if annotations is None else annotations:
        answers[a.clip_id].append(a)
    judged: dict[str, list[Judgement]] = defaultdict(list)
    for j in run_dir.judgements() if judgements is None else judgements:
        judged[j.clip_id].append(j)
    feats = {f.clip_id: f for f in (run_dir.features() if features is None else features)}

    client, pid = connect(config, client)
    client.ensure_local_storage(pid, run_dir.media_dir, title=f"emoforge media {run_dir.root.name}")
    report = PushReport(project_id=pid)
    ls = config.review.label_studio
    if ls.answer_files:
        where = attach_answer_storage(client, pid, Path(ls.answers_dir) if ls.answers_dir else root / ".emoforge-answers")
        report.answer_dir = None if where is None else str(where)
    # before the import, so the server spreads the overlap over the new tasks as it adds them
    report.overlap_percent = client.set_overlap(pid, config.review.reviewers_on_overlap, config.review.overlap)
    existing = client.task_index(pid)
    flagged = review_order(consensus)
    report.skipped = len(consensus) - len(flagged)
    todo: list[tuple[Consensus, Clip]] = []
    for c in flagged:
        if c.clip_id in existing:
            report.already_there += 1
            report.task_ids[c.clip_id] = existing[c.clip_id]
        elif c.clip_id not in clips_by_id:
            report.problems.append(f"{c.clip_id}: flagged but has no clip record; not pushed")
        else:
            todo.append((c, clips_by_id[c.clip_id]))

    def prepare(item: tuple[Consensus, Clip]) -> tuple[Consensus, ReviewTaskPush | None, str | None]:
        c, clip = item
        try:
            path = cut_clip(run_dir, clip)
        except Exception as exc:  # one bad source must not stop the push
            return c, None, f"{c.clip_id}: {exc}"
        fps = probe_fps(path)  # every clip is an MP4 with a picture (audio-only: its waveform)
        return c, build_task(clip, c, local_files_url(path, root), fps, answers=answers[c.clip_id],
                             judgements=judged[c.clip_id], features=feats.get(c.clip_id), config=config), None

    # ffmpeg runs in its own process: threads keep the CPUs busy while one clip encodes
    with ThreadPoolExecutor(max_workers=workers) as pool:
        prepared = list(pool.map(prepare, todo))
    tasks = []
    for c, task, problem in prepared:
        if problem:
            report.problems.append(problem)
        else:
            tasks.append((c, task))
    report.problems and log.warning("review push: %d clip(s) not pushed: %s", len(report.problems), report.problems[:3])
    push_tasks(client, pid, tasks, report)
    if not existing and report.task_ids:
        # the project held nothing before: the run's mirror starts from what was just imported
        TaskMirror.for_project(run_dir.cache_dir, client.url, pid).seed(client, report.task_ids)
    return report


def review_order(consensus: list[Consensus]) -> list[Consensus]:
    """The flagged clips in the order they are imported, which is the order Label Studio hands them
    to reviewers: those chosen to teach the run's voice model first (agents/teach_set.py), then the rest as the run lists them."""
    return sorted((c for c in consensus if c.needs_review), key=lambda c: "teach_voice_model" not in c.flags)


def attach_answer_storage(client: LabelStudioClient, pid: int, base: Path) -> Path | None:
    """Have Label Studio write each answer of the project to a file as it is saved (answer_files.py),
    in a directory of its own beneath `base`; None, with the reason logged, when it cannot be."""
    want = answers_dir(base, client.url, pid).resolve()
    counts = client.counts(pid)
    # a new storage makes the server write every existing answer inside the request (~30-60 ms each):
    # a project that already holds answers keeps pulling by export
    create = not (counts.answers or counts.skips)
    try:
        if client.ensure_answer_storage(pid, want, create=create) is None:
            log.info("review push: project %d already holds answers; no answer files for it, pulls export", pid)
            return None
    except (LabelStudioError, OSError) as exc:
        log.warning("review push: no answer files at %s (%s); pulls export instead", want, exc)
        return None
    return want


def push_tasks(client: LabelStudioClient, pid: int, tasks: list[tuple[Consensus, ReviewTaskPush]], report: PushReport) -> None:
    """Bulk-import built tasks, recording each clip's task id."""
    for i in range(0, len(tasks), IMPORT_BATCH):
        batch = tasks[i:i + IMPORT_BATCH]
        ids = client.import_tasks(pid, [t.payload() for _, t in batch])
        if len(ids) != len(batch):
            # the server returns ids in import order; without them the clip -> task map is unknown
            fresh = client.task_index(pid)
            ids = [fresh.get(c.clip_id) for c, _ in batch]
        for (c, _), tid in zip(batch, ids):
            if tid is not None:
                report.task_ids[c.clip_id] = int(tid)
        report.pushed += len(batch)
