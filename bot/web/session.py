"""Browser sessions for the mobile pages only.

The callbacks never read or write a cookie: every request outside /m/ gets Flask's null session
and pays nothing for the cookie signer (callback speed matters: WeChat gives up after 5 s)."""

from __future__ import annotations

from flask.sessions import SecureCookieSessionInterface

PAGES_PREFIX = "/m/"


class PagesSessions(SecureCookieSessionInterface):
    """A signed cookie session (HttpOnly, SameSite=Lax, Secure on https) under /m/ only."""

    def open_session(self, app, request):
        if not request.path.startswith(PAGES_PREFIX):
            return None  # Flask then uses a null session, which is never saved
        return super().open_session(app, request)

    def save_session(self, app, session, response) -> None:
        from flask import request

        if request.path.startswith(PAGES_PREFIX):
            super().save_session(app, session, response)
