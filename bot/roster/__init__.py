"""Roster import (SPEC §2.5): the organisation tree and its people from a CSV or XLSX file.

`import_roster(session, path, now=...)` reads the whole file (`read`), validates every row against
the file itself and the database and plans the result (`plan`), computes what would change
(`changes`) and only then writes it, in the caller's transaction (`apply`). Any bad row aborts the
import with a `RosterError` listing every bad row as `第 N 行：原因` (N is the row number the secretary
sees in Excel), and nothing is written. `dry_run=True` stops before writing: the report says what
the import would change, and the database is not touched. Importing the same file again writes
nothing at all, not even an event. `summary.render_report` words the report.

Reads are one query per table; writes are bulk statements, so the objects the caller's session
already holds are expired at the end.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.roster.apply import apply
from bot.roster.changes import compute
from bot.roster.plan import Planner
from bot.roster.read import XLSX_SUFFIXES, RosterError, parse, read_table
from bot.roster.report import AbsentPerson, ImportReport, build_report
from bot.roster.summary import render_report
from models.roster import RosterSnapshot

__all__ = ["AbsentPerson", "ImportReport", "RosterError", "import_roster", "render_report", "resolve_org"]

_ADVISORY_LOCK_KEY = 0x5A485F524F53  # "ZH_ROS": one roster import at a time per database


def resolve_org(snapshot: RosterSnapshot, text: str) -> str:
    """An organisation given as a full path or as a name unique in the tree (SPEC §2.4)."""
    path = "/".join(part.strip() for part in text.strip().strip("/").split("/"))
    if path in snapshot.orgs:
        return path
    matches = sorted(p for p in snapshot.orgs if p.endswith("/" + path))
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise RosterError(f"有 {len(matches)} 个组织名为「{text}」：{'、'.join(matches[:5])}，请写完整路径")
    raise RosterError(f"系统中没有组织「{text}」：--under 须是已有的组织（完整路径，或树中唯一的名称）")


def import_roster(session: Session, path: Path, *, now: datetime, under: str | None = None, dry_run: bool = False,
                  tz: ZoneInfo | None = None) -> ImportReport:
    """Validate the whole file, then create or update organisations and people in the caller's transaction."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    path = Path(path)
    raw = path.read_bytes()
    parsed = parse(read_table(path, raw), is_xlsx=path.suffix.lower() in XLSX_SUFFIXES)
    if not parsed.rows:
        raise RosterError("名册中没有任何人员行：表头下面应是每人一行（组织、姓名 等）")
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_ADVISORY_LOCK_KEY)))
    snapshot = RosterSnapshot.load(session)
    top = resolve_org(snapshot, under) if under else None
    plan = Planner(parsed.rows, parsed.present, snapshot, under=top, is_xlsx=parsed.is_xlsx).plan()
    today = now.astimezone(tz or ZoneInfo("Asia/Shanghai")).date()
    changes = compute(plan, snapshot, today=today)
    report = build_report(plan, changes, rows=len(parsed.rows), ignored=parsed.ignored,
                          footer_rows=parsed.footer_rows, dry_run=dry_run)
    if dry_run:
        return report
    org_ids = {p: oid for p, (oid, _kind) in snapshot.orgs.items()}
    apply(session, changes, org_ids, now=now, today=today, counts=report.counts(),
          source={"file": path.name, "sha256": hashlib.sha256(raw).hexdigest()})
    session.expire_all()
    return report
