"""One line of 待办, shared by the 待办 handler and the capabilities that contribute lines to it
(meetings), so neither has to import the other."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class TodoItem:
    kind: str  # 指示 / 学习 / 会议
    number: int
    title: str
    due: datetime | None
    hint: str  # what to send to clear it
