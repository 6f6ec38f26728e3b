"""A typed 编号 → the item it names, of whichever kind its number is (one number space).

Commands take the number people were shown; card buttons carry the item's own id behind their
prefix (`ack:`, `study:`, `leave:`, `approve:`, `reject:`) and are resolved by it, as they always
were, so cards sent before numbers were shared keep working."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from bot.texts.numbers import wrong_kind
from models.directive import Directive
from models.meeting import LeaveRequest, Meeting
from models.numbers import ItemKind, lookup

# The table behind each kind. A kind added later (self-reported points items) adds its row here.
MODELS: dict[ItemKind, type] = {ItemKind.DIRECTIVE: Directive, ItemKind.STUDY: Directive,
                                ItemKind.MEETING: Meeting, ItemKind.LEAVE: LeaveRequest}


def kind_of(session: Session, number: int) -> ItemKind | None:
    """The kind of item `number` was given to, or None when no item has it."""
    entry = lookup(session, number)
    return entry.kind if entry is not None and entry.item_id is not None else None


def find(session: Session, number: int, *kinds: ItemKind) -> tuple[Any | None, str | None]:
    """(item, None) when `number` is an item of one of `kinds`; (None, the Chinese answer naming
    what the number is and what to send) when it is another kind; (None, None) when no item has
    it (the caller says so in its own words)."""
    _kind, item, wrong = resolve(session, number, *kinds)
    return item, wrong


def resolve(session: Session, number: int, *kinds: ItemKind) -> tuple[ItemKind | None, Any | None, str | None]:
    """Like `find`, with the kind the number is first, for commands that act on several kinds."""
    entry = lookup(session, number)
    if entry is None or entry.item_id is None:
        return None, None, None
    if entry.kind not in kinds:
        return entry.kind, None, wrong_kind(number, entry.kind, kinds)
    model = MODELS.get(entry.kind)
    return entry.kind, (session.get(model, entry.item_id) if model is not None else None), None
