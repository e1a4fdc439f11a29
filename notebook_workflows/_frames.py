"""Tracebacks that show the user's code, not this library's insides.

An error raised to a person's cell by one of the public calls (``workflow.run``, ``resume``,
``handler.step``, ``await handler``, ``ctx.store.set``) keeps, of its traceback, only what is
not this package: the person's own frames (a step's code, for a step that failed) and the
public call itself. The frames of the engine in between say nothing the message does not.

Python adds the frame of every function an error passes through, so the public call that
re-raises an error is always in its traceback, and a plain ``python`` traceback shows it as
its last frame of ours. IPython asks an error how to show itself first (its
``_render_traceback_`` protocol), so an error that leaves through one of the public calls
carries that method (``for_people``): in a notebook it shows the person's frames with every
frame of this package left out, frames that hide themselves (``__tracebackhide__``, as
pydantic's ``BaseModel.__init__`` does) left out too, and the library frames that only lead
into ours (a thread pool's worker calling a store). Its message and notes stay as they are.
The method is looked up on the error itself, so nothing changes for errors that never passed
through here, and ``%debug`` still sees every frame (it reads ``sys.last_traceback``).

A run cancelled on purpose by its user (the monitor's Cancel button, ``handler.cancel()``) is
no accident to explain: its error shows as one line (``one_line``).

Notes (``add_note``) are how an error says where it happened and how to go on; ``note_once``
adds one unless the error has it already, since an error can pass through several layers.
"""

from __future__ import annotations

import contextlib
import os
import site
import sysconfig
from types import FrameType, TracebackType
from typing import Any, TypeVar

_PACKAGE = os.path.dirname(os.path.abspath(__file__))
E = TypeVar("E", bound=BaseException)


def users_frames(tb: TracebackType | None) -> TracebackType | None:
    """``tb`` from its first frame outside this package on (None if it has none)."""
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE):
        tb = tb.tb_next
    return tb


def for_people(error: E) -> E:
    """``error`` about to leave a public call: its traceback from the person's first frame on,
    and shown in a notebook without a frame of this package (see the module docstring)."""
    error.__traceback__ = users_frames(error.__traceback__)
    show_for_people(error)
    return error


def show_for_people(error: BaseException, one_line: str | None = None) -> None:
    """Make IPython show ``error`` without this package's frames, or as ``one_line`` alone.
    An error whose class knows how to show itself is left alone."""
    if hasattr(type(error), "_render_traceback_"):
        return
    shown = vars(error).get("_render_traceback_") if hasattr(error, "__dict__") else None
    if isinstance(shown, _Shown):
        if one_line is not None:
            shown.one_line = one_line
        return
    with contextlib.suppress(AttributeError, TypeError):  # a type without a __dict__
        error._render_traceback_ = _Shown(error, one_line)  # type: ignore[attr-defined]


def note_once(error: BaseException, note: str, *, replacing: str = "") -> None:
    """Add ``note`` to ``error`` unless it has it; with ``replacing``, notes that start with
    that text go first (a run inside a step says how to go on; the outer run says it last)."""
    notes = getattr(error, "__notes__", None)
    if notes is None:
        notes = []
        try:
            error.__notes__ = notes
        except (AttributeError, TypeError):
            return
    if replacing:
        notes[:] = [n for n in notes if not (isinstance(n, str) and n.startswith(replacing))]
    if note not in notes:
        notes.append(note)


class _Shown:
    """An error's ``_render_traceback_``: what IPython shows for it (see the module docstring).
    A plain object holding the error, so the error still pickles."""

    __slots__ = ("error", "one_line")

    def __init__(self, error: BaseException, one_line: str | None) -> None:
        self.error = error
        self.one_line = one_line

    def __call__(self) -> list[str]:
        if self.one_line is not None:
            return [self.one_line]
        from IPython import get_ipython  # only IPython calls this

        shell = get_ipython()
        error = self.error
        whole = error.__traceback__
        _trim_chain(error)
        if error.__traceback__ is None:  # nothing but library frames: show them after all
            error.__traceback__ = whole
        if shell is None:  # pragma: no cover - IPython asks only while it runs
            import traceback

            return traceback.format_exception(type(error), error, error.__traceback__)
        stb: list[str] = shell.InteractiveTB.structured_traceback(
            type(error), error, error.__traceback__
        )
        return stb

    def __getstate__(self) -> tuple[BaseException, str | None]:
        return self.error, self.one_line

    def __setstate__(self, state: tuple[BaseException, str | None]) -> None:
        self.error, self.one_line = state


def _trim_chain(error: BaseException) -> None:
    """Leave the library's frames out of ``error`` and the errors it was raised from."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        exc = todo.pop()
        if exc is None or id(exc) in seen:
            continue
        seen.add(id(exc))
        exc.__traceback__ = without_library(exc.__traceback__)
        todo += [exc.__cause__, exc.__context__]


def without_library(tb: TracebackType | None) -> TracebackType | None:
    """A new traceback of ``tb``'s frames that a person reads: none of this package, none that
    hides itself, none of another library or the standard library that only leads into ours."""
    entries: list[tuple[FrameType, int, int]] = []
    while tb is not None:
        entries.append((tb.tb_frame, tb.tb_lasti, tb.tb_lineno))
        tb = tb.tb_next
    kinds = [_kind(frame) for frame, _, _ in entries]
    kept: list[tuple[FrameType, int, int]] = []
    for i, entry in enumerate(entries):
        kind = kinds[i]
        if kind in ("ours", "hidden"):
            continue
        if kind == "library" and _leads_into_ours(kinds, i):
            continue
        kept.append(entry)
    trimmed: TracebackType | None = None
    for frame, lasti, lineno in reversed(kept):
        trimmed = TracebackType(trimmed, frame, lasti, lineno)
    return trimmed


def _leads_into_ours(kinds: list[str], i: int) -> bool:
    """Frame ``i`` is library code whose deeper frames reach this package before any code of
    the person's (a worker thread running a store call, asyncio running our callback)."""
    for kind in kinds[i + 1 :]:
        if kind == "ours":
            return True
        if kind == "user":
            return False
    return False


def _kind(frame: FrameType) -> str:
    filename = frame.f_code.co_filename
    if filename.startswith(_PACKAGE):
        return "ours"
    if _hides_itself(frame):
        return "hidden"
    if filename.startswith(_library_dirs()) or filename.startswith("<frozen "):
        return "library"
    return "user"


def _hides_itself(frame: FrameType) -> bool:
    try:
        return bool(frame.f_locals.get("__tracebackhide__", False))
    except Exception:  # pragma: no cover - a frame whose locals cannot be read
        return False


_library: tuple[str, ...] = ()


def _library_dirs() -> tuple[str, ...]:
    """Where the standard library and installed packages live."""
    global _library
    if not _library:
        paths: Any = sysconfig.get_paths()
        found = {paths.get(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")}
        found.add(os.path.dirname(os.__file__))
        found.update(getattr(site, "getsitepackages", list)())
        found.add(getattr(site, "getusersitepackages", str)())
        _library = tuple(sorted(os.path.join(p, "") for p in found if p))
    return _library
