"""WeCom group robot (群机器人): a webhook key per group, text or markdown, no token.

The robot's key is a credential: it never appears in logs or stored reasons."""

from __future__ import annotations

import json
from typing import Any

import requests
from wechatpy.exceptions import WeChatClientException

from bot.channels.base import ROBOT_MARKDOWN_LIMIT_BYTES, SendResult, card_number, fit_bytes
from bot.channels.clients import ApiError, call_api
from config.settings import WECOM_DEFAULT_API_BASE


class WebhookChannel:
    name = "webhook"
    max_recipients = 1  # one robot (group) per call
    rate_per_minute = 20  # WeCom: a robot sends at most 20 messages a minute

    def __init__(self, api_base: str = WECOM_DEFAULT_API_BASE, *, timeout: float = 5.0) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds")
        self.api_base = api_base if api_base.endswith("/") else api_base + "/"
        self.timeout = timeout
        self.http = requests.Session()

    def send(self, recipients: list[str], payload: dict[str, Any]) -> SendResult:
        """Post `payload` to each robot key in `recipients`.

        Raises TransientSendError when nothing was sent and a retry may work."""
        body = render_message(payload)
        if body is None:
            return SendResult.all_failed(recipients, f"unsupported payload type {payload.get('type')!r} for webhook")
        result = SendResult()
        for key in recipients:
            try:
                call_api(lambda key=key: self._post(key, body))
            except ApiError as exc:
                result.failed[key] = "93000 invalid webhook key" if exc.errcode == 93000 else f"{exc.errcode} {exc.errmsg}"
                continue
            result.accepted.append(key)
        return result

    def _post(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(
            f"{self.api_base}webhook/send", params={"key": key},
            data=json.dumps(body, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json; charset=utf-8"}, timeout=self.timeout,
        )
        if response.status_code >= 400:
            raise WeChatClientException(None, None, response=response)
        try:
            data = response.json()
        except ValueError:
            return None  # call_api reports a non-JSON answer as transient
        if isinstance(data, dict) and data.get("errcode"):
            raise WeChatClientException(int(data["errcode"]), data.get("errmsg"), response=response)
        return data


def render_message(payload: dict[str, Any]) -> dict[str, Any] | None:
    """Text and markdown as the app sends them; a card as markdown (a group robot has no buttons)."""
    from bot.channels.wecom import render_message as render_app_message

    kind = payload.get("type")
    if kind in ("text", "markdown"):
        return render_app_message(payload, markdown_limit=ROBOT_MARKDOWN_LIMIT_BYTES)
    if kind == "card":
        # Nobody can answer a group robot, so no "reply 收到" instruction: title and text only.
        content = f"**{payload.get('title') or ''}**\n{payload.get('description') or ''}".strip()
        if payload.get("url"):
            content += f"\n[详情]({payload['url']})"
        content = fit_bytes(content, ROBOT_MARKDOWN_LIMIT_BYTES, card_number(payload))
        return {"msgtype": "markdown", "markdown": {"content": content}}
    return None
