"""What the environment says about the network: proxies, the CA bundle, loopback.

``https_proxy``/``http_proxy`` (either case) with ``no_proxy`` as ``requests`` reads
them, ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` for TLS verification, and which hosts
never leave the machine. Used by ``pipeline.io.http`` (which re-exports the public
names); ``ssl`` is imported only when a TLS context is made.
"""

from __future__ import annotations

import base64
import ipaddress
import os
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    import ssl


def _env(name: str) -> str:
    return os.environ.get(name.lower()) or os.environ.get(name.upper()) or ""


def is_loopback(hostname: str) -> bool:
    """``localhost`` or a loopback address: where plain HTTP never leaves the machine."""
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        return False


def _in_network(host: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


def _bypass_proxy(host: str, port: int) -> bool:
    """``no_proxy`` as requests reads it: ``*``, host suffixes, ``host:port``, CIDR."""
    for entry in (e.strip().lower() for e in _env("no_proxy").split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        if "/" in entry:
            if _in_network(host, entry):
                return True
            continue
        name, _, entry_port = entry.partition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and entry_port != str(port):
            continue
        name = name.removeprefix("*").lstrip(".").strip("[]")
        if host == name or host.endswith("." + name):
            return True
    return False


def proxy_for(scheme: str, host: str, port: int) -> str | None:
    """The proxy URL the environment gives for ``scheme://host:port``, if any."""
    proxy = _env(f"{scheme}_proxy")
    if not proxy or _bypass_proxy(host, port):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def basic_auth(username: str, password: str) -> str:
    """The value of a Basic ``Authorization`` (or ``Proxy-Authorization``) header."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def proxy_auth(proxy: str) -> dict[str, str]:
    parts = urlsplit(proxy)
    if parts.username is None:
        return {}
    return {
        "Proxy-Authorization": basic_auth(unquote(parts.username), unquote(parts.password or ""))
    }


def tls_context() -> ssl.SSLContext:
    import ssl  # only for https: a plain-HTTP registry on loopback never needs it

    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle and os.path.isdir(bundle):
        return ssl.create_default_context(capath=bundle)
    return ssl.create_default_context(cafile=bundle or None)


__all__ = ["basic_auth", "is_loopback", "proxy_auth", "proxy_for", "tls_context"]
