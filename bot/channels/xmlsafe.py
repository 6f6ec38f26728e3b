"""Safe XML for callbacks: no DTD, no entities, bounded size; and CDATA that cannot be broken."""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
from defusedxml.ElementTree import fromstring


class CallbackError(Exception):
    """A callback we refuse: the HTTP status and a reason for the log (never shown to WeChat users)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def parse_xml(data: bytes | str) -> dict[str, Any]:
    """Parse a WeChat XML document into a dict of its `<xml>` children.

    Any DOCTYPE, ENTITY or external reference is refused outright (XXE, billion laughs)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not data.strip():
        raise CallbackError(400, "empty body")
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise CallbackError(400, f"forbidden XML construct: {type(exc).__name__}") from exc
    except (ParseError, ValueError) as exc:
        raise CallbackError(400, f"malformed XML: {exc}") from exc
    if root.tag != "xml":
        raise CallbackError(400, f"unexpected root element <{root.tag}>")
    return _to_dict(root)


def _to_dict(element: Element) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for child in element:
        out[child.tag] = _to_dict(child) if len(child) else (child.text or "")
    return out


def cdata(value: object) -> str:
    """Wrap text in CDATA; a `]]>` inside is split so it cannot close the section early."""
    text = str(value).replace("]]>", "]]]]><![CDATA[>")
    return f"<![CDATA[{text}]]>"
