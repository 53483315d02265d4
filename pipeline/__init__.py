"""The stages that are not agents: 1 sampling, 2 preprocessing, 5 human review, 6 export.

    stage 1  pipeline.sampling    file -> SourceSampling (SourceMedia + Clip[] + Reject[])
    stage 2  pipeline.preprocess  SourceMedia + Clip[] -> SourcePreprocessing (ClipFeatures[] + Reject[])
    stage 3  agents               AnnotatorInput[] -> Annotation[]
    stage 4  agents.judge         Clip[] + ClipFeatures[] + Annotation[] -> SourceJudgements
    stage 5  pipeline.review      the run's flagged Consensus -> Label Studio -> Review[]
    stage 6  pipeline.export      the run's tables -> the dataset (DatasetRow splits) -> ExportedDataset

Every record is a pydantic model in `schemas/`; `flows/pipeline_flow.py` runs the stages in order and
writes each one's records to the run directory (`storage.RunDir`)."""
