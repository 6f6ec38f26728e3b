"""Migration 0029: the card updates still waiting as one row per person become one row per code,
listing the people of its one call; a code already (partly) handed to a call is left as it was."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from migrations import alembic_config, upgrade
from models.outbox import OutboxChannel, content_key_of

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _old_update(code: str) -> dict:
    return {"type": "card_update", "response_code": code, "replace_text": "已撤回 2026年12月1日 08:00"}


def _seed_before(url: str) -> None:
    """Rows as the code before 0029 queued them: one per person, all naming the code."""
    engine = create_engine(url)
    rows = [("rc-waiting", f"member{i:02d}", "pending", None) for i in range(30)]
    rows += [("rc-split", "member40", "sent", "k1"), ("rc-split", "member41", "pending", None)]
    rows += [("rc-tap", "member50", "pending", None)]
    with engine.begin() as conn:
        for i, (code, recipient, status, send_key) in enumerate(rows, 1):
            payload = _old_update(code)
            conn.execute(text(
                "INSERT INTO outbox_message (channel, recipient, person_id, payload, content_key, status, attempts, "
                "next_attempt_at, created_at, subject_type, subject_id, send_key, deferrals) VALUES ('wecom', :r, "
                ":p, :payload, :k, :s, 0, :t, :t, 'directive', 1, :sk, 0)"),
                {"r": recipient, "p": i, "payload": json.dumps(payload, ensure_ascii=False),
                 "k": content_key_of(OutboxChannel.WECOM, payload), "s": status, "t": NOW, "sk": send_key})
        conn.execute(text(
            "INSERT INTO outbox_message (channel, recipient, payload, content_key, status, attempts, next_attempt_at, "
            "created_at, deferrals) VALUES ('wecom', 'member01', :payload, 'x', 'pending', 0, :t, :t, 0)"),
            {"payload": json.dumps({"type": "text", "text": "另一条"}, ensure_ascii=False), "t": NOW})
    engine.dispose()


def _rows(url: str) -> list:
    from models.outbox import OutboxMessage

    engine = create_engine(url)
    with Session(engine) as s:
        found = [(r.recipient, r.person_id, r.payload, r.content_key, r.status.value)
                 for r in s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]
    engine.dispose()
    return found


def test_waiting_updates_fold_into_one_row_per_code(fresh_url):
    upgrade(fresh_url, "0028")
    _seed_before(fresh_url)
    upgrade(fresh_url)
    rows = _rows(fresh_url)
    waiting = [r for r in rows if r[2].get("response_code") == "rc-waiting"]
    assert len(waiting) == 1
    recipient, person_id, payload, key, status = waiting[0]
    assert payload["recipients"] == [f"member{i:02d}" for i in range(30)] and recipient == "member00"
    assert person_id is None and status == "pending" and key == content_key_of(OutboxChannel.WECOM, payload)
    # A code one of whose rows went out already keeps its rows as they were.
    split = [r for r in rows if r[2].get("response_code") == "rc-split"]
    assert [(r[0], r[4]) for r in split] == [("member40", "sent"), ("member41", "pending")]
    assert all("recipients" not in r[2] for r in split)
    [tap] = [r for r in rows if r[2].get("response_code") == "rc-tap"]
    assert tap[2]["recipients"] == ["member50"] and tap[1] == 33  # the one person kept
    assert [r[2]["type"] for r in rows].count("text") == 1
    assert len(rows) == 1 + 2 + 1 + 1


def test_the_way_back_splits_them_again(fresh_url):
    upgrade(fresh_url, "0028")
    _seed_before(fresh_url)
    before = sorted((r[0], r[2].get("response_code") or "", r[3]) for r in _rows(fresh_url))
    upgrade(fresh_url, "0029")
    command.downgrade(alembic_config(fresh_url), "0028")
    after = sorted((r[0], r[2].get("response_code") or "", r[3]) for r in _rows(fresh_url))
    assert after == before
