"""Serializer objects, as llama-index-workflows passes them to ``to_dict`` and ``from_dict``.

``ctx.to_dict(serializer=JsonSerializer())`` is the plain, readable JSON of this project's
snapshot format (the default); ``PickleSerializer()`` writes store values and events as
pickles, for values the JSON codec cannot hold. Loading a pickle can run any code its author
chose, so ``Context.from_dict(..., serializer=PickleSerializer())`` still needs
``allow_pickle=True``: porting code keeps working, and the permission stays explicit.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BaseSerializer", "JsonSerializer", "PickleSerializer", "serializer_name"]


class BaseSerializer:
    """A way to write store values and events into a snapshot; ``name`` says which."""

    name = "json"

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class JsonSerializer(BaseSerializer):
    """Readable tagged JSON, the default: loading it never runs code."""

    name = "json"


class PickleSerializer(BaseSerializer):
    """Pickles, for values JSON cannot hold; loading them needs ``allow_pickle=True``."""

    name = "pickle"


def serializer_name(serializer: Any) -> str:
    """``"json"`` or ``"pickle"`` from a serializer object or its name."""
    if serializer is None:
        return "json"
    if isinstance(serializer, str):
        return serializer
    if isinstance(serializer, BaseSerializer):
        return serializer.name
    raise TypeError(
        f"serializer must be 'json', 'pickle', JsonSerializer() or PickleSerializer(), "
        f"got {serializer!r}"
    )
