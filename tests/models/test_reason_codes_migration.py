"""Migration 0026: the Chinese reasons stored on deliveries and reminder rows become codes, and
rows stored before it read as they did (worded by `bot.texts`); a failed send's reason stays."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.orm import Session

from migrations import alembic_config, upgrade

NOW = datetime(2026, 12, 1, tzinfo=UTC)
FAILED = "企业微信账号未激活（unlicenseduser）"
OLD_DELIVERY_REASONS = ["公众号 48 小时内没有互动，无法推送客服消息，且未配置模板消息", "未绑定企业微信或公众号", "已转出",
                        FAILED, None]
OLD_NOTES = [("directive_24h", "skipped", "发布时提醒时间已过"), ("directive_2h", "cancelled", "已撤回"),
             ("meeting_hour_before", "skipped", "补发时已过时：会议已开始"),
             ("directive_summary", "skipped", "补发时已过时：不再有用"),  # an early version's words
             ("study_24h", "skipped", "所有人都已学完"), ("directive_deadline", "sent", None)]


def _seed_before(url: str) -> None:
    """Rows as the code before 0026 wrote them."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO organisation (id, name, path, kind, created_at) "
                          "VALUES (1, '综合处党支部', '综合处党支部', 'branch', :t)"), {"t": NOW})
        for pid in range(1, 6):
            conn.execute(text("INSERT INTO person (id, name, created_at) VALUES (:i, :n, :t)"),
                         {"i": pid, "n": f"党员{pid}", "t": NOW})
        conn.execute(text("INSERT INTO directive (id, organisation_id, issuer_id, title, body, created_at, "
                          "recipient_count, number) VALUES (1, 1, 1, '学习通知', '', :t, 5, 1)"), {"t": NOW})
        for pid, reason in enumerate(OLD_DELIVERY_REASONS, 1):
            status = "pending" if reason is None else "failed" if reason == FAILED else "unreachable"
            conn.execute(text("INSERT INTO delivery (directive_id, person_id, organisation_id, role, status, "
                              "reason, late) VALUES (1, :p, 1, 'task', :s, :r, false)"),
                         {"p": pid, "s": status, "r": reason})
        for rid, (kind, status, note) in enumerate(OLD_NOTES, 1):
            conn.execute(text("INSERT INTO reminder (id, kind, subject_type, subject_id, period, due_at, status, "
                              "created_at, recipients, note) VALUES (:i, :k, 'directive', 1, '', :t, :s, :t, 0, :n)"),
                         {"i": rid, "k": kind, "s": status, "t": NOW, "n": note})
    engine.dispose()


def test_stored_reasons_become_codes_and_read_as_before(fresh_url):
    from bot.texts.directive import delivery_reason
    from bot.texts.reminders import skip_reason
    from models.directive import Delivery, UnreachableReason
    from models.leaving import counted_delivery
    from models.reminder import Reminder, SkipReason

    upgrade(fresh_url, "0022")
    _seed_before(fresh_url)
    upgrade(fresh_url)

    engine = create_engine(fresh_url)
    with Session(engine) as s:
        stored = list(s.scalars(select(Delivery.reason).order_by(Delivery.person_id)))
        assert stored == ["mp_window", "no_channel", "left", FAILED, None]
        assert [delivery_reason(r) for r in stored] == [*OLD_DELIVERY_REASONS[:4], "原因不明"]
        assert UnreachableReason(stored[2]) is UnreachableReason.LEFT
        assert s.scalar(select(func.count()).select_from(Delivery).where(counted_delivery())) == 4  # the leaver

        rows = list(s.scalars(select(Reminder).order_by(Reminder.id)))
        assert [r.reason for r in rows] == [SkipReason.PASSED_WHEN_ISSUED, SkipReason.WITHDRAWN, SkipReason.STALE,
                                            SkipReason.STALE, SkipReason.ALL_STUDIED, None]
        assert [skip_reason(r.reason, r.kind) for r in rows[:3]] == [
            "发布时提醒时间已过", "已撤回", "补发时已过时：会议已开始"]
    assert "note" not in {c["name"] for c in inspect(engine).get_columns("reminder")}
    engine.dispose()


def test_the_way_back_restores_the_words(fresh_url):
    upgrade(fresh_url, "0022")
    _seed_before(fresh_url)
    upgrade(fresh_url, "0026")
    command.downgrade(alembic_config(fresh_url), "0026-1")

    engine = create_engine(fresh_url)
    with engine.connect() as conn:
        reasons = list(conn.scalars(text("SELECT reason FROM delivery ORDER BY person_id")))
        notes = list(conn.scalars(text("SELECT note FROM reminder ORDER BY id")))
    engine.dispose()
    assert reasons == OLD_DELIVERY_REASONS
    # Each stale row is worded by its kind again (the early version's words are the current ones now).
    assert notes == ["发布时提醒时间已过", "已撤回", "补发时已过时：会议已开始", "补发时已过时：截止已超过 8 天",
                     "所有人都已学完", None]
