"""Stage 3, the annotator panel: several agents answer each clip with a label, `Step 1..N` rationale
steps and evidence that points into the clip's features.

In:  `AnnotatorInput` per clip (its `Clip`, its `ClipFeatures`, and for vocal agents the run's
     `VoiceBaseline`), the configuration and the annotator's `AnnotatorSpec`.
Out: `Annotation` per clip and annotator (`SourceAnnotations` per source and annotator in the flow);
     each `Evidence.feature_ref` is a `schemas.FeatureRef` written as text, which the judge resolves.

One interface, `Annotator.annotate(batch, run_id) -> [Annotation]` (agents/base.py), and a registry;
`build_panel` makes the configured panel. Stage 4, the judge, lives in `agents.judge`."""

from agents.base import REGISTRY, Annotator, annotator_hash, build_panel, register, shared_annotator, shared_panel

__all__ = ["REGISTRY", "Annotator", "annotator_hash", "build_panel", "register", "shared_annotator", "shared_panel"]
