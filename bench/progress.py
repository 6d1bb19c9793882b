"""Where a cell is: its stage (data, proxy, fit, augment, train, evaluate) and its training step.

Stages call :func:`stage` and :func:`step`; whoever runs cells installs a sink with :func:`set_sink`
(the grid's progress bar in this process, a queue to it from a worker process). Without a sink the
calls cost nothing, so a cell run anywhere else (a test, Ray) is unaffected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

_SINK: Callable[[Event], None] | None = None
_CELL: str | None = None
_STAGE = ""


@dataclass(frozen=True)
class Event:
    cell_id: str
    stage: str
    done: int = 0  # steps done in the stage (0 when the stage has no steps)
    total: int = 0
    detail: str = ""  # a method's own status line (e.g. its diffusion LM's training step)

    def text(self) -> str:
        head = f"{self.stage} {self.done}/{self.total}" if self.total else self.stage
        return f"{head}: {self.detail}" if self.detail else head


def set_sink(sink: Callable[[Event], None] | None) -> None:
    global _SINK
    _SINK = sink


def set_cell(cell_id: str | None) -> None:
    """The cell the following stage and step events belong to (one cell at a time per process)."""
    global _CELL
    _CELL = cell_id


def stage(name: str) -> None:
    global _STAGE
    _STAGE = name
    if _SINK is not None and _CELL is not None:
        _SINK(Event(_CELL, name))


def step(name: str, done: int, total: int) -> None:
    if _SINK is not None and _CELL is not None:
        _SINK(Event(_CELL, name, done, total))


def note(name: str, detail: str) -> None:
    """A method's status line within a stage (``FitContext.progress``): a long fit is not a silent one."""
    if _SINK is not None and _CELL is not None:
        _SINK(Event(_CELL, name, detail=detail))


def status(detail: str) -> None:
    """A method's status line in whatever stage its cell is in (``FitContext.progress``: a method that
    keeps it reports its sampling during ``augment`` as well as its training during ``fit``)."""
    note(_STAGE or "fit", detail)
