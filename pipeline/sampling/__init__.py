"""Stage 1 — sampling: VAD, shot detection and key frames cut sources into clips with instructions."""

from pipeline.sampling.stage import sample_source

__all__ = ["sample_source"]
