"""One way to divide a long text (bot/texts/parts.py): between lines, a long line on a character
boundary, every part within the limit with its （n/N） line, and the Official Account's cap."""

from __future__ import annotations

import pytest

from bot.texts.parts import MOST_PARTS, MP_MOST_PARTS, marker, part_payloads, parts, size, split_lines
from models.identity import Channel


def _unmarked(found: list[str]) -> list[str]:
    return [p.partition("\n")[2] for p in found]


def test_a_text_that_fits_is_one_message_without_a_marker():
    assert parts("收到\n谢谢", 2048) == ["收到\n谢谢"]
    assert part_payloads("收到") == [{"type": "text", "text": "收到"}]


def test_lines_are_kept_whole_and_rejoin_into_the_text():
    text = "\n".join(f"第{i:03d}处党支部：党员 12 人，人均 8.5 分" for i in range(200))
    pieces = split_lines(text, 500)
    assert all(size(p) <= 500 for p in pieces) and "\n".join(pieces) == text
    assert all(p.startswith("第") for p in pieces)  # never the middle of a line


def test_empty_lines_between_sections_survive_the_cut():
    text = ("甲" * 100 + "\n\n") * 20
    assert "\n".join(split_lines(text, 400)) == text


def test_a_line_longer_than_the_limit_is_cut_on_a_character_boundary_after_what_came_before():
    before = "前一行" * 100  # 900 bytes
    long_line = "长🎉" * 400  # 2,800 bytes: three- and four-byte characters
    pieces = split_lines(f"{before}\n{long_line}", 1000)
    assert pieces[0] == before  # flushed first, not glued to the first cut (which overflowed)
    assert all(size(p) <= 1000 for p in pieces)
    assert "".join(pieces[1:]) == long_line  # no byte of a character lost or split


def test_every_part_fits_with_its_marker_and_the_markers_count_right():
    text = "\n".join("党员" * 30 + str(i) for i in range(400))  # about 73 KB: over 9 parts
    found = parts(text, 2048)
    assert len(found) >= 10  # the marker widens to two digits, and the budget with it
    assert all(size(p) <= 2048 for p in found)
    assert [p.partition("\n")[0] + "\n" for p in found] == [marker(n, len(found)) for n in range(1, len(found) + 1)]
    assert "\n".join(_unmarked(found)) == text


def test_the_official_account_gets_at_most_its_window_and_is_told_what_was_left_out():
    text = "\n".join(f"第{i:03d}行：" + "内容" * 40 for i in range(300))
    assert len(parts(text)) > MP_MOST_PARTS
    found = [p["text"] for p in part_payloads(text, Channel.MP)]
    assert len(found) == MP_MOST_PARTS and all(size(p) <= 2048 for p in found)
    assert found[-1].startswith(f"（{MP_MOST_PARTS}/{MP_MOST_PARTS}）\n")
    sent = "\n".join(_unmarked(found)).rsplit("\n", 1)[0]
    shown = sent.count("\n") + 1
    assert text.startswith(sent + "\n")
    assert found[-1].endswith(f"……另有 {300 - shown} 行因公众号消息条数所限未能发送，完整内容请向党委办公室索取。")
    shorter = "\n".join(text.split("\n")[:100])  # 14 KB: 8 parts, all of them on WeCom
    assert [p["text"] for p in part_payloads(shorter, Channel.WECOM)] == parts(shorter)
    assert len(parts(shorter)) > MP_MOST_PARTS


def test_no_channel_gets_more_than_twenty_parts():
    text = "\n".join(f"第{i:04d}处党支部：党员 12 人，人均 8.5 分，获星 25%" for i in range(5000))  # 5,000 organisations
    found = [p["text"] for p in part_payloads(text, Channel.WECOM)]
    assert len(found) == MOST_PARTS and all(size(p) <= 2048 for p in found)
    shown = "\n".join(_unmarked(found)).count("\n")  # lines sent (the note's line not counted)
    assert found[-1].endswith(f"……另有 {5000 - shown} 行因内容过长未能发送，完整内容请向党委办公室索取。")


def test_a_limit_too_small_for_a_character_is_refused():
    with pytest.raises(ValueError):
        split_lines("党", 3)
