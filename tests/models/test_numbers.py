"""One number sequence shared by every kind of item."""

from __future__ import annotations

import pytest

from models.numbers import ItemKind, allocate, attach, lookup


def test_numbers_come_from_one_sequence_across_kinds(db):
    with db.session() as s:
        first = allocate(s, ItemKind.DIRECTIVE, 7)
        second = allocate(s, ItemKind.MEETING)
        third = allocate(s, ItemKind.SELF_REPORT, 1)
        attach(s, second, 3)
    assert first < second < third
    with db.session() as s:
        assert (lookup(s, first).kind, lookup(s, first).item_id) == (ItemKind.DIRECTIVE, 7)
        assert (lookup(s, second).kind, lookup(s, second).item_id) == (ItemKind.MEETING, 3)
        assert lookup(s, third + 1) is None
        with pytest.raises(ValueError):
            attach(s, third + 100, 1)


def test_a_rolled_back_number_belongs_to_nothing(db):
    with pytest.raises(RuntimeError), db.session() as s:
        lost = allocate(s, ItemKind.DIRECTIVE)
        raise RuntimeError("the item's transaction fails")
    with db.session() as s:
        assert lookup(s, lost) is None
        kept = allocate(s, ItemKind.DIRECTIVE, 9)
        assert kept >= lost and lookup(s, kept).item_id == 9
