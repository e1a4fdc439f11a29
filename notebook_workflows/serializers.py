"""Serializer objects, as llama-index-workflows passes them to ``to_dict`` and ``from_dict``.

``ctx.to_dict(serializer=JsonSerializer())`` is the plain, readable JSON of this project's
snapshot format (the default); ``PickleSerializer()`` writes store values and events as
pickles, for values the JSON codec cannot hold. Loading a pickle can run any code its author
chose: ``Context.from_dict(..., serializer=PickleSerializer())`` loads one, passing that object
being the explicit permission (as in the peer); the bare name ``serializer="pickle"`` needs
``allow_pickle=True`` too. Each also writes one value as text: ``serialize`` / ``deserialize``.
"""

from __future__ import annotations

import base64
import pickle
from typing import Any

from pydantic_core import to_json

__all__ = ["BaseSerializer", "JsonSerializer", "PickleSerializer", "serializer_name"]


class BaseSerializer:
    """A way to write store values and events into a snapshot; ``name`` says which.

    ``serialize(value)`` gives one value as text and ``deserialize(text)`` gives it back, as
    the peer's serializers do."""

    name = "json"

    def serialize(self, value: Any) -> str:
        """``value`` as this project's tagged JSON text; ``ContextSerdeError`` (a
        ``ValueError``) names what could not be written."""
        from .codec import encode

        return to_json(encode(value, path="value")).decode()

    def deserialize(self, value: str) -> Any:
        """The value ``serialize`` wrote. Classes are found among loaded modules only: no
        module is imported and nothing named in the text is called."""
        from .codec import decode, parse_json

        return decode(parse_json(value), path="value")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class JsonSerializer(BaseSerializer):
    """Readable tagged JSON, the default: loading it never runs code."""

    name = "json"


class PickleSerializer(BaseSerializer):
    """Pickles, for values JSON cannot hold; loading them needs ``allow_pickle=True``.

    ``serialize`` writes JSON when the value round-trips exactly through it, else a base64
    pickle (an exception keeps its class this way); ``deserialize`` reads either. Using this
    object is trusting what it reads: a pickle can run any code its author chose."""

    name = "pickle"

    def serialize(self, value: Any) -> str:
        try:
            text = super().serialize(value)
        except ValueError:
            text = None
        if text is None or '"$error"' in text:  # an exception would come back as a record
            return base64.b64encode(pickle.dumps(value)).decode("ascii")
        return text

    def deserialize(self, value: str) -> Any:
        if value[:1] in ("{", "[", '"') or value in ("null", "true", "false") or _number(value):
            return super().deserialize(value)
        return pickle.loads(base64.b64decode(value))  # the user chose pickle


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


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
