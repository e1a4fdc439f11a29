"""The chain of a run's records: each record names the one before it.

Every record written since this module exists ends its JSON object with
``"prev": [seq, digest]``: the number of the record before it in the run and a digest of that
record (its kind and its data text, ``digest``). A store that lost a record in the middle of a
history, holds two records swapped, or one whose text was changed, no longer makes a chain,
and reading it is refused (``SnapshotError``) instead of rebuilding a wrong state. The first
record of a run (or of a fork) names none; records written before the chain existed name none
either, and are only checked for consecutive numbers.

The digest is CRC-32 (4 bytes, hex) of the kind and the text: a check against damage and
mistakes, not a signature (whoever can write the store can write a matching digest). CRC-32 is
made for exactly that (it finds every change of up to 32 bits in a row, and misses a random
one once in four billion) and it is fast: every record read but the last is digested, and a
megabyte costs about half a millisecond, against two for BLAKE2b, which the first records of
the chain used (16 hex digits; a link of that length is still checked with it).

Design decisions (reading):

* Every read checks the records it reads, and only those (``check``): ``latest`` the records
  from the nearest base to the snapshot, ``history`` all of them. Their numbers must follow
  one another from the first asked for to the last (a gap is a lost record, a missing last
  one a lost tail), and each link must name the record just read before it, by number and
  digest. So the cost is one digest of each record read but the last, and the links are read
  off the end of the text, where the recorder writes them, without parsing it.
* A record is not checked against the record before its first (a base in the middle of the
  history names a record that was not read) beyond the number its link names. Nothing names
  a run's latest record: a change to its text is found only where it breaks the record's
  shape (``schema``) or the snapshot (``Context.from_dict``).
* A record whose text ends otherwise has no link as far as ``check`` sees, like the records
  written before the chain existed; when such a record is parsed, a ``"prev"`` found in it
  anyway is refused if it is not a link to the record before (``parsed_link``).
* A base that names no record must be the first of what is kept (a run's record 0, or what a
  compacting prune left): right after a record that names one, it is a record put in another's
  place (``unlinked``), which would replace the whole state. A delta that names none is read
  as it is there: that is what a writer older than the chain adds to a run it continues. A
  history whose first kept record names one is missing that one.
* A compacting prune (``store.prune(compact=True)``) rewrites a run's latest record as a base
  without a link and drops the records before it: the history then starts there, and a run
  resumed after it names the rewritten record.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import SnapshotError

if TYPE_CHECKING:
    from .history import Record

__all__ = ["PREV", "check", "damaged", "digest", "link", "link_of", "parsed_link", "unlinked"]

PREV = "prev"  # the key of the link in a record's JSON object

# The link as ``link`` writes it: the last member of the record's object, nothing after it.
_HEAD = f'"{PREV}":['
_LINK = re.compile(r'"prev":\[(0|[1-9][0-9]{0,17}),"([0-9a-f]{8}|[0-9a-f]{16})"\]\}')
_TAIL = 64  # characters at the end of a record's text that hold its link
_KINDS = {kind: zlib.crc32(kind.encode()) for kind in ("base", "delta")}  # the digest's start


def digest(kind: str, data: str) -> str:
    """The digest a record's successor names: of its kind and its data text."""
    text = data.encode("utf-8", "surrogatepass")
    return f"{zlib.crc32(text, _KINDS.get(kind) or zlib.crc32(kind.encode())):08x}"


def _blake2b(kind: str, data: str) -> str:
    """The digest the first chained records named (16 hex digits): still read."""
    h = hashlib.blake2b(kind.encode(), digest_size=8)
    h.update(data.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def _names(named: str, kind: str, data: str) -> bool:
    """Whether ``named``, a digest a link holds, is the digest of a record's kind and data."""
    if len(named) == 16:
        return named == _blake2b(kind, data)
    return named == digest(kind, data)


def link(data: str, seq: int, prev_digest: str) -> str:
    """``data`` (a JSON object's text) with ``"prev": [seq, prev_digest]`` added at its end."""
    tail = f'"{PREV}":[{seq},"{prev_digest}"]}}'
    return f"{data[:-1]},{tail}" if len(data) > 2 else "{" + tail


def link_of(data: str) -> tuple[int, str] | None:
    """The link a record's text ends with: the number and digest of the record it names, or
    None for a record that names none."""
    at = data.rfind(_HEAD, max(0, len(data) - _TAIL))
    if at < 1 or data[at - 1] not in ",{":
        return None
    found = _LINK.fullmatch(data, at)
    return (int(found[1]), found[2]) if found else None


def check(store: Any, run_id: str, records: Sequence[Record], first: int, last: int) -> None:
    """Refuse, with ``SnapshotError``, ``records`` that are not snapshots ``first`` to ``last``
    of run ``run_id``, each one the record the next one names."""
    if not records or records[0].seq != first:
        raise damaged(store, run_id, f"snapshot {first} of run {run_id!r} is missing", first - 1)
    before = records[0]
    named = link_of(before.data)
    if named is not None and named[0] != before.seq - 1:
        raise _out_of_place(store, before, named[0])
    linked = named is not None  # whether the record just read names the one before it
    for record in records[1:]:
        if record.seq != before.seq + 1:
            raise _gap(store, before, record)
        # the usual case, cheaply: the text ends with the link to the record just read
        tail = f',"{PREV}":[{before.seq},"{digest(before.kind, before.data)}"]}}'
        linked = record.data.endswith(tail) or _check_link(store, before, record, linked)
        before = record
    if before.seq != last:
        raise damaged(
            store,
            run_id,
            f"snapshot {before.seq + 1} of run {run_id!r} is missing (its latest is {last})",
            before.seq,
        )


def _check_link(store: Any, before: Record, record: Record, linked: bool) -> bool:
    """Refuse ``record`` unless it names ``before`` (with the digest the first chained records
    used, too), or names no record and may (``unlinked``); whether it names one."""
    named = link_of(record.data)
    if named is None:
        unlinked(store, before if linked else None, record)
        return False
    if named[0] != before.seq:
        raise _out_of_place(store, record, named[0])
    if not _names(named[1], before.kind, before.data):
        run_id = record.run_id
        raise damaged(
            store,
            run_id,
            f"snapshot {before.seq} of run {run_id!r} was changed: it is not the record "
            f"snapshot {record.seq} was written after",
            before.seq - 1,
        )
    return True


def unlinked(store: Any, linked: Record | None, record: Record) -> None:
    """Refuse ``record``, which names no record before it, if it is a base right after
    ``linked``, a record that names one. The only bases that name none are a run's first
    record and the one a compacting prune leaves, first of what is kept: one after a linked
    record is such a record put in another's place (its link changed, or swapped in), and
    would replace the whole state. A delta naming none there is what a writer older than the
    chain (or one's own) adds to a run, and is read as it is."""
    if linked is None or record.kind != "base":
        return
    run_id = record.run_id
    raise damaged(
        store,
        run_id,
        f"snapshot {record.seq} of run {run_id!r} is a base that names no record before it, "
        f"though snapshot {linked.seq} does: its link was changed, or it is another record "
        f"put in its place",
        linked.seq,
    )


def parsed_link(record: Record, data: dict[str, Any]) -> None:
    """Take the link out of ``data``, the parsed text of ``record``: it is not part of the
    run's state. It must be a link to the record before, ``[seq, digest]``; anything else
    (another JSON type, another number) means the record was changed by hand: ``ValueError``.
    (``check`` compared the link with the record before when it saw it at the end of the
    text; one written in another layout, which it did not see, is taken as it is: text
    rewritten by a JSON tool, not a change of the run.)"""
    found = data.pop(PREV, _NONE)
    if found is _NONE:
        return
    if not (
        type(found) is list
        and len(found) == 2
        and type(found[0]) is int
        and found[0] == record.seq - 1
        and type(found[1]) is str
    ):
        raise ValueError(f"its link to snapshot {record.seq - 1} is damaged")


_NONE: Any = object()


def damaged(store: Any, run_id: str, what: str, good: int) -> SnapshotError:
    """The error for a damaged history: ``what`` is wrong; snapshot ``good`` (and those before
    it) may still be forked."""
    hint = (
        f"; snapshot {good} and those before it may still load: fork from one with "
        f"workflow.resume({run_id!r}, at={good})"
        if good >= 0
        else ""
    )
    return SnapshotError(f"{store!r}: {what}; the store is damaged{hint}")


def _gap(store: Any, before: Record, record: Record) -> SnapshotError:
    run_id = record.run_id
    if record.seq <= before.seq:
        what = f"snapshot {record.seq} of run {run_id!r} was read after snapshot {before.seq}"
    else:
        what = (
            f"snapshot {before.seq + 1} of run {run_id!r} is missing (the records go from "
            f"{before.seq} to {record.seq})"
        )
    return damaged(store, run_id, what, before.seq)


def _out_of_place(store: Any, record: Record, named: int) -> SnapshotError:
    run_id = record.run_id
    return damaged(
        store,
        run_id,
        f"snapshot {record.seq} of run {run_id!r} does not follow snapshot {record.seq - 1}: it "
        f"was written after snapshot {named} (records swapped or moved)",
        min(record.seq, named + 1) - 1,
    )
