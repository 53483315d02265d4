"""Stage 6: the Parquet benchmark (rows, leakage-safe splits, hidden test labels, card, Croissant),
the evaluator and the run report.

In:  a finished run's tables through `RunDir`: `Clip`, `ClipFeatures`, `SourceMedia`, `Annotation`,
     `Judgement`, `Consensus`, `Review` (and run.json, a `RunManifest`, for the report).
Out: a dataset directory (`storage.DatasetDir`): `DatasetRow`s per split, `AnswerKeyRow`s for the
     hidden test labels, features, media, card and croissant.json; `export_run` returns an
     `ExportedDataset` (rows per split, version). The evaluator scores `Prediction`s against it."""
