"""The question box: a step's question to a human, answered in the monitor.

A mixin of ``RunMonitor`` (it shares the monitor's widgets and its loop-thread helpers). The
open questions come from the refresh's ``RunView`` (``open_questions``); an answer goes to the
run with ``handler.ctx.send_event(HumanResponseEvent(...))``. ipywidgets lets one state update
per widget through until the kernel acknowledges it with an idle status, which ipykernel does
not send for messages handled while a cell awaits. So the answer box has
``continuous_update=False`` (one update, on Enter or when it loses focus) and each question gets
a fresh box. Enter sends the box's ``submit`` message before its new value, so the answer is sent
when the value arrives, not with the value the kernel had.
"""

from __future__ import annotations

import html
import time
from typing import TYPE_CHECKING, Any

from ...events import Event, HumanResponseEvent
from .log import Published
from .widget_util import _set, _show

if TYPE_CHECKING:
    import ipywidgets

    from ...runtime.view import RunView

ENTER_GRACE = 0.3  # seconds to wait for the box's value after Enter before using the last one


class QuestionBox:
    """The input row for open questions (mixed into ``RunMonitor``)."""

    _shown_question: Event | None
    _answered: list[Event]
    _enter_pending: bool
    _note: str
    question: ipywidgets.HTML | None
    answer: ipywidgets.Text | None
    send: ipywidgets.Button | None
    _ask_row: ipywidgets.HBox | None
    handler: Any
    widget: Any
    _W: Any
    _layout: Any
    _text_style: Any
    _events: Any
    _loop: Any
    _scheduled: bool
    _post: Any
    _html: Any
    _button: Any
    _schedule: Any
    _loop_alive: Any

    def _render_question(self, view: RunView) -> None:
        open_ = list(view.open_questions)
        self._answered = [a for a in self._answered if any(a is q for q in open_)]
        waiting = [q for q in open_ if not any(q is a for a in self._answered)]
        if not waiting:
            self._shown_question = None
            if self._ask_row is not None:
                _show(self._ask_row, False)
            return
        question = waiting[0]
        if question is not self._shown_question:
            self._shown_question = question
            self._new_answer_box()
        assert self.question is not None and self.send is not None and self._ask_row is not None
        prompt = str(question.get("prefix", "")) or "The run asks for input:"
        more = len(waiting) - 1
        extra = f' <span class="nwm-dim">(+{more} more)</span>' if more else ""
        _set(self.question, value=f'<span class="nwm-prompt">{html.escape(prompt)}</span>{extra}')
        _set(self.send, disabled=False)
        _show(self._ask_row, True)

    def _new_answer_box(self) -> None:
        """A fresh box per question: see the module docstring."""
        W = self._W
        box = W.Text(
            continuous_update=False,
            placeholder="your answer, then Enter or Send",
            layout=self._layout,
            style=self._text_style,
        )
        box.observe(lambda _: self._post(self._answer_arrived, box), names="value")
        box.on_msg(lambda _, content, __: self._answer_message(box, content))
        old = self.answer
        self._enter_pending = False
        if self._ask_row is None:
            self.question = self._html("", "nwm-question")
            self.send = self._button(
                "Send", "paper-plane", "send the answer", "nwm-send", button_style="primary"
            )
            self.send.on_click(lambda _: self._post(self._send_answer))
            self._ask_row = W.HBox(
                [self.question, box, self.send], layout=self._layout, _dom_classes=("nwm-ask",)
            )
            self.widget.children = (*self.widget.children, self._ask_row)
        else:
            self._ask_row.children = (self.question, box, self.send)
        self.answer = box  # last: other threads see the box only with its row complete
        if old is not None:
            old.close()

    def _answer_message(self, box: ipywidgets.Text, content: Any) -> None:
        if isinstance(content, dict) and content.get("event") == "submit":
            self._post(self._enter_pressed, box)

    def _enter_pressed(self, box: ipywidgets.Text) -> None:
        """Enter: the box's new value follows this message; send it when it arrives, or the
        value the kernel has if none comes (it was sent when the box lost focus)."""
        if box is not self.answer:
            return
        self._enter_pending = True
        if self._loop_alive():
            self._loop.call_later(ENTER_GRACE, self._enter_timeout, box)
        else:
            self._enter_timeout(box)

    def _enter_timeout(self, box: ipywidgets.Text) -> None:
        if self._enter_pending and box is self.answer:
            self._send_answer()

    def _answer_arrived(self, box: ipywidgets.Text) -> None:
        if self._enter_pending and box.value and box is self.answer:
            self._send_answer()

    def _send_answer(self) -> None:
        self._enter_pending = False
        question, box = self._shown_question, self.answer
        if question is None or box is None or box.disabled or self.handler.done():
            return
        answer = HumanResponseEvent(response=box.value)
        try:
            self.handler.ctx.send_event(answer)
        except Exception as exc:
            self._note = f"could not send the answer: {exc}"
        else:
            self._answered.append(question)
            _set(box, value="", disabled=True)
            if self.send is not None:
                _set(self.send, disabled=True)
            self._events.add(Published(answer, "(you)", time.time()))
        if not self._scheduled:
            self._schedule()
