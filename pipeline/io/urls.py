"""URLs as the pipeline reads them from users and servers: checked, and shown without secrets.

``urllib.parse`` raises ``ValueError`` for a port out of range or a bracket left open
(``http://[::1/``), and only when ``.port`` is read, so a bad URL surfaced as an
"internal error" wherever it was first touched. ``split`` checks everything once and
raises ``BadUrl`` with a reason a user can act on. Messages never quote the userinfo
of a URL (``http://user:token@host/``): ``shown`` drops it, and ``has_userinfo`` lets a
caller refuse credentials where a token variable is the way to give them. Pure and light
(``urllib.parse`` only): ``infra.config`` uses it too.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

MAX_PORT = 65535


class BadUrl(ValueError):
    """A URL that cannot be used; the message never contains its userinfo."""


def shown(url: str) -> str:
    """``url`` without userinfo (``user:password@``), safe to print; never raises."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url if "@" not in url else "(a URL with credentials)"
    authority_end = len(rest)
    for delimiter in "/?#":
        found = rest.find(delimiter)
        if found >= 0:
            authority_end = min(authority_end, found)
    authority, tail = rest[:authority_end], rest[authority_end:]
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return f"{scheme}{sep}{authority}{tail}"


def has_userinfo(url: str) -> bool:
    """Whether the URL's authority carries a user name or password."""
    _, sep, rest = url.partition("://")
    if not sep:
        return False
    authority = rest
    for delimiter in "/?#":
        authority = authority.split(delimiter, 1)[0]
    return "@" in authority


def split(url: str, *, schemes: tuple[str, ...] = ("http", "https")) -> SplitResult:
    """``urlsplit(url)`` with a host, one of ``schemes``, and a port 1..65535 if given."""
    if any(ord(ch) < 0x21 or ch == "\x7f" for ch in url):
        raise BadUrl(f"{shown(url)!r} contains spaces or control characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # "Invalid IPv6 URL": a bracket left open
        raise BadUrl(f"{shown(url)!r} is not a URL ({_reason(exc)})") from None
    if parts.scheme.lower() not in schemes:
        raise BadUrl(f"{shown(url)!r} is not a {'/'.join(schemes)} URL")
    try:
        port = parts.port
    except ValueError as exc:  # "Port out of range 0-65535", "Port could not be cast"
        raise BadUrl(f"{shown(url)!r} has an invalid port ({_reason(exc)})") from None
    if not parts.hostname:
        raise BadUrl(f"{shown(url)!r} has no host")
    if port == 0:
        raise BadUrl(f"{shown(url)!r} has an invalid port (0; use 1-{MAX_PORT})")
    return parts


def _reason(exc: ValueError) -> str:
    text = str(exc)
    if "IPv6" in text:
        return "an IPv6 address must be written in brackets, e.g. http://[::1]:8080/"
    if "range" in text or "cast" in text:
        return f"a port is a number from 1 to {MAX_PORT}"
    return text


__all__ = ["MAX_PORT", "BadUrl", "has_userinfo", "shown", "split"]
