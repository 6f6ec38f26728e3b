"""`GET /files/<token>`: a generated file (一事一档) behind a signed token valid 24 hours (SPEC §10).

The token names the item's number and the person it was made for, signed with SECRET_KEY and
dated by the bot's clock; any web process can serve it, since the file is rebuilt from the
records the token names (the person's right to it is checked again, so a token outlives
neither their role nor the item)."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import quote

from flask import Blueprint, Response

from bot.access import may_export
from bot.reports.docx_file import matter_docx
from bot.reports.matter import find_item, matter_of
from bot.reports.period import matter_filename
from bot.runtime import current_runtime
from bot.web.auth import refuse
from bot.web.links import read_dated, sign_dated
from config.settings import Settings
from models.person import Person

FILE_VALID = timedelta(hours=24)
_SALT = "zhitong-file-link"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

bp = Blueprint("files", __name__)


def sign_file(settings: Settings, number: int, person_id: int, now: datetime, kind: str | None = None) -> str:
    data = {"n": number, "p": person_id, **({"k": kind} if kind else {})}
    return sign_dated(settings, _SALT, data, now)


def read_file_token(settings: Settings, token: str, now: datetime) -> tuple[int, int, str | None] | None:
    """(number, person id, kind or None) of a valid, unexpired token; None for a forged or expired one."""
    data = read_dated(settings, _SALT, token, now, FILE_VALID)
    try:
        return (int(data["n"]), int(data["p"]), data.get("k")) if data is not None else None
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def file_path(settings: Settings, number: int, person_id: int, now: datetime, kind: str | None = None) -> str:
    """The download path; `kind` ("directive" or "meeting") when the caller knows which item it is."""
    return f"/files/{sign_file(settings, number, person_id, now, kind)}"


def file_url(settings: Settings, number: int, person_id: int, now: datetime) -> str | None:
    """The full download address, or None when the bot does not know its public address."""
    if not settings.public_base_url:
        return None
    return settings.public_base_url + file_path(settings, number, person_id, now)


@bp.get("/files/<token>")
def download(token: str):
    runtime = current_runtime()
    now = runtime.now()
    found = read_file_token(runtime.settings, token, now)
    if found is None:
        return refuse(404, "下载链接无效或已过期（24 小时内有效），请重新发送「导出 编号」。")
    number, person_id, kind = found
    if kind not in (None, "directive", "meeting"):
        return refuse(404, "下载链接无效或已过期（24 小时内有效），请重新发送「导出 编号」。")
    tz = runtime.settings.tz
    with runtime.db.read_session() as s:
        person = s.get(Person, person_id)
        item = find_item(s, number, kind)
        if item is None or not may_export(person, item):
            return refuse(403, f"您无权下载 #{number} 的档案文件。")
        matter = matter_of(s, number, tz, kind)
        data = matter_docx(matter, tz)
    name = matter_filename(matter, tz)
    return Response(data, mimetype=DOCX_TYPE, headers={
        "Content-Disposition": f"attachment; filename=\"matter-{number}.docx\"; filename*=UTF-8''{quote(name)}",
        "Cache-Control": "private, no-store",
    })
