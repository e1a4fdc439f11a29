"""``workflows.context.serializers``."""

from ...serializers import BaseSerializer, JsonSerializer, PickleSerializer

__all__ = ["BaseSerializer", "JsonSerializer", "PickleSerializer"]
