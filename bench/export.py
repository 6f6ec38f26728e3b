"""一事一档 for a 100,000-recipient directive: seconds to read the records and write the DOCX.

Seeds the fan-out benchmark's organisation (bench/fanout_seed.py: 机关党委 → 二级党委 → 党总支 →
1,000 branches of 100 members), issues one directive to all of it through models.directive.issue,
marks every delivery sent, acknowledges 70 % of them at spread-out times (5 % late) and completes
5 % with a note, all with bulk UPDATEs; then times `matter_of` (reading) and `matter_docx`
(writing) the way `python -m bot export 1` does, and reads the file back to check it holds
per-organisation summaries, not 100,000 lines. Goal: under 10 s. Figures in docs/BENCHMARKS.md.

    .venv/bin/python bench/export.py [--members 100000 --branches 1000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_export"


class _Out:
    """What `fanout_seed.seed` sends its result through, in this process."""

    def send(self, value) -> None:
        self.value = value

    def close(self) -> None:
        pass


def prepare(url: str, members: int, branches: int) -> tuple[int, float]:
    """Seed, issue and play out the directive; (its number, seconds spent preparing)."""
    from sqlalchemy import select, text

    from bench.fanout_seed import recreate_database, seed
    from models.base import Database
    from models.directive import issue
    from models.org import Organisation
    from models.outbox import text_payload
    from models.person import Person

    t0 = time.perf_counter()
    recreate_database(url)
    out = _Out()
    seed(url, members, branches, out)
    tree, _ = out.value
    db = Database(url)
    now = datetime(2026, 11, 21, 11, 45, tzinfo=UTC)
    with db.session() as s:
        top = s.scalars(select(Organisation).where(Organisation.path == "机关党委")).one()
        issuer = s.scalars(select(Person).where(Person.wecom_userid == tree.top_secretary)).one()
        directive = issue(s, org=top, issuer=issuer, title="关于开展主题教育专题学习的通知",
                          body="请各支部组织专题学习。\n形成学习记录并报送。", deadline=now + timedelta(days=7),
                          now=now, render=lambda d, role, channel: text_payload(f"#{d.id} {d.title}"))
        number = directive.id
    with db.session() as s:
        # Sent a minute later; 70 % acknowledged over the week (every 20th after the deadline); 5 % completed.
        s.execute(text("UPDATE delivery SET status = 'sent', sent_at = :at WHERE directive_id = :d"),
                  {"at": now + timedelta(minutes=1), "d": number})
        s.execute(text("""
            UPDATE delivery SET status = CASE WHEN id % 20 = 3 THEN 'completed' ELSE 'acknowledged' END,
                   acknowledged_at = :at + (id % 10080) * interval '1 minute' + CASE WHEN id % 20 = 7
                                     THEN interval '8 days' ELSE interval '0' END,
                   late = (id % 20 = 7)
             WHERE directive_id = :d AND role = 'task' AND id % 10 < 7"""), {"at": now, "d": number})
        s.execute(text("""
            UPDATE delivery SET completed_at = acknowledged_at + interval '2 hours', note = '已组织支部专题学习，形成记录'
             WHERE directive_id = :d AND status = 'completed'"""), {"d": number})
        s.execute(text("""INSERT INTO event (at, subject_type, subject_id, kind, data)
                          VALUES (:at, 'directive', :d, 'delivery.sent', :data)"""),
                  {"at": now + timedelta(minutes=1), "d": number, "data": f'{{"count": {members}}}'})
    db.dispose()
    return number, time.perf_counter() - t0


def measure(url: str, number: int, runs: int) -> dict:
    from docx import Document

    from bot.reports.docx_file import matter_docx
    from bot.reports.matter import matter_of
    from models.base import Database

    tz = ZoneInfo("Asia/Shanghai")
    db = Database(url)
    reads, writes, data, matter = [], [], b"", None
    for _ in range(runs):
        t0 = time.perf_counter()
        with db.read_session() as s:
            matter = matter_of(s, number, tz)
        t1 = time.perf_counter()
        data = matter_docx(matter, tz)
        t2 = time.perf_counter()
        reads.append(t1 - t0)
        writes.append(t2 - t1)
    db.dispose()
    doc = Document(io.BytesIO(data))
    rows = sum(len(t.rows) for t in doc.tables)
    return {"read": min(reads), "write": min(writes), "total": min(r + w for r, w in zip(reads, writes, strict=True)),
            "bytes": len(data), "table_rows": rows, "paragraphs": len(doc.paragraphs),
            "steps": len(matter.steps), "organisations": len(matter.summaries)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--branches", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    number, prepared = prepare(args.database_url, args.members, args.branches)
    print(f"prepared #{number}: {args.members} recipients in {args.branches} branches ({prepared:.1f} s)")
    result = measure(args.database_url, number, args.runs)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {datetime.now(UTC):%Y-%m-%d}")
    print(f"read {result['read']:.2f} s + write {result['write']:.2f} s = {result['total']:.2f} s (best of {args.runs}); "
          f"{result['bytes'] / 1024:.0f} KiB, {result['table_rows']} table rows, {result['paragraphs']} paragraphs, "
          f"{result['steps']} steps, {result['organisations']} organisations summarised")
    print("goal < 10 s:", "met" if result["total"] < 10 else "NOT met")
    return 0 if result["total"] < 10 else 1


if __name__ == "__main__":
    raise SystemExit(main())
