"""Roster import benchmark: a realistic N-person roster (CSV and XLSX) into a fresh schema.

    python bench/roster.py [--people 5000] [--database-url URL] [--no-docs]

The default URL is the `bench` database on the local PostgreSQL server (created when missing); the
benchmark works in its own schema `roster_bench`, dropped and rebuilt by the migrations before each
format, so it never touches the test suite's schemas. For each format it times: the raw parse of
the file (csv module / openpyxl read-only: the baseline on this machine, in this run), the first
import, a re-import of the same file (which must change nothing) and an import with 1 % of the
people changed, each import preceded by its `--dry-run` (which must write nothing). The figures go to stdout and to the "Roster import" section of docs/BENCHMARKS.md.
The target is a first import of 5,000 people under 10 s on PostgreSQL; the exit code is 1 when missed.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import random
import re
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Column, MetaData, String, Table, create_engine, func, insert, make_url, select, text  # noqa: E402

from bot.roster import import_roster  # noqa: E402
from models.base import Database  # noqa: E402
from models.event import Event  # noqa: E402
from models.identity import ChannelIdentity  # noqa: E402
from models.org import Organisation  # noqa: E402
from models.person import Liaison, Membership, OrgRole, Person  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench"
SCHEMA = "roster_bench"
TARGET_SECONDS = 10.0
HEADER = ["组织", "姓名", "企业微信账号", "手机", "职务", "联系组织"]
DOCS = ROOT / "docs" / "BENCHMARKS.md"
SECTION = "## Roster import"

# Common surnames, roughly by frequency, with pinyin for the WeCom userid.
SURNAMES = [
    ("王", "wang", 30), ("李", "li", 30), ("张", "zhang", 28), ("刘", "liu", 20), ("陈", "chen", 18),
    ("杨", "yang", 12), ("黄", "huang", 9), ("赵", "zhao", 9), ("吴", "wu", 8), ("周", "zhou", 8),
    ("徐", "xu", 6), ("孙", "sun", 6), ("马", "ma", 6), ("朱", "zhu", 5), ("胡", "hu", 5), ("郭", "guo", 5),
    ("何", "he", 4), ("高", "gao", 4), ("林", "lin", 4), ("罗", "luo", 4), ("郑", "zheng", 4), ("梁", "liang", 4),
    ("谢", "xie", 3), ("宋", "song", 3), ("唐", "tang", 3), ("许", "xu", 3), ("韩", "han", 3), ("冯", "feng", 3),
    ("邓", "deng", 3), ("曹", "cao", 3), ("彭", "peng", 3), ("曾", "zeng", 2), ("肖", "xiao", 2), ("田", "tian", 2),
    ("董", "dong", 2), ("袁", "yuan", 2), ("潘", "pan", 2), ("于", "yu", 2), ("蒋", "jiang", 2), ("蔡", "cai", 2),
    ("余", "yu", 2), ("杜", "du", 2), ("叶", "ye", 2), ("程", "cheng", 2), ("苏", "su", 2), ("魏", "wei", 2),
    ("吕", "lv", 2), ("丁", "ding", 2), ("任", "ren", 2), ("沈", "shen", 2), ("姚", "yao", 1), ("卢", "lu", 1),
    ("姜", "jiang", 1), ("崔", "cui", 1), ("钟", "zhong", 1), ("谭", "tan", 1), ("陆", "lu", 1), ("汪", "wang", 1),
    ("范", "fan", 1), ("金", "jin", 1), ("石", "shi", 1), ("廖", "liao", 1), ("贾", "jia", 1), ("夏", "xia", 1),
    ("欧阳", "ouyang", 1), ("司马", "sima", 1),
]
GIVEN = [
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"), ("强", "qiang"),
    ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"), ("艳", "yan"), ("杰", "jie"), ("娟", "juan"),
    ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("秀", "xiu"), ("霞", "xia"), ("平", "ping"), ("刚", "gang"),
    ("桂", "gui"), ("英", "ying"), ("华", "hua"), ("文", "wen"), ("建", "jian"), ("国", "guo"), ("志", "zhi"),
    ("海", "hai"), ("红", "hong"), ("玉", "yu"), ("兰", "lan"), ("晓", "xiao"), ("燕", "yan"), ("鹏", "peng"),
    ("辉", "hui"), ("宇", "yu"), ("浩", "hao"), ("欣", "xin"), ("婷", "ting"), ("雪", "xue"), ("琳", "lin"),
    ("晨", "chen"), ("博", "bo"), ("子", "zi"), ("梓", "zi"), ("涵", "han"), ("怡", "yi"), ("佳", "jia"),
    ("思", "si"), ("嘉", "jia"), ("俊", "jun"), ("瑞", "rui"), ("凯", "kai"), ("亮", "liang"), ("斌", "bin"),
    ("慧", "hui"), ("颖", "ying"), ("倩", "qian"), ("振", "zhen"), ("德", "de"), ("春", "chun"), ("立", "li"),
]
SUB_COMMITTEES = ["科学技术研究院", "信息中心", "规划设计院", "机关服务中心", "质量检测中心", "国际合作中心",
                  "教育培训中心", "档案馆"]
UNITS = ["办公室", "人事处", "财务处", "规划处", "科技处", "法规处", "审计处", "综合处", "信息处", "宣传处",
         "安全处", "质量处", "外事处", "资产处", "后勤处", "监察室", "研究一室", "研究二室", "研究三室", "研究四室",
         "测试部", "软件部", "硬件部", "数据部", "运维部", "标准部", "评估部", "市场部", "合同部", "项目部"]
NUMBERS = "一二三四五六七八九十"
PROJECTS = ["雄安新区项目", "川藏铁路勘察", "南极科考保障"]


def random_name(rng: random.Random, used_ids: set[str]) -> tuple[str, str]:
    surname, surname_py, _w = rng.choices(SURNAMES, weights=[w for *_x, w in SURNAMES])[0]
    given = rng.sample(GIVEN, rng.choice((1, 2, 2, 2)))
    name = surname + "".join(g for g, _p in given)
    userid = base = surname_py + "".join(p for _g, p in given)
    n = 1
    while userid in used_ids:
        n += 1
        userid = f"{base}{n}"
    used_ids.add(userid)
    return name, userid


def generate(people: int, seed: int = 20261121) -> list[list]:
    """Rows of a realistic roster: ~20 per branch under 机关党委, its second-level 党委 and 党总支."""
    rng = random.Random(seed)
    top = "机关党委"
    branch_count = max(1, people // 20)
    parents = [f"{top}/{unit}党委" for unit in SUB_COMMITTEES]
    parents += [f"{top}/第{NUMBERS[i]}党总支" for i in range(10)]
    branches: list[str] = []
    for i in range(branch_count):
        parent = parents[i % len(parents)]
        unit = UNITS[(i // len(parents)) % len(UNITS)]
        suffix = "联合党支部" if i % 40 == 39 else "党支部"
        round_ = i // (len(parents) * len(UNITS))
        branches.append(f"{parent}/{unit}{'' if round_ == 0 else NUMBERS[round_ % 10]}{suffix}")
    used_ids: set[str] = set()
    used_mobiles: set[str] = set()
    rows: list[list] = []
    everyone: list[tuple[str, str, str | None, str]] = []  # name, userid, mobile, home
    for i in range(people):
        home = branches[i % len(branches)]
        name, userid = random_name(rng, used_ids)
        mobile = None
        if rng.random() < 0.85:
            while mobile is None or mobile in used_mobiles:
                mobile = rng.choice(("13", "15", "18", "17", "19")) + f"{rng.randrange(10**9):09d}"
            used_mobiles.add(mobile)
        if rng.random() < 0.03 and mobile:
            userid = ""  # a few people without a WeCom account: keyed by name and mobile
        everyone.append((name, userid, mobile, home))
    # Groups in the biggest branches: the first 10 branches split into two 党小组.
    grouped = {b: [f"{b}/第一党小组", f"{b}/第二党小组"] for b in branches[:10]}
    by_branch: dict[str, list[int]] = {}
    for idx, (_n, _u, _m, home) in enumerate(everyone):
        by_branch.setdefault(home, []).append(idx)
    for branch, members in by_branch.items():
        committee = ["书记", "副书记", "组织委员", "宣传委员", "纪检委员"][: rng.choice((3, 4, 5))]
        for position, idx in enumerate(members):
            name, userid, mobile, home = everyone[idx]
            org = home
            if branch in grouped and position >= len(committee):
                org = grouped[branch][position % 2]
            role = committee[position] if position < len(committee) else rng.choice(("党员", "", ""))
            rows.append([org, name, userid, mobile, role, ""])
    # Secretaries of the higher organisations: members of a branch beneath, with a row at the top.
    for parent in [top, *parents]:
        under = [i for i, p in enumerate(everyone) if p[3].startswith(parent + "/") and p[1]]
        for role in ("书记", "副书记"):
            idx = rng.choice(under)
            name, userid, mobile, _home = everyone[idx]
            rows.append([parent, name, userid, mobile, role, ""])
    # Liaison officers of the top committee: about one per 25 organisations they look after.
    targets = parents + branches
    for k in range(0, len(targets), 25):
        idx = rng.randrange(len(everyone))
        name, userid, mobile, _home = everyone[idx]
        if not userid:
            continue
        rows.append([top, name, userid, mobile, "联络员", "；".join(targets[k:k + 25])])
    rows.append([top, *everyone[1][:3], "管理员", ""])
    # Temporary branches for project teams away from home: the members keep their home branch.
    for project in PROJECTS:
        temp = f"{top}/{project}临时党支部"
        team = rng.sample([p for p in everyone if p[1]], 20)
        for position, (name, userid, mobile, _home) in enumerate(team):
            rows.append([temp, name, userid, mobile, "书记" if position == 0 else "", ""])
    rng.shuffle(rows)
    return rows


def write_csv(path: Path, rows: list[list]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    writer.writerows([[("" if v is None else v) for v in row] for row in rows])
    path.write_bytes(b"\xef\xbb\xbf" + buffer.getvalue().encode())


def write_xlsx(path: Path, rows: list[list]) -> None:
    import openpyxl

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("名册")
    sheet.append(HEADER)
    for org, name, userid, mobile, roles, liaises in rows:
        # As a secretary's sheet has them: mobiles typed in as numbers, empty cells empty.
        sheet.append([org, name, userid or None, int(mobile) if mobile else None, roles or None, liaises or None])
    workbook.save(path)


def parse_only(path: Path) -> int:
    """The baseline: just read every cell with the standard reader for the format."""
    if path.suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as f:
            return sum(1 for _row in csv.reader(f))
    import openpyxl

    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        return sum(1 for _row in workbook.worksheets[0].iter_rows(values_only=True))
    finally:
        workbook.close()


def raw_insert(url: str, rows: list[list]) -> float:
    """The database baseline: one bulk insert of the people's bare columns into a temporary table."""
    table = Table("roster_bench_raw", MetaData(), Column("name", String(50)), Column("userid", String(64)),
                  Column("mobile", String(20)), prefixes=["TEMPORARY"])
    people = {(r[1], r[2], r[3]) for r in rows}
    params = [{"name": n, "userid": u or None, "mobile": m} for n, u, m in people]
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            table.create(conn)
            start = time.perf_counter()
            conn.execute(insert(table), params)
            conn.commit()
            return time.perf_counter() - start
    finally:
        engine.dispose()


def prepare_database(url: str) -> str:
    """A fresh schema (PostgreSQL) or file (SQLite) at the head revision; returns the URL to use."""
    from migrations import upgrade

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and Path(parsed.database).exists():
            Path(parsed.database).unlink()
        upgrade(url)
        return url
    try:
        create_engine(url).connect().close()
    except Exception:
        admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": parsed.database}):
                conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
        admin.dispose()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{SCHEMA}"'))
    engine.dispose()
    scoped = url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{SCHEMA}"
    upgrade(scoped)
    return scoped


def table_counts(db: Database) -> dict[str, int]:
    with db.session() as s:
        return {m.__name__: s.scalar(select(func.count()).select_from(m))
                for m in (Organisation, Person, Membership, OrgRole, Liaison, ChannelIdentity, Event)}


def timed_import(db: Database, path: Path, *, dry_run: bool = False):
    start = time.perf_counter()
    with db.session() as session:
        report = import_roster(session, path, now=datetime.now(UTC), dry_run=dry_run)
        if dry_run:
            session.rollback()
    return time.perf_counter() - start, report


def changed_rows(rows: list[list], seed: int = 7) -> list[list]:
    """1 % of people renamed or given a new mobile, 1 % moved to another branch."""
    rng = random.Random(seed)
    rows = [list(r) for r in rows]
    members = [r for r in rows if r[0].endswith("党支部") and "临时" not in r[0] and r[2]]
    branches = sorted({r[0] for r in members})
    by_account: dict[str, list[list]] = {}
    for r in rows:
        if r[2]:
            by_account.setdefault(r[2], []).append(r)
    for r in rng.sample(members, len(members) // 100):
        for same in by_account[r[2]]:
            same[1] = same[1] + "华" if len(same[1]) < 4 else same[1][:-1]
    for r in rng.sample(members, len(members) // 100):
        if not r[4]:
            r[0] = rng.choice(branches)
    return rows


def bench_format(fmt: str, rows: list[list], base_url: str, workdir: Path) -> dict:
    path = workdir / f"roster.{fmt}"
    (write_csv if fmt == "csv" else write_xlsx)(path, rows)
    changed = workdir / f"roster-changed.{fmt}"
    (write_csv if fmt == "csv" else write_xlsx)(changed, changed_rows(rows))
    parse = min(_time(lambda: parse_only(path)) for _ in range(5))
    url = prepare_database(base_url)
    insert_baseline = min(raw_insert(url, rows) for _ in range(3))
    db = Database(url)
    try:
        empty = table_counts(db)
        dry_first, _ = timed_import(db, path, dry_run=True)
        if table_counts(db) != empty:
            raise SystemExit(f"{fmt}: the dry run wrote something")
        first, report = timed_import(db, path)
        after_first = table_counts(db)
        again, report_again = timed_import(db, path)
        if report_again.changed or table_counts(db) != after_first:
            raise SystemExit(f"{fmt}: re-importing the same file changed something: {report_again.counts()}")
        dry_update, _ = timed_import(db, changed, dry_run=True)
        if table_counts(db) != after_first:
            raise SystemExit(f"{fmt}: the dry run wrote something")
        update, report_update = timed_import(db, changed)
    finally:
        db.dispose()
    return {
        "format": fmt.upper(),
        "size_kib": path.stat().st_size / 1024,
        "rows": report.rows,
        "people": report.people_created,
        "organisations": report.organisations_created,
        "events": after_first["Event"],
        "parse": parse,
        "insert": insert_baseline,
        "first": first,
        "dry_first": dry_first,
        "dry_update": dry_update,
        "again": again,
        "update": update,
        "updated": report_update.people_updated,
    }


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def machine(url: str) -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        ram = f"{kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, AttributeError):
        ram = "RAM unknown"
    server = "SQLite"
    if not url.startswith("sqlite"):
        engine = create_engine(url)
        with engine.connect() as conn:
            server = "PostgreSQL " + conn.scalar(text("SHOW server_version")).split()[0]
        engine.dispose()
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return f"{os.cpu_count()} CPU ({cpu}), {ram}, Python {platform.python_version()}, {server}{load}"


def render(results: list[dict], people: int, machine_line: str, url: str) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    db = make_url(url).render_as_string(hide_password=True)
    lines = [
        SECTION,
        "",
        f"`python bench/roster.py --people {people}` — {when}",
        "",
        f"Machine: {machine_line}; database `{db}`, schema `{SCHEMA}`, fresh per format.",
        "",
        "| file | size | rows | people | orgs | parse baseline | insert baseline | first import | "
        "first / parse | first / insert | `--dry-run` of the first | re-import (no change) | "
        "`--dry-run` of 1 % changed | 1 % changed |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['format']} | {r['size_kib']:.0f} KiB | {r['rows']} | {r['people']} | {r['organisations']} | "
            f"{r['parse']:.3f} s | {r['insert']:.3f} s | {r['first']:.2f} s | {r['first'] / r['parse']:.1f}× | "
            f"{r['first'] / r['insert']:.1f}× | {r['dry_first']:.2f} s | {r['again']:.2f} s | {r['dry_update']:.2f} s | "
            f"{r['update']:.2f} s ({r['updated']} people updated) |"
        )
    lines += [
        "",
        f"Target: first import of 5,000 people under {TARGET_SECONDS:.0f} s on PostgreSQL. Two baselines are "
        "measured in the same run, so the ratios stay comparable on a noisy machine: *parse* is the standard "
        "reader (csv module, openpyxl read-only) just reading every cell of the same file (best of 5); *insert* "
        "is one bulk INSERT of the people's bare name/account/mobile into a temporary table (best of 3). "
        "Times include the commit; "
        f"the first import writes {results[0]['events']} events (one per organisation and person, one summary), "
        "the re-import writes none. The dry runs read and plan exactly as the import does and write nothing "
        "(the benchmark checks every table's count before and after).",
        "",
    ]
    return "\n".join(lines)


def update_docs(section: str) -> None:
    """Replace only our own section of docs/BENCHMARKS.md (others may hold other sections)."""
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    current = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        updated = pattern.sub(lambda _m: section + "\n", current, count=1)
    else:
        updated = current.rstrip("\n") + "\n\n" + section
    updated = updated.rstrip("\n") + "\n"
    tmp = DOCS.with_suffix(".md.tmp")
    tmp.write_text(updated, encoding="utf-8")
    os.replace(tmp, DOCS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--no-docs", action="store_true", help="do not update docs/BENCHMARKS.md")
    args = parser.parse_args()

    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)
    rows = generate(args.people)
    results = []
    with tempfile.TemporaryDirectory(prefix="roster-bench-") as tmp:
        for fmt in ("csv", "xlsx"):
            r = bench_format(fmt, rows, args.database_url, Path(tmp))
            results.append(r)
            print(f"{r['format']:4} {r['rows']} rows, {r['people']} people, {r['organisations']} orgs: "
                  f"parse {r['parse']:.3f} s, insert {r['insert']:.3f} s, first import {r['first']:.2f} s "
                  f"({r['first'] / r['parse']:.1f}× parse, {r['first'] / r['insert']:.1f}× insert), "
                  f"dry run {r['dry_first']:.2f} s, re-import {r['again']:.2f} s, "
                  f"dry run 1 % changed {r['dry_update']:.2f} s, 1 % changed {r['update']:.2f} s")
    machine_line = machine(args.database_url)
    section = render(results, args.people, machine_line, args.database_url)
    if not args.no_docs:
        update_docs(section)
        print(f"updated {DOCS.relative_to(ROOT)}")
    slowest = max(r["first"] for r in results)
    if args.people >= 5000 and not args.database_url.startswith("sqlite") and slowest > TARGET_SECONDS:
        print(f"MISSED: first import took {slowest:.2f} s (target {TARGET_SECONDS:.0f} s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
