"""CPU per message of matching (`router.match`) and of a whole in-process callback (decrypt,
match, dispatch, reply) for the callback benchmark's read and write mixes, for one checkout.

    .venv/bin/python bench/router_cpu.py [--root DIR] [--rounds 5]

Run it for two checkouts (`git archive COMMIT | tar -x -C DIR`) on the same machine, one after the
other, and compare: CPU time (process_time) is much less disturbed by other load than wall time.
SQLite in a temporary directory and the in-memory store: no server needed. The read mix is 帮助 /
待办 (as bench/callback.py's), the write mix each member's first `收到 N`; the match sample adds
the everyday phrasings of tests/data/phrases.tsv's command lines."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "phrases.tsv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(args.root.resolve()))

    from bot import router
    from bot.app import create_app
    from bot.channels.simulator import WeComSimulator
    from bot.messages import InboundKind, InboundMessage
    from config.settings import Settings, WeComSettings
    from migrations import upgrade
    from models.identity import Channel
    from tests.factories import person

    now = datetime(2026, 11, 21, 11, 45, tzinfo=UTC)
    sample = ["帮助", "待办", "收到", "收到 3", "完成 3 已组织学习", "进度 3", "签到 1234", "请假 3 出差"] + [
        line.split("\t")[0] for line in CORPUS.read_text(encoding="utf-8").split("\n")
        if line and not line.startswith("#") and line.split("\t")[1] not in ("time",)]
    messages = [InboundMessage(channel=Channel.WECOM, sender="u1", kind=InboundKind.TEXT, created_at=now,
                               dedupe_key=f"m{i}", text=t) for i, t in enumerate(sample)]
    router.match(messages[0])  # builds the table
    per_match = []
    for _ in range(args.rounds):
        started = time.process_time()
        for _ in range(20):
            for msg in messages:
                router.match(msg)
        per_match.append((time.process_time() - started) / (20 * len(messages)) * 1e6)
    print(f"{args.root}: router.match {statistics.median(per_match):.1f} µs CPU per message "
          f"(median of {args.rounds} rounds of {20 * len(messages)}: {len(messages)} texts)")

    wecom = WeComSettings(corp_id="wx49f0ab532d5d035a", agent_id=1000002, secret="s", token="123456",
                          aes_key="kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", api_base="http://127.0.0.1:9/cgi-bin/")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.sqlite3"
        upgrade(url)
        clock = lambda: now  # noqa: E731
        app = create_app(Settings(database_url=url, redis_url=None, wecom=wecom, secret_key="bench",
                                  instance_dir=Path(tmp) / "instance"), clock=clock)
        db = app.extensions["zhitong"].db
        members = [f"m{i:03d}" for i in range(12 * args.rounds)]  # the write mix: new members each round
        with db.session() as s:
            person(s, "王书记", "top", "机关党委", _role("SECRETARY"))
            for i, userid in enumerate(members):
                person(s, f"党员{i:03d}", userid, "机关党委/第一党总支/综合处党支部")
            s.commit()
        client = app.test_client()
        sim = WeComSimulator(wecom, now=lambda: int(now.timestamp()))
        counter = iter(range(1, 10**9))

        def say(userid: str, text: str) -> None:
            req = sim.text(userid, text, msg_id=next(counter))
            response = client.post(req.path, query_string=req.query, data=req.body, content_type="text/xml")
            assert response.status_code == 200

        for n in range(1, 4):
            say("top", f"发布 通知{n}\n正文\n截止 12月1日17:00")
        for mix, texts in (("read", ["帮助", "待办"]), ("write", ["收到 1", "收到 2", "收到 3"])):
            per_request = []
            for round_ in range(args.rounds):
                started = time.process_time()
                sent = 0
                for userid in members[round_ * 12:(round_ + 1) * 12] if mix == "write" else members[:12]:
                    for text in texts:
                        say(userid, text)
                        sent += 1
                per_request.append((time.process_time() - started) / sent * 1000)
            print(f"  {mix} mix {statistics.median(per_request):.2f} ms CPU per callback "
                  f"(median of {args.rounds} rounds: {'、'.join(texts)})")
        db.dispose()


def _role(name: str):
    from models.person import Role

    return getattr(Role, name)


if __name__ == "__main__":
    main()
