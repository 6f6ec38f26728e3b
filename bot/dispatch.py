"""Inbound pipeline after the channel adapter: dedupe, identify, route, commit — once per message.

WeChat retries a callback it did not get an answer to (same MsgId; for events the same
FromUserName + CreateTime + Event). Redis `SET NX` catches the retry cheaply, also when it
arrives concurrently; the receipt's unique key in the same transaction as the handler's
changes is the backstop when Redis is absent or down, so a message is never acted on twice
and never lost: if the handler fails, nothing is committed and the claim is released, and the
retry that finds it released is processed. The receipt also keeps the reply, so a retry is
answered exactly as the first delivery was (one Redis call per message, the claim).

A command that only reads (帮助, 待办, 进度…) needs none of that: answering a retry again is what
the retry asks for. When the sender is in the directory cache it is answered in a read-only
session, with no claim, receipt or commit; everything else takes the full path.

WeCom ignores a passive text reply to a template card tap (`template_card_event`): the answer to a
tap goes to the tapper by push, queued in the outbox in the same transaction as the receipt (so a
retried tap queues nothing twice), and the callback answers with nothing. Handlers still return a
Reply; only this module knows how it travels.

An empty answer ends WeChat's retries, so it is given only when something is committed (the
receipt, or a push saying the message failed) or when there was nothing to do."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from bot.context import Context
from bot.directory import Sender, load_sender
from bot.messages import InboundMessage, Reply
from bot.router import Match, act, match
from bot.runtime import Runtime
from bot.texts import parts
from bot.texts.parts import split_lines
from models.identity import Channel, ChannelIdentity
from models.inbound import receipt_reply, record_receipt, set_reply
from models.person import Person

log = logging.getLogger(__name__)

# The claim outlives WeChat's retries, which then find the reply on the receipt and never run the
# handler again. WeChat gives up on a request after 5 s and retries it, about 5 s apart, three
# times; an answer, even an empty one, ends the retries. So a retry that meets a claim at least
# TAKEOVER_SECONDS old with no receipt takes it over and is processed: WeChat has given up on the
# earlier delivery's connection, whose process may have died mid-way (nothing committed, nothing
# released), and only this retry can still carry an answer. The age is read from the store's own
# clock (the claim's time to live), the same for every process. Should the earlier delivery still
# be running, or two retries take the claim over at once, both handle the message and the
# receipt's unique key lets only the first commit; the other answers with its reply.
CLAIM_TTL_SECONDS = 15 * 60
TAKEOVER_SECONDS = 4.5
PROCESSING = "processing"

ERROR_REPLY = Reply("抱歉，系统刚才处理您的消息时出了点问题，已记录下来。请稍后再试一次。")


# Events whose passive reply the platform ignores: their answer is pushed instead.
PUSH_ANSWERED_EVENTS = frozenset({"template_card_event", "template_card_menu_event"})


def answers_by_push(msg: InboundMessage) -> bool:
    return msg.event in PUSH_ANSWERED_EVENTS


def dispatch(runtime: Runtime, msg: InboundMessage) -> Reply | None:
    if msg.channel is Channel.MP:
        from bot.channels.mp_window import open_window

        open_window(runtime.store, msg, runtime.now().timestamp())  # what customer-service messages we may send
    found = match(msg)
    sender = runtime.directory.lookup(msg.channel, msg.sender)  # once: both paths use it
    if found.read_only and not answers_by_push(msg):
        answered, reply = _answer_read_only(runtime, msg, found, sender)
        if answered:
            return reply
    key = f"inbound:{msg.channel.value}:{msg.dedupe_key}"
    claimed = runtime.store.set_nx(key, PROCESSING, CLAIM_TTL_SECONDS)
    if claimed is False:
        answered, reply, claimed = _earlier_reply(runtime, msg, key)
        if answered:
            return reply

    for attempt in (1, 2):
        try:
            reply, roster_changed = _unit_of_work(runtime, msg, found, sender, claimed)
            break
        except IntegrityError:
            return _after_integrity_error(runtime, msg, key, claimed)
        except DBAPIError as exc:
            if exc.connection_invalidated and attempt == 1:
                # A pooled connection had died (the database restarted): the pool has already
                # thrown its stale connections away and nothing was committed, or the receipt
                # makes the second try a duplicate. One more try, on a fresh connection.
                log.warning("database connection lost handling %s message %s; trying once more",
                            msg.channel.value, msg.dedupe_key)
                continue
            return _failed(runtime, msg, key, claimed)
        except Exception:
            return _failed(runtime, msg, key, claimed)
    if roster_changed:
        runtime.directory.changed()
    # The claim stays until it expires: a retry that meets it finds the reply on the receipt.
    return reply


def _unit_of_work(runtime: Runtime, msg: InboundMessage, found: Match, sender: Sender,
                  claimed: bool | None) -> tuple[Reply | None, bool]:
    """Identify, act and record the receipt in one transaction: (reply, whether people changed)."""
    now = runtime.now()
    channel, dedupe_key = msg.channel.value, msg.dedupe_key
    secret = runtime.settings.secret_key
    with runtime.db.session() as session:
        if claimed is None:
            # No shared claim (Redis down): the unique key is the only guard, so ask it first
            # and a duplicate never reaches the handler.
            record_receipt(session, channel, dedupe_key, now, None, secret=secret)
        person = _identify(session, msg, now, sender, found)
        ctx = Context(session=session, now=now, settings=runtime.settings, msg=msg, person=person)
        reply = _fit(act(found, ctx), ctx)
        text = reply.text if reply else ""
        # The receipt commits with the handler's changes (one INSERT on the usual path); if a
        # duplicate slipped past the claim, its unique key fails and all of it is rolled back.
        if claimed is None:
            set_reply(session, channel, dedupe_key, text, secret=secret)
        else:
            session.flush()  # the handler's own writes first: a failure there is the handler's
            record_receipt(session, channel, dedupe_key, now, text, secret=secret)
    return reply, ctx.roster_changed


def _after_integrity_error(runtime: Runtime, msg: InboundMessage, key: str, claimed: bool | None) -> Reply | None:
    """A retry that slipped past the claim answers with the first delivery's reply; any other
    constraint failure is the handler's own and fails like any error."""
    earlier = _receipt_reply(runtime, msg)
    if earlier is None:
        return _failed(runtime, msg, key, claimed)
    log.info("duplicate callback %s:%s (database backstop)", msg.channel.value, msg.dedupe_key)
    return earlier


def _receipt_reply(runtime: Runtime, msg: InboundMessage) -> Reply | None:
    """The reply recorded with this message's receipt: `Reply("")` when it was answered with
    nothing, None when there is no receipt (not processed, or not yet committed)."""
    with runtime.db.read_session() as session:
        earlier = receipt_reply(session, msg.channel.value, msg.dedupe_key, secret=runtime.settings.secret_key)
        return None if earlier is None else Reply(earlier)


def _failed(runtime: Runtime, msg: InboundMessage, key: str, claimed: bool | None) -> Reply | None:
    """The one error path: log with the message id, release the claim so WeChat's retry is
    processed afresh, answer politely (by push for a card tap: if even that cannot be queued, the
    exception reaches the view, WeChat gets a 5xx and retries)."""
    log.exception("handler failed for %s message %s from %s", msg.channel.value, msg.dedupe_key, msg.sender)
    if claimed:
        runtime.store.delete(key)
    if answers_by_push(msg):
        from models.outbox import OutboxChannel, enqueue, text_payload

        with runtime.db.session() as session:
            enqueue(session, OutboxChannel(msg.channel.value), msg.sender, text_payload(ERROR_REPLY.text),
                    at=runtime.now())
        return None
    return ERROR_REPLY


def _answer_read_only(runtime: Runtime, msg: InboundMessage, found: Match,
                      sender: Sender) -> tuple[bool, Reply | None]:
    """(True, reply) when answered from the cached sender in a read-only session; (False, None)
    sends the message down the full path: an unknown sender, an Official Account follower (whose
    last-message time is written), no trustworthy cache, or a reply too long for one message."""
    if msg.channel is not Channel.WECOM or sender.person is None:
        return False, None
    try:
        with runtime.db.read_session() as session:
            person = _attached(session, sender.person, found)
            ctx = Context(session=session, now=runtime.now(), settings=runtime.settings, msg=msg, person=person)
            reply = act(found, ctx)
    except Exception:
        # Nothing was written, so the full path can answer it: it reports a handler's own failure,
        # and gets a fresh connection if this one had died.
        log.warning("read-only answer failed for %s message %s; taking the full path", msg.channel.value,
                    msg.dedupe_key, exc_info=True)
        return False, None
    if _too_long(reply) and not reply.link:
        return False, None  # the rest follows as pushes, which the full path queues exactly once
    return True, _fit_to_link(reply)


RETRY_WAIT_SECONDS = 2.0  # WeChat waits 5 s per attempt; leave room for the network


# WeCom and WeChat cut a passive text reply at 2,048 bytes; what does not fit follows as pushes.
REPLY_LIMIT_BYTES = 2000
MAX_FOLLOW_UPS = 4


def _fit(reply: Reply | None, ctx: Context) -> Reply | None:
    """Keep the passive reply within the channel's limit; the rest goes out through the outbox,
    in the same transaction, split on line boundaries. A card tap's answer goes there whole; a
    reply with a page behind it is cut to one message pointing at the page; on the Official
    Account a long reply is one message (follow-ups would spend the follower's few
    customer-service messages)."""
    if answers_by_push(ctx.msg):
        _push_answer(reply, ctx)
        return None
    if not _too_long(reply) or reply.link:
        return _fit_to_link(reply)
    from models.outbox import OutboxChannel, enqueue, text_payload

    chunks = split_lines(reply.text, REPLY_LIMIT_BYTES)
    if ctx.msg.channel is Channel.MP:
        return Reply(chunks[0] + parts.REPLY_CUT_SHORT)
    rest = chunks[1:1 + MAX_FOLLOW_UPS]
    for number, chunk in enumerate(rest, start=2):
        enqueue(ctx.session, OutboxChannel(ctx.msg.channel.value), ctx.msg.sender,
                text_payload(parts.continued(number, len(rest) + 1) + chunk),
                person_id=ctx.person.id if ctx.person else None, at=ctx.now)
    return Reply(chunks[0] + parts.reply_rest_follows(len(rest)))


def _push_answer(reply: Reply | None, ctx: Context) -> None:
    """Queue the answer to a card tap for the tapper, in the handler's transaction: once, however
    often WeChat retries the callback (the receipt's unique key rolls a duplicate back)."""
    if not reply:
        return
    from models.outbox import OutboxChannel, enqueue, text_payload

    chunks = split_lines(reply.text, REPLY_LIMIT_BYTES)[:1 + MAX_FOLLOW_UPS]
    for number, chunk in enumerate(chunks, start=1):
        text = chunk if len(chunks) == 1 else parts.marker(number, len(chunks)) + chunk
        enqueue(ctx.session, OutboxChannel(ctx.msg.channel.value), ctx.msg.sender, text_payload(text),
                person_id=ctx.person.id if ctx.person else None, at=ctx.now)


def _fit_to_link(reply: Reply | None) -> Reply | None:
    """A reply with a page behind it is cut to one message that points at the page: no follow-ups."""
    if not _too_long(reply):
        return reply
    tail = f"\n……内容较多，未能全部列出。完整内容：{reply.link}"
    budget = REPLY_LIMIT_BYTES - len(tail.encode("utf-8"))
    kept, used = [], 0
    for line in reply.text.split("\n"):
        size = len(line.encode("utf-8")) + 1
        if used + size > budget:
            break
        kept.append(line)
        used += size
    head = "\n".join(kept) or reply.text.encode("utf-8")[:budget].decode("utf-8", "ignore")
    return Reply(head + tail, link=reply.link)


def _too_long(reply: Reply | None) -> bool:
    return reply is not None and len(reply.text.encode("utf-8")) > REPLY_LIMIT_BYTES


def _earlier_reply(runtime: Runtime, msg: InboundMessage, key: str) -> tuple[bool, Reply | None, bool | None]:
    """A delivery that met the claim of an earlier delivery of the same message: (True, reply, _)
    with the reply recorded on the earlier one's receipt, or (False, None, claimed) when this one
    has taken the claim over and must be processed: the earlier one failed and released it, or has
    held it TAKEOVER_SECONDS with nothing committed.

    Otherwise it waits briefly for the earlier one's receipt. If none has come by then, it takes
    the claim over too: an empty answer now would end WeChat's retries while nothing is committed,
    and the earlier delivery may have died. Should it still be running, the receipt's unique key
    lets only the first commit, and the other answers with its reply."""
    deadline = time.monotonic() + RETRY_WAIT_SECONDS
    while True:
        earlier = _receipt_reply(runtime, msg)
        if earlier is not None:
            return True, (earlier or None), None
        left = runtime.store.ttl(key)
        if left is None:  # released: the earlier delivery failed and committed nothing
            claimed = runtime.store.set_nx(key, PROCESSING, CLAIM_TTL_SECONDS)
            if claimed is not False:
                return False, None, claimed
        elif CLAIM_TTL_SECONDS - left >= TAKEOVER_SECONDS:
            log.warning("%s message %s: taking over a claim held %.1f s with nothing committed",
                        msg.channel.value, msg.dedupe_key, CLAIM_TTL_SECONDS - left)
            runtime.store.set(key, PROCESSING, CLAIM_TTL_SECONDS)
            return False, None, True
        if time.monotonic() >= deadline:
            log.warning("%s message %s: no receipt after %.1f s of waiting on a claim held %.1f s; "
                        "processing it here", msg.channel.value, msg.dedupe_key, RETRY_WAIT_SECONDS,
                        CLAIM_TTL_SECONDS - left if left is not None else 0.0)
            runtime.store.set(key, PROCESSING, CLAIM_TTL_SECONDS)
            return False, None, True
        time.sleep(0.05)


LAST_SEEN_GRANULARITY = timedelta(minutes=10)


def _attached(session, person: Person, found: Match) -> Person:
    """The cached sender as the route needs it: as it is (`detached_sender`), or merged into the
    session without a query, for handlers that walk its relationships or write through it."""
    if found.route is not None and found.route.detached_sender:
        return person
    return session.merge(person, load=False)


def _identify(session, msg: InboundMessage, now, sender: Sender, found: Match) -> Person | None:
    """The roster person behind the sender: the directory's answer when it can be trusted (no
    query), attached to this session unless the route uses it as it is; else loaded with roles and
    liaisons in one query."""
    if sender.person is not None:
        person = _attached(session, sender.person, found)
    elif sender.trusted:
        person = None  # the directory looked just now: not on the roster
    else:
        person = load_sender(session, msg.channel, msg.sender)
    if person is not None and msg.channel is Channel.MP:
        # Only the Official Account's 48-hour window reads this: a coarse timestamp is enough,
        # so most messages write nothing.
        session.execute(
            update(ChannelIdentity)
            .where(ChannelIdentity.channel == msg.channel, ChannelIdentity.external_id == msg.sender,
                   or_(ChannelIdentity.last_inbound_at.is_(None),
                       ChannelIdentity.last_inbound_at < now - LAST_SEEN_GRANULARITY))
            .values(last_inbound_at=now)
            .execution_options(synchronize_session=False)
        )
    return person
