"""Validation helpers shared by lexigram packages: secret values and how to show them."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import SecretStr

__all__ = ["SecretStr", "mask_secret", "safe_url", "url_secrets"]

_VISIBLE_TAIL = 4
_MIN_LENGTH_TO_SHOW_TAIL = 12


def mask_secret(value: str) -> str:
    """Mask a secret for display: ``"***...abcd"``, showing at most its last 4 characters.

    Strings shorter than 12 characters are masked completely, since their tail says too much.
    """
    if len(value) < _MIN_LENGTH_TO_SHOW_TAIL:
        return "***"
    return f"***...{value[-_VISIBLE_TAIL:]}"


# Query parameters whose values are credentials (``?key=...`` for Google, SAS ``sig``...).
_SECRET_QUERY = re.compile(r"(key|token|secret|password|passwd|sig|signature|credential)s?$", re.I)


def safe_url(url: str) -> str:
    """``url`` fit for display: its userinfo (``user:password@``) and the values of
    credential-like query parameters (``key``, ``token``, ``sig``...) shown as ``***``.

    Text that is not a URL comes back unchanged."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = "***@" + netloc.rpartition("@")[2]
        query = parts.query
        if query:
            query = "&".join(
                f"{name}=***" if _SECRET_QUERY.search(name) else piece
                for piece in query.split("&")
                for name in (piece.partition("=")[0],)
            )
        if netloc == parts.netloc and query == parts.query:
            return url
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:  # not parsable as a URL (an invalid port, a bad IPv6 host)
        return re.sub(r"//[^/@\s]*@", "//***@", url)


def url_secrets(url: str | None) -> tuple[str, ...]:
    """The credentials inside ``url`` (the userinfo password, or the user name when there is
    no password, and credential-like query values), both as written and percent-decoded, so
    that they can be scrubbed from text."""
    if not url:
        return ()
    found: list[str] = []
    try:
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
        user, _, password = userinfo.partition(":")
        # A password is the secret; a user name alone is one too (``https://TOKEN@host``).
        pieces = [password or user] if userinfo else []
        for piece in parts.query.split("&") if parts.query else ():
            name, _, value = piece.partition("=")
            if value and _SECRET_QUERY.search(unquote(name)):
                pieces.append(value)
    except ValueError:
        return ()
    for piece in pieces:
        found.append(piece)
        decoded = unquote(piece)
        if decoded != piece:
            found.append(decoded)
    return tuple(found)
