"""Annotator agents (stage 3) behind one interface, built into a panel from the configuration."""

from agents.base import REGISTRY, Annotator, annotator_hash, build_panel, register, shared_annotator, shared_panel

__all__ = ["REGISTRY", "Annotator", "annotator_hash", "build_panel", "register", "shared_annotator", "shared_panel"]
