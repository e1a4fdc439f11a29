"""Where a value went wrong, said for people: key paths, short descriptions, reprs that never fail.

Design decisions
----------------
*Paths are gathered on the way out of an error, never on the way in.* The walkers of
``_encode`` and ``_decode`` keep no path while all is well (that would cost something on every
value of every ``set``). An internal exception (``Refused`` when storing, ``Malformed`` when
loading) collects one segment per level as it travels back up through the walkers, so naming
``store.cfg.items[3]`` costs one step per level of the failure, paid once, by the failure. The
same trail lists the containers it passed, which is how a value that contains itself is told
apart from one that is merely too deep.

*Every description here is safe on hostile data.* Data may hold an int of a million digits
(whose ``str`` trips CPython's conversion limit), a list nested 100,000 deep (whose ``repr``
recurses), an object whose ``__repr__`` raises or a megabyte string. ``short_repr`` never raises
and its cost does not follow the size of what it describes; messages stay one short line.

*Long paths are shortened in the middle.* A path 129 levels deep is kept as its first and last
few segments with the count of those left out, so the message still says where to look.
"""

from __future__ import annotations

import math
import reprlib
from typing import Any

# Segments kept at each end of a long path in messages.
_PATH_HEAD = 6
_PATH_TAIL = 3


class Trail(Exception):
    """Internal: something at ``node`` cannot be written or read, and why.

    Each walker frame it passes adds the segment that leads from its container to ``child``
    (``add``); ``child`` then becomes that container. A frame whose own container is ``child``
    (the failure is about the container itself) adds nothing.
    """

    def __init__(self, node: Any, reason: str, *, too_deep: bool = False) -> None:
        super().__init__(reason)
        self.node = node
        self.reason = reason
        self.too_deep = too_deep
        self.child = node
        self.segments: list[str] = []  # innermost first
        self.containers: list[Any] = []  # the container of each segment, innermost first

    def add(self, segment: str, container: Any) -> None:
        self.segments.append(segment)
        self.containers.append(container)
        self.child = container

    def message(self, verb: str, path: str, max_depth: int) -> str:
        """``cannot store cfg.a[0]: <reason>`` (``verb`` is ``store`` or ``load``)."""
        segments = self.segments[::-1]
        if self.too_deep:
            containers = self.containers[::-1]
            seen: dict[int, int] = {}
            for i, container in enumerate(containers):
                first = seen.setdefault(id(container), i)
                if first != i:
                    outer = where(path, segments[:first])
                    inner = where(path, segments[:i])
                    return f"cannot {verb} {outer}: it contains itself ({inner} is {outer} again)"
            return (
                f"cannot {verb} {where(path, [])}: it is nested too deeply: "
                f"{where(path, segments)} is past the limit of {max_depth} levels "
                "(serialization.MAX_DEPTH; a tuple, set, model or dataclass counts two)"
            )
        return f"cannot {verb} {where(path, segments)}: {self.reason}"


class Refused(Trail):
    """Internal: a value cannot be encoded; ``encode`` turns it into a ContextSerdeError."""


class Malformed(Trail):
    """Internal: data cannot be decoded; ``decode`` turns it into a ContextSerdeError."""


def where(path: str, segments: list[str]) -> str:
    """``cfg.inner[0]``: the root ``path`` (may be empty) followed by ``segments``."""
    if len(segments) > _PATH_HEAD + _PATH_TAIL + 1:
        left_out = len(segments) - _PATH_HEAD - _PATH_TAIL
        segments = [
            *segments[:_PATH_HEAD],
            f"...({left_out} levels)...",
            *segments[-_PATH_TAIL:],
        ]
    if len(path) > 120:  # a long store key: keep the message one readable line
        path = path[:100] + "..."
    full = path + "".join(segments)
    if not path and full.startswith("."):
        full = full[1:]
    if not full:
        return "the value"
    return "value" + full if full.startswith(("[", "{")) else full


def key_segment(key: Any) -> str:
    if type(key) is str and key.isidentifier():
        return "." + key
    return f"[{short_repr(key)}]"


def item_segment(container: Any, child: Any) -> str:
    """``[i]`` of ``child`` in a list or tuple, or ``{child}`` for a set (only on error paths)."""
    if type(container) in (set, frozenset):
        return "{" + short_repr(child) + "}"
    for i, x in enumerate(container):
        if x is child:
            return f"[{i}]"
    return "[?]"


def type_path(t: type) -> str:
    return f"{getattr(t, '__module__', '?')}.{getattr(t, '__qualname__', '?')}"


def describe(v: Any) -> str:
    """``a socket (socket.socket)``."""
    t = type(v)
    article = "an" if t.__name__[:1].lower() in "aeiou" else "a"
    return f"{article} {t.__name__} ({type_path(t)})"


def short_repr(v: Any, limit: int = 60) -> str:
    """A repr of at most ``limit`` characters that never raises, whatever ``v`` is."""
    if type(v) is int and not -_HUGE < v < _HUGE:
        # str() of a huge int is slow and may exceed CPython's digit limit: say its size.
        digits = int(v.bit_length() * math.log10(2)) + 1
        return f"<an int of about {digits} digits>"
    try:
        text = _REPR.repr(v)  # bounded in depth and width, so deep or huge data stays cheap
    except Exception:  # a __repr__ that fails, a huge int inside a container
        text = f"<{type(v).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


_HUGE = 10**40
_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxstring = _REPR.maxother = 50
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxfrozenset = _REPR.maxdict = 6


def shown(text: str, limit: int = 100) -> str:
    """``text`` as it is when short and printable (a class or module name), else a short repr."""
    if len(text) <= limit and text.isprintable():
        return text
    return short_repr(text, limit)
