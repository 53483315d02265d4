"""Pull reviewers' answers back from Label Studio into Review records.

Every flagged clip gets a Review: the human answer wins over the model's when the reviewers agree
(a strict majority of them), a tie is escalated, and a clip nobody answered yet (or whose task was
deleted in the UI) stays pending with the model's label. Nothing a reviewer typed can crash a pull:
a label outside the taxonomy is dropped and reported with its task id. Pulling twice gives the same
records (timestamps come from the annotations, not from the clock), so a pull can be re-run freely.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path

from pydantic import BaseModel

from pipeline.review import labeling
from pipeline.review.answer_files import prune_stale, read_answer_files
from pipeline.review.label_studio import ANSWER_STORAGE, LabelStudioClient, server_time
from pipeline.review.mirror import SyncReport, TaskMirror
from pipeline.review.push import connect
from schemas import Consensus, EmoforgeConfig, Provenance, Review, ReviewerAnswer
from schemas.provenance import stable_hash
from schemas.review import ReviewTask
from storage import RunDir

log = logging.getLogger(__name__)
RECOUNT_S = 0.3  # pause before counting again when the answer files do not add up


class PullProblem(BaseModel):
    clip_id: str | None
    task_id: int | None
    annotation_id: int | None = None
    problem: str


class PullReport(BaseModel):
    project_id: int
    reviews: list[Review] = []  # one per flagged clip of the run
    problems: list[PullProblem] = []  # answers (or parts of them) that were not used, and why
    missing: list[str] = []  # flagged clips with no task in the project (deleted in the UI, or never pushed)
    accepted: int = 0
    escalated: int = 0
    pending: int = 0
    full_export: bool = True  # False when only the tasks changed since the last pull were exported
    exported_tasks: int = 0  # tasks the server exported for this pull
    answer_files: int = 0  # answer files read instead (answer_files.py)



def parse_answer(ann: dict, task: ReviewTask, users: dict[int, str], taxonomy: list[str], multi_label: bool,
                 problems: list[PullProblem]) -> ReviewerAnswer | None:
    """One annotation as a ReviewerAnswer; None (with a problem recorded) when it has no usable label."""
    where = dict(clip_id=task.clip_id, task_id=task.id, annotation_id=ann.get("id"))
    labels: list[str] = []
    intensity = evidence_ok = correction = None
    for r in ann.get("result") or []:
        name, value = r.get("from_name"), r.get("value") or {}
        if name == labeling.EMOTION:
            labels += [str(x) for x in value.get("choices") or []]
        elif name == labeling.INTENSITY and value.get("rating") is not None:
            # stars 1..MAX_RATING onto the annotators' 0..1 intensity scale
            intensity = min(1.0, max(0.0, float(value["rating"]) / labeling.MAX_RATING))
        elif name == labeling.EVIDENCE_OK and value.get("choices"):
            evidence_ok = value["choices"][0] == "yes"
        elif name == labeling.CORRECTION and value.get("text"):
            text = value["text"]
            correction = "\n".join(text) if isinstance(text, list) else str(text)
    known = set(taxonomy)
    normal = [x.strip().lower() for x in labels]
    bad = [x for x, n in zip(labels, normal) if n not in known]
    good = list(dict.fromkeys(n for n in normal if n in known))
    if bad:
        problems.append(PullProblem(**where, problem=f"label(s) {bad} are not in the taxonomy; not used"))
    if not multi_label and len(good) > 1:
        problems.append(PullProblem(**where, problem=f"several labels {good} in a single-label project; kept {good[0]}"))
        good = good[:1]
    if not good:
        if not bad:
            problems.append(PullProblem(**where, problem="annotation has no emotion label; not used"))
        return None
    who = ann.get("completed_by")
    if isinstance(who, dict):  # some export settings expand the user
        reviewer = who.get("email") or str(who.get("id"))
    else:
        reviewer = users.get(int(who), str(who)) if who is not None else "unknown"
    return ReviewerAnswer(reviewer=reviewer, labels=good, intensity=intensity, evidence_correct=evidence_ok,
                          correction=correction, submitted_at=server_time(ann.get("updated_at") or ann.get("created_at")),
                          task_id=task.id, annotation_id=ann.get("id"))


def resolve(c: Consensus, answers: list[ReviewerAnswer], *, required: int, multi_label: bool,
            provenance: Provenance, task_id: int | None) -> Review:
    """Human over model: a strict majority of reviewers decides; a tie escalates; too few answers
    (an overlap task waiting for its second reviewer, or none yet) leaves the model's answer pending."""
    base = dict(clip_id=c.clip_id, task_id=task_id, answers=answers, provenance=provenance)
    model = dict(final_label=c.label, final_labels=[c.label] if c.label else [], final_source="model")
    if len(answers) < max(required, 1):
        return Review(**base, **model, decision="pending")
    votes = Counter(lbl for a in answers for lbl in a.labels)
    if multi_label:
        chosen = [lbl for lbl, n in votes.most_common() if n * 2 > len(answers)]
        if not chosen:
            return Review(**base, **model, decision="escalated")
        return Review(**base, final_label=chosen[0], final_labels=chosen, final_source="human", decision="accepted")
    (top, n), *rest = votes.most_common()
    if rest and rest[0][1] == n:  # no single most-chosen label among the reviewers
        return Review(**base, **model, decision="escalated")
    return Review(**base, final_label=top, final_labels=[top], final_source="human", decision="accepted")


def reviews_from_tasks(tasks: list[ReviewTask], consensus: list[Consensus], config: EmoforgeConfig, users: dict[int, str],
                       project_id: int, run_id: str | None = None) -> PullReport:
    """The pure part of a pull: the project's tasks as read_tasks gives them + the run's consensus
    -> Review records and problems."""
    report = PullReport(project_id=project_id)
    by_clip = {t.clip_id: t for t in tasks if t.clip_id is not None}
    settings_hash = stable_hash({"review": config.review.model_dump(mode="json", exclude={"label_studio"}),
                                 "taxonomy": config.taxonomy, "multi_label": config.multi_label})
    for c in consensus:
        if not c.needs_review:
            continue
        task = by_clip.get(c.clip_id)
        answers: list[ReviewerAnswer] = []
        if task is None:
            report.missing.append(c.clip_id)
            report.problems.append(PullProblem(clip_id=c.clip_id, task_id=None,
                                               problem="no task in the project (deleted in the UI?); clip stays pending"))
        else:
            for ann in task.annotations:
                if ann.get("was_cancelled"):  # a skip is no answer
                    continue
                a = parse_answer(ann, task, users, config.taxonomy, config.multi_label, report.problems)
                if a is not None:
                    answers.append(a)
            answers.sort(key=lambda a: (a.annotation_id or 0))
        required = (task.overlap or 1) if task else 1  # how many reviewers Label Studio asks for
        # created_at from the data, not the clock: the same annotations give the same record
        stamps = [a.submitted_at for a in answers if a.submitted_at] or [c.provenance.created_at]
        prov = Provenance(stage="review", stage_config_hash=settings_hash, run_id=run_id or c.provenance.run_id,
                          model_id="label-studio", model_version=config.review.label_studio.project_title,
                          created_at=max(stamps))
        review = resolve(c, answers, required=required, multi_label=config.multi_label, provenance=prov,
                         task_id=task.id if task else None)
        report.reviews.append(review)
        setattr(report, review.decision, getattr(report, review.decision) + 1)
    return report


def pull_review(run_dir: RunDir, config: EmoforgeConfig, client: LabelStudioClient | None = None, *,
                consensus: list[Consensus] | None = None, run_id: str | None = None, write: bool = True) -> PullReport:
    """Bring the run's mirror of the project up to date (only changed tasks, when it adds up), build
    the run's Review records and (by default) write tables/reviews.parquet."""
    consensus = run_dir.consensus() if consensus is None else consensus
    client, pid = connect(config, client)
    tasks, sync = read_tasks(client, pid, run_dir.cache_dir, config.review.label_studio.answer_files)
    report = reviews_from_tasks(tasks, consensus, config, client.users(), pid, run_id=run_id)
    report.full_export, report.exported_tasks, report.answer_files = sync.full, sync.fetched, sync.answer_files
    if write:
        run_dir.write("reviews", report.reviews)
    return report


def answer_dir(client: LabelStudioClient, project_id: int) -> Path | None:
    """The directory the project's answer storage writes to, when this machine can read it. Only
    the one a push attached: a pull may remove stale files, and other storages are not ours to tidy."""
    for s in client.answer_storages(project_id):
        if s.get("title") == ANSWER_STORAGE and s.get("path") and Path(s["path"]).is_dir():
            return Path(s["path"])
    return None


def read_tasks(client: LabelStudioClient, project_id: int, cache_dir: Path,
               answer_files: bool = True) -> tuple[list[ReviewTask], SyncReport]:
    """The project's tasks with their answers and how many reviewers each asks for, through the
    mirror in `cache_dir` (saved before anything else can fail): from the project's answer files
    when they add up to the server's counts, else by export (only what changed, when that adds up)."""
    store = answer_dir(client, project_id) if answer_files else None
    counts = client.counts(project_id)
    mirror = TaskMirror.for_project(cache_dir, client.url, project_id)
    sync = None
    if store is not None:
        for attempt in range(2):
            read = read_answer_files(store)
            sync = mirror.sync_from_files(*read, counts) if read is not None else None
            if sync is not None or attempt:
                break
            # the server counts an answer a moment before it writes its file (and a reviewer may
            # save between our count and our read): count and read once more before exporting
            time.sleep(RECOUNT_S)
            counts = client.counts(project_id)
        if sync is None:
            log.info("review pull: the answer files in %s do not add up to project %d's counts; exporting", store, project_id)
    if sync is None:
        sync = mirror.sync(client, counts)
        if store is not None:  # the mirror now adds up: files for answers it lacks are stale
            prune_stale(store, mirror.tasks, counts.as_of)
    mirror.save()
    if sync.full:
        log.info("review pull: exported all %d tasks of project %d (%s)", sync.fetched, project_id, sync.reason)
    most = counts.most_reviewers

    def answered(t: dict) -> int:
        return sum(not a.get("was_cancelled") for a in t["annotations"])

    # only a task with some answers but fewer than the most any task asks for can be waiting on a
    # second reviewer; the export lacks the overlap, so it is listed for those tasks alone
    waiting = any(0 < answered(t) < most for t in mirror.tasks.values())
    overlap = client.task_overlaps(project_id, waiting_below=most) if waiting else {}
    return [ReviewTask(**t, overlap=overlap.get(t["id"], 1)) for t in mirror.tasks.values()], sync
