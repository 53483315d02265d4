"""Stage 2 — preprocessing: ASR with word timings, speakers, prosody, faces/AUs, on one timeline."""

from pipeline.preprocess.stage import preprocess_source

__all__ = ["preprocess_source"]
