"""reasons stored as codes: a delivery's unreachable reason, a reminder's skip reason

Revision ID: 0026
Revises: 0023
Create Date: 2026-12-02 10:00:00

The models used to store the Chinese sentence itself; they now store a stable code
(`models.directive.UnreachableReason`, `models.reminder.SkipReason`) and `bot.texts` words it
where a person reads it. The sentences written so far are mapped to their codes here; the words
are copied as they were stored then, so this file does not change when the wording does.

`delivery.reason` keeps a failed send's reason (the channel's own words) as it is: only the three
unreachable sentences become codes. `reminder.note` becomes `reminder.reason`: every note the
code ever wrote has its code (a stale row's note named its kind after a colon: all are `stale`);
a note that matches none is left out, and the row's event keeps its words either way (the event
table is append-only and is not touched).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0026'
down_revision = '0023'
branch_labels = None
depends_on = None

DELIVERY_REASONS = {
    "公众号 48 小时内没有互动，无法推送客服消息，且未配置模板消息": "mp_window",
    "未绑定企业微信或公众号": "no_channel",
    "已转出": "left",
}
SKIP_NOTES = {
    "发布时提醒时间已过": "passed_when_issued",
    "安排会议时提醒时间已过": "passed_when_scheduled",
    "通知已不存在": "directive_gone",
    "截止时间已变更": "deadline_changed",
    "所有人都已确认": "all_acknowledged",
    "所有人都已学完": "all_studied",
    "截止时所有人都已确认": "all_acknowledged_by_deadline",
    "会议已不存在": "meeting_gone",
    "会议时间已变更": "meeting_moved",
    "会议已结束": "meeting_closed",
    "无需提醒：都已请假或签到": "nobody_to_remind",
    "支部已不存在": "branch_gone",
    "规定会议都已安排": "all_scheduled",
    "规定会议都已召开": "all_held",
    "该支部没有联络员": "no_liaison",
    "已撤回": "withdrawn",
    "会议已取消": "meeting_cancelled",
}
STALE_PREFIX = "补发时已过时"
# For the way back: what a stale row's note said for each kind.
STALE_NOTES = {
    "directive_24h": "离截止已不足 2 小时，由 2 小时提醒代替",
    "directive_2h": "截止时间已过",
    "directive_deadline": "截止已满 24 小时，由汇总代替",
    "directive_summary": "截止已超过 8 天",
    "study_24h": "学习截止时间已过",
    "meeting_day_before": "离开会已不足 1 小时，由 1 小时提醒代替",
    "meeting_hour_before": "会议已开始",
    "required_meeting_due": "该周期已结束",
    "required_meeting_missed": "周期结束已超过 7 天",
}


def _map(table: str, source: str, target: str, pairs: dict[str, str]) -> None:
    statement = sa.text(f"UPDATE {table} SET {target} = :new WHERE {source} = :old")
    for old, new in pairs.items():
        op.execute(statement.bindparams(old=old, new=new))


def upgrade() -> None:
    _map("delivery", "reason", "reason", DELIVERY_REASONS)
    with op.batch_alter_table('reminder', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reason', sa.String(length=30), nullable=True))
    _map("reminder", "note", "reason", SKIP_NOTES)
    op.execute(sa.text("UPDATE reminder SET reason = 'stale' WHERE note LIKE :prefix")
               .bindparams(prefix=STALE_PREFIX + "%"))
    with op.batch_alter_table('reminder', schema=None) as batch_op:
        batch_op.drop_column('note')


def downgrade() -> None:
    _map("delivery", "reason", "reason", {new: old for old, new in DELIVERY_REASONS.items()})
    with op.batch_alter_table('reminder', schema=None) as batch_op:
        batch_op.add_column(sa.Column('note', sa.Text(), nullable=True))
    _map("reminder", "reason", "note", {new: old for old, new in SKIP_NOTES.items()})
    for kind, words in STALE_NOTES.items():
        op.execute(sa.text("UPDATE reminder SET note = :note WHERE reason = 'stale' AND kind = :kind")
                   .bindparams(note=f"{STALE_PREFIX}：{words}", kind=kind))
    with op.batch_alter_table('reminder', schema=None) as batch_op:
        batch_op.drop_column('reason')
