"""The fan-out benchmark's section of docs/BENCHMARKS.md: the figures against the goals, and notes
on what they mean."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DOCS = ROOT / "docs" / "BENCHMARKS.md"
SECTION = "## Directive fan-out"
RUN_DATE = "2026-11-21"

GOALS = {"publish": 2.0, "delivered": 10.0, "progress": 1.0}


# -- the report -------------------------------------------------------------------------------------


def render_section(f: dict, command: str) -> str:
    m = f["machine"]
    n = f["members"]
    help_ms = f["help_s"] * 1000
    base = f["baseline_insert_select_s"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    fake = f["fake"]
    rows = [
        ("(a) 发布 → passive reply", "< 2 s", f"{f['publish_s']:.2f} s", verdict(f["publish_s"] < GOALS["publish"]),
         f"{f['publish_s'] / base:.1f}× INSERT…SELECT; {f['publish_s'] * 1000 / help_ms:.0f}× 帮助"),
        ("(b) 发布 → every push accepted by the fake", "< 10 s",
         f"{f['delivered_s']:.2f} s ({f['delivered_after_reply_s']:.2f} s after the reply)",
         verdict(f["delivered_s"] < GOALS["delivered"] and f["delivery_ok"]),
         f"{f['delivered_s'] / base:.1f}× INSERT…SELECT"),
        ("(c) peak RSS, request process (during 发布)", "—", f"{f['web_peak_mib']:.0f} MiB "
         f"(+{f['web_peak_mib'] - f['web_rss_before_mib']:.0f} over {f['web_rss_before_mib']:.0f})", "—", ""),
        ("(c) peak RSS, request process (during 进度)", "—", f"{f['web_progress_peak_mib']:.0f} MiB", "—", ""),
        ("(c) peak RSS, each worker", "—", ", ".join(f"{x:.0f} MiB" for x in f["worker_peak_mib"]), "—", ""),
        ("(c) peak RSS, fake WeCom server", "—", f"{f['fake_peak_mib']:.0f} MiB", "—", ""),
        (f"(d) {f['endpoint_acks']:,} × `收到 N` through the endpoint", "—",
         f"{f['endpoint_acks_s']:.1f} s (median {f['endpoint_ack_median_ms']:.1f} ms, p95 {f['endpoint_ack_p95_ms']:.1f} ms)",
         "—", f"{f['endpoint_ack_median_ms'] / help_ms:.1f}× 帮助"),
        (f"(d) {f['model_acks']:,} × `acknowledge()` (model function, 500 per transaction)", "—",
         f"{f['model_acks_s']:.1f} s ({f['model_acks_s'] * 1e6 / max(1, f['model_acks']):.0f} µs each)", "—", ""),
        ("(e) `进度 N`, whole tree, all acknowledged", "< 1 s",
         f"{f['progress_s']:.2f} s (first {f['progress_first_s']:.2f} s)", verdict(f["progress_s"] < GOALS["progress"]),
         f"{f['progress_s'] * 1000 / help_ms:.0f}× 帮助"),
        ("(e) `进度 N` by one 二级党委 书记 (its scope)", "—", f"{f['progress_sub_s']:.2f} s", "—",
         f"{f['progress_sub_s'] * 1000 / help_ms:.0f}× 帮助"),
    ]
    table = ["| step | goal | measured | met? | vs baseline |", "|---|---|---|---|---|"]
    table += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows]
    return "\n".join([
        SECTION,
        "",
        f"Date {RUN_DATE}. Machine: {m['nproc']} cores ({m['cpu']}), {m['ram']} RAM; Python {m['python']}, "
        f"PostgreSQL {m['postgresql']}, Redis {m['redis']}; everything on one host.",
        "",
        "```",
        command,
        "```",
        "",
        f"Organisation: 1 机关党委 → {f['sub_committees']} 二级党委 → {f['general_branches']} 党总支 → "
        f"{f['branches']:,} 党支部, {n:,} members ({n // f['branches']} per branch, one of them its 书记), plus a 书记 "
        f"for each higher organisation ({f['expected_recipients'] - n} 抄送 copies; the issuer gets none), each "
        f"with a WeCom userid. Seeded with bulk Core inserts in {f['seed_s']:.1f} s (the roster importer has "
        f"its own benchmark). {f['workers']} `python -m bot worker` processes; `python -m fakewx` in its own process.",
        "",
        "Same-run baselines: one `帮助` callback through the same endpoint "
        f"{help_ms:.1f} ms (median of 30); PostgreSQL alone writing {n:,} delivery-wide + {n:,} outbox-wide "
        f"rows with INSERT … SELECT into copies of the tables (same indexes): {base:.2f} s.",
        "",
        *table,
        "",
        f"Delivery check: the fake accepted {fake['delivered']:,} pushes for {fake['recipients']:,} distinct "
        f"recipients (expected {f['expected_recipients']:,} = {n:,} task + {f['expected_recipients'] - n} 抄送), "
        f"max per recipient {fake['max_per_recipient']}, duplicates suppressed {fake['suppressed_duplicates']}, "
        f"in {fake['calls']} API calls ({json.dumps(fake['calls_by_path'], ensure_ascii=False)}), "
        f"tokens issued {json.dumps(fake['tokens_issued'])}. Outbox after the run: "
        f"{json.dumps(f['outbox'], ensure_ascii=False)}.",
        "",
        f"`进度` reply: first line `{f['progress_first_line']}`, {f['progress_reply_lines']:,} lines, "
        f"{f['progress_reply_bytes']:,} bytes; with nobody acknowledged yet (every name listed) "
        f"{f['progress_unacked_s']:.2f} s and {f['progress_unacked_bytes']:,} bytes.",
        "",
        "Where 发布's time goes — `models.directive.issue` run once more on the same tree with its steps "
        "timed, then rolled back:",
        "",
        "| step | seconds |",
        "|---|---|",
        *[f"| {k} | {v:.2f} |" for k, v in f["publish_breakdown"].items()],
        "",
        "Notes:",
        "",
        *[f"- {note}" for note in f.get("notes", [])],
        "",
    ])


def write_section(section: str) -> None:
    """Replace our own section of docs/BENCHMARKS.md (or append it); other sections are left as they are."""
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    start = text.find(SECTION + "\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        nxt = re.search(r"^## ", text[start + len(SECTION):], flags=re.M)
        end = start + len(SECTION) + nxt.start() if nxt else len(text)
        text = text[:start] + section + ("\n" if nxt else "") + text[end:]
    DOCS.write_text(text.rstrip("\n") + "\n")

def notes(f: dict) -> list[str]:
    bd = f["publish_breakdown"]
    return [
        f"Load average {f['load_start'][0]:.1f} at the start and {f['load_end'][0]:.1f} at the end of the run "
        "(other processes share the 2 cores), so read the ratios as well as the seconds.",
        f"(a) `issue()` writes all {f['expected_recipients']:,} deliveries and outbox rows inside the request, "
        "in the same transaction as the directive, built inside the database by INSERT … SELECT (home branch "
        "before temporary, channel chosen from channel_identity); no recipient row passes through Python. "
        f"PostgreSQL alone needs {f['baseline_insert_select_s']:.2f} s for rows of the same width (the baseline); "
        f"`issue()` took {bd['issue() total']:.2f} s in the breakdown run.",
        f"(b) = (a) + the drain ({f['delivered_after_reply_s']:.1f} s for {f['workers']} workers, "
        f"{f['expected_recipients'] / max(f['delivered_after_reply_s'], 1e-9):,.0f} rows/s). Workers claim with one "
        "`UPDATE … WHERE id = ANY(ARRAY(SELECT … FOR UPDATE SKIP LOCKED)) RETURNING`, send batches of 1,000 "
        "userids, and mark deliveries with one `delivery.sent` event per directive per batch round.",
        "(e) counts and first/last acknowledgement per organisation come from one GROUP BY; names are fetched "
        "only for people not yet acknowledged. The whole-tree reply is condensed to fit one chat message "
        "(levels above branches, then the branches still behind), and `进度 编号 组织名` narrows it.",
        f"Acknowledgements: {f['endpoint_acks']:,} through the real endpoint (`收到 N`, one at a time, test "
        f"client), the other {f['model_acks']:,} by calling `models.directive.acknowledge` directly in "
        "two forked processes, 500 per transaction — same rows and events, "
        "without the HTTP, crypto, dedupe and receipt layer.",
        "(a) is timed around the Flask test client call: signature check, AES decrypt, Redis dedupe, receipt row, "
        "the handler's one transaction, encrypted reply. (b) is from the same start until the fake's "
        "counters reach the expected total (polled every 50 ms), with the workers already idling.",
        "Peak RSS is VmHWM from /proc; the request process's peak is reset (clear_refs) just before 发布 "
        "and before 进度, so the seeding (done in a forked child) does not count.",
        f"One full run took {f['total_s']:.0f} s.",
    ]
