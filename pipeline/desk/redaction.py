"""Secrets inside URLs, kept out of what is printed, stored and logged.

A feed URL may carry credentials (`https://user:secret@host/feed`) or a token in its query (`?token=…`),
and a webhook URL its secret in the path (Slack: `/services/T…/B…/token`). HTTP libraries repeat the URL,
whole or in part (`Max retries exceeded with url: /feed?token=…`), in their errors. `shown_url` is a URL
as it may be shown; `redact` cleans a message, knowing the URL it is about or not.
"""
from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

HIDDEN = "…"
TOKEN_LENGTH = 8   # a query value this long is replaced wherever the message repeats it
USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#]+@")       # scheme://user:password@
QUERY_VALUE = re.compile(r"([?&][^=\s&#?/'\"]+=)[^&\s#'\")<>]+")       # ?token=abc, &key=abc


def shown_url(url: str, secret_path: bool = False) -> str:
    """The URL without its user and password, with every query value and the fragment hidden (and the
    path, where it is the secret): `https://host/feed?token=…`. Relative links still resolve against it."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = "&".join(f"{part.split('=', 1)[0]}={HIDDEN}" if "=" in part else HIDDEN
                     for part in parts.query.split("&")) if parts.query else ""
    path = f"/{HIDDEN}" if secret_path and len(parts.path) > 1 else parts.path
    return urlunsplit((parts.scheme, netloc, path, query, HIDDEN if parts.fragment else ""))


def redact(message: str, url: str | None = None, secret_path: bool = False) -> str:
    """The message without the secrets of `url` (each piece, as written and decoded), and without the
    user and password or the query values of any URL in it."""
    if url:
        message = message.replace(url, shown_url(url, secret_path))
        for piece in sorted(_secret_pieces(url, secret_path), key=len, reverse=True):
            message = message.replace(piece, HIDDEN)
    return QUERY_VALUE.sub(rf"\g<1>{HIDDEN}", USERINFO.sub(r"\g<1>", message))


def _secret_pieces(url: str, secret_path: bool) -> set[str]:
    """The password (or a user name that is the token), and query values and a fragment long enough to be a
    token: a short value ('rss', '1') would blank out the same letters everywhere in the message."""
    parts = urlsplit(url)
    pieces = set()
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        pieces |= {userinfo, userinfo.split(":", 1)[-1]}
    values = [part.split("=", 1)[-1] for part in parts.query.split("&")] if parts.query else []
    pieces |= {value for value in [*values, parts.fragment] if len(value) >= TOKEN_LENGTH}
    if secret_path:
        pieces |= {parts.query, parts.path}
    pieces |= {unquote(piece) for piece in pieces}
    return {piece for piece in pieces if len(piece) > 1}
