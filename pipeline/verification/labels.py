"""The labels that tie a model server's metrics to its deployment (shared grammar).

The program's ServiceMonitor gives every scraped series ``namespace``, ``app``
(the pod's ``app.kubernetes.io/name``) and ``version`` (its
``app.kubernetes.io/version``); ``pipeline verify`` selects a deployment's pods by
the same three. The version is the image tag (the git sha) when it is a valid
label value, else the start of the digest, so the program and the pipeline must
compute it alike: here, importing nothing (``infra`` imports it too).
"""

from __future__ import annotations

import re

NAMESPACE = "namespace"
APP = "app"
VERSION = "version"
# The app labels model_info with the model's own version; scraped through a
# ServiceMonitor that label would collide with the target's VERSION, so the
# monitor renames it to this.
MODEL_VERSION = "model_version"
POD_NAME_LABEL = "app.kubernetes.io/name"
POD_VERSION_LABEL = "app.kubernetes.io/version"

_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?\Z")
_DIGEST_PREFIX = "sha256:"
_DIGEST_CHARS = 12


def version_label(tag: str | None, digest: str | None) -> str | None:
    """The ``app.kubernetes.io/version`` of pods running ``tag``/``digest`` (None: no label)."""
    hex_part = digest[len(_DIGEST_PREFIX) :] if digest and digest.startswith(_DIGEST_PREFIX) else ""
    for candidate in (tag or "", hex_part[:_DIGEST_CHARS]):
        if candidate and _LABEL_VALUE.match(candidate):
            return candidate
    return None


__all__ = [
    "APP",
    "MODEL_VERSION",
    "NAMESPACE",
    "POD_NAME_LABEL",
    "POD_VERSION_LABEL",
    "VERSION",
    "version_label",
]
