"""The codes that update a WeCom card already sent (更新模版卡片消息), and which of them are spent.

WeCom answers each send of a card with buttons with a response code, and each tap on the card
brings one more: every code updates the cards of its send (or the tapped card) ONCE, within 72
hours (developer.work.weixin.qq.com/document/path/94888). The send codes are kept on the outbox
rows of that send (`OutboxMessage.response_code`, set by the worker); a code is spent when a card
update naming it is queued, recorded here under the code as primary key in the same transaction,
so no two updates ever name one code. Every card update is queued through `queue_update`, as
ONE outbox row whose payload lists the people of its one call: a code serves one
update_template_card call (for up to 1,000 userids), so the call is a single row that no two
workers can split and whose outcome is that of the whole update.

The wording of an update (the card, the button text) is the caller's."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, and_, exists, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, UTCDateTime
from models.directive import Delivery
from models.outbox import OutboxChannel, OutboxMessage, OutboxStatus, content_key_of

# A code is valid 72 hours from the send; one is only chosen while the update can still reach
# WeCom within that time, allowing for a queue of pushes ahead of it.
CODE_LIFETIME = timedelta(hours=72)
SAFETY_MARGIN = timedelta(hours=1)
# update_template_card takes at most 1,000 userids (document/path/94888), as many as one send.
UPDATE_MAX_PEOPLE = 1000


class CardCodeUse(Base):
    """A response code spent on one card update (never updated, never deleted)."""

    __tablename__ = "card_code_use"

    code: Mapped[str] = mapped_column(String(128), primary_key=True)
    used_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # What the update was for: "tap" (the tapped card's button), "withdrawn", "rescheduled", …
    purpose: Mapped[str] = mapped_column(String(20))


def update_payload(code: str, replace_text: str, card: dict[str, Any] | None = None) -> dict[str, Any]:
    """A neutral card update: the button becomes `replace_text` (grey, not clickable); with `card`
    (a neutral card payload, models.outbox.card_payload) the whole card is replaced by it, its
    buttons shown greyed out as `replace_text`. `queue_update` adds the people of the call."""
    payload: dict[str, Any] = {"type": "card_update", "response_code": code, "replace_text": replace_text}
    if card is not None:
        payload["card"] = {k: v for k, v in card.items() if k != "type"}
    return payload


def update_people(payload: dict[str, Any], recipient: str) -> list[str]:
    """The people one card update row is for: those its payload lists (`queue_update`); a row
    queued before updates were one row per code names its one person as its recipient."""
    return list(payload.get("recipients") or [recipient])


def spend(session: Session, codes: list[str], *, at: datetime, purpose: str) -> set[str]:
    """Record `codes` as spent; returns those this call spent (the others were spent before)."""
    if not codes:
        return set()
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = CardCodeUse.__table__
    stmt = (dialect.insert(table)
            .values([{"code": code, "used_at": at, "purpose": purpose} for code in dict.fromkeys(codes)])
            .on_conflict_do_nothing(index_elements=["code"])
            .returning(table.c.code))
    return set(session.scalars(stmt))


def queue_update(session: Session, payload: dict[str, Any], people: list[tuple[str, int | None]], *,
                 at: datetime, purpose: str, subject: tuple[str, int | None]) -> int:
    """Queue one card update (`payload`, from `update_payload`) for `people` ((userid, person_id)
    pairs, at most the 1,000 of one send), spending its code: nothing is queued when the code was
    spent before. The update is one outbox row, its payload listing the userids (`recipients`);
    its recipient is the first of them, its person the one person when there is one. Returns
    the people queued."""
    userids = list(dict.fromkeys(userid for userid, _ in people))
    if len(userids) > UPDATE_MAX_PEOPLE:
        raise ValueError(f"one card update serves at most {UPDATE_MAX_PEOPLE} userids, got {len(userids)}")
    if not userids or not spend(session, [payload["response_code"]], at=at, purpose=purpose):
        return 0
    payload = {**payload, "recipients": userids}
    person_ids = {person_id for _, person_id in people}
    session.execute(insert(OutboxMessage.__table__), [{
        "channel": OutboxChannel.WECOM, "recipient": userids[0],
        "person_id": next(iter(person_ids)) if len(person_ids) == 1 else None, "payload": payload,
        "content_key": content_key_of(OutboxChannel.WECOM, payload), "status": OutboxStatus.PENDING,
        "attempts": 0, "next_attempt_at": at, "created_at": at, "subject_type": subject[0],
        "subject_id": subject[1]}])
    return len(userids)


def usable_cards(session: Session, directive_id: int, now: datetime, *, latest_only: bool,
                 done: Any = None) -> dict[str, list[tuple[str, int | None]]]:
    """code → the (userid, person_id) whose cards of this directive it can still update: sent
    codes not spent and young enough. `latest_only`: each person's most recent such card only.
    `done`: a condition on the person's Delivery (e.g. acknowledged) narrowing who is wanted."""
    fresh_since = now - (CODE_LIFETIME - SAFETY_MARGIN)
    spent = exists().where(CardCodeUse.code == OutboxMessage.response_code)
    wanted = [OutboxMessage.subject_type == "delivery", OutboxMessage.channel == OutboxChannel.WECOM,
              OutboxMessage.response_code.is_not(None), OutboxMessage.sent_at >= fresh_since, ~spent]
    if done is not None:
        wanted.append(done)
    rank = func.row_number().over(partition_by=OutboxMessage.recipient,
                                  order_by=(OutboxMessage.sent_at.desc(), OutboxMessage.id.desc())).label("rank")
    cards = (select(OutboxMessage.id, OutboxMessage.response_code, OutboxMessage.recipient,
                    OutboxMessage.person_id, rank)
             .join(Delivery, and_(Delivery.id == OutboxMessage.subject_id, Delivery.directive_id == directive_id))
             .where(*wanted).subquery())
    stmt = select(cards.c.response_code, cards.c.recipient, cards.c.person_id).order_by(cards.c.id)
    if latest_only:
        stmt = stmt.where(cards.c.rank == 1)
    found: dict[str, list[tuple[str, int | None]]] = defaultdict(list)
    for code, recipient, person_id in session.execute(stmt):
        found[code].append((recipient, person_id))
    return dict(found)
