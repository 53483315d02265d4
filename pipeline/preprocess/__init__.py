"""Stage 2 — preprocessing: ASR with word timings, speakers, prosody, faces/AUs, on one timeline.

In:  one source's `SourceMedia` and its `Clip`s (stage 1), the configuration, and, for short sources
     transcribed together first, their words (`ClipTranscript`s).
Out: one `ClipFeatures` per clip (`Word`s, `Prosody`, `FaceObservation`s with action units and
     expression, notes) and `Reject` rows: `SourcePreprocessing` in the flow (`preprocess_source`)."""

from pipeline.preprocess.stage import preprocess_source

__all__ = ["preprocess_source"]
