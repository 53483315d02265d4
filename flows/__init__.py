"""Orchestration: the Prefect flow that runs the six stages, and the command line.

In:  input files or folders, an output run directory, an `EmoforgeConfig`.
Out: the run directory (storage/run_dir.py) with one table set per run, and a `RunSummary`
     (schemas/run.py); run.json is its `RunManifest`.

pipeline_flow.py runs stages 1-3 as cached tasks per source (result_cache.py) and stages 4-6 once
over the run; stage_runner.py does each stage's counts, timing, progress bar and reject rows. The
command line (cli.py), scheduled runs (serve.py), the Prefect server, the Dask and GPU runners live
beside it."""
