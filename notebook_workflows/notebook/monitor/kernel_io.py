"""Where a monitored step's output goes: the one place that touches ipykernel's private parts.

What a step prints or displays belongs in its run's monitor, not under whatever cell happens to
be running. ipykernel has no public way to route output by who wrote it, so this module uses
four of its private attributes, checked for by name and only with the ipykernel versions this
was written and tested against (``SUPPORTED``); with any other version, or outside a kernel,
``capture_available()`` is False and output goes to the cell as it always did.

- ``sys.stdout._parent_header`` / ``sys.stderr._parent_header``: the context variables holding
  the parent header a stream message is sent under. Each step runs with them pointing at a
  header of the monitor's own (``handler.add_step_context``, public).
- ``stream.register_hook`` + ``stream.pub_thread.schedule``: a hook on the I/O thread takes the
  stream messages under that header.
- ``shell.display_pub._hooks`` / ``register_hook``: a display hook on the run's thread takes the
  ``display()`` calls made there.
- ``stream._flush_pending``: whether a flush has anything to wait for, at the run's end.

Giving the ``Output`` widget that header's ``msg_id`` and letting the frontend route the
messages does not work: JupyterLab 4.6 (checked in a browser) routes by ``msg_id`` only for
requests it sent itself and still waits on, and drops the rest. ``with output:`` from a thread
is never used: it would also capture what the kernel's main thread prints meanwhile. A
``display()`` in a synchronous step (on a worker thread) still goes to the cell that started the
run.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import threading
import uuid
import weakref
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

# ipykernel major versions whose private stream and display attributes this module knows.
SUPPORTED = (7,)
OUTPUT_ITEMS = 300  # outputs of steps kept (consecutive prints make one)
STREAM_CHARS = 50_000  # characters kept of one printed stream

# Output written in a monitored step carries a parent header of the monitor's own; the hooks
# find the buffer by that header's msg_id.
_SINKS: weakref.WeakValueDictionary[str, OutputBuffer] = weakref.WeakValueDictionary()
_hooked_streams: set[int] = set()
_lock = threading.Lock()


def in_notebook_kernel() -> bool:
    """True inside a Jupyter kernel (a ZMQ shell), where output goes to a frontend."""
    ipython = sys.modules.get("IPython")
    if ipython is None or "ipykernel" not in sys.modules:
        return False
    shell = ipython.get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _supported_version() -> bool:
    try:
        import ipykernel

        major = int(str(ipykernel.__version__).split(".", 1)[0])
    except Exception:
        return False
    return major in SUPPORTED


def capture_available() -> bool:
    """Whether step output can be captured here: a kernel of a known ipykernel version whose
    streams carry the expected parent-header variables (the hooks are installed on first use)."""
    return in_notebook_kernel() and _supported_version() and _hook_streams()


class OutputBuffer:
    """Outputs captured on any thread, waiting for the run's loop to show them. ``notify`` is
    called (from the capturing thread) after each one."""

    def __init__(self, notify: Callable[[], None]) -> None:
        self.items: deque[dict[str, Any]] = deque()
        self.outputs: list[dict[str, Any]] = []  # what the monitor shows, merged and bounded
        self._clear_on_next = False
        self.notify = notify
        self.header: dict[str, Any] = {
            "msg_id": uuid.uuid4().hex,
            "msg_type": "execute_request",
            "username": "notebook_workflows",
            "session": uuid.uuid4().hex,
            "date": datetime.now(timezone.utc),
            "version": "5.3",
        }
        _SINKS[self.header["msg_id"]] = self

    def add(self, item: dict[str, Any]) -> None:
        self.items.append(item)
        self.notify()

    def take(self) -> bool:
        """Move captured items into ``outputs`` (on the run's loop): consecutive prints to one
        stream make one output, ``clear_output`` clears, the list and each text stay bounded.
        True when anything moved."""
        if not self.items:
            return False
        outputs = self.outputs
        while self.items:
            item = self.items.popleft()
            if item["output_type"] == "clear":
                if item["wait"]:
                    self._clear_on_next = True
                else:
                    outputs.clear()
                continue
            if self._clear_on_next:
                outputs.clear()
                self._clear_on_next = False
            last = outputs[-1] if outputs else None
            if (
                item["output_type"] == "stream"
                and last is not None
                and last["output_type"] == "stream"
                and last["name"] == item["name"]
            ):
                text = (last["text"] + item["text"])[-STREAM_CHARS:]
                outputs[-1] = {**last, "text": text}  # a new dict: the trait must see a change
            else:
                outputs.append(item)
        del outputs[:-OUTPUT_ITEMS]
        return True

    def step_setup(self) -> Callable[[], None]:
        """What runs in each step invocation's context before the step
        (``handler.add_step_context``): point the kernel's stdout and stderr at our header. It
        runs for every invocation, so the variables are looked up once, here."""
        header = self.header
        out, err = (
            var.set if var else _ignore for var in map(_header_var, (sys.stdout, sys.stderr))
        )

        def setup() -> None:
            out(header)
            err(header)

        return setup

    def hook_display(self) -> None:
        """Take ``display()`` calls made on the calling thread (the run's loop thread) too."""
        from IPython import get_ipython

        publisher = getattr(get_ipython(), "display_pub", None)
        hooks = getattr(publisher, "_hooks", None)
        if publisher is None or hooks is None or not hasattr(publisher, "register_hook"):
            return
        if _display_hook not in hooks:
            publisher.register_hook(_display_hook)

    @staticmethod
    def flush() -> None:
        """Send what steps printed through the hook now (a flush waits for the kernel's I/O
        thread, so only when something waits to be written)."""
        for stream in (sys.stdout, sys.stderr):
            if getattr(stream, "_flush_pending", True):
                with contextlib.suppress(Exception):
                    stream.flush()


def _ignore(value: Any) -> None:
    pass


def _header_var(stream: Any) -> contextvars.ContextVar[Any] | None:
    """ipykernel's parent-header context variable of an output stream, if it has one."""
    var = getattr(stream, "_parent_header", None)
    return var if isinstance(var, contextvars.ContextVar) else None


def _stream_hook(msg: dict[str, Any]) -> dict[str, Any] | None:
    """On ipykernel's I/O thread: keep a monitored step's stream message for its monitor."""
    parent = msg.get("parent_header") or {}
    sink = _SINKS.get(parent.get("msg_id", ""))
    if sink is None:
        return msg
    content = msg.get("content", {})
    sink.add(
        {"output_type": "stream", "name": content.get("name", "stdout"), "text": content["text"]}
    )
    return None


def _display_hook(msg: dict[str, Any]) -> dict[str, Any] | None:
    """On the thread calling ``display()``, in its context: keep a monitored step's display
    for its monitor (found, like its prints, by the header its stdout has there)."""
    var = _header_var(sys.stdout)
    parent = var.get(None) if var is not None else None
    sink = _SINKS.get(parent.get("msg_id", "")) if isinstance(parent, dict) else None
    if sink is None:
        return msg
    kind = msg.get("header", {}).get("msg_type")
    content = msg.get("content", {})
    if kind == "display_data":
        sink.add(
            {
                "output_type": "display_data",
                "data": content.get("data", {}),
                "metadata": content.get("metadata", {}),
            }
        )
    elif kind == "clear_output":
        sink.add({"output_type": "clear", "wait": bool(content.get("wait"))})
    else:  # update_display_data: the frontend finds the display by its id
        return msg
    return None


def _hook_streams() -> bool:
    """Install the stream hook on ipykernel's I/O thread once; False where that cannot be."""
    with _lock:
        for stream in (sys.stdout, sys.stderr):
            if id(stream) in _hooked_streams:
                continue
            register = getattr(stream, "register_hook", None)
            pub_thread = getattr(stream, "pub_thread", None)
            if register is None or pub_thread is None or _header_var(stream) is None:
                return False
            installed = threading.Event()

            def install(
                register: Callable[[Any], None] = register,
                installed: threading.Event = installed,
            ) -> None:
                register(_stream_hook)  # hooks are per thread: this runs on the I/O thread
                installed.set()

            pub_thread.schedule(install)
            if not installed.wait(5):
                return False
            _hooked_streams.add(id(stream))
        return True
