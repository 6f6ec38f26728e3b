"""Safe XML for callbacks: no DTD, no entities, bounded size and depth; CDATA that cannot be broken;
and the one tolerance the real servers need (a user's raw text inside a signed message)."""

from __future__ import annotations

import re
from io import BytesIO
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
from defusedxml.ElementTree import iterparse

# WeChat's messages nest at most a few levels (SendPicsInfo > PicList > item > PicMd5Sum); anything
# deeper is not from WeChat and is refused before it is walked.
MAX_DEPTH = 6

# The user's text as WeChat writes it: CDATA holding the text verbatim, so a `]]>` typed by the user
# closes it early. Greedy: the element ends at the last `]]></Content>`.
_CONTENT = re.compile(r"<Content><!\[CDATA\[(.*)\]\]></Content>", re.DOTALL)
# Characters XML 1.0 forbids even in CDATA; WeChat passes them through from the user's keyboard.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class CallbackError(Exception):
    """A callback we refuse: the HTTP status and a reason for the log (never shown to WeChat users)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def parse_xml(data: bytes | str) -> dict[str, Any]:
    """Parse a WeChat XML document into a dict of its `<xml>` children.

    Any DOCTYPE, ENTITY or external reference is refused outright (XXE, billion laughs), and so is
    nesting deeper than MAX_DEPTH: the parse stops at the first element too deep, so a hostile
    body costs no more than its first few levels."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not data.strip():
        raise CallbackError(400, "empty body")
    depth = 0
    root: Element | None = None
    try:
        for event, element in iterparse(BytesIO(data), events=("start", "end"), forbid_dtd=True,
                                        forbid_entities=True, forbid_external=True):
            if event == "start":
                depth += 1
                if depth > MAX_DEPTH:
                    raise CallbackError(400, f"XML nested deeper than {MAX_DEPTH} levels")
                if root is None:
                    root = element
            else:
                depth -= 1
    except defusedxml.DefusedXmlException as exc:
        raise CallbackError(400, f"forbidden XML construct: {type(exc).__name__}") from exc
    except (ParseError, ValueError) as exc:
        raise CallbackError(400, f"malformed XML: {exc}") from exc
    if root is None or root.tag != "xml":
        raise CallbackError(400, f"unexpected root element <{root.tag if root is not None else ''}>")
    return _to_dict(root)


def _to_dict(element: Element) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for child in element:
        out[child.tag] = _to_dict(child) if len(child) else (child.text or "")
    return out


def parse_message(data: bytes | str) -> dict[str, Any]:
    """Parse a message the platform signed (decrypted, or a plain-mode body whose signature held).

    WeChat and WeCom put the user's text into `<Content><![CDATA[…]]></Content>` verbatim: control
    characters and a literal `]]>` arrive unescaped and make the document ill-formed. Only then, and
    only inside `Content`: control characters are dropped and, if that is not enough, the text
    between `<Content><![CDATA[` and the last `]]></Content>` is taken as typed. Every other
    malformation is refused as by `parse_xml`."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise CallbackError(400, "message is not UTF-8") from exc
    try:
        return parse_xml(text)
    except CallbackError:
        found = _CONTENT.search(text)
        if found is None:
            raise
    content = _CONTROL.sub("", found.group(1))
    try:
        return parse_xml(text[:found.start()] + f"<Content><![CDATA[{content}]]></Content>" + text[found.end():])
    except CallbackError:
        return parse_xml(text[:found.start()] + f"<Content>{cdata(content)}</Content>" + text[found.end():])


def cdata(value: object) -> str:
    """Wrap text in CDATA; a `]]>` inside is split so it cannot close the section early."""
    text = str(value).replace("]]>", "]]]]><![CDATA[>")
    return f"<![CDATA[{text}]]>"
