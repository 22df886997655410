"""Registry credentials as ``docker`` and ``skopeo`` find them.

``$DOCKER_CONFIG/config.json`` (default ``~/.docker/config.json``): ``credHelpers``
per registry first, then ``auths`` (``auth`` as base64 of ``user:password``, or
``username``/``password``), then the ``credsStore`` helper for everything else.
A helper is ``docker-credential-<name> get`` with the server on stdin, run through
the pipeline's one process runner. Messages name the file or helper, never a secret.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

from pipeline.errors import RegistryError
from pipeline.io.http import basic_auth
from pipeline.io.process import ProcessTimeout, Runner, run

HELPER_TIMEOUT = 15.0

_DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


class Credentials(NamedTuple):
    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r})"  # never the password

    def basic_header(self) -> str:
        return basic_auth(self.username, self.password)


def docker_config_path() -> Path:
    """``$DOCKER_CONFIG/config.json``, by default ``~/.docker/config.json``."""
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base if base else Path.home() / ".docker") / "config.json"


def _auth_key_host(key: str) -> str:
    """The host of an ``auths`` key (``https://host/v1/``, ``host:port`` or ``host``)."""
    text = key if "://" in key else f"//{key}"
    try:
        netloc = urlsplit(text).netloc or key
    except ValueError:  # "[::1": matches no registry, as docker would find none
        return key.lower()
    return netloc.lower()


def _same_registry(key_host: str, registry: str) -> bool:
    if registry in DOCKER_HUB_ALIASES:
        return key_host in DOCKER_HUB_ALIASES
    return key_host == registry.lower()


def _run_helper(helper: str, registry: str, runner: Runner) -> Credentials | None:
    import json

    server = _DOCKER_HUB_AUTH_KEY if registry in DOCKER_HUB_ALIASES else registry
    try:
        done = runner([f"docker-credential-{helper}", "get"], timeout=HELPER_TIMEOUT, stdin=server)
    except FileNotFoundError:
        raise RegistryError(
            f"credential helper docker-credential-{helper} (for {registry}, from "
            f"{docker_config_path()}) is not on PATH"
        ) from None
    except ProcessTimeout:
        raise RegistryError(
            f"credential helper docker-credential-{helper} did not answer for {registry} "
            f"within {HELPER_TIMEOUT:.0f} s"
        ) from None
    if done.returncode != 0:
        # "credentials not found in native keychain" and the like: anonymous.
        return None
    try:
        data = json.loads(done.stdout)
        username, secret = str(data["Username"]), str(data["Secret"])
    except (ValueError, KeyError, TypeError):
        raise RegistryError(
            f"credential helper docker-credential-{helper} gave an unreadable answer for {registry}"
        ) from None
    if username == "<token>":  # an identity token, which this client does not exchange
        return None
    return Credentials(username, secret)


def _decode_auth(key: str, value: object, path: Path) -> Credentials:
    import base64
    import binascii

    try:
        decoded = base64.b64decode(str(value), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    username, sep, password = decoded.partition(":")
    if not sep or not username:
        raise RegistryError(f"the auths entry for {key} in {path} is not base64 of user:password")
    return Credentials(username, password)


def docker_credentials(
    registry: str, config_path: Path | None = None, runner: Runner = run
) -> Credentials | None:
    """Credentials for ``registry`` as docker/skopeo find them, or ``None``."""
    import json

    path = config_path or docker_config_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RegistryError(
            f"cannot read Docker credentials from {path}: {exc.strerror or exc}"
        ) from None
    except ValueError as exc:
        raise RegistryError(f"cannot read Docker credentials from {path}: {exc}") from None
    if not isinstance(data, dict):
        raise RegistryError(f"cannot read Docker credentials from {path}: not a JSON object")
    helpers = data.get("credHelpers") or {}
    if isinstance(helpers, dict):
        for key, helper in helpers.items():
            if _same_registry(_auth_key_host(key), registry) and isinstance(helper, str):
                return _run_helper(helper, registry, runner)
    auths = data.get("auths") or {}
    if isinstance(auths, dict):
        for key, entry in auths.items():
            if not (_same_registry(_auth_key_host(key), registry) and isinstance(entry, dict)):
                continue
            if entry.get("auth"):
                return _decode_auth(key, entry["auth"], path)
            if entry.get("username") and entry.get("password"):
                return Credentials(str(entry["username"]), str(entry["password"]))
    store = data.get("credsStore")
    if isinstance(store, str) and store:
        return _run_helper(store, registry, runner)
    return None


__all__ = ["Credentials", "docker_config_path", "docker_credentials"]
