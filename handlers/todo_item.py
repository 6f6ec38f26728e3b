"""One line of 待办, shared by the 待办 handler and the capabilities that contribute lines to it
(meetings), so neither has to import the other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class TodoItem:
    kind: str  # 指示 / 学习 / 会议
    number: int
    title: str
    due: datetime | None
    hint: str  # what to send to clear it
    # A meeting's start, place and check-in opening: shown in the bot's zone when the reply is worded.
    starts_at: datetime | None = None
    place: str | None = None
    checkin_opens_at: datetime | None = None
    note: str | None = None  # where the person's own request stands (a meeting's leave: 请假待批 …)
    owed: bool = True  # False: shown for information, nothing to do (a meeting on approved leave)

    def describe(self, fmt: Callable[[datetime], str]) -> str:
        """The item's line text, its times shown by `fmt` (the context's, so in `BOT_TIMEZONE`); a
        meeting's check-in close is the line's 截止, so it is not repeated here."""
        text = self.title
        if self.starts_at is not None:
            text += f"，{fmt(self.starts_at)} 开始（{self.place}）"
            if self.checkin_opens_at is not None:
                text += f"，签到时间 {fmt(self.checkin_opens_at)} 起"
        return f"{text}；{self.note}" if self.note else text
