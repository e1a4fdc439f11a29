"""``workflows.decorators``."""

from ..decorators import catch_error
from ..step import StepConfig, step

__all__ = ["StepConfig", "catch_error", "step"]
