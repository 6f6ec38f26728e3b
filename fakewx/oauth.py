"""WeCom web OAuth on the fake server: the authorize page and `auth/getuserinfo`.

Real WeCom knows who holds the phone; the fake asks. Its authorize page lists the people it was
given (the demo and the tests hand it the roster) and, once one is chosen, redirects back to
`redirect_uri` with `state` and a single-use code, as WeCom does. `auth/getuserinfo` answers a
code once with the member's `userid`; a code it does not know, or one already used, is 40029."""

from __future__ import annotations

import html
import secrets
import threading
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from flask import Flask, Response, jsonify, request


@dataclass
class OAuthDesk:
    """Who may be chosen on the authorize page, and the codes handed out and not yet exchanged."""

    people: list[dict[str, str]] = field(default_factory=list)  # {"userid", "name", "org"}
    codes: dict[str, str] = field(default_factory=dict)  # code → userid
    exchanged: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set_people(self, people: list[dict[str, str]]) -> None:
        with self.lock:
            self.people = [{"userid": str(p["userid"]), "name": str(p.get("name") or p["userid"]),
                            "org": str(p.get("org") or "")} for p in people]

    def issue(self, userid: str) -> str:
        code = secrets.token_urlsafe(32)
        with self.lock:
            self.codes[code] = userid
        return code

    def exchange(self, code: str) -> str | None:
        with self.lock:
            userid = self.codes.pop(code, None)
            if userid is not None:
                self.exchanged += 1
            return userid


PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>模拟企业微信 · 身份确认</title>
<style>body{{font:16px/1.5 sans-serif;margin:0;background:#f2f2f2;color:#222}}
header{{background:#2b6fd6;color:#fff;padding:12px 16px}}main{{padding:12px}}
a.who{{display:block;background:#fff;border-radius:8px;padding:10px 14px;margin:0 0 8px;color:#222;text-decoration:none}}
small{{color:#666}}form{{background:#fff;border-radius:8px;padding:10px 14px}}</style></head><body>
<header>模拟企业微信 · 网页授权</header><main>
<p>真实的企业微信会直接确认您的身份；在演示中，请选择您是谁：</p>
{people}
<form method="get" action="choose">{hidden}<label>或输入企业微信账号：<input name="userid" required></label>
<button>确认</button></form></main></body></html>"""


def register_oauth(app: Flask, desk: OAuthDesk, api) -> None:
    """Add the authorize page, its choice and `auth/getuserinfo` (through the fake's `api` wrapper:
    counted, faults injectable, access token checked) to the fake's app."""

    def redirect_params() -> tuple[dict[str, str], str | None]:
        args = {k: request.args.get(k, "") for k in ("appid", "redirect_uri", "response_type", "scope",
                                                      "state", "agentid")}
        if not args["appid"]:
            return args, "缺少 appid"
        if args["response_type"] != "code":
            return args, "response_type 必须为 code"
        if args["scope"] not in ("snsapi_base", "snsapi_privateinfo"):
            return args, "scope 无效"
        if urlsplit(args["redirect_uri"]).scheme not in ("http", "https"):
            return args, "redirect_uri 无效"
        return args, None

    @app.get("/connect/oauth2/authorize")
    def oauth_authorize() -> Response:
        args, problem = redirect_params()
        if problem:
            return Response(problem, status=400, mimetype="text/plain")
        with desk.lock:
            people = list(desk.people)
        links = "\n".join(
            f'<a class="who" href="choose?{html.escape(urlencode({**args, "userid": p["userid"]}))}">'
            f'{html.escape(p["name"])} <small>{html.escape(p["org"])}</small></a>' for p in people)
        hidden = "".join(f'<input type="hidden" name="{k}" value="{html.escape(v)}">' for k, v in args.items())
        return Response(PAGE.format(people=links, hidden=hidden), mimetype="text/html")

    @app.get("/connect/oauth2/choose")
    def oauth_choose() -> Response:
        args, problem = redirect_params()
        userid = request.args.get("userid", "").strip()
        if problem or not userid:
            return Response(problem or "缺少 userid", status=400, mimetype="text/plain")
        code = desk.issue(userid)
        target = args["redirect_uri"]
        sep = "&" if "?" in target else "?"
        response = Response(status=302)
        response.headers["Location"] = f"{target}{sep}{urlencode({'code': code, 'state': args['state']})}"
        return response

    @app.get("/cgi-bin/auth/getuserinfo")
    @api("auth/getuserinfo", "wecom")
    def oauth_getuserinfo() -> Response:
        userid = desk.exchange(request.args.get("code", ""))
        if userid is None:
            return jsonify({"errcode": 40029, "errmsg": "invalid code, hint: [fake]"})
        return jsonify({"errcode": 0, "errmsg": "ok", "userid": userid, "user_ticket": ""})

    @app.post("/_fake/oauth_people")
    def fake_oauth_people() -> Response:
        """{"people": [{"userid": "zhangwei", "name": "张伟", "org": "综合处党支部"}, …]}"""
        body = request.get_json(silent=True) or {}
        people = body.get("people")
        if not isinstance(people, list) or not all(isinstance(p, dict) and p.get("userid") for p in people):
            return Response('{"ok": false}', status=400, mimetype="application/json")
        desk.set_people(people)
        return jsonify({"ok": True})
