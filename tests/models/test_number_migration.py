"""Migration 0017: directive and study numbers stay what people were sent; meetings and leave
requests get numbers above the highest; the one sequence continues above all of them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from migrations import upgrade

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _rows_before_0017(conn) -> None:
    """What a database at 0008 holds: directives 1 and 3, study item 2, meetings 1 and 2, leave 1,
    written the way the code of that time wrote them (each kind counting from 1)."""
    sql = [
        "INSERT INTO organisation (name, path, kind, created_at) VALUES ('综合处党支部', '综合处党支部', 'branch', :t)",
        "INSERT INTO person (name, created_at) VALUES ('李娜', :t)",
        "INSERT INTO person (name, created_at) VALUES ('张伟', :t)",
    ]
    sql += [f"INSERT INTO directive (kind, organisation_id, issuer_id, title, body, created_at, recipient_count) "
            f"VALUES ('{kind}', 1, 1, '{title}', '', :t, 1)"
            for kind, title in (("directive", "报送党费"), ("study", "党章第一章"), ("directive", "报送名册"))]
    sql += [f"INSERT INTO meeting (organisation_id, type, starts_at, online, status, convener_id, created_at, "
            f"invited_count) VALUES (1, 'general_assembly', :t, {online}, 'scheduled', 1, :t, 2)"
            for online in ("false", "true")]
    sql += ["INSERT INTO leave_request (meeting_id, person_id, reason, status, requested_at) "
            "VALUES (2, 2, '出差', 'pending', :t)"]
    for statement in sql:
        conn.execute(text(statement), {"t": NOW})


def test_directive_numbers_stay_and_meetings_and_leave_are_numbered_above_them(fresh_url):
    from models.directive import Directive
    from models.meeting import LeaveRequest, Meeting, MeetingType
    from models.numbers import ItemKind, ItemNumber, allocate, lookup

    upgrade(fresh_url, "0008")
    engine = create_engine(fresh_url)
    with engine.begin() as conn:
        _rows_before_0017(conn)
    upgrade(fresh_url)
    with Session(engine) as s:
        assert s.execute(select(Directive.id, Directive.number).order_by(Directive.id)).all() == [(1, 1), (2, 2), (3, 3)]
        assert s.execute(select(Meeting.id, Meeting.number).order_by(Meeting.id)).all() == [(1, 4), (2, 5)]
        assert s.execute(select(LeaveRequest.id, LeaveRequest.number)).all() == [(1, 6)]
        seeded = s.execute(select(ItemNumber.number, ItemNumber.kind, ItemNumber.item_id)
                           .order_by(ItemNumber.number)).all()
        assert seeded == [(1, ItemKind.DIRECTIVE, 1), (2, ItemKind.STUDY, 2), (3, ItemKind.DIRECTIVE, 3),
                          (4, ItemKind.MEETING, 1), (5, ItemKind.MEETING, 2), (6, ItemKind.LEAVE, 1)]
        # The sequence continues above every seeded number, for a raw allocation and for a new item.
        assert allocate(s, ItemKind.SELF_REPORT, 1) == 7
        meeting = Meeting(organisation_id=1, type=MeetingType.COMMITTEE, starts_at=NOW, convener_id=1, created_at=NOW)
        s.add(meeting)
        s.flush()
        assert meeting.number == 8
        assert (lookup(s, 8).kind, lookup(s, 8).item_id) == (ItemKind.MEETING, meeting.id)
        s.commit()
    engine.dispose()


def test_an_empty_database_starts_numbering_at_one(fresh_url):
    from models.numbers import ItemKind, allocate

    upgrade(fresh_url)
    engine = create_engine(fresh_url)
    with Session(engine) as s:
        assert allocate(s, ItemKind.DIRECTIVE) == 1
    engine.dispose()
