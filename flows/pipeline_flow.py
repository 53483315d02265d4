"""The emoforge Prefect flow: the six stages in order (stage 5, human review, runs when
`review.enabled`). Stages 1-3 run one cached task per source, keyed by content hash,
stage configuration and code version, so a rerun (or a run resumed after a crash) recomputes only
what did not finish. Stages 4 and 6 run once over the whole run (aggregation, review budgets and
splits look across clips) and take seconds. Each stage's counts, time, progress bar and reject rows
are kept by one runner (flows/stage_runner.py); the records crossing each stage line are listed in
pipeline/__init__.py."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import yaml
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from agents import annotator_hash, shared_annotator
from agents.base import UnknownBackend, backend_class
from agents.face_baseline import against_declared_neutral
from agents.judge import judge_run
from agents.judge.gold import load_gold
from agents.learned_voice import fit_learned_voice
from agents.voice_baseline import voice_baselines
from flows.code_version import OURS, code_version
from flows.config_check import check_config
from flows.gpu_pool import annotate_via_pool, runs_on_pool
from flows.progress import hook
from flows.result_cache import ResultCache
from flows.stage_runner import Job, Stage, StageRunner, collect
from flows.task_runners import api_for_workers, make_task_runner
from pipeline.export.dataset import ExportError
from pipeline.export.export import export_run
from pipeline.export.report import write_run_report
from pipeline.preprocess.asr import get_transcriber
from pipeline.preprocess.asr_packing import packs_across_sources, transcribe_short_sources
from pipeline.preprocess.prosody import denoise as denoise_audio
from pipeline.preprocess.stage import loads_torch, preprocess_source
from pipeline.sampling.inputs import list_inputs
from pipeline.sampling.media import MediaError, check_media, file_sha256
from pipeline.sampling.stage import sample_source
from pipeline.threads import pin_blas_threads, preload_torch
from schemas import (
    Annotation,
    AnnotatorInput,
    Clip,
    ClipFeatures,
    EmoforgeConfig,
    Reject,
    Review,
    SourceAnnotations,
    SourceJudgements,
    SourceMedia,
    SourcePreprocessing,
    SourceSampling,
)
from schemas.config import AnnotatorSpec
from schemas.dataset import ExportedDataset
from schemas.features import ClipTranscript, LearnedVoice, VoiceBaseline
from schemas.provenance import emoforge_version, stable_hash
from schemas.run import InputCounts, RunManifest, RunRecords, RunSummary, TableCounts
from storage import RunDir
from storage.lock import RunLock
from storage.run_dir import new_run_id  # noqa: F401  (also imported from here)

if TYPE_CHECKING:
    from pipeline.review.stage import ReviewOutcome


log = logging.getLogger(__name__)
# each stage's code: every module of ours it imports, transitively (flows/code_version.py)
SAMPLING_CODE = code_version(["pipeline.sampling.stage"])
PREPROCESS_CODE = code_version(["pipeline.preprocess.stage"])
AGENTS_CODE = code_version(["agents"])  # the judge (stage 4) is not among them: changing it keeps stage-3 answers


def annotator_code(spec: AnnotatorSpec) -> str:
    """The code one annotator runs: ours, plus a plugin's own module and what it imports from its package."""
    if ":" not in spec.backend:
        return AGENTS_CODE
    module = spec.backend.split(":", 1)[0]
    return code_version(["agents", module], OURS | {module.split(".")[0]})


def sampling_key(sha256: str, config: EmoforgeConfig) -> str:
    return f"sampling-{sha256}-{config.stage_hash('sampling')}-{SAMPLING_CODE}"


# Stages 1-3 cache their results themselves (flows/result_cache.py), as JSON records, not Prefect pickles.
@task(name="sample-source", cache_policy=NO_CACHE, retries=0)
def sample_source_task(path: str, sha256: str, config: EmoforgeConfig, run: RunDir, run_id: str) -> SourceSampling:
    pin_blas_threads()  # in whichever process the runner put this task: results must not depend on it
    return sample_source(Path(path), sha256, config, run, run_id)


def preprocess_key(source: SourceMedia, clips: list[Clip], config: EmoforgeConfig) -> str:
    spans = stable_hash([c.model_dump(mode="json", exclude={"provenance"}) for c in clips])
    return (f"preprocess-{source.sha256}-{spans}-{config.stage_hash('preprocess')}"
            f"-{config.sampling.audio_sample_rate}-{PREPROCESS_CODE}")


@task(name="preprocess-source", cache_policy=NO_CACHE, retries=0)
def preprocess_source_task(source: SourceMedia, clips: list[Clip], config: EmoforgeConfig, run_id: str,
                           transcripts: list[ClipTranscript] | None = None) -> SourcePreprocessing:
    pin_blas_threads()
    features, rejects = preprocess_source(source, clips, config, run_id, transcripts)
    return SourcePreprocessing(features=features, rejects=rejects)


def transcribe_short_sources_first(by_source: list[tuple[SourceMedia, list[Clip]]], config: EmoforgeConfig,
                                   cache: ResultCache) -> dict[str, list[ClipTranscript]]:
    """With a configured language, the short sources stage 2 still has to do are transcribed here
    first, packed into shared windows (pipeline/preprocess/asr_packing.py); their tasks get the words."""
    asr = config.preprocess.asr
    if not packs_across_sources(asr):
        return {}
    todo = [(s, c) for s, c in by_source if not cache.path(preprocess_key(s, c, config)).exists()]
    if not todo:
        return {}
    pin_blas_threads()
    sr = config.sampling.audio_sample_rate
    denoise = (lambda x: denoise_audio(x, sr)) if asr.denoise else None
    return transcribe_short_sources(get_transcriber(asr), todo, asr, sr, denoise)


def annotate_key(items: list[AnnotatorInput], spec: AnnotatorSpec, config: EmoforgeConfig) -> str:
    inputs = stable_hash([i.model_dump(mode="json", exclude={"clip": {"provenance"}, "features": {"provenance"}, "media_root": True})
                          for i in items])
    return f"annotate-{inputs}-{annotator_hash(spec, config)}-{annotator_code(spec)}"


@task(name="annotate-source", cache_policy=NO_CACHE, retries=0)
def annotate_task(items: list[AnnotatorInput], spec: AnnotatorSpec, config: EmoforgeConfig, run_id: str) -> SourceAnnotations:
    """One annotator on one source's clips: adding an annotator to the panel computes only its answers.
    A failure raises rather than returning a reject, so it is not cached: a rerun tries again, and
    `collect` turns it into a reject row meanwhile (one failing annotator never loses the others' answers)."""
    pin_blas_threads()
    try:
        if runs_on_pool(spec, config):  # GPU annotators: a flow run on the GPU work pool
            return annotate_via_pool(items, spec, config, run_id)
        return SourceAnnotations(annotations=shared_annotator(spec, config).annotate(items, run_id))
    except Exception as exc:
        raise AnnotatorFailed(f"annotator {spec.id}: {type(exc).__name__}: {exc}") from None


class AnnotatorFailed(RuntimeError):
    pass


def reads_run_input(spec: AnnotatorSpec, what: str) -> bool:
    """Whether the annotator reads a run-level input: "baseline" or "learned_voice"."""
    try:
        return bool(getattr(backend_class(spec), f"reads_{what}", False))
    except UnknownBackend:
        return False  # check_config refuses an unknown backend before any work; kept total for direct callers


def reads_baseline(spec: AnnotatorSpec) -> bool:
    return reads_run_input(spec, "baseline")


def annotator_inputs(batch: list[AnnotatorInput], spec: AnnotatorSpec, voice: dict[str, VoiceBaseline],
                     learned: dict[str, LearnedVoice] | None = None) -> list[AnnotatorInput]:
    """The batch as one annotator sees it: with each clip's voice baseline, and the learned voice
    model's answer, only for annotators that read them. The cache key hashes the inputs, so a new
    file that moves the run's baseline, or new labels that refit the voice model, recompute those
    answers and leave the others' cached."""
    update = {}
    if reads_baseline(spec):
        update["baseline"] = voice
    if learned is not None and reads_run_input(spec, "learned_voice"):
        update["learned_voice"] = learned
    if not update:
        return batch
    return [i.model_copy(update={k: v.get(i.clip.clip_id) for k, v in update.items()}) for i in batch]


def learned_voices(clips: list[Clip], features: list[ClipFeatures], voice: dict[str, VoiceBaseline], config: EmoforgeConfig,
                   reviewed: dict[str, list[str]]) -> dict[str, LearnedVoice]:
    """The run's voice model's answers, fitted on the clips whose labels are known (gold, then
    reviewers' verdicts), when an annotator of the panel reads them."""
    if not any(reads_run_input(spec, "learned_voice") for spec in config.annotate.panel):
        return {}
    from agents.judge.gold import GoldError, load_gold

    try:
        gold = load_gold(config.judge.gold, config.taxonomy) if config.judge.gold else {}
    except GoldError:
        gold = {}  # the judge stage reports the bad file as a reject row
    known = {**reviewed, **gold}
    source = "+".join(name for name, labels in (("gold", gold), ("review", reviewed)) if labels) or "none"
    return fit_learned_voice(clips, features, known, voice, config.annotate.learned_voice, config.taxonomy, source)


def relearned_answers(annotations: list[Annotation], batches: list[list[AnnotatorInput]], voice: dict[str, VoiceBaseline],
                      learned: dict[str, LearnedVoice], config: EmoforgeConfig, run_id: str) -> list[Annotation]:
    """The annotations with every learned-voice reader's answers redone on a refitted model."""
    readers = [spec for spec in config.annotate.panel if reads_run_input(spec, "learned_voice")]
    fresh = {}
    for spec in readers:
        agent = shared_annotator(spec, config)
        for b in batches:
            fresh.update({a.annotation_id: a for a in agent.annotate(annotator_inputs(b, spec, voice, learned), run_id)})
    return [fresh.get(a.annotation_id, a) for a in annotations]


@task(name="judge-run", retries=0, cache_policy=NO_CACHE)  # cheap to redo; hashing a run's answers is not
def judge_task(clips: list[Clip], features: list[ClipFeatures], annotations: list[Annotation], config: EmoforgeConfig,
               run_id: str, reviewed: dict[str, list[str]] | None = None,
               voice: dict[str, VoiceBaseline] | None = None, learned: dict[str, LearnedVoice] | None = None) -> SourceJudgements:
    gold = load_gold(config.judge.gold, config.taxonomy) if config.judge.gold else None
    return judge_run(clips, features, annotations, config, run_id, gold=gold, known=reviewed, voice=voice, learned=learned)


def write_judged(run: RunDir, judged: SourceJudgements) -> None:
    run.write("judgements", judged.judgements)
    run.write("consensus", judged.consensus)
    run.write("reliability", judged.reliability)


def reviewed_labels(reviews: list[Review]) -> dict[str, list[str]]:
    """Clips whose label reviewers settled in earlier rounds: known labels for the judge's reliability
    fit and calibration."""
    return {r.clip_id: r.final_labels or [r.final_label] for r in reviews
            if r.decision == "accepted" and r.final_source == "human" and (r.final_labels or r.final_label)}


@task(name="review-round", retries=0, cache_policy=NO_CACHE)  # talks to a live server: always fresh
def review_task(run: RunDir, config: EmoforgeConfig, run_id: str, records: RunRecords) -> "ReviewOutcome":  # noqa: UP037
    from pipeline.review.stage import review_run  # the Label Studio client loads only for runs that review

    return review_run(run, config, run_id, records=records)


@task(name="export-dataset", retries=0, cache_policy=NO_CACHE)
def export_task(run: RunDir, config: EmoforgeConfig, run_id: str, records: RunRecords) -> ExportedDataset:
    return export_run(run, run.dataset_dir, config, run_id, versioned=True, records=records)


@flow(name="emoforge", validate_parameters=False)
def emoforge_flow(inputs: list[str], out_dir: str, config: EmoforgeConfig, run_id: str) -> RunSummary:
    t0 = time.perf_counter()
    run = RunDir.begin(out_dir, run_id)  # this run's own table set, made current at the end (commit)
    cache = ResultCache(run.cache_dir / "results")
    progress = hook()
    rejects: list[Reject] = []
    stages = StageRunner(run_id, rejects)

    # ---- stage 1: sampling, one task per distinct file ----
    listing = list_inputs(inputs)  # every file under a directory, whatever its name
    files = listing.files
    with stages.per_source("sampling", len(files), len(files), started=t0) as counts:
        rejects += [Reject(run_id=run_id, stage="sampling", path=s.path, severity=s.severity, reason=s.reason, error_type=s.error_type)
                    for s in listing.skipped]
        sampling = Stage(cache, SourceSampling)
        seen: dict[str, str] = {}
        sha_of: dict[str, str] = {}
        for raw in files:
            path = Path(raw)
            try:
                check_media(path)  # by content, headers only: not media is a reject row before any hashing
            except MediaError as exc:
                rejects.append(Reject(run_id=run_id, stage="sampling", path=raw, reason=str(exc), error_type="MediaError"))
                counts.rejects += 1
                progress.advance("sampling", raw, reused=False)
                continue
            try:
                sha = file_sha256(path)
            except OSError as exc:
                rejects.append(Reject(run_id=run_id, stage="sampling", path=raw, reason=f"{raw}: cannot read file ({exc.strerror or exc})", error_type=type(exc).__name__))
                counts.rejects += 1
                progress.advance("sampling", raw, reused=False)
                continue
            sha_of[raw] = sha
            if sha in seen:
                rejects.append(Reject(run_id=run_id, stage="sampling", path=raw, severity="warning", reason=f"{raw}: same content as {seen[sha]}; sampled once", error_type="DuplicateInput"))
                progress.advance("sampling", raw, reused=True)
                continue
            seen[sha] = raw
            resolved = str(path.resolve())
            sampling.run(Job(resolved, raw, None, 1, sampling_key(sha, config)), sample_source_task, resolved, sha, config, run, run_id)
        sampled = collect("sampling", sampling, counts, rejects, run_id)
        results: list[SourceSampling] = [sampled[k] for k in dict.fromkeys(str(Path(p).resolve()) for p in files) if k in sampled]
        by_source = [(r.source, r.clips) for r in results if r.source is not None and r.clips]
        sources = [src for src, _ in by_source]
        clips = [c for _, cl in by_source for c in cl]
        source_shas = {src.sha256 for src in sources}
        used = sum(1 for f in files if sha_of.get(f) in source_shas)  # a duplicate's content is used
        file_counts = InputCounts(found=listing.found, used=used, rejected=listing.found - used)
        run.write("sources", sources)
        run.write("clips", clips)
        counts.outputs = len(clips)

    # ---- stage 2: preprocessing, one task per source ----
    with stages.per_source("preprocess", len(clips), len(by_source)) as counts:
        # torch, if stage 2's threads or stage 3's agents load it, is loaded here first: half-built in
        # one thread, it breaks another thread's SciPy (pipeline/threads.py, preload_torch)
        if loads_torch(clips, config) or any(spec.backend == "transformers" for spec in config.annotate.panel):
            preload_torch()
        preprocessing = Stage(cache, SourcePreprocessing)
        packed = transcribe_short_sources_first(by_source, config, cache)
        for src, cl in by_source:
            preprocessing.run(Job(src.source_id, src.path, src.source_id, len(cl), preprocess_key(src, cl, config)),
                              preprocess_source_task, src, cl, config, run_id, packed.get(src.source_id))
        done = collect("preprocess", preprocessing, counts, rejects, run_id)
        features = [f for src in sources if src.source_id in done for f in done[src.source_id].features]
        # a declared person's AUs against their neutral over all their files (agents/face_baseline.py)
        features = against_declared_neutral(clips, features, config.annotate.baseline.speakers, config.preprocess.faces)
        run.write("features", features)
        counts.outputs = len(features)

    # ---- stage 3: annotator panel, one task per source and annotator ----
    panel = config.annotate.panel
    feats = {f.clip_id: f for f in features}
    batches = [[AnnotatorInput(clip=c, features=feats[c.clip_id], media_root=str(run.root)) for c in cl if c.clip_id in feats]
               for _, cl in by_source]
    batches = [b for b in batches if b]
    with stages.per_source("annotate", len(features) * len(panel), len(batches) * len(panel)) as counts:
        # run-level voice baselines, for the annotators that read them (annotator_inputs); the cache key
        # hashes the inputs, baseline included
        voice = voice_baselines(clips, features, config.annotate.baseline)
        reviewed = reviewed_labels(run.reviews()) if config.judge.reliability.use_reviews else {}
        learned = learned_voices(clips, features, voice, config, reviewed)
        annotating = Stage(cache, SourceAnnotations)
        for b in batches:
            for spec in panel:
                items = annotator_inputs(b, spec, voice, learned)
                annotating.run(Job(f"{b[0].clip.source_id}/{spec.id}", b[0].clip.source_path, b[0].clip.source_id, len(b),
                                   annotate_key(items, spec, config)), annotate_task, items, spec, config, run_id)
        answered = collect("annotate", annotating, counts, rejects, run_id)
        annotations = [a for b in batches for spec in panel for a in
                       (answered[f"{b[0].clip.source_id}/{spec.id}"].annotations if f"{b[0].clip.source_id}/{spec.id}" in answered else [])]
        run.write("annotations", annotations)
        counts.outputs = sum(1 for a in annotations if a.label is not None)

    # ---- stage 4: judge, once over the run (aggregation and the review budget look across clips) ----
    judged = SourceJudgements(judgements=[], consensus=[], threshold=config.judge.threshold.value)
    # a failure (e.g. a bad gold file) is a reject row: stages 1-3 stay written, the run says why
    with stages.whole_run("judge", len(annotations), label="judge", path=config.judge.gold or out_dir) as judge_counts:
        judged = judge_task(clips, features, annotations, config, run_id, reviewed, voice, learned)
        judge_counts.computed = len(judged.judgements)
    write_judged(run, judged)
    judge_counts.outputs = sum(c.needs_review for c in judged.consensus)  # clips flagged for review

    # ---- stage 5: human review in Label Studio (when configured): push flagged, pull verdicts ----
    if config.review.enabled:
        server = config.review.label_studio.url
        # server down, wrong token: a reject row; stages 1-4 stay written; rerun to resume review
        with stages.whole_run("review", judge_counts.outputs, label="label studio", path=server) as counts:
            outcome = review_task(run, config, run_id, RunRecords(sources=sources, clips=clips, features=features, annotations=annotations,
                                                                  judgements=judged.judgements, consensus=judged.consensus))
            counts.computed = outcome.push.pushed
            counts.reused = outcome.push.already_there
            counts.outputs = outcome.pull.accepted  # clips whose label reviewers settled
            for problem in outcome.push.problems + [f"task {p.task_id}: {p.problem}" for p in outcome.pull.problems]:
                rejects.append(Reject(run_id=run_id, stage="review", path=server, severity="warning",
                                      reason=f"review: {problem}", error_type="ReviewProblem"))
        # verdicts this round's pull brought teach the judge at once: reliability and calibration are
        # refitted with them, so the export and the next push see what the reviewers settled
        pulled = reviewed_labels(run.reviews()) if config.judge.reliability.use_reviews else {}
        if pulled != reviewed and not judge_counts.rejects:
            t = time.perf_counter()
            # ... and the run's voice model: refitted on them, its answers redone (a logistic regression: seconds)
            refit = learned_voices(clips, features, voice, config, pulled)
            if refit != learned:
                annotations = relearned_answers(annotations, batches, voice, refit, config, run_id)
                run.write("annotations", annotations)
            judged = judge_task(clips, features, annotations, config, run_id, pulled, voice, refit)
            write_judged(run, judged)
            judge_counts.outputs = sum(c.needs_review for c in judged.consensus)
            judge_counts.seconds = round(judge_counts.seconds + time.perf_counter() - t, 3)

    # ---- stage 6: the benchmark dataset ----
    # nothing to export is a warning; a write failure an error; earlier stages stay written either way
    with stages.whole_run("export", len(judged.consensus), label="dataset", path=str(run.dataset_dir), failure=export_failure) as counts:
        exported = export_task(run, config, run_id, RunRecords(
            sources=sources, clips=clips, features=features, annotations=annotations, judgements=judged.judgements,
            consensus=judged.consensus, reviews=run.reviews()))
        counts.computed = counts.outputs = exported.rows
    run.write("rejects", rejects)

    run.config_path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    summary = RunSummary(
        run_id=run_id, out_dir=str(run.root), inputs=len(inputs), files=file_counts, stages=stages.done, rejects=rejects,
        seconds=round(time.perf_counter() - t0, 3),
    )
    run.write_manifest(RunManifest(
        run_id=run_id, finished_at=datetime.now(UTC), emoforge_version=emoforge_version(), inputs=inputs, files=file_counts,
        stages=summary.stages,
        tables=TableCounts(sources=len(sources), clips=len(clips), features=len(features), annotations=len(annotations),
                           judgements=len(judged.judgements), consensus=len(judged.consensus), flagged=judge_counts.outputs,
                           review_threshold=judged.threshold, reviews=len(run.reviews()), rejects=len(rejects)),
        routing=judged.routing,
    ))
    try:  # plots of the finished run (reads the manifest just written, for the stage timings)
        write_run_report(run, run.root / "report")
    except Exception as exc:  # a plotting failure must not turn a finished run into a failed one
        log.warning("run report not written: %s: %s", type(exc).__name__, exc)
    run.commit()
    return summary


def export_failure(stage: str, exc: Exception) -> tuple[str, str]:
    return ("warning" if isinstance(exc, ExportError) else "error"), f"{stage}: {exc}"


def run_pipeline(inputs: list[str], out_dir: str, config: EmoforgeConfig, run_id: str | None = None, *, wait: bool = False,
                 notify: Callable[[str], None] | None = None, command: str = "run", lock: RunLock | None = None) -> RunSummary:
    """Run the flow holding OUT's lock (storage/lock.py): raises RunDirLocked at once when another
    command holds it, or with `wait` waits for it; `notify` hears whom it waits for and stale locks.
    A caller that took the lock already (the CLI, before its slow imports) passes it as `lock`, and
    the run id it named in it as `run_id`."""
    check_config(config)  # a plugin that does not import, a missing gold file: ConfigError before any work
    runner = make_task_runner(config)  # an unreachable Dask scheduler fails here, before any work
    run_id = run_id or new_run_id()
    if lock is None:
        lock = RunLock(out_dir, command, run_id).acquire(wait=wait, notify=notify or log.warning)
    with lock, api_for_workers(config):
        return emoforge_flow.with_options(task_runner=runner)(
            inputs=[str(i) for i in inputs], out_dir=str(out_dir), config=config, run_id=run_id
        )
