"""Reading the answer files Label Studio's target storage writes (both of its layouts) and pruning
stale ones; the round trip with a real server is in test_review_labelstudio.py."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone

from pipeline.review.answer_files import prune_stale, read_answer_files


def _ann(aid: int, tid: int, label: str, clip: str = "c1") -> dict:
    return {"id": aid, "result": [{"from_name": "emotion", "value": {"choices": [label]}}], "was_cancelled": False,
            "completed_by": {"id": 1, "email": "r@x"}, "updated_at": "2026-11-22T10:00:00Z",
            "task": {"id": tid, "data": {"clip_id": clip}, "updated_at": "2026-11-22T10:00:00Z"}}


def test_both_layouts_group_by_task_and_an_unreadable_file_gives_none(tmp_path, caplog):
    (tmp_path / "11").write_text(json.dumps(_ann(11, 1, "joy")))
    (tmp_path / "12").write_text(json.dumps(_ann(12, 1, "fear")))
    # FUTURE_SAVE_TASK_TO_STORAGE: one file per task, holding all its annotations
    task = {"id": 2, "data": {"clip_id": 7}, "annotations": [{k: v for k, v in _ann(13, 2, "anger").items() if k != "task"}]}
    (tmp_path / "2.json").write_text(json.dumps(task))
    (tmp_path / ".hidden").write_text("not an answer")
    tasks, n = read_answer_files(tmp_path)
    assert n == 3 and sorted(tasks) == [1, 2]
    assert sorted(a["id"] for a in tasks[1]["annotations"]) == [11, 12] and tasks[1]["clip_id"] == "c1"
    assert tasks[2]["clip_id"] == "7" and [a["id"] for a in tasks[2]["annotations"]] == [13]
    assert all("task" not in a for t in tasks.values() for a in t["annotations"])
    (tmp_path / "14").write_text('{"id": 14, "res')
    with caplog.at_level("WARNING"):
        assert read_answer_files(tmp_path) is None
    assert any(str(tmp_path / "14") in r.getMessage() for r in caplog.records)


def test_prune_removes_only_old_files_of_answers_the_server_no_longer_has(tmp_path):
    for aid, tid in ((11, 1), (12, 1), (13, 2), (30, 3)):
        (tmp_path / str(aid)).write_text(json.dumps(_ann(aid, tid, "joy")))
    old = time.time() - 3600
    for name in ("11", "12", "30"):
        os.utime(tmp_path / name, (old, old))
    known = {1: {"annotations": [{"id": 11}]}, 2: {"annotations": [{"id": 13}, {"id": 20}]}}
    assert prune_stale(tmp_path, known, datetime.now(timezone.utc)) == 1
    # 12: gone from the server; 13: known; 30: newer than any known answer (saved during the pull)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["11", "13", "30"]
    # the same id under another task is another answer (SQLite reuses a deleted answer's id)
    (tmp_path / "13").write_text(json.dumps(_ann(13, 9, "joy")))
    os.utime(tmp_path / "13", (old, old))
    assert prune_stale(tmp_path, known, datetime.now(timezone.utc)) == 1 and not (tmp_path / "13").exists()
