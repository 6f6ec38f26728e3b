"""a WeCom card update is one outbox row listing the people of its one call

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-03 10:00:00

Card updates used to be queued as one outbox row per person, all naming the code of one
update_template_card call; two workers could split them between two calls, the second refused
because the code serves one. An update is now one row whose payload lists its people
(`recipients`, models/cards.py). The updates still waiting (every row of the code pending, none
handed to a call yet) are folded here into their first row: its payload gains the people of the
others in id order (its content key computed as models.outbox.content_key_of did when this file was
written), its person is kept only when it is the one person, and the other rows, whose people it
now carries, are deleted (outbox rows are the queue, not the record: nothing was sent for them and
no event names them). A code with a row already sent, failed or handed to a call is left as it
was: the worker still sends such rows the old way (a row without `recipients` is for its recipient).

The way back splits each folded row into one row per person again.
"""
from __future__ import annotations

import hashlib
import json
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None

outbox = sa.table(
    'outbox_message',
    sa.column('id', sa.Integer), sa.column('channel', sa.String), sa.column('recipient', sa.String),
    sa.column('person_id', sa.Integer), sa.column('payload', sa.JSON), sa.column('content_key', sa.String),
    sa.column('status', sa.String), sa.column('attempts', sa.Integer), sa.column('next_attempt_at', sa.DateTime),
    sa.column('created_at', sa.DateTime), sa.column('subject_type', sa.String), sa.column('subject_id', sa.Integer),
    sa.column('send_key', sa.String), sa.column('deferrals', sa.Integer),
)


def _content_key(channel: str, payload: dict) -> str:
    blob = json.dumps([channel, payload], sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()


def _card_updates(conn, *columns):
    wanted = outbox.c.payload['type'].as_string() == 'card_update'
    return conn.execute(sa.select(*columns).where(wanted).order_by(outbox.c.id)).all()


def upgrade() -> None:
    conn = op.get_bind()
    by_code: dict[str, list] = defaultdict(list)
    for row in _card_updates(conn, outbox.c.id, outbox.c.recipient, outbox.c.person_id, outbox.c.payload,
                             outbox.c.status, outbox.c.send_key):
        payload = row.payload if isinstance(row.payload, dict) else json.loads(row.payload)
        if 'recipients' not in payload:
            by_code[str(payload.get('response_code'))].append((row, payload))
    for rows in by_code.values():
        if any(row.status != 'pending' or row.send_key is not None for row, _ in rows):
            continue
        (first, payload), rest = rows[0], rows[1:]
        people = list(dict.fromkeys(row.recipient for row, _ in rows))
        folded = {**payload, 'recipients': people}
        persons = {row.person_id for row, _ in rows}
        conn.execute(outbox.update().where(outbox.c.id == first.id).values(
            payload=folded, content_key=_content_key('wecom', folded),
            person_id=next(iter(persons)) if len(persons) == 1 else None))
        if rest:
            conn.execute(outbox.delete().where(outbox.c.id.in_([row.id for row, _ in rest])))


def downgrade() -> None:
    conn = op.get_bind()
    for row in _card_updates(conn, *outbox.c):
        payload = row.payload if isinstance(row.payload, dict) else json.loads(row.payload)
        people = payload.pop('recipients', None)
        if people is None:
            continue
        key = _content_key('wecom', payload)
        conn.execute(outbox.update().where(outbox.c.id == row.id).values(
            payload=payload, content_key=key, recipient=people[0]))
        values = {c: getattr(row, c) for c in row._fields if c != 'id'}
        if people[1:]:
            conn.execute(outbox.insert(), [{**values, 'recipient': p, 'person_id': None, 'payload': payload,
                                            'content_key': key} for p in people[1:]])
