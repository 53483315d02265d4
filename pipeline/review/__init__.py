"""Stage 5: human review in Label Studio and agreement between reviewers."""
