"""WeCom userids unique without case

Revision ID: 0008
Revises: 0010
Create Date: 2026-12-01 15:40:00

WeCom treats userids without case, so a second WeCom identity that differs from an existing one
only in case is the same account twice. This adds `wecom_userid_folded` (lower(external_id) for
WeCom identities, NULL for Official Account openids, which are case-sensitive) with a unique index.
Rows that already clash are not changed and do not stop the upgrade: they are reported to the
administrator (in Chinese, on standard error and in the migration log) and all but the oldest of
each group keep a NULL folded value, outside the key; the oldest one's value still refuses any new
variant of that account.
"""
from __future__ import annotations

import logging
import sys
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0010'
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
    lines.append("每组中最早的一条仍受约束；其余各条删除前不受约束，但也无法再新增同一账号的其他写法。")
    message = "\n".join(lines)
    log.warning("%s", message)
    print(message, file=sys.stderr)


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("channel_identity", schema=None) as batch_op:
        batch_op.add_column(sa.Column("wecom_userid_folded", sa.String(length=128), nullable=True))
    groups = clashing_identities(bind)
    left_out = [ident for group in groups for ident, *_ in group[1:]]
    if groups:
        _report(groups)
    bind.execute(sa.text("UPDATE channel_identity SET wecom_userid_folded = lower(external_id) "
                         "WHERE channel = 'wecom'"))
    for ident in left_out:
        bind.execute(sa.text("UPDATE channel_identity SET wecom_userid_folded = NULL WHERE id = :id"), {"id": ident})
    with op.batch_alter_table("channel_identity", schema=None) as batch_op:
        batch_op.create_index(INDEX, ["wecom_userid_folded"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("channel_identity", schema=None) as batch_op:
        batch_op.drop_index(INDEX)
        batch_op.drop_column("wecom_userid_folded")
