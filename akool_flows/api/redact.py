"""URLs made fit for error messages and logs.

URLs carry secrets in three places: userinfo (``https://user:pass@host``), query values (API
keys, presigned signatures) and path segments that are capabilities (a webhook receiver's
``/webhook/<path_token>``, unguessable object names). `redact_url` keeps what helps a reader find
the problem - scheme, host, port, the readable path, the query *keys* - and drops the rest:

* userinfo is dropped: ``https://u:p@host/x`` -> ``https://host/x``;
* every query value becomes ``***`` (``?sig=abc&ttl=60`` -> ``?sig=***&ttl=***``), and so does a
  bare query item that looks like a token;
* a path segment that looks like a token becomes ``***``: 16 or more characters of URL-safe
  base64 or hex (``A-Z a-z 0-9 _ -``, ``=`` padding) with at least two digits or mixed upper
  and lower case. A segment whose dot-separated parts include one (``<jwt>.<sig>``,
  ``<uuid>.png``) goes whole. Words such as Akool's ``createbytalkingphoto`` or ``results_v2``
  stay readable; so would an all-lowercase token with fewer than two digits - the price of
  readable paths (random hex or base64 of that length almost never is one);
* a fragment becomes ``***``.

`redact_urls_in` applies the same to every URL inside a free text (Akool's messages can echo
the URLs they were given). Neither ever raises: error paths call them.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["redact_url", "redact_urls_in"]

MASK = "***"
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,}={0,2}")
_URL_IN_TEXT_RE = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")


def _looks_secret(piece: str) -> bool:
    if not _TOKEN_RE.fullmatch(piece):
        return False
    return sum(c.isdigit() for c in piece) >= 2 or (piece.lower() != piece and piece.upper() != piece)


def _segment(seg: str) -> str:
    return MASK if any(_looks_secret(p) for p in seg.split(".")) else seg


def _query(query: str) -> str:
    items = []
    for item in query.split("&"):
        key, eq, _ = item.partition("=")
        items.append(f"{key}={MASK}" if eq else _segment(item))
    return "&".join(items)


def redact_url(url: object) -> str:
    """`url` without userinfo, query values, token-like path segments or fragment (see module)."""
    text = str(url)
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        port = parts.port  # raises ValueError on a non-numeric port
    except ValueError:
        # Unparseable (bad IPv6 literal, bad port): keep only the scheme.
        scheme = text.partition("://")[0] if "://" in text else ""
        return f"{scheme}://{MASK}" if scheme.isalnum() else MASK
    netloc = parts.netloc
    if "@" in netloc:
        # Rebuilt from the parsed host and port: nothing of the userinfo survives.
        netloc = (f"[{host}]" if ":" in host else host) + (f":{port}" if port is not None else "")
    out = f"{parts.scheme}:" if parts.scheme else ""
    if text[len(out):].startswith("//"):  # urlunsplit would drop an empty authority (sqlite:///x)
        out += f"//{netloc}"
    out += "/".join(_segment(s) for s in parts.path.split("/"))
    if parts.query:
        out += f"?{_query(parts.query)}"
    return out + (f"#{MASK}" if parts.fragment else "")


def redact_urls_in(text: str) -> str:
    """`text` with every ``scheme://...`` URL in it passed through `redact_url`."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT_RE.sub(lambda m: redact_url(m.group()), text)
