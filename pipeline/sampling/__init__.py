"""Stage 1 — sampling: VAD, shot detection and key frames cut sources into clips with instructions.

In:  one media file (path and content hash), the configuration, the `RunDir` its key frames are
     written into (media/<source>/<clip>/).
Out: `SourceSampling`: the file as a `SourceMedia`, its `Clip`s (spans, shots, speech, `KeyFrame`s,
     an `Instruction` each) and `Reject` rows for what could not be used (`sample_source`)."""

from pipeline.sampling.stage import sample_source

__all__ = ["sample_source"]
