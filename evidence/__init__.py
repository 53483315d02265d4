"""The evidence check that the judge (stage 4) and the benchmark evaluator (stage 6) share: a cited
piece of evidence (schemas.Evidence) held against one clip's measured features (schemas.ClipFeatures,
indexed by clip_index.ClipIndex) comes out as a verdict (schemas.judgement.ClaimCheck). It imports
only schemas, so both stages can use it without one importing the other."""
