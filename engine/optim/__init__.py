"""Optimizers as memories: Deep Momentum GD and the nested-level (CMS) update scheduler."""
from .dmgd import DMGD
from .levels import LevelScheduler, StepReport, make_optimizer

__all__ = ["DMGD", "LevelScheduler", "StepReport", "make_optimizer"]
