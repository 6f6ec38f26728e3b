"""发布 → pushes queued → 收到 / button / 完成 → 进度 → 催办, through the real callback endpoint."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import func, select

from models.directive import (
    AckResult,
    Delivery,
    DeliveryRole,
    DeliveryStatus,
    Directive,
    UnreachableReason,
    acknowledge,
)
from models.event import Event
from models.outbox import OutboxMessage
from models.person import Role
from tests.conftest import needs_postgres
from tests.factories import BRANCH_A, person, small_tree

PUBLISH = "发布 学习贯彻全会精神\n请各支部组织专题学习。\n截止 12月1日17:00"


def _seed(db):
    with db.session() as s:
        people = small_tree(s)
        # Temporary branch: 张伟 is also there; he must get one delivery only.
        from models.person import Membership, MembershipKind
        from tests.factories import org

        temp = org(s, "机关党委/第一党总支/项目组临时党支部")
        s.add(Membership(person_id=people["zhangwei"].id, organisation_id=temp.id, kind=MembershipKind.TEMPORARY))
        person(s, "周敏", None, BRANCH_A)  # no channel: unreachable
    return people


def test_publish_reaches_every_member_once_and_copies_intermediate_secretaries(chat, db):
    _seed(db)
    reply = chat.say("wangsj", PUBLISH)
    assert reply.startswith("已发布 #1，推送 6 人")
    assert "2026年12月1日 17:00" in reply
    with db.session() as s:
        deliveries = s.scalars(select(Delivery)).all()
        tasks = [d for d in deliveries if d.role is DeliveryRole.TASK]
        assert len(tasks) == 6  # 李娜 张伟 刘洋 陈静 赵磊 周敏
        assert len({d.person_id for d in tasks}) == 6
        unreachable = [d for d in tasks if d.status is DeliveryStatus.UNREACHABLE]
        assert len(unreachable) == 1 and unreachable[0].reason
        outbox = s.scalars(select(OutboxMessage).where(OutboxMessage.subject_type == "delivery")).all()
        assert len(outbox) == 5  # the unreachable person gets no push
        cards = [m for m in outbox if m.payload["type"] == "card"]
        assert len({m.content_key for m in cards}) == 1  # identical content → batchable
        assert s.scalar(select(func.count()).select_from(Event).where(Event.kind == "directive.issued")) == 1


def test_member_cannot_publish_and_nothing_is_written(chat, db):
    _seed(db)
    reply = chat.say("zhangwei", PUBLISH)
    assert "书记" in reply
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Directive)) == 0


def test_past_or_unparseable_deadline_is_refused_with_reason(chat, db):
    _seed(db)
    assert "已经过去" in chat.say("wangsj", "发布 标题\n正文\n截止 今天8:00")
    assert "看不懂" in chat.say("wangsj", "发布 标题\n正文\n截止 下下周")
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Directive)) == 0


def test_ack_by_text_is_idempotent_and_late_after_deadline(chat, db, clock):
    _seed(db)
    chat.say("wangsj", "发布 报送材料\n请报送。\n截止 今天21:00")
    first = chat.say("zhangwei", "收到")
    assert "已确认收到 #1" in first and "2026年11月21日 19:45" in first
    clock.advance(minutes=5)
    again = chat.say("zhangwei", "收到 1")
    assert "已于 2026年11月21日 19:45 确认" in again
    clock.advance(hours=2)
    late = chat.say("liuyang", "收到１")  # full-width digit
    assert "逾期" in late
    with db.session() as s:
        d = s.scalars(select(Delivery).where(Delivery.acknowledged_at.is_not(None))).all()
        assert len(d) == 2 and sum(x.late for x in d) == 1


def test_ack_of_an_unknown_number_or_of_someone_elses_task(chat, db):
    _seed(db)
    chat.say("lina", "发布 支部内部通知\n请阅。")  # 综合处党支部 only
    assert chat.say("zhangwei", "收到 1").startswith("已确认收到 #1")
    assert chat.say("zhaolei", "收到 1") == "#1 不是发给您的任务，无需确认。"  # 财务处党支部
    assert chat.say("zhaolei", "收到 9").startswith("没有编号为 #9 的通知")
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Delivery).where(Delivery.acknowledged_at.is_not(None))) == 1


def test_card_button_acknowledges_and_queues_card_update(chat, db):
    _seed(db)
    chat.say("wangsj", PUBLISH)
    assert chat.tap("zhaolei", "directive-1", "ack:1")
    with db.session() as s:
        d = s.scalar(select(Delivery).join(Delivery.person).where(Delivery.directive_id == 1, Delivery.acknowledged_at.is_not(None)))
        assert d is not None and d.person.name == "赵磊"
        update = s.scalar(select(OutboxMessage).where(OutboxMessage.recipient == "zhaolei",
                                                      OutboxMessage.payload["type"].as_string() == "card_update"))
        assert update is not None and update.payload["replace_text"] == "已确认 2026年11月21日 19:45"


def test_complete_with_note(chat, db):
    _seed(db)
    chat.say("wangsj", PUBLISH)
    reply = chat.say("lina", "完成 1 已组织全体党员学习")
    assert "办结" in reply and "已组织全体党员学习" in reply
    assert "已于" in chat.say("lina", "完成 1")
    with db.session() as s:
        d = s.scalar(select(Delivery).where(Delivery.status == DeliveryStatus.COMPLETED))
        assert d.note == "已组织全体党员学习" and d.acknowledged_at is not None


def test_progress_first_line_and_levels_and_visibility(chat, db, clock):
    _seed(db)
    chat.say("wangsj", PUBLISH)
    clock.advance(minutes=7)
    chat.say("zhangwei", "收到 1")
    report = chat.say("wangsj", "进度 1")
    lines = report.split("\n")
    assert lines[0] == "已确认 1/6"
    assert any(line.startswith("机关党委：已确认 1/6") for line in lines)
    assert any("第一党总支：已确认 1/6" in line for line in lines)
    branch = next(line for line in lines if "综合处党支部" in line)
    assert "未确认：" in branch and "刘洋" in branch and "首位确认用时 7 分钟" in branch
    assert "无法送达：周敏" in branch
    # A branch secretary sees their part; the liaison of both branches sees them; a member sees nothing.
    assert chat.say("chenjing", "进度 1").split("\n")[0] == "已确认 0/2"
    assert chat.say("sunll", "进度 1").split("\n")[0] == "已确认 1/6"
    assert "书记" in chat.say("zhangwei", "进度 1")


def test_todo_lists_unacknowledged_directives(chat, db):
    _seed(db)
    chat.say("wangsj", PUBLISH)
    todo = chat.say("zhangwei", "待办")
    assert "#1 学习贯彻全会精神" in todo and "截止 2026年12月1日 17:00" in todo
    chat.say("zhangwei", "收到")
    assert "没有待办" in chat.say("zhangwei", "待办")


def test_nudge_reminds_only_the_silent_once_per_half_hour(chat, db, clock):
    _seed(db)
    chat.say("wangsj", PUBLISH)
    chat.say("zhangwei", "收到")
    reply = chat.say("wangsj", "催办 1")
    assert "已向 4 位" in reply  # 李娜 刘洋 陈静 赵磊; not 张伟 (acknowledged), not 周敏 (no channel)
    with db.session() as s:
        nudges = s.scalars(select(OutboxMessage).where(OutboxMessage.subject_type == "nudge")).all()
        assert sorted(m.recipient for m in nudges) == ["chenjing", "lina", "liuyang", "zhaolei"]
    clock.advance(minutes=10)
    assert "后才能再次催办" in chat.say("wangsj", "催办 1")
    clock.advance(minutes=21)
    assert "已向 4 位" in chat.say("wangsj", "催办 1")
    assert "后才能再次催办" in chat.say("chenjing", "催办 1")  # her part was just reminded


def test_group_robot_gets_a_summary(chat, db):
    _seed(db)
    with db.session() as s:
        from models.org import find_by_path

        find_by_path(s, "机关党委/第一党总支").webhook_key = "robot-key-1"
    chat.say("wangsj", PUBLISH)
    with db.session() as s:
        hook = s.scalar(select(OutboxMessage).where(OutboxMessage.channel == "webhook"))
        assert hook.recipient == "robot-key-1"
        assert "学习贯彻全会精神" in hook.payload["text"] and "6 位" in hook.payload["text"]


def test_official_account_follower_reached_only_inside_48_hour_window(chat, db, clock):
    _seed(db)
    from models.identity import Channel, ChannelIdentity
    from tests.factories import BRANCH_B

    with db.session() as s:
        fresh = person(s, "吴芳", None, BRANCH_B)
        stale = person(s, "郑强", None, BRANCH_B)
        s.add(ChannelIdentity(channel=Channel.MP, external_id="o-fresh", person_id=fresh.id,
                              last_inbound_at=clock() - timedelta(hours=47)))
        s.add(ChannelIdentity(channel=Channel.MP, external_id="o-stale", person_id=stale.id,
                              last_inbound_at=clock() - timedelta(hours=49)))
    chat.say("wangsj", PUBLISH)
    with db.session() as s:
        mp_rows = s.scalars(select(OutboxMessage).where(OutboxMessage.channel == "mp")).all()
        assert [m.recipient for m in mp_rows] == ["o-fresh"]
        assert mp_rows[0].payload["type"] == "text" and "收到 1" in mp_rows[0].payload["text"]
        d = s.scalar(select(Delivery).join(Delivery.person).where(Delivery.person.has(name="郑强")))
        assert d.status is DeliveryStatus.UNREACHABLE and d.reason == UnreachableReason.MP_WINDOW


def test_title_body_and_note_keep_their_punctuation_as_typed(chat, db):
    _seed(db)
    chat.say("wangsj", "发布　关于“七一”活动的通知\n请各支部：一、组织学习；二、报送材料（附件）。\n截止　１２月１日")
    with db.session() as s:
        d = s.get(Directive, 1)
        assert d.title == "关于“七一”活动的通知"
        assert d.body == "请各支部：一、组织学习；二、报送材料（附件）。"
        assert d.deadline is not None
    chat.say("lina", "完成　１，已报送材料（共３份）！")
    with db.session() as s:
        assert s.scalar(select(Delivery.note).where(Delivery.note.is_not(None))) == "已报送材料（共３份）！"


def test_progress_lists_each_branch_under_its_own_general_branch(chat, db):
    _seed(db)
    with db.session() as s:
        person(s, "何军", "hejun", "机关党委/第二党总支/后勤处党支部")
    chat.say("wangsj", PUBLISH)
    lines = chat.say("wangsj", "进度 1").split("\n")[2:]
    names = [line.strip().split("：")[0] for line in lines]
    first, second = names.index("第一党总支"), names.index("第二党总支")
    assert first < names.index("综合处党支部") < names.index("财务处党支部") < second < names.index("后勤处党支部")


def test_progress_of_a_large_tree_fits_one_message_and_can_be_narrowed(chat, db):
    with db.session() as s:
        person(s, "王书记", "wangsj", "机关党委", Role.SECRETARY)
        for g in range(3):
            for b in range(30):
                for m in range(3):
                    person(s, f"党员{g}{b:02d}{m}", f"u{g}{b:02d}{m}", f"机关党委/第{g + 1}党总支/第{b + 1:02d}党支部")
    chat.say("wangsj", PUBLISH)
    chat.say("u1000", "收到 1")
    report = chat.say("wangsj", "进度 1")
    assert report.split("\n")[0] == "已确认 1/270"
    assert len(report.encode("utf-8")) <= 2000
    assert "其余" in report and "进度 1 组织名称" in report
    narrowed = chat.say("wangsj", "进度 1 第2党总支")
    lines = narrowed.split("\n")
    assert lines[0] == "已确认 1/90"
    assert lines[2].startswith("第2党总支：已确认 1/90")
    assert "找不到" in chat.say("wangsj", "进度 1 不存在党支部") or "没有找到" in chat.say("wangsj", "进度 1 不存在党支部")


@needs_postgres
def test_concurrent_acknowledgements_of_one_task_record_one(chat, db, clock):
    """Typing 收到 while tapping the card's button (two messages, not a retry): one acknowledgement,
    one event, and every answer names the same recorded time."""
    people = _seed(db)
    chat.say("wangsj", PUBLISH)
    zhangwei, n = people["zhangwei"].id, 8
    barrier, results = threading.Barrier(n), []

    def one(i: int) -> None:
        with db.session() as s:
            barrier.wait()
            results.append(acknowledge(s, 1, zhangwei, at=clock() + timedelta(seconds=i), via="text"))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [r for r in results if r.result is AckResult.ACKNOWLEDGED]
    assert len(won) == 1 and sum(r.result is AckResult.ALREADY for r in results) == n - 1
    assert {r.acknowledged_at for r in results} == {won[0].acknowledged_at}
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Event).where(Event.kind == "delivery.acknowledged")) == 1
        task = s.scalar(select(Delivery).where(Delivery.directive_id == 1, Delivery.person_id == zhangwei))
        assert task.acknowledged_at == won[0].acknowledged_at and task.status is DeliveryStatus.ACKNOWLEDGED
