"""The demo's points walk-through: an acknowledgement shows in 积分, a self-report is verified, and
`report monthly --period` prints the branch table."""

from __future__ import annotations

import re

from bot.chat import run_chat
from models.points import period_of
from tests.bot.test_demo import demo_app, demo_server  # noqa: F401  (fixtures)


def _say(name: str, text: str, info) -> str:
    said: list[str] = []
    run_chat(name, lines=[text], out=said.append, info_path=info)
    return said[0].removeprefix("直通车：")


def test_points_in_the_demo(demo_app, demo_server):  # noqa: F811
    published = _say("王建国", "发布 学习贯彻全会精神 截止 明天17:00", demo_server)
    number = re.search(r"已发布 #(\d+)", published).group(1)
    _say("张伟", f"收到 {number}", demo_server)
    claim = _say("张伟", "申报 工作履职 协助社区防汛值守", demo_server)
    report = re.search(r"积分申报 #(\d+)", claim).group(1)
    assert _say("陈志强", f"核实 {report} 2", demo_server).startswith(f"已核实 张伟 的积分申报 #{report}")
    record = _say("张伟", "积分", demo_server)
    assert f"按时确认收到通知 #{number} 工作履职 +1" in record
    assert f"申报核实 #{report} 工作履职 +2" in record
    runtime = demo_app.extensions["zhitong"]
    month = period_of(runtime.now())
    out = demo_app.test_cli_runner().invoke(args=["report", "monthly", "--period", month, "--org", "综合处党支部"])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[0].startswith("【月度公示】综合处党支部")
    assert any(line.startswith("张伟 0 3 0 0 3") for line in out.output.splitlines())
