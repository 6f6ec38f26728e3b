"""Long items reach WeCom within its limits, and 详情 编号 shows the full text to those who may see it.

Limits (developer.work.weixin.qq.com/document/path/90236): template card main_title.title ≤ 36
characters, sub_title_text ≤ 160; text ≤ 2,048 bytes. The fake refuses anything longer."""

from __future__ import annotations

from bot import worker
from tests.bot.conftest import wechat_settings  # noqa: F401  (fixture)
from tests.fakewx.conftest import fake_wechat  # noqa: F401  (fixture)
from tests.handlers.test_directive_delivery import wired  # noqa: F401  (fixture)

LONG_TITLE = "关于深入学习贯彻党的二十届四中全会精神并结合本单位实际认真做好年终各项工作的通知"  # 40 characters
LONG_BODY = "\n".join(f"{i}. 各支部要组织党员逐段学习全会公报原文，结合本支部实际开展专题研讨，形成学习记录并按时报送。"
                      for i in range(1, 41))  # about 6 KB


def _card(fake, userid):
    return [m["body"]["template_card"] for m in fake.state.messages_for(userid) if m["msgtype"] == "template_card"]


def test_a_long_directive_reaches_wecom_as_a_summary_and_details_show_it_whole(wired, fake_wechat):  # noqa: F811
    _app, runtime, chat = wired
    assert chat.say("lina", f"发布 {LONG_TITLE}\n{LONG_BODY}").startswith("已发布 #1")
    worker.drain_once(runtime)
    card = _card(fake_wechat, "zhangwei")[0]  # the fake accepted it: within its limits
    assert len(card["main_title"]["title"]) <= 36 and card["main_title"]["title"].endswith("…")
    assert len(card["sub_title_text"]) <= 160
    assert card["sub_title_text"].endswith("发送「详情 1」查看全文")

    first = chat.say("zhangwei", "详情 1")
    assert first.startswith(f"[通知] #1「{LONG_TITLE}」")
    worker.drain_once(runtime)
    rest = [m["body"]["text"]["content"] for m in fake_wechat.state.messages_for("zhangwei") if m["msgtype"] == "text"]
    whole = first + "".join(rest)
    for line in LONG_BODY.split("\n"):
        assert line in whole  # every line of the body, across the reply and its follow-ups


def test_details_are_refused_to_those_who_may_not_see_the_item(wired):  # noqa: F811
    _app, _runtime, chat = wired
    chat.say("lina", f"发布 {LONG_TITLE}\n正文")
    assert "您无权查看 #1 的详情" in chat.say("zhaolei", "详情 1")  # another branch
    assert "您无权查看 #1 的详情" in chat.say("wangsj", "详情 1")  # secretary above, not of the issuing branch
    assert chat.say("lina", "详情 1").startswith("[通知] #1")  # the issuing branch's secretary
    assert "没有编号为 #9 的通知、学习或会议" in chat.say("lina", "详情 9")
    for bad in ("详情", "详情 一", "详情 " + "9" * 10000, "详情 ፩"):
        assert "例如：详情 12" in chat.say("lina", bad)


def test_meeting_details_for_invitees_and_the_branch_committee(wired):  # noqa: F811
    _app, _runtime, chat = wired
    chat.say("lina", "会议 支部党员大会 明天19:00 党员活动室")
    reply = chat.say("zhangwei", "详情 1")
    assert reply.startswith("[会议] #1 综合处党支部 支部党员大会")
    assert "时间：2026年11月22日 19:00" in reply and "地点：党员活动室" in reply
    assert "您无权查看 #1 的详情" in chat.say("zhaolei", "详情 1")


def test_long_text_pushes_and_official_account_text_are_cut_with_the_detail_command(wired, fake_wechat):  # noqa: F811
    from models.outbox import OutboxChannel, enqueue, text_payload

    _app, runtime, _chat = wired
    long_text = "#7 提醒：" + "请按时参加学习。" * 400  # about 9.6 KB
    with runtime.db.session() as s:
        enqueue(s, OutboxChannel.WECOM, "zhangwei", text_payload(long_text), at=runtime.now())
    worker.drain_once(runtime)
    sent = [m["body"]["text"]["content"] for m in fake_wechat.state.messages_for("zhangwei")]
    assert len(sent) == 1 and len(sent[0].encode()) <= 2048
    assert sent[0].startswith("#7 提醒：") and sent[0].endswith("…\n发送「详情 7」查看全文")


def test_details_of_a_withdrawn_directive_and_a_cancelled_meeting_say_so(wired):  # noqa: F811
    """An old card still shows the item as open: 详情 must not read as if it were."""
    _app, _runtime, chat = wired
    chat.say("lina", "发布 报送年度总结 截止 12月20日")
    assert chat.say("lina", "撤回 1 内容有误").startswith("已撤回通知 #1")
    reply = chat.say("zhangwei", "详情 1")
    assert reply.startswith("[通知] #1「报送年度总结」")
    assert "已于 2026年11月21日 19:45 撤回，原因：内容有误。此项无需再办理。" in reply

    chat.say("lina", "会议 党课 明天19:00 报告厅")
    assert "撤回" not in chat.say("zhangwei", "详情 2") and "取消" not in chat.say("zhangwei", "详情 2")
    assert chat.say("lina", "取消 2 报告厅检修").startswith("已取消会议 #2")
    reply = chat.say("zhangwei", "详情 2")
    assert reply.startswith("[会议] #2 综合处党支部 党课")
    assert "已于 2026年11月21日 19:45 取消，原因：报告厅检修。无需参加，也无需请假。" in reply
