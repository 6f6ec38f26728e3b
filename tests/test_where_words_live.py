"""Models and scheduler jobs decide; `bot.texts` words. No module of models/ imports the bot, and
no Chinese is left in models/ or scheduler/ outside docstrings, comments and labels (STYLE.md
"Where words live"). What a model records is a code (a delivery's `UnreachableReason`, a reminder
row's `SkipReason`), worded where a person reads it; every module is checked, none is exempt."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from bot.texts.directive import UNREACHABLE_LABELS, delivery_reason
from bot.texts.reminders import SKIP_LABELS, STALE_LABELS, skip_reason
from models.directive import UnreachableReason
from models.reminder import ReminderKind, SkipReason

ROOT = Path(__file__).resolve().parent.parent
CJK = re.compile(r"[\u4e00-\u9fff]")
# Display labels of a model's own names: a module-level table whose name says so, or a `label`
# property (an organisation's kind, a role, a meeting type); and the words people type that a model
# recognises (`*_NAMES`, `*_SUFFIXES`, `*_FEATURES`: kind suffixes, option and feature names).
LABEL_TABLE = re.compile(r"_LABELS$|_SUFFIXES$|_NAMES$|_FEATURES$")


def _modules(*folders: str) -> list[Path]:
    return [p for folder in folders for p in sorted((ROOT / folder).rglob("*.py"))]


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _allowed(tree: ast.Module) -> set[int]:
    """Constants inside a label table or a `label` property."""
    ids = set()
    for node in ast.walk(tree):
        inside = None
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {t.id for t in targets if isinstance(t, ast.Name)}
            if any(LABEL_TABLE.search(n) for n in names):
                inside = node.value
        elif isinstance(node, ast.FunctionDef) and node.name == "label":
            inside = node
        if inside is not None:
            ids |= {id(c) for c in ast.walk(inside) if isinstance(c, ast.Constant)}
    return ids


def _sentences(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string constant with Chinese in it that is no docstring and no label."""
    tree = ast.parse(source)
    skip = _docstrings(tree) | _allowed(tree)
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and CJK.search(node.value)
            and id(node) not in skip]


def test_no_chinese_sentence_in_models_or_scheduler():
    found = [f"{path.relative_to(ROOT)}:{line}: {text!r}" for path in _modules("models", "scheduler")
             for line, text in _sentences(path.read_text(encoding="utf-8"))]
    assert found == []


def test_the_guard_finds_a_sentence_and_passes_labels_and_docstrings():
    source = ('"""模块说明"""\nKIND_LABELS = {"a": "党委"}\n\n\nclass K:\n    @property\n    def label(self):\n'
              '        return {"x": "待审批"}["x"]\n\n\ndef notice(n):\n    """通知。"""\n    return f"会议 {n} 已结束"\n')
    assert sorted(_sentences(source)) == [(13, " 已结束"), (13, "会议 ")]


def test_models_never_import_the_bot():
    found = []
    for path in _modules("models"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in names if n.split(".")[0] == "bot"]
    assert found == []


def test_the_guard_finds_a_logged_sentence_and_a_recorded_reason():
    source = ('import logging\nlog = logging.getLogger(__name__)\nLEFT_REASON = "已转出"\n\n\n'
              'def warn(year):\n    log.warning("节假日数据未覆盖 %s 年", year)\n')
    assert sorted(_sentences(source)) == [(3, "已转出"), (7, "节假日数据未覆盖 %s 年")]


def test_every_recorded_code_has_its_words():
    assert set(SKIP_LABELS) == set(SkipReason) and set(STALE_LABELS) == set(ReminderKind)
    assert all(skip_reason(SkipReason.STALE, kind).startswith("补发时已过时：") for kind in ReminderKind)
    assert set(UNREACHABLE_LABELS) == set(UnreachableReason)
    assert [delivery_reason(r.value) for r in UnreachableReason] == [UNREACHABLE_LABELS[r] for r in UnreachableReason]
    assert delivery_reason("企业微信账号未激活（unlicenseduser）") == "企业微信账号未激活（unlicenseduser）"  # a send's own
