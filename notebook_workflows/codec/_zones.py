"""Time zones named in data, resolved without importing anything.

Design decisions
----------------
*``ZoneInfo(key)`` is only called when it cannot import.* For a key it has not loaded yet,
``zoneinfo`` first looks for a file under ``zoneinfo.TZPATH`` (the system's tz database) and,
failing that, imports the package ``tzdata.zoneinfo.<Area>`` through ``importlib.resources`` to
read the key from there. A key in a snapshot is data, and loading must never import modules
chosen by data (``"America"`` would import ``tzdata.zoneinfo`` and then fail on a directory).
So a key is resolved here in this order:

1. a key resolved before is returned from a small cache (the very same ``ZoneInfo`` object);
2. a key whose TZif file is under ``TZPATH`` goes to ``ZoneInfo(key)``, which reads that file
   and imports nothing, and returns the shared instance a user's own ``ZoneInfo(key)`` gets;
3. a key found only in the ``tzdata`` package is read from its file directly with
   ``ZoneInfo.from_file(..., key=key)`` (the package is located with ``PathFinder.find_spec``,
   which reads directories and imports nothing). Such an instance behaves like
   ``ZoneInfo(key)`` but is a different object: datetimes compare and convert the same, only
   arithmetic between two datetimes of the zone counts in UTC rather than wall time. Systems
   with a tz database (Linux, macOS) never take this branch;
4. anything else is an unknown zone: ``ContextSerdeError`` through the decoder.

``zoneinfo.available_timezones()`` is not used: it imports ``tzdata`` and walks every file.
Keys are checked with a strict pattern first, so no path outside the tz directories is opened.
"""

from __future__ import annotations

import os
import re
import zoneinfo
from importlib.machinery import PathFinder
from zoneinfo import ZoneInfo

# IANA keys: "Europe/Paris", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "EST5EDT".
_KEY = re.compile(r"[A-Za-z0-9_+\-]{1,40}(?:/[A-Za-z0-9_+\-]{1,40}){0,3}")
_CACHE_LIMIT = 1024  # distinct keys remembered (hostile data could name many)
_resolved: dict[str, ZoneInfo] = {}
_tzdata_dir: list[str | None] = []  # [directory] once looked up


def zone(key: str) -> ZoneInfo:
    """The ``ZoneInfo`` for ``key``, or ``ValueError`` saying it is unknown."""
    known = _resolved.get(key)
    if known is not None:
        return known
    if type(key) is not str or not _KEY.fullmatch(key):
        raise ValueError(f"{key!r} is not a time zone name")
    if any(_is_tzif(os.path.join(root, key)) for root in zoneinfo.TZPATH):
        found = ZoneInfo(key)
    else:
        path = _tzdata_file(key)
        if path is None:
            raise ValueError(
                f"unknown time zone {key!r} (not in this system's tz database nor in tzdata)"
            )
        with open(path, "rb") as file:
            found = ZoneInfo.from_file(file, key=key)
    if len(_resolved) < _CACHE_LIMIT:
        _resolved[key] = found
    return found


def _is_tzif(path: str) -> bool:
    try:
        with open(path, "rb") as file:
            return file.read(4) == b"TZif"
    except OSError:  # missing, a directory, unreadable
        return False


def _tzdata_file(key: str) -> str | None:
    if not _tzdata_dir:
        spec = PathFinder.find_spec("tzdata")
        locations = list(spec.submodule_search_locations or ()) if spec is not None else []
        _tzdata_dir.append(os.path.join(locations[0], "zoneinfo") if locations else None)
    root = _tzdata_dir[0]
    if root is None:
        return None
    path = os.path.join(root, key)
    return path if _is_tzif(path) else None
