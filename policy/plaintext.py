"""What a plaintext secret looks like: shared by the policy rules and the comment redaction.

Pure: no Pulumi imports, so ``pipeline`` can use it without loading the policy SDK. The
placeholder itself is ``pipeline.secrets.SECRET_PLACEHOLDER``, the one every output uses.
"""

from __future__ import annotations

import re

from pipeline.secrets import SECRET_PLACEHOLDER

# Names that carry a credential when given a literal value.
_SECRET_NAME = re.compile(
    r"(PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL"
    r"|AUTH_?KEY|CLIENT_?KEY|SIGNING_?KEY|ENCRYPTION_?KEY|DSN)",
    re.IGNORECASE,
)
# ...unless the name says the value only points at the secret (a mounted file, a URL, a name):
# DB_PASSWORD_FILE, secretName, tokenUrl.
_REFERENCE_SUFFIX = re.compile(
    r"(?i:_(FILE|PATH|DIR|URL|URI|ENDPOINT|NAME|REF|ID|HEADER|TYPE|LENGTH|TTL|MOUNT))$"
    r"|(?<=[a-z])(File|Path|Dir|Url|Uri|Endpoint|Name|Ref|Id|Header|Type|Length|Ttl|Mount)$"
)

# Values that are credentials whatever they are called.
_SECRET_VALUE = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|\bAKIA[0-9A-Z]{16}\b"
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}"
    r"|\bgithub_pat_[A-Za-z0-9_]{20,}"
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"
    r"|\bsk_live_[A-Za-z0-9]{16,}"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
    r"|[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@"
)


def is_secret_name(name: str) -> bool:
    """True for an env/config name that holds a credential when its value is a literal."""
    return bool(_SECRET_NAME.search(name)) and not _REFERENCE_SUFFIX.search(name)


def looks_like_secret(value: str) -> bool:
    """True for a literal that is a credential (or the render's ``[secret]`` placeholder)."""
    return value == SECRET_PLACEHOLDER or bool(_SECRET_VALUE.search(value))


def is_plaintext_secret(name: str, value: object) -> bool:
    """A literal env value that must come from a Secret reference instead."""
    if not isinstance(value, str) or value == "":
        return False
    return is_secret_name(name) or looks_like_secret(value)
