"""Annotator agents (stage 3) behind one interface, built into a panel from the configuration."""

from agents.base import REGISTRY, Annotator, build_panel, register, shared_panel

__all__ = ["REGISTRY", "Annotator", "build_panel", "register", "shared_panel"]
