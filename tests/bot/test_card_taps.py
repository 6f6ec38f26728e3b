"""Card taps as WeCom treats them: it ignores a passive reply to a `template_card_event`, so the
answer to a tap is pushed to the tapper through the outbox, once however often WeChat retries, and
the callback answers with nothing (developer.work.weixin.qq.com/document/path/90240, 90241)."""

from __future__ import annotations

from sqlalchemy import select

from models.directive import Delivery
from models.outbox import OutboxMessage
from tests.bot.test_dedupe import (  # noqa: F401  (fixtures used by name)
    PUBLISH,
    bot,
    counts,
    db,
    events,
    failing_once,
    post,
    pushed_texts,
    say,
    store_mode,
    wecom,
)


def _acknowledged(database) -> set[int]:
    with database.session() as s:
        return {d.directive_id for d in s.scalars(select(Delivery).join(Delivery.person).where(
            Delivery.acknowledged_at.is_not(None)))}


def test_a_tap_gets_no_passive_reply_and_its_answer_is_pushed_once_across_retries(bot, db, wecom):  # noqa: F811
    assert say(bot, wecom, wecom.text("wangsj", PUBLISH)).startswith("已发布 #1")
    tap = wecom.card_tap("zhaolei", "directive-1", "ack:1")
    for _ in range(3):  # the first delivery and WeChat's retries
        response = post(bot, tap)
        assert response.data == b""  # nothing WeCom would drop
        assert wecom.answer(tap, response.data) is None
    assert wecom.dropped_passive_replies == 0
    answers = pushed_texts(db, "zhaolei")
    assert len(answers) == 1 and answers[0].startswith("已确认收到 #1")
    with db.session() as s:
        kinds = [m.payload["type"] for m in s.scalars(select(OutboxMessage).where(OutboxMessage.recipient == "zhaolei"))]
    assert sorted(kinds) == ["card", "card_update", "text"]  # the card, its update as before, the answer
    assert events(db, "delivery.acknowledged") == 1


def test_a_tap_whose_handler_fails_is_answered_by_push_and_its_retry_processed(bot, db, wecom):  # noqa: F811
    say(bot, wecom, wecom.text("wangsj", PUBLISH))
    tap = wecom.card_tap("zhaolei", "directive-1", "ack:1")
    with failing_once("card_tap", RuntimeError("boom")):
        response = post(bot, tap)
        assert response.data == b""
        assert pushed_texts(db, "zhaolei") == ["抱歉，系统刚才处理您的消息时出了点问题，已记录下来。请稍后再试一次。"]
        assert _acknowledged(db) == set()
        post(bot, tap)  # the retry finds the claim released and is processed
    assert _acknowledged(db) == {1}
    assert pushed_texts(db, "zhaolei")[-1].startswith("已确认收到 #1")


def test_two_taps_on_two_cards_in_the_same_second_are_two_events(bot, db, wecom, clock):  # noqa: F811
    say(bot, wecom, wecom.text("wangsj", PUBLISH))
    say(bot, wecom, wecom.text("wangsj", PUBLISH.replace("学习贯彻全会精神", "报送学习心得")))
    at = clock.timestamp()
    before = counts(db)["inbound_receipt"]
    post(bot, wecom.card_tap("zhaolei", "directive-1", "ack:1", at=at))
    post(bot, wecom.card_tap("zhaolei", "directive-2", "ack:2", at=at))
    assert _acknowledged(db) == {1, 2}
    answers = pushed_texts(db, "zhaolei")
    assert [a[:8] for a in answers] == ["已确认收到 #1", "已确认收到 #2"]
    assert counts(db)["inbound_receipt"] == before + 2
    assert events(db, "delivery.acknowledged") == 2
