"""OpenAI-compatible HTTP annotator: vLLM / SGLang servers, llama.cpp servers, hosted gateways.
Up to max_images key frames, spread over the clip, go as image_url parts (base64 JPEG data URLs), the clip's audio as an input_audio part
(base64 WAV), the answer schema as response_format. Bounded concurrency, a request-rate limit,
timeouts, and retries with exponential backoff (tenacity) on connection errors, 429 and 5xx,
honouring Retry-After. A request that still fails becomes a rejected annotation with the reason."""

from __future__ import annotations

import base64
import io
import os
import threading
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import numpy as np
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from agents.answer import to_annotation, with_repair
from agents.base import Annotator, clip_audio, register
from agents.frames import spread_keyframes
from agents.llm_text import SYSTEM, answer_schema, serialise
from schemas import Annotation, AnnotatorInput


class EndpointError(RuntimeError):
    def __init__(self, message: str, retryable: bool, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class RateLimiter:
    """At most `rpm` request starts per minute, spaced evenly (shared by the worker threads)."""

    def __init__(self, rpm: float | None):
        self.interval = 60.0 / rpm if rpm else 0.0
        self.next_at = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_at)
            self.next_at = start + self.interval
        time.sleep(max(0.0, start - now))


def wav_base64(audio: np.ndarray, sample_rate: int) -> str:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return base64.b64encode(buf.getvalue()).decode()


def public_url(url: str) -> str:
    """An endpoint without what may be a secret in it (user:password@, a query such as ?key=...)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@register
class OpenAIHTTPAnnotator(Annotator):
    backend = "openai"

    def __init__(self, spec, context):
        super().__init__(spec, context)
        if not spec.endpoint:
            raise ValueError(f"annotator {spec.id!r}: backend openai needs an endpoint (base URL such as http://host:8000/v1)")
        headers = {}
        if spec.api_key_env:
            key = os.environ.get(spec.api_key_env)
            if not key:
                raise ValueError(f"annotator {spec.id!r}: environment variable {spec.api_key_env} (the API key) is not set")
            headers["Authorization"] = f"Bearer {key}"
        self.client = httpx.Client(base_url=spec.endpoint.rstrip("/"), headers=headers, timeout=spec.timeout_s,
                                   limits=httpx.Limits(max_connections=spec.concurrency))
        self.limiter = RateLimiter(spec.rate_limit_rpm)
        self.schema = answer_schema(context.taxonomy)
        self.model_id = spec.model or "default"
        self.endpoint = public_url(spec.endpoint)  # what records and messages may name
        self.model_version = self.endpoint
        self.backoff = wait_exponential_jitter(multiplier=0.5, max=20)

    def _content(self, item: AnnotatorInput, audio: np.ndarray | None) -> list[dict]:
        parts: list[dict] = [{"type": "text", "text": f"{serialise(item)}\n\n{item.clip.instruction.text}"}]
        if self.spec.images and item.media_root:
            for kf in spread_keyframes(item.clip, self.spec.max_images):  # the frames the transformers backend sees
                data = base64.b64encode((Path(item.media_root) / kf.path).read_bytes()).decode()
                parts.append({"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{data}"}})
        if audio is not None and audio.size:
            parts.append({"type": "input_audio", "input_audio": {"data": wav_base64(audio, self.context.audio_sample_rate), "format": "wav"}})
        return parts

    def request_body(self, item: AnnotatorInput, audio: np.ndarray | None = None) -> dict:
        body = {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": self._content(item, audio)}],
                "max_tokens": self.spec.max_tokens, "temperature": self.spec.temperature}
        if self.spec.model:
            body["model"] = self.spec.model
        if self.spec.json_schema:
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": "annotation", "schema": self.schema}}
        return body

    def _post(self, body: dict) -> str:
        self.limiter.wait()
        try:
            r = self.client.post("/chat/completions", json=body)
        except httpx.TimeoutException as exc:
            raise EndpointError(f"timed out after {self.spec.timeout_s:g} s ({type(exc).__name__})", retryable=True) from None
        except httpx.TransportError as exc:
            raise EndpointError(f"cannot reach {self.endpoint}: {exc}", retryable=True) from None
        if r.status_code == 429 or r.status_code >= 500:
            after = r.headers.get("retry-after")
            raise EndpointError(f"{self.endpoint} answered {r.status_code}: {r.text[:200]}", retryable=True,
                                retry_after=float(after) if after and after.replace(".", "", 1).isdigit() else None)
        if r.status_code >= 400:  # wrong key, bad request: retrying cannot help
            raise EndpointError(f"{self.endpoint} answered {r.status_code}: {r.text[:200]}", retryable=False)
        try:
            return r.json()["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError):
            raise EndpointError(f"{self.endpoint} sent a reply that is not a chat completion: {r.text[:200]}", retryable=False) from None

    def _wait(self, state) -> float:
        exc = state.outcome.exception()
        backoff = self.backoff(state)
        return max(backoff, exc.retry_after or 0.0) if isinstance(exc, EndpointError) else backoff

    def _ask(self, body: dict):
        def ask(messages: list[dict]) -> str:
            attempts = self.spec.max_retries + 1
            for attempt in Retrying(stop=stop_after_attempt(attempts), wait=self._wait, reraise=True,
                                    retry=retry_if_exception(lambda e: isinstance(e, EndpointError) and e.retryable)):
                with attempt:
                    return self._post({**body, "messages": messages})
        return ask

    def chat(self, messages, schema=None, max_tokens=400):
        body = {"messages": messages, "max_tokens": max_tokens, "temperature": 0.0}
        if self.spec.model:
            body["model"] = self.spec.model
        if schema and self.spec.json_schema:
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}
        return self._ask(body)(messages)

    def _one(self, item: AnnotatorInput, audio: np.ndarray | None, run_id: str) -> Annotation:
        body = self.request_body(item, audio)
        parse = lambda raw: to_annotation(raw, clip_id=item.clip.clip_id, annotator_id=self.annotator_id,  # noqa: E731
                                          verbalizer=self.verbalizer, provenance=self.provenance(run_id), multi_label=self.context.multi_label)
        try:
            return with_repair(self._ask(body), body["messages"], parse)
        except EndpointError as exc:
            tries = self.spec.max_retries + 1 if exc.retryable else 1
            return Annotation(**self.base(item, run_id), label=None, status="rejected", error=f"{exc} (after {tries} attempt(s))")

    def annotate(self, batch, run_id):
        audio = clip_audio(batch, self.context.audio_sample_rate) if self.spec.audio else [None] * len(batch)
        with ThreadPoolExecutor(max_workers=self.spec.concurrency) as pool:
            return list(pool.map(lambda ia: self._one(ia[0], ia[1], run_id), zip(batch, audio)))
