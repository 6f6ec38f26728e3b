"""WeCom userids unique without case

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-01 15:40:00

WeCom treats userids without case, so a second WeCom identity that differs from an existing one
only in case is the same account twice. This adds a unique index on lower(external_id) for WeCom
identities. Rows that already clash are not changed and do not stop the upgrade: they are reported
to the administrator (in Chinese, on standard error and in the migration log) and left out of the
index, which then covers every other row and, through the first row of each clashing group, refuses
any new variant of those accounts too.
"""
from __future__ import annotations

import logging
import sys
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0006'
branch_labels = None
depends_on = None

INDEX = "uq_channel_identity_wecom_folded"
log = logging.getLogger("alembic.runtime.migration")


def clashing_identities(bind) -> list[list[tuple[int, str, int, str]]]:
    """Groups of WeCom identities whose userids differ only in case: (id, userid, person id, name),
    oldest first."""
    rows = bind.execute(sa.text(
        "SELECT ci.id, ci.external_id, ci.person_id, p.name FROM channel_identity ci "
        "JOIN person p ON p.id = ci.person_id WHERE ci.channel = 'wecom' ORDER BY ci.id"
    )).all()
    groups: dict[str, list] = defaultdict(list)
    for row in rows:
        groups[row.external_id.lower()].append((row.id, row.external_id, row.person_id, row.name))
    return [group for group in groups.values() if len(group) > 1]


def _report(groups) -> None:
    lines = [f"注意：有 {len(groups)} 组企业微信账号仅大小写不同（企业微信不区分大小写，它们是同一个账号）。"
             "这些记录未作改动，也暂不受“账号不区分大小写唯一”的约束；请管理员核对后删除多余的记录："]
    for group in groups:
        lines.append("  " + "；".join(f"账号 {userid}（身份记录 {ident}，人员 {name}，编号 {person}）"
                                      for ident, userid, person, name in group))
    message = "\n".join(lines)
    log.warning("%s", message)
    print(message, file=sys.stderr)


def upgrade() -> None:
    bind = op.get_bind()
    groups = clashing_identities(bind)
    where = "channel = 'wecom'"
    if groups:
        _report(groups)
        left_out = sorted(ident for group in groups for ident, *_ in group[1:])
        where += " AND id NOT IN (" + ", ".join(str(i) for i in left_out) + ")"
    # SQLite cannot reflect an index on an expression: there the column's NOCASE collation folds
    # case (ASCII, as WeCom userids are) in an index on the column itself.
    column = "external_id COLLATE NOCASE" if bind.dialect.name == "sqlite" else "lower(external_id)"
    op.create_index(INDEX, "channel_identity", [sa.text(column)], unique=True,
                    postgresql_where=sa.text(where), sqlite_where=sa.text(where))


def downgrade() -> None:
    op.drop_index(INDEX, table_name="channel_identity")
