"""Glow, a multi-scale normalizing flow: the model, its training recipe and the shipped checkpoint."""

from fel.flow.model import Glow, GlowConfig
from fel.flow.recipe import evaluate, export, load, load_pretrained, train_glow

__all__ = ["Glow", "GlowConfig", "evaluate", "export", "load", "load_pretrained", "train_glow"]
