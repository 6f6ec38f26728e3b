"""A typed 编号 → the item it names, of whichever kind its number is (one number space).

Commands take the number people were shown; card buttons carry the item's own id behind their
prefix (`ack:`, `study:`, `leave:`, `approve:`, `reject:`) and are resolved by it, as they always
were, so cards sent before numbers were shared keep working."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from bot.texts.numbers import wrong_kind
from models.directive import Directive
from models.meeting import LeaveRequest, Meeting
from models.numbers import ItemKind, ItemNumber
from models.self_report import SelfReport

# The table behind each kind. A kind added later (self-reported points items) adds its row here.
MODELS: dict[ItemKind, type] = {ItemKind.DIRECTIVE: Directive, ItemKind.STUDY: Directive,
                                ItemKind.MEETING: Meeting, ItemKind.LEAVE: LeaveRequest,
                                ItemKind.SELF_REPORT: SelfReport}


_IDENTIFY = (select(ItemNumber.__table__.c.kind, ItemNumber.__table__.c.item_id)
             .where(ItemNumber.__table__.c.number == bindparam("number")))


def identify(session: Session, number: int) -> tuple[ItemKind, int] | None:
    """The kind and id of the item `number` was given to, or None when no item has it: one plain
    row, no entity loaded (`收到 N` is the command sent most, right after every 发布)."""
    row = session.connection().execute(_IDENTIFY, {"number": number}).first()
    return (ItemKind(row[0]), row[1]) if row is not None and row[1] is not None else None


def find(session: Session, number: int, *kinds: ItemKind) -> tuple[Any | None, str | None]:
    """(item, None) when `number` is an item of one of `kinds`; (None, the Chinese answer naming
    what the number is and what to send) when it is another kind; (None, None) when no item has
    it (the caller says so in its own words)."""
    _kind, item, wrong = resolve(session, number, *kinds)
    return item, wrong


def resolve(session: Session, number: int, *kinds: ItemKind) -> tuple[ItemKind | None, Any | None, str | None]:
    """Like `find`, with the kind the number is first, for commands that act on several kinds."""
    found = identify(session, number)
    if found is None:
        return None, None, None
    kind, item_id = found
    if kind not in kinds:
        return kind, None, wrong_kind(number, kind, kinds)
    model = MODELS.get(kind)
    return kind, (session.get(model, item_id) if model is not None else None), None
