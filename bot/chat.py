"""`python -m bot chat`: a terminal chat client for the running demo (`bot/demo.py`).

It talks to the bot's real callback endpoint with real encryption, as WeCom's server does, as one
person of the demo roster, and shows the pushes the demo's fake WeCom server received for them."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import click

from bot.demo import DEMO_INFO_NAME, DemoError, bot_command
from config.settings import DEFAULT_INSTANCE_DIR, WeComSettings

# Pushes show up in the chat client within about this long.
POLL_SECONDS = 1.0


def load_info(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DemoError(f"没有找到正在运行的演示。请先在另一个终端运行：{bot_command('demo')}") from None
    except ValueError:
        raise DemoError(f"{path} 已损坏，请重新运行：{bot_command('demo')}") from None


@dataclass(frozen=True)
class DemoPerson:
    name: str
    userid: str


def find_person(database_url: str, as_name: str) -> DemoPerson:
    """The roster person called `as_name` (or with that WeCom userid), read from the demo database."""
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    from models.person import Person

    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            people = list(session.scalars(select(Person).where(Person.name == as_name).order_by(Person.id)))
            if not people:
                people = list(session.scalars(select(Person).where(Person.wecom_userid == as_name)))
            if not people:
                raise DemoError(f"名册中没有「{as_name}」。\n" + _suggestions(session))
            if len(people) > 1:
                ids = "、".join(p.wecom_userid or "（无账号）" for p in people)
                raise DemoError(f"名册中有 {len(people)} 位「{as_name}」，请改用企业微信账号：{ids}")
            person = people[0]
            if not person.wecom_userid:
                raise DemoError(f"「{person.name}」在名册中没有企业微信账号，无法以其身份聊天。")
            return DemoPerson(person.name, person.wecom_userid)
    finally:
        engine.dispose()


def _suggestions(session) -> str:
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from models.person import Person, Role

    people = session.scalars(
        select(Person).options(selectinload(Person.roles), selectinload(Person.liaisons)).order_by(Person.id)
    ).all()
    secretaries = [p.name for p in people if any(r.role is Role.SECRETARY for r in p.roles)]
    liaisons = [p.name for p in people if p.is_liaison()]
    members = [p.name for p in people if not p.is_secretary() and not p.is_liaison() and not p.is_admin()]
    if not people:
        return f"名册是空的：请重新运行 {bot_command('demo')}。"
    lines = [f"可以用这些名字，例如 {bot_command('chat', '--as', '张伟')}："]
    for label, names in (("书记", secretaries), ("联络员", liaisons), ("党员", members)):
        if names:
            more = " 等" if len(names) > 10 else ""
            lines.append(f"  {label}：{'、'.join(names[:10])}{more}")
    return "\n".join(lines)


@dataclass
class Card:
    """A template card pushed to this person, numbered as the client shows it."""

    number: int
    task_id: str
    title: str
    buttons: list[tuple[str, str]] = field(default_factory=list)  # (text, key)
    status: str | None = None  # what a tapped button turned into, e.g. 已确认 …


class ChatClient:
    """One person's side of the conversation: sends through the real encrypted callback, reads the
    passive replies, and collects the pushes the fake WeCom server delivered to them."""

    def __init__(self, info: dict[str, Any], person: DemoPerson, url: str | None = None) -> None:
        import requests

        from bot.channels.simulator import WeComSimulator

        self.person = person
        self.url = (url or info["url"]).rstrip("/")
        self.fake_root = info["fake_server"].rstrip("/")
        settings = WeComSettings(
            corp_id=info["corp_id"], agent_id=int(info["agent_id"]), secret=info["secret"],
            token=info["token"], aes_key=info["aes_key"], api_base=info["wecom_api_base"],
        )
        self.simulator = WeComSimulator(settings)
        self.http = requests.Session()
        self.poll_http = requests.Session()  # the push poller runs in its own thread
        self.cards: list[Card] = []
        self.last_tapped: Card | None = None
        self.last_seq = 0

    def close(self) -> None:
        self.http.close()
        self.poll_http.close()

    def say(self, text: str) -> str | None:
        """Send `text` as this person; the bot's passive reply, or None when it said nothing."""
        return self._post(self.simulator.text(self.person.userid, text))

    def tap(self, card: Card, key: str) -> str | None:
        """Tap a button on a template card, as WeCom reports it to the app."""
        self.last_tapped = card
        return self._post(self.simulator.card_tap(self.person.userid, card.task_id, key))

    def _post(self, req) -> str | None:
        import requests

        try:
            response = self.http.post(self.url + req.path, params=req.query, data=req.body,
                                      headers={"Content-Type": "text/xml"}, timeout=10)
        except requests.RequestException:
            raise DemoError(f"连接不上 {self.url}：演示还在运行吗？（{bot_command('demo')}）") from None
        if response.status_code != 200:
            raise DemoError(f"服务拒绝了这条消息（HTTP {response.status_code}）")
        reply = self.simulator.answer(req, response.content)  # a card tap's passive reply is dropped
        return reply.get("Content") if reply else None

    def fetch_pushes(self) -> list[dict[str, Any]]:
        """New messages the fake server delivered to this person since the last fetch."""
        import requests

        try:
            response = self.poll_http.get(f"{self.fake_root}/_fake/messages", timeout=5,
                                          params={"touser": self.person.userid, "after": self.last_seq})
            response.raise_for_status()
            messages = response.json()
            if not messages and self.last_seq and self._fake_restarted():
                self.last_seq = 0  # the demo was restarted: its fake server counts from 1 again
                return self.fetch_pushes()
        except (requests.RequestException, ValueError):
            return []
        fresh = []
        for message in messages:
            seq = int(message.get("seq", 0) or 0)
            if seq and seq <= self.last_seq:
                continue
            self.last_seq = max(self.last_seq, seq)
            fresh.append(message)
        return fresh

    def _fake_restarted(self) -> bool:
        response = self.poll_http.get(f"{self.fake_root}/_fake/stats", timeout=5)
        response.raise_for_status()
        return int(response.json().get("calls", 0)) < self.last_seq

    def render_push(self, message: dict[str, Any]) -> str:
        """A pushed message as the person would read it in WeCom, in plain text."""
        body = message.get("body") if isinstance(message.get("body"), dict) else message
        when = _message_time(message)
        head = f"【推送】{when}"
        kind = body.get("msgtype") or message.get("msgtype") or message.get("kind")
        if "response_code" in body or kind in ("update_template_card", "card_update"):
            replaced = body.get("template_card")
            if isinstance(replaced, dict):  # the whole card replaced: shown as it now reads, greyed out
                title = (replaced.get("main_title") or {}).get("title") or ""
                lines = [f"【卡片更新】{when}", f"  ┌ {title}"]
                lines += [f"  │ {line}" for line in str(replaced.get("sub_title_text") or "").splitlines() if line.strip()]
                lines.append(f"  └ [{replaced.get('replace_text') or '已更新'}]（不可点击）")
                return "\n".join(lines)
            button = body.get("button") or {}
            text = button.get("replace_name") or "已更新"
            # The update names the tap's response code, which only the server knows: it is the
            # answer to the card tapped last.
            card = self.last_tapped
            if card is not None:
                card.status = text
                return f"【卡片更新】{when}\n  卡片 [{card.number}] 的按钮变为：{text}"
            return f"【卡片更新】{when}\n  按钮变为：{text}"
        if kind == "template_card" or "template_card" in body:
            return head + "\n" + self._render_card(body.get("template_card") or {})
        if kind == "file" and isinstance(body.get("file"), dict):
            return f"{head}\n{_indent(self._render_file(body['file'].get('media_id', '')))}"
        for name in ("text", "markdown"):
            part = body.get(name)
            if isinstance(part, dict) and part.get("content"):
                return f"{head}\n{_indent(part['content'])}"
        card = body.get("textcard")
        if isinstance(card, dict):
            return f"{head}\n{_indent(card.get('title', ''))}\n{_indent(card.get('description', ''))}"
        return f"{head}\n{_indent(json.dumps(body, ensure_ascii=False))}"

    def _render_file(self, media_id: str) -> str:
        """A file message: its name and size, and where the fake keeps it (WeCom shows a file to tap)."""
        import requests

        url = f"{self.fake_root}/_fake/media/{media_id}"
        try:
            response = self.poll_http.get(url, timeout=5)
        except requests.RequestException:
            return f"[文件] 下载：{url}"
        if response.status_code != 200 or response.headers.get("Content-Type", "").startswith("application/json"):
            return "[文件] 已过期或不存在"
        name = unquote(response.headers.get("Content-Disposition", "").partition("UTF-8''")[2]) or "文件"
        return f"[文件] {name}（{len(response.content) / 1024:.0f} KB）\n下载：{url}"

    def _render_card(self, card: dict[str, Any]) -> str:
        main = card.get("main_title") or {}
        title = main.get("title") or card.get("title") or ""
        desc = main.get("desc") or card.get("description") or ""
        lines = [f"  ┌ 卡片 [{len(self.cards) + 1}] {title}"]
        lines += [f"  │ {line}" for line in str(desc).splitlines() if line.strip()]
        sub = card.get("sub_title_text")
        if sub:
            lines += [f"  │ {line}" for line in str(sub).splitlines() if line.strip()]
        buttons = [(b.get("text", ""), b.get("key", "")) for b in card.get("button_list") or []]
        number = len(self.cards) + 1
        self.cards.append(Card(number, str(card.get("task_id", "")), title, buttons))
        if buttons:
            shown = "  ".join(f"[{text}]" for text, _ in buttons)
            hint = f"输入 /点 {buttons[0][0]}" + (f" {number}" if number > 1 else "") + " 点击"
            lines.append(f"  └ {shown}   （{hint}）")
        else:
            lines.append("  └")
        return "\n".join(lines)

    def find_button(self, text: str, number: int | None = None) -> tuple[Card, str] | None:
        """The card and key for a button, by its text or key; the latest card unless numbered."""
        candidates = [c for c in self.cards if number is None or c.number == number]
        for card in reversed(candidates):
            for button_text, key in card.buttons:
                if text in (button_text, key):
                    return card, key
        return None


def _message_time(message: dict[str, Any]) -> str:
    from bot.timefmt import format_time

    for name in ("at", "time", "created_at", "sent_at", "timestamp"):
        value = message.get(name)
        try:
            if isinstance(value, (int, float)):
                return format_time(datetime.fromtimestamp(value, UTC))
            if isinstance(value, str) and value:
                parsed = datetime.fromisoformat(value)
                if parsed.tzinfo is not None:
                    return format_time(parsed)
        except (ValueError, OverflowError, OSError):
            continue
    return format_time(datetime.now(UTC))


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in str(text).splitlines())


CHAT_HELP = """本地命令（不会发给直通车）：
  /点 按钮文字 [卡片号]   点击推送卡片上的按钮，例如：/点 收到
  /tap 按钮KEY [卡片号]   同上，用按钮的 key
  /卡片                   列出收到过的卡片
  /帮助                   显示本说明
  退出 或 Ctrl-D          结束聊天
其他输入都会作为企业微信消息发给直通车；行末写 \\ 可以换行接着写（例如「发布」）。"""


class _Conversation:
    """The loop shared by the interactive REPL and non-interactive use."""

    def __init__(self, client: ChatClient, out: Callable[[str], None], interactive: bool) -> None:
        self.client = client
        self.out = out
        self.interactive = interactive
        self.prompt = f"{client.person.name}> "
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def emit(self, text: str) -> None:
        with self.lock:
            self.out(text)

    def emit_async(self, text: str) -> None:
        """Print a push while the person may be typing: keep their half-typed line."""
        with self.lock:
            if not self.interactive:
                self.out(text)
                return
            buffer = ""
            try:
                import readline

                buffer = readline.get_line_buffer()
            except ImportError:
                pass
            sys.stdout.write("\r\x1b[K" + text + "\n" + self.prompt + buffer)
            sys.stdout.flush()

    def show_pushes(self, *, asynchronously: bool) -> None:
        for message in self.client.fetch_pushes():
            text = self.client.render_push(message)
            if asynchronously:
                self.emit_async(text)
            else:
                self.emit(text)

    def poll_forever(self) -> None:
        while not self.stop.wait(POLL_SECONDS):
            self.show_pushes(asynchronously=True)

    def handle(self, line: str) -> bool:
        """Act on one input; False when the person wants to leave."""
        stripped = line.strip()
        if not stripped:
            return True
        if stripped in ("退出", "/退出", "/exit", "/quit", "exit", "quit"):
            return False
        if stripped.startswith("/"):
            self.local_command(stripped)
            return True
        reply = self.client.say(line)
        self.emit("直通车：" + reply if reply else "（直通车没有回复）")
        return True

    def local_command(self, line: str) -> None:
        word, _, rest = line[1:].partition(" ")
        args = rest.split()
        if word in ("点", "tap"):
            if not args:
                self.emit("请写明按钮，例如：/点 收到")
                return
            number = int(args[1]) if len(args) > 1 and args[1].isdigit() else None
            found = self.client.find_button(args[0], number)
            if found is None:
                self.emit(f"没有找到按钮「{args[0]}」" + (f"（卡片 {number}）" if number else "") + "。输入 /卡片 查看收到过的卡片。")
                return
            card, key = found
            self.client.tap(card, key)
            self.emit(f"（已点击卡片 [{card.number}] 的「{args[0]}」，回答随后以推送送达）")
        elif word == "卡片":
            if not self.client.cards:
                self.emit("还没有收到卡片。")
            for card in self.client.cards:
                buttons = card.status or "  ".join(f"[{text}]" for text, _ in card.buttons)
                self.emit(f"[{card.number}] {card.title}  {buttons}")
        elif word in ("帮助", "help", "?"):
            self.emit(CHAT_HELP)
        else:
            self.emit(f"不认识的本地命令「/{word}」。\n{CHAT_HELP}")


def run_chat(
    as_name: str,
    url: str | None = None,
    *,
    lines: Iterable[str] | None = None,
    out: Callable[[str], None] | None = None,
    info_path: Path | None = None,
    wait: float = 0.0,
) -> None:
    """Chat with the demo bot as the roster person `as_name`.

    Interactive by default; with `lines`, sends each line in turn (a line ending in `\\` continues
    on the next), prints through `out`, then keeps collecting pushes for `wait` seconds.
    Problems (no demo running, unknown name, server gone) raise `DemoError` with a Chinese message."""
    emit = out or click.echo
    info = load_info(info_path or DEFAULT_INSTANCE_DIR / DEMO_INFO_NAME)
    person = find_person(info["database_url"], as_name)
    client = ChatClient(info, person, url)
    session = _Conversation(client, emit, interactive=lines is None)
    try:
        # Pushes that arrived before we started: shown when chatting, only remembered otherwise.
        history = client.fetch_pushes()
        if lines is None:
            emit(f"以「{person.name}」（企业微信账号 {person.userid}）的身份连接 {client.url}。输入 /帮助 查看本地命令。")
            for message in history:
                emit(client.render_push(message))
        else:
            for message in history:
                client.render_push(message)  # registers cards so /点 works on them
        poller = None
        if lines is None:
            poller = threading.Thread(target=session.poll_forever, name="chat-pushes", daemon=True)
            poller.start()
        for line in _joined(lines if lines is not None else _prompted(session)):
            if not session.handle(line):
                break
            if lines is not None:
                session.show_pushes(asynchronously=False)
        deadline = time.monotonic() + wait
        while lines is not None and time.monotonic() < deadline:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
            session.show_pushes(asynchronously=False)
        session.stop.set()
        if poller is not None:
            poller.join(timeout=POLL_SECONDS + 1)
    finally:
        session.stop.set()
        client.close()


def _prompted(session: _Conversation) -> Iterator[str]:
    """Lines typed at the terminal until Ctrl-D / Ctrl-C."""
    try:
        import readline  # noqa: F401  (line editing and history for input())
    except ImportError:
        pass
    continuing = False
    while True:
        try:
            line = input("… " if continuing else session.prompt)
        except (EOFError, KeyboardInterrupt):
            print()
            return
        continuing = line.endswith("\\")
        yield line


def _joined(lines: Iterable[str]) -> Iterator[str]:
    """Join lines ending in a backslash with the next, so multi-line commands can be typed."""
    buffer: list[str] = []
    for line in lines:
        if line.endswith("\\"):
            buffer.append(line[:-1].rstrip())
            continue
        yield "\n".join([*buffer, line])
        buffer = []
    if buffer:
        yield "\n".join(buffer)
