"""The worker's export job: build each requested 一事一档 file and send it back, once per request.

`export_once(runtime, senders)` claims due export requests (models/export.py: a lease, like
outbox rows), builds the DOCX outside any transaction, and then:
- WeCom: uploads it (`media/upload`, type file) and writes a `file` message to the requester;
- Official Account: writes a text with the signed download link (`/files/<token>`, 24 h).
The outbox row and the request's DONE mark are one transaction, taken only while the claim still
holds, so a worker that dies mid-build leaves the request to be claimed again when its lease runs
out, and a request is never sent twice (an upload repeated after a crash is only an unused
temporary file, which WeCom deletes after 3 days). The outbox then sends the message with its
own guarantees (bot/worker.py)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from bot.channels.base import TransientSendError
from bot.reports.docx_file import matter_docx
from bot.reports.matter import NoSuchMatter, matter_of
from bot.reports.period import matter_filename
from bot.runtime import Runtime
from bot.web.files import FILE_VALID, file_url
from models.export import ClaimedExport, claim_exports, finish_export, retry_export
from models.outbox import OutboxChannel, enqueue, text_payload

log = logging.getLogger(__name__)

RETRY_AFTER = timedelta(minutes=1)


def export_once(runtime: Runtime, senders: dict[OutboxChannel, Any]) -> int:
    """Claim, build and answer due export requests with the worker's `senders` (WeCom uploads
    the file). Returns how many got an outcome."""
    with runtime.db.session() as session:
        claims = claim_exports(session, runtime.now())
    done = 0
    for claim in claims:
        try:
            payload = _build_and_upload(runtime, claim, senders)
        except (TransientSendError, OSError) as exc:
            _give_back(runtime, claim, getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}")
            continue
        except Exception as exc:  # a bug in building: back off, then give up and say so
            log.exception("export %d of #%d failed", claim.id, claim.number)
            _give_back(runtime, claim, f"{type(exc).__name__}: {exc}"[:300])
            continue
        now = runtime.now()
        with runtime.db.session() as session:
            row = enqueue(session, OutboxChannel(claim.channel), claim.recipient, payload,
                          person_id=claim.person_id, at=now, subject_type="export_request", subject_id=claim.id)
            session.flush()
            if not finish_export(session, claim, outbox_id=row.id, now=now):
                session.rollback()  # another worker took the request over: it answers
                continue
        done += 1
    return done


def _build_and_upload(runtime: Runtime, claim: ClaimedExport, senders) -> dict[str, Any]:
    """The outbox payload that answers this request (building the file, uploading it in WeCom)."""
    from bot.channels.wecom import UploadRefused

    settings = runtime.settings
    tz = settings.tz
    now = runtime.now()
    try:
        with runtime.db.read_session() as session:
            matter = matter_of(session, claim.number, tz)
            data = matter_docx(matter, tz)
    except NoSuchMatter:
        return text_payload(f"未能导出 #{claim.number}：没有这个编号的通知、学习或会议。")
    name = matter_filename(matter, tz)
    if claim.channel == OutboxChannel.WECOM.value:
        sender = senders.get(OutboxChannel.WECOM)
        if sender is None:
            return text_payload(f"未能导出 #{claim.number}：企业微信未配置。")
        try:
            media_id = sender.upload_file(name, data)
        except UploadRefused as exc:
            return text_payload(f"未能发送 #{claim.number} 的档案文件：{exc.reason}")
        return {"type": "file", "media_id": media_id, "filename": name, "number": claim.number}
    url = file_url(settings, claim.number, claim.person_id, now)
    if url is None:
        return text_payload(f"#{claim.number} 的档案文件已生成，但本服务未设置对外地址，无法提供下载链接。"
                            f"请在电脑上运行：python -m bot export {claim.number}")
    hours = int(FILE_VALID.total_seconds() // 3600)
    return text_payload(f"#{claim.number}「{matter.title}」的档案文件已生成，请在 {hours} 小时内下载：\n{url}")


def _give_back(runtime: Runtime, claim: ClaimedExport, reason: str) -> None:
    now = runtime.now()
    with runtime.db.session() as session:
        if retry_export(session, claim, reason, now=now, delay=RETRY_AFTER):
            enqueue(session, OutboxChannel(claim.channel), claim.recipient,
                    text_payload(f"#{claim.number} 的档案文件生成失败，请稍后再发送「导出 {claim.number}」。"),
                    person_id=claim.person_id, at=now, subject_type="export_request", subject_id=claim.id)
