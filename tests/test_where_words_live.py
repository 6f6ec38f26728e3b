"""Models and scheduler jobs decide; `bot.texts` words. No module of models/ imports the bot, and
no Chinese sentence is left in models/ or scheduler/ outside labels (STYLE.md "Where words live").
The working-day calendar (scheduler/calendar.py) words its own warning and is left out; the roster
importer's wording moved to bot/roster/, so models/roster.py is checked like every other model."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from models.reminder import STALE_LABELS, ReminderKind, SkipReason

ROOT = Path(__file__).resolve().parent.parent
CJK = re.compile(r"[\u4e00-\u9fff]")
EXEMPT = {"scheduler/calendar.py"}
# Display labels: a module-level table whose name says so, or a `label` property; and the words
# people type that a model recognises (`*_NAMES`, `*_FEATURES`: option and feature names).
LABEL_TABLE = re.compile(r"_LABELS$|_SUFFIXES$|_NAMES$|_FEATURES$")
# The reason recorded on a Delivery row that no channel can reach (kept with the delivery rows).
RECORDED_REASONS = {"UNREACHABLE_MP_WINDOW", "UNREACHABLE_NO_CHANNEL", "LEFT_REASON"}


def _modules(*folders: str) -> list[Path]:
    found = [p for folder in folders for p in sorted((ROOT / folder).rglob("*.py"))]
    return [p for p in found if p.relative_to(ROOT).as_posix() not in EXEMPT]


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _allowed(tree: ast.Module) -> set[int]:
    """Constants inside a label table, a `label` property or a recorded reason."""
    ids = set()
    for node in ast.walk(tree):
        inside = None
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {t.id for t in targets if isinstance(t, ast.Name)}
            if any(LABEL_TABLE.search(n) for n in names) or names & RECORDED_REASONS:
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


def test_every_skip_reason_and_late_kind_has_its_note():
    assert all(reason.label for reason in SkipReason)
    assert all(SkipReason.STALE.note(kind).startswith("补发时已过时：") and kind in STALE_LABELS
               for kind in ReminderKind)
