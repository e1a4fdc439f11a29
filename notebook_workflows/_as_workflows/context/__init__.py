"""``workflows.context``."""

from ...context import Context
from ...serializers import BaseSerializer, JsonSerializer, PickleSerializer

__all__ = ["BaseSerializer", "Context", "JsonSerializer", "PickleSerializer"]
