"""Kubernetes' own grammar, for settings that become Kubernetes fields.

DNS-1123 labels and subdomains, DNS-1035 labels, label keys and values, taints,
HTTP paths and CPU/memory quantities, as the API server validates them, so a bad
value fails at ``pulumi preview`` with the key named rather than at apply time.
Validators raise ``SettingsError``; predicates say yes or no.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Final, Literal

from infra.config.values import SettingsError

TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]
TAINT_EFFECTS: Final[tuple[TaintEffect, ...]] = ("NoSchedule", "PreferNoSchedule", "NoExecute")

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?\Z")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z"
)
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?\Z")
_HTTP_PATH = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*\Z")
_CPU = re.compile(r"^(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)m?\Z")
_MEMORY = re.compile(r"^(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?\Z")
_MEMORY_UNITS: Final[Mapping[str, int]] = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


def is_dns1123_label(value: str, max_len: int = 63) -> bool:
    return bool(_DNS1123_LABEL.match(value)) and len(value) <= max_len


def is_dns1035_label(value: str, max_len: int = 63) -> bool:
    return bool(_DNS1035_LABEL.match(value)) and len(value) <= max_len


def is_dns1123_subdomain(value: str) -> bool:
    return bool(_DNS1123_SUBDOMAIN.match(value)) and len(value) <= 253


def is_label_name(value: str) -> bool:
    """A label value that is not empty (also the shape of model names)."""
    return bool(_LABEL_NAME.match(value)) and len(value) <= 63


def cpu_millis(quantity: str) -> int:
    """``500m`` -> 500, ``2.5`` -> 2500 (callers validate the grammar first)."""
    if quantity.endswith("m"):
        return int(Decimal(quantity[:-1]))
    return int(Decimal(quantity) * 1000)


def memory_bytes(quantity: str) -> int:
    match = _MEMORY.match(quantity)
    if match is None:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    unit = match.group(1) or ""
    number = quantity[: len(quantity) - len(unit)]
    return int(Decimal(number) * _MEMORY_UNITS[unit])


def dns_label(key: str, value: str, max_len: int = 63) -> str:
    if not _DNS1123_LABEL.match(value) or len(value) > max_len:
        raise SettingsError(
            key,
            f"must be a DNS-1123 label (lowercase letters, digits and '-', starting and "
            f"ending with a letter or digit, at most {max_len} characters), got {value!r}",
        )
    return value


def label_pair(key: str, item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not qualified_name(name) or not label_value(value):
        raise SettingsError(
            key, f"entries must be label selectors key=value (e.g. app=gateway), got {item!r}"
        )
    return name, value


def qualified_name(name: str) -> bool:
    prefix, sep, local = name.rpartition("/")
    if sep and (not _DNS1123_SUBDOMAIN.match(prefix) or len(prefix) > 253):
        return False
    return bool(_LABEL_NAME.match(local)) and len(local) <= 63


def label_value(value: str) -> bool:
    return value == "" or (bool(_LABEL_NAME.match(value)) and len(value) <= 63)


def http_path(key: str, value: str) -> str:
    if not _HTTP_PATH.match(value):
        raise SettingsError(
            key, f"must be an absolute HTTP path such as /healthz (no spaces), got {value!r}"
        )
    return value


def cpu(key: str, value: str) -> str:
    if not _CPU.match(value) or cpu_millis(value) <= 0:
        raise SettingsError(
            key, f"must be a positive CPU quantity such as 500m, 1 or 2.5, got {value!r}"
        )
    return value


def memory(key: str, value: str) -> str:
    if not _MEMORY.match(value) or memory_bytes(value) <= 0:
        raise SettingsError(
            key, f"must be a positive memory quantity such as 512Mi or 2Gi, got {value!r}"
        )
    return value


def storage(key: str, value: str) -> str:
    """Ephemeral storage: the same quantity grammar as memory."""
    if not _MEMORY.match(value) or memory_bytes(value) <= 0:
        raise SettingsError(
            key, f"must be a positive storage quantity such as 500Mi or 2Gi, got {value!r}"
        )
    return value
