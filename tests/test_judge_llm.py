"""The optional LLM judge: through the OpenAI-compatible backend (scripted loopback server, exact
blend arithmetic) and through the packaged SmolLM2 GGUF (a real model marking real steps)."""

from __future__ import annotations

import json

import pytest

from agents.judge import judge_run
from agents.judge.llm_judge import LLMJudge
from evidence.clip_index import ClipIndex
from schemas import load_config
from tests.fixtures.judge_cases import answer, clip, features
from tests.test_http_agent import scripted  # noqa: F401  (fixture)
from tests.test_judge import GOOD, three_answers


def judge_config(spec: dict, weight: float = 0.5):
    return load_config(overrides=[f"judge.llm_judge={json.dumps({'annotator': spec, 'weight': weight})}",
                                  "judge.weights={alpha: 0.5, beta: 0.3, gamma: 0.2}"])


def marks(*bits):
    return (200, {}, {"choices": [{"message": {"content": json.dumps(
        {"marks": list(bits)})}}]}, 0)


def test_llm_marks_blend_into_s_rec_and_s_reason(scripted):  # noqa: F811
    endpoint, script = scripted([marks(1, 0, 1, 1)])
    cfg = judge_config({"id": "judge", "backend": "openai", "endpoint": endpoint, "model": "judge-7b"}, weight=0.5)
    good = three_answers()[0]  # 4 steps, all evidence supported
    plain = judge_run([clip(), clip("c2")], [features(), features("c2", pitch=180.0)], three_answers(), load_config(
        overrides=["judge.weights={alpha: 0.5, beta: 0.3, gamma: 0.2}"]), "r")
    res = judge_run([clip(), clip("c2")], [features(), features("c2", pitch=180.0)], three_answers(), cfg, "r")
    before = {j.annotator_id: j for j in plain.judgements}["good"]
    after = {j.annotator_id: j for j in res.judgements}["good"]
    assert [s.score for s in after.step_scores] == [1, 0, 1, 1]
    assert after.s_rec == pytest.approx(0.5 * before.s_rec + 0.5 * 1)  # last step marked correct
    assert after.s_reason == pytest.approx(0.5 * before.s_reason + 0.5 * (2 / 3))  # steps 1-3: 1, 0, 1
    assert after.s_cot == before.s_cot  # completeness is the grounded judge's alone
    assert after.provenance.model_version.startswith(f"judge-7b@{endpoint}+judge-prompt-")
    body = script.requests[0]
    schema = body["response_format"]["json_schema"]["schema"]["properties"]["marks"]
    assert body["model"] == "judge-7b" and body["temperature"] == 0.0
    user = body["messages"][1]["content"]
    assert "<Text>" in user and "<Visual-AU>" in user and good.steps[0].text in user
    assert schema["minItems"] == schema["maxItems"] == len(good.steps) and schema["items"]["enum"] == [0, 1]


def test_unusable_llm_replies_leave_the_grounded_scores(scripted):  # noqa: F811
    endpoint, _ = scripted([(200, {}, {"choices": [{"message": {"content": "I think it is fine"}}]}, 0)])
    cfg = judge_config({"id": "judge", "backend": "openai", "endpoint": endpoint, "max_retries": 0})
    ix = ClipIndex(clip(), features())
    judge = LLMJudge(cfg)
    a = answer("a", "happiness", GOOD)
    assert judge.step_scores(ix, a) == [] and judge.blend(ix, a, 0.4, 0.7) == ([], 0.4, 0.7)


def test_backends_without_a_language_model_cannot_judge():
    with pytest.raises(ValueError, match="no language model"):
        LLMJudge(judge_config({"id": "j", "backend": "facs-rules"}))


@pytest.mark.slow  # loads the packaged LLM
def test_packaged_smollm2_marks_every_step():
    cfg = judge_config({"id": "smol-judge", "backend": "llm-gguf", "model": "packaged:smollm2-135m"})
    res = judge_run([clip()], [features()], three_answers(), cfg, "r")
    for j in res.judgements:
        n = len(next(a for a in three_answers() if a.annotator_id == j.annotator_id).steps)
        assert len(j.step_scores) == n and {s.score for s in j.step_scores} <= {0.0, 1.0}
        assert j.provenance.model_version.startswith("packaged:smollm2-135m@xllamacpp-")
        assert 0 <= j.s_final <= 1


def test_transformers_backend_judges_with_schema_constrained_marks(tmp_path):
    from tests.fixtures.tiny_models import tiny_qwen25_vl

    model = tiny_qwen25_vl(tmp_path / "tiny-vl")
    cfg = judge_config({"id": "vl-judge", "backend": "transformers", "model": str(model), "batch_size": 1})
    judge = LLMJudge(cfg)
    ix = ClipIndex(clip(), features())
    a = three_answers()[0]
    raw = judge.agent.chat(judge.messages(ix, a), {"type": "object", "required": ["marks"], "properties": {"marks": {
        "type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "integer", "enum": [0, 1]}}}}, max_tokens=64)
    # random weights, but the grammar forces exactly four 0/1 marks
    assert len(json.loads(raw)["marks"]) == 4 and set(json.loads(raw)["marks"]) <= {0, 1}
    assert [s.step_index for s in judge.step_scores(ix, a)] == [1, 2, 3, 4]
