"""A small tree with known portrait answers: a general branch with two branches (one with a
group), 岗位类型 on most members, and a third quarter of 2026 with directives, study and meetings.

For 机关党委/第一党总支 (the answers the tests assert):
- 组织层级: 2 levels beneath (branches, the group) → 100 − 40 = 60;
- 下属机构: 3 organisations beneath → 100 − 15 = 85;
- 党员比例: 7 members, 职工人数 20 → round(200 × 7 ÷ 20) = 70;
- 党员岗位特点: 机关 3 of 5 with a 岗位类型 → 60;
- 发挥作用 (2026Q3): in time 2/4, meetings 2/19 (8 + 11 with the group), study 1/2 → round(100 × 1.1053 ÷ 3) = 37;
- 党建力量: 2 of 3 units with a 书记, 2 committee members for 7 members → round(33.33 + 50) = 83.
Acknowledgement lags in 综合处党支部: 10, 30 and 120 minutes (median 30, slowest 120)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from models.directive import Delivery, DeliveryRole, DeliveryStatus, Directive, DirectiveKind
from models.meeting import Meeting, MeetingStatus, MeetingType
from models.org import Organisation
from models.person import PostType, Role
from tests.factories import org, person

GENERAL = "机关党委/第一党总支"
BRANCH_A = f"{GENERAL}/综合处党支部"
BRANCH_B = f"{GENERAL}/财务处党支部"
GROUP_B = f"{BRANCH_B}/第一党小组"
FOUNDED = datetime(2026, 3, 1, tzinfo=UTC)
ISSUED = datetime(2026, 8, 3, 2, 0, tzinfo=UTC)  # 2026-08-03 10:00 in Shanghai


def build(session) -> dict:
    people = {
        "top": person(session, "王书记", "wangsj", "机关党委", Role.SECRETARY),
        "lina": person(session, "李娜", "lina", BRANCH_A, Role.SECRETARY),
        "zhangwei": person(session, "张伟", "zhangwei", BRANCH_A),
        "liuyang": person(session, "刘洋", "liuyang", BRANCH_A),
        "zhaomin": person(session, "赵敏", "zhaomin", BRANCH_A),
        "chenjing": person(session, "陈静", "chenjing", BRANCH_B, Role.SECRETARY),
        "zhaolei": person(session, "赵磊", "zhaolei", BRANCH_B),
        "qianduo": person(session, "钱多", "qianduo", GROUP_B),
        "liaison": person(session, "孙联络", "sunll", "机关党委", Role.LIAISON, liaises=(BRANCH_A,)),
    }
    posts = {"zhangwei": PostType.OFFICE, "zhaolei": PostType.OFFICE, "qianduo": PostType.OFFICE,
             "liuyang": PostType.FIELD, "lina": PostType.POSTED}
    for key, post in posts.items():
        people[key].post_type = post
    session.execute(update(Organisation).values(created_at=FOUNDED))
    a, b = org(session, BRANCH_A), org(session, BRANCH_B)

    directive = Directive(organisation_id=a.id, issuer_id=people["top"].id, title="三季度自查", body="",
                          deadline=ISSUED + timedelta(hours=1), created_at=ISSUED, kind=DirectiveKind.DIRECTIVE)
    study = Directive(organisation_id=a.id, issuer_id=people["top"].id, title="党章学习", body="",
                      deadline=None, created_at=ISSUED, kind=DirectiveKind.STUDY)
    session.add_all([directive, study])
    session.flush()
    acks = {"zhangwei": (10, False), "liuyang": (30, False), "zhaomin": (120, True), "lina": None}
    for key, ack in acks.items():
        session.add(Delivery(directive_id=directive.id, person_id=people[key].id, organisation_id=a.id,
                             role=DeliveryRole.TASK, status=DeliveryStatus.ACKNOWLEDGED if ack else DeliveryStatus.SENT,
                             acknowledged_at=ISSUED + timedelta(minutes=ack[0]) if ack else None,
                             late=ack[1] if ack else False))
    for key, done in (("zhaolei", True), ("chenjing", False)):
        session.add(Delivery(directive_id=study.id, person_id=people[key].id, organisation_id=b.id,
                             role=DeliveryRole.TASK, status=DeliveryStatus.COMPLETED if done else DeliveryStatus.SENT,
                             completed_at=ISSUED + timedelta(days=1) if done else None))
    for meeting_type, when in ((MeetingType.COMMITTEE, datetime(2026, 7, 8, 11, tzinfo=UTC)),
                               (MeetingType.LECTURE, datetime(2026, 8, 20, 7, tzinfo=UTC)),
                               (MeetingType.THEME_DAY, datetime(2026, 10, 9, 7, tzinfo=UTC))):  # the last one: Q4
        session.add(Meeting(organisation_id=a.id, type=meeting_type, starts_at=when, status=MeetingStatus.CLOSED,
                            convener_id=people["lina"].id, created_at=when - timedelta(days=3), closed_at=when))
    session.flush()
    return people
