"""What a run says about itself: per-stage counts, the summary the CLI prints, and the run manifest
written as `OUT/run.json` (`storage.RunDir.write_manifest` / `read_manifest`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, field_serializer

from schemas.annotation import Annotation
from schemas.clip import Clip
from schemas.features import ClipFeatures
from schemas.judgement import Consensus, Judgement, Routing
from schemas.media import SourceMedia
from schemas.reject import Reject
from schemas.review import Review


class StageCounts(BaseModel):
    """One stage of a run: what it was given (items), what it computed or reused from the cache,
    what it produced (outputs), how many errors it turned into reject rows, and how long it took."""

    stage: str
    items: int = 0
    computed: int = 0
    reused: int = 0
    outputs: int = 0
    rejects: int = 0
    seconds: float = 0.0


class InputCounts(BaseModel):
    """Files found under the inputs; used: its content became a source with clips; every other
    one has a row in rejects saying why."""

    found: int
    used: int
    rejected: int


class RunSummary(BaseModel):
    """What `emoforge run` returns and prints."""

    run_id: str
    out_dir: str
    inputs: int
    files: InputCounts
    stages: list[StageCounts]
    rejects: list[Reject]
    seconds: float


class TableCounts(BaseModel):
    """Rows in each table of the run's set, and the judge's review cut."""

    sources: int = 0
    clips: int = 0
    features: int = 0
    annotations: int = 0
    judgements: int = 0
    consensus: int = 0
    flagged: int = 0  # clips the judge sent to review
    review_threshold: float | None = None
    reviews: int = 0
    rejects: int = 0


class RunManifest(BaseModel):
    """`OUT/run.json`: the last complete run's id, inputs and counts. Every field but the id has a
    default, so a manifest written by an older version still reads."""

    run_id: str
    finished_at: datetime | None = None
    emoforge_version: str | None = None
    inputs: list[str] = []
    files: InputCounts | None = None
    stages: list[StageCounts] = []
    tables: TableCounts | None = None
    routing: Routing | None = None

    @field_serializer("finished_at")
    def _iso(self, value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()  # as datetime.isoformat writes it: +00:00, not Z

    def stage(self, name: str) -> StageCounts | None:
        return next((s for s in self.stages if s.stage == name), None)


class RunRecords(BaseModel):
    """What stages 1-5 made of a run, as stages 5 and 6 take it: from the flow's own hands during a
    run, or read back from a finished run's tables (`storage.RunDir.records()`)."""

    sources: list[SourceMedia] = []
    clips: list[Clip] = []
    features: list[ClipFeatures] = []
    annotations: list[Annotation] = []
    judgements: list[Judgement] = []
    consensus: list[Consensus] = []
    reviews: list[Review] = []
