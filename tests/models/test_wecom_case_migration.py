"""Migration 0008: WeCom userids are unique without case; identities that already differ only in
case do not stop the upgrade, are reported to the administrator and are left as they are."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, insert, inspect, text
from sqlalchemy.exc import IntegrityError

from migrations import upgrade

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _identity(conn, channel: str, userid: str, person_id: int) -> None:
    """Before 0008 as the old code wrote it; after, through the table as the application writes it."""
    from models.identity import ChannelIdentity

    columns = {c["name"] for c in inspect(conn).get_columns("channel_identity")}
    if "wecom_userid_folded" in columns:
        conn.execute(insert(ChannelIdentity.__table__), {"channel": channel, "external_id": userid,
                                                         "person_id": person_id, "created_at": NOW})
        return
    conn.execute(text("INSERT INTO channel_identity (channel, external_id, person_id, created_at) "
                      "VALUES (:c, :e, :p, :t)"), {"c": channel, "e": userid, "p": person_id, "t": NOW})


def test_pairs_differing_only_in_case_are_reported_and_kept_and_new_variants_refused(fresh_url, capsys):
    upgrade(fresh_url, "0006")
    engine = create_engine(fresh_url)
    with engine.begin() as conn:
        for name in ("张伟", "张伟", "李娜"):
            conn.execute(text("INSERT INTO person (name, created_at) VALUES (:n, :t)"), {"n": name, "t": NOW})
        _identity(conn, "wecom", "ZhangWei", 1)
        _identity(conn, "wecom", "zhangwei", 2)
        _identity(conn, "wecom", "LiNa", 3)
        _identity(conn, "mp", "oAbC", 3)
        _identity(conn, "mp", "oabc", 2)  # openids are case-sensitive: two followers

    upgrade(fresh_url, "0008")  # does not fail

    report = capsys.readouterr().err
    assert "有 1 组企业微信账号仅大小写不同" in report
    assert "账号 ZhangWei（身份记录 1，人员 张伟，编号 1）；账号 zhangwei（身份记录 2，人员 张伟，编号 2）" in report
    assert "LiNa" not in report and "oabc" not in report
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM channel_identity")).scalar() == 5  # nothing changed
    for userid, person_id in (("lina", 2), ("ZHANGWEI", 3)):
        with pytest.raises(IntegrityError), engine.begin() as conn:
            _identity(conn, "wecom", userid, person_id)
    with engine.begin() as conn:
        _identity(conn, "mp", "OABC", 1)  # the Official Account keeps case
        _identity(conn, "wecom", "WangFang", 1)
    engine.dispose()


def test_a_clean_database_gets_the_key_and_no_report(fresh_url, capsys):
    upgrade(fresh_url, "0006")
    engine = create_engine(fresh_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO person (name, created_at) VALUES ('王芳', :t)"), {"t": NOW})
        _identity(conn, "wecom", "WangFang", 1)
    upgrade(fresh_url, "0008")
    assert "大小写" not in capsys.readouterr().err
    with pytest.raises(IntegrityError), engine.begin() as conn:
        _identity(conn, "wecom", "wangfang", 1)
    engine.dispose()
