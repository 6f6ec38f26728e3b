"""Points: the quarterly report (季度通报's figures per organisation) over 100,000 members and
10,000,000 ledger entries on PostgreSQL, against a plain GROUP BY over the same table in the same run.

What one run does, on its own PostgreSQL database `bench_points` (dropped, recreated, migrated):

1. seed     — 机关党委 → 50 党总支 → 5,000 党支部 × 20 members = 100,000 members (home memberships),
              and 10,000,000 `points_entry` rows over the quarter's three months, random person,
              category and rule — all with `generate_series` in the database, not the ORM; ANALYZE;
2. baseline — `SELECT person_id, sum(points) FROM points_entry WHERE period BETWEEN … GROUP BY
              person_id`: the floor any per-person report pays;
3. measure  — `bot.reports.points.organisation_figures` for the whole tree (what the quarterly push
              and `report quarterly` compute: members, average, share with stars, self-reports
              verified, per category, for every organisation), then the chat text of the points
              section; best of `--rounds`, alternating with the baseline.

    python bench/points.py [--database-url URL] [--entries N] [--rounds R] [--no-docs]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from fanout_seed import recreate_database  # noqa: E402
from proctools import replace_section  # noqa: E402

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_points"
DOCS = ROOT / "docs" / "BENCHMARKS.md"
SECTION = "## Points"
GOAL_S = 5.0
BRANCHES, PER_BRANCH, GENERALS = 5000, 20, 50


def seed(url: str, entries: int) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    per_general = BRANCHES // GENERALS
    members = BRANCHES * PER_BRANCH
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO organisation (id, name, path, kind, parent_id, created_at) "
                          "VALUES (1, '机关党委', '机关党委', 'committee', NULL, now())"))
        conn.execute(text(
            "INSERT INTO organisation (id, name, path, kind, parent_id, created_at) "
            "SELECT 1 + g, '第' || g || '党总支', '机关党委/第' || g || '党总支', 'general_branch', 1, now() "
            "FROM generate_series(1, :n) g"), {"n": GENERALS})
        conn.execute(text(
            "INSERT INTO organisation (id, name, path, kind, parent_id, created_at) "
            "SELECT 1000 + b, '第' || b || '党支部', '机关党委/第' || (1 + (b - 1) / :per) || '党总支/第' || b || '党支部', "
            "'branch', 2 + (b - 1) / :per, now() FROM generate_series(1, :n) b"), {"n": BRANCHES, "per": per_general})
        conn.execute(text(
            "INSERT INTO person (id, name, category, created_at) "
            "SELECT p, '党员' || p, 'full', now() FROM generate_series(1, :n) p"), {"n": members})
        conn.execute(text(
            "INSERT INTO membership (person_id, organisation_id, kind) "
            "SELECT p, 1000 + 1 + (p - 1) / :per, 'home' FROM generate_series(1, :n) p"),
            {"n": members, "per": PER_BRANCH})
        conn.execute(text("SELECT setval(pg_get_serial_sequence('person', 'id'), :n)"), {"n": members})
        conn.execute(text("SELECT setval(pg_get_serial_sequence('organisation', 'id'), 10000)"))
    # The entries in chunks of a million, each its own transaction (one huge one holds every row's WAL).
    categories = "ARRAY['study','duty','activity','integrity']"
    rules = "ARRAY['study_confirmed','directive_acknowledged','meeting_attended','self_report']"
    chunk = 1_000_000
    for start in range(0, entries, chunk):
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO points_entry (person_id, category, points, rule, source_type, source_id, capped, "
                "reverses_id, period, created_at) "
                f"SELECT 1 + ((g::bigint * 7919) % :members)::int, ({categories})[1 + g % 4], 1 + g % 3, ({rules})[1 + g % 4], "
                "'directive', g, NULL, NULL, '2026-1' || (g % 3), "
                "timestamptz '2026-10-01 00:00+08' + (g % 7776000) * interval '1 second' "
                "FROM generate_series(:a, :b) g"),
                {"members": members, "a": start + 1, "b": min(start + chunk, entries)})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE points_entry"))
        conn.execute(text("ANALYZE"))
    engine.dispose()


def measure(url: str, rounds: int) -> dict:
    from sqlalchemy import text

    from bot.reports.points import make_period, organisation_figures
    from bot.reports.quarterly import QuarterlyScope, points_section
    from models.base import Database
    from models.org import Organisation
    from models.points import summarise
    from models.publication import PublicationKind

    db = Database(url)
    period = make_period(PublicationKind.QUARTERLY, 2026, 4)
    tz = ZoneInfo("Asia/Shanghai")
    baseline, report, section = [], [], []
    # Each month's totals are written once, an hour after it ends (the scheduler's tick): timed apart.
    with db.session() as s:
        s.execute(text("DELETE FROM points_month_total"))
        s.execute(text("UPDATE points_period SET summarised_at = NULL"))
    summaries = []
    for month in ("2026-10", "2026-11", "2026-12"):
        with db.session() as s:
            t0 = time.perf_counter()
            summarise(s, month, at=datetime(2027, 1, 2, tzinfo=UTC))
            s.commit()
            summaries.append(time.perf_counter() - t0)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE points_month_total"))
    for _ in range(rounds):
        with db.session() as s:
            t0 = time.perf_counter()
            rows = s.execute(text("SELECT person_id, sum(points) FROM points_entry "
                                  "WHERE period BETWEEN '2026-10' AND '2026-12' GROUP BY person_id")).all()
            baseline.append(time.perf_counter() - t0)
        with db.session() as s:
            top = s.get(Organisation, 1)
            t0 = time.perf_counter()
            figures = organisation_figures(s, top, period, tz)
            report.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            text_ = points_section(s, QuarterlyScope([top], tz), period)
            section.append(time.perf_counter() - t0)
    with db.session() as s:
        entries = s.execute(text("SELECT count(*) FROM points_entry")).scalar_one()
    db.dispose()
    top_figure = figures[0]
    return {"summaries": summaries, "baseline": min(baseline), "report": min(report), "section": min(section), "people": len(rows),
            "organisations": len(figures), "members": top_figure.members, "entries": entries,
            "lines": text_.count("\n") + 1}


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    mem = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal")) / 2**20
    return f"{os.cpu_count()} cores {cpu}, {mem:.1f} GiB"


def write_docs(result: dict, when: str) -> None:
    ratio = result["report"] / result["baseline"]
    body = f"""{SECTION}

`bench/points.py`, {when}, {machine()}, PostgreSQL on the same machine, machine loaded by other
processes. {result['members']:,} members in {result['organisations']:,} organisations,
{result['entries']:,} ledger entries in one quarter (seeded with `generate_series`).

| what | best of runs |
|---|---|
| plain `GROUP BY person_id` over the quarter's entries ({result['people']:,} rows) | {result['baseline']:.2f} s |
| quarterly figures per organisation (`organisation_figures`, whole tree) | {result['report']:.2f} s |
| the same as the chat section (`points_section`, {result['lines']:,} lines) | {result['section']:.2f} s |
| each month's totals, written once an hour after the month ends (`summarise`, 3 months) | {', '.join(f'{t:.2f}' for t in result['summaries'])} s |
| ratio report / plain GROUP BY | {ratio:.2f} |

Goal: under {GOAL_S:.0f} s — {'met' if result['section'] < GOAL_S else 'NOT met'}. The report does not
read the 10 million entries: each month's totals per person and category (`points_month_total`, at
most 400,000 rows a month here) are written once, an hour after the month ends, by the scheduler's
tick (an ended month gets no new entries: compensations go into the open month); the quarterly
report groups those 1.2 million rows, joined to the 100,000 home memberships, in one statement,
and sums the tree above the branches in Python (5,051 organisations). The plain GROUP BY over the
raw entries is the floor a report without the month totals would pay.
"""
    replace_section(DOCS, SECTION, body)

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="measure the database a previous run seeded")
    args = parser.parse_args()
    if not args.reuse:
        t0 = time.perf_counter()
        recreate_database(args.database_url)
        seed(args.database_url, args.entries)
        print(f"seeded {args.entries:,} entries in {time.perf_counter() - t0:.0f} s", flush=True)
    result = measure(args.database_url, args.rounds)
    print(f"month totals {', '.join(f'{t:.2f}' for t in result['summaries'])} s, plain GROUP BY {result['baseline']:.2f} s, report {result['report']:.2f} s, "
          f"section {result['section']:.2f} s, ratio {result['report'] / result['baseline']:.2f}")
    if not args.no_docs:
        write_docs(result, time.strftime("%Y-%m-%d"))
    return 0 if result["section"] < GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
