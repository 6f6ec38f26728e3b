"""Our time parser (bot/timeparse.py) against jionlp's `parse_time` on the corpus's time lines.

    PYTHONPATH=.venv/lib/python3.11/site-packages  python-with-jionlp  bench/timeparse_library.py

jionlp is not a dependency of the project (it is measured, not used): install it in a separate
environment (`python -m venv /tmp/jio && /tmp/jio/bin/pip install jionlp cn2an`) and run this with
that environment's python, the project's packages on PYTHONPATH. Prints the share of time lines each
parser resolves as the corpus says (a refused line counts when the parser refuses it too), for
jionlp as it comes, wrapped in our rules (labels, trailing 前, a date alone 23:59, future-biased
weekdays, 明早, 24:00), and after cn2an's numeral conversion; and CPU per call."""

from __future__ import annotations

import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.timefmt import format_time  # noqa: E402
from bot.timeparse import TimeParseError, parse_time  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 21, 11, 45, tzinfo=UTC)  # the corpus's clock: 2026年11月21日 19:45, a Saturday
CORPUS = ROOT / "tests" / "data" / "phrases.tsv"


def time_lines() -> list[tuple[str, str]]:
    rows = []
    for line in CORPUS.read_text(encoding="utf-8").split("\n"):
        if line and not line.startswith("#"):
            text, intent, expected = line.split("\t")
            if intent == "time":
                rows.append((text, expected))
    return rows


def ours(text: str) -> str:
    try:
        return format_time(parse_time(text, now=NOW, tz=TZ), TZ)
    except TimeParseError:
        return "error"


def jionlp_raw(text: str) -> str:
    import jionlp

    try:  # time_base: Shanghai's wall clock, naive, as the library's examples pass it
        found = jionlp.parse_time(text, time_base=NOW.astimezone(TZ).replace(tzinfo=None))
        if found.get("type") not in ("time_point", "time_span"):
            return "error"
        start, end = (datetime.strptime(t + " +0800", "%Y-%m-%d %H:%M:%S %z").replace(tzinfo=TZ)
                      for t in found["time"][:2])
    except Exception:  # noqa: BLE001 - the library raises ValueError, KeyError, IndexError… for what it cannot read
        return "error"
    point = end if end - start >= timedelta(hours=23) else start  # a whole day: its end, as ours
    return _shown(point)


_LABEL = re.compile(r"^(?:截止(?:时间|日期)?|截至)[\s:：]*")
_WEEKDAY = re.compile(r"^(?:周|星期|礼拜)[一二三四五六日天1-7]")


def jionlp_wrapped(text: str, *, numerals: bool = False) -> str:
    """jionlp inside our rules: labels and 前 off, 24:00 as 23:59, future bias."""
    cleaned = re.sub(r"(?:之前|以前|前)$", "", _LABEL.sub("", text.strip()))
    if numerals:
        import cn2an

        try:
            cleaned = cn2an.transform(cleaned, "cn2an")
        except Exception:  # noqa: BLE001
            pass
    late = re.search(r"24[:：点时]0?0?$", cleaned)
    if late:
        cleaned = cleaned[:late.start()]
    shown = jionlp_raw(cleaned)
    if shown == "error":
        return shown
    point = datetime.strptime(shown + " +0800", "%Y年%m月%d日 %H:%M %z").replace(tzinfo=TZ)
    if late:
        point = point.replace(hour=23, minute=59)
    local_now = NOW.astimezone(TZ)
    if _WEEKDAY.match(cleaned) and point <= local_now:
        point += timedelta(days=7)
    if cleaned.startswith(("明早", "明晨")) and point.date() == local_now.date():
        point += timedelta(days=1)
    return _shown(point)


def _shown(point: datetime) -> str:
    return format_time(point, TZ)


def measure(name: str, parse, rows) -> None:
    right, wrong = 0, []
    started = time.process_time()
    for text, expected in rows:
        got = parse(text)
        if got == expected:
            right += 1
        else:
            wrong.append((text, expected, got))
    cpu = (time.process_time() - started) / len(rows) * 1000
    print(f"{name:<28} {right}/{len(rows)} = {100 * right / len(rows):.1f} %   {cpu:.3f} ms CPU per call")
    for text, expected, got in wrong[:100] if "-v" in sys.argv else []:
        print(f"    {text!r}: want {expected}, got {got}")


# The forms users were found typing before our parser learnt them (the corpus was grown alongside
# our parser, so its score on the whole corpus flatters it; this subset does not).
FOUND_IN_USE = {"下周一", "下周三上午9点", "周五", "本周五", "这周五下午5点", "星期一", "下星期一", "周日", "今晚8点",
                "明早9点", "月底", "本月底", "三天后", "20分钟后", "1小时后", "两小时后", "12/5", "12.5", "12-5",
                "12-05 17:00", "12月5日15时", "12月5日前", "明天17:00前", "12月5日24:00", "截止时间：12月5日",
                "截止日期 12月5日"}


def main() -> None:
    everything = time_lines()
    found = [row for row in everything if row[0] in FOUND_IN_USE]
    try:
        import jionlp  # noqa: F401
    except ImportError:
        jionlp = None
        print("jionlp is not installed in this python: see the docstring")
    else:
        jionlp_raw("明天")  # loads its dictionaries once, outside the measurement
    for title, rows in (("the whole corpus", everything), ("the forms found in use", found)):
        print(f"{title} ({len(rows)} time lines):")
        measure("bot/timeparse.py", ours, rows)
        if jionlp is not None:
            measure("jionlp parse_time", jionlp_raw, rows)
            measure("jionlp in our rules", jionlp_wrapped, rows)
            measure("jionlp + cn2an in our rules", lambda t: jionlp_wrapped(t, numerals=True), rows)


if __name__ == "__main__":
    main()
