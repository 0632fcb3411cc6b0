"""What may be shown of a config value: secrets and URL credentials never leave masked."""

from __future__ import annotations

import re
import typing
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mev_common.settings.model import Settings

NKEY_SEED = re.compile(r"S[A-Z][A-Z2-7]{56}")
_SECRET_KEY = re.compile(r"(password|secret|token|api_key|private_key)", re.IGNORECASE)
_REFERENCE_KEY = re.compile(r"_(env|file|path)$")  # names where a secret lives, not the secret


def is_secret(key: str, value: str) -> bool:
    """A value to show as *** : an nkey seed anywhere, or any value of a secret-named key
    (but not of one that only names where the secret lives, like `password_file`)."""
    return bool(NKEY_SEED.search(value)) or bool(
        _SECRET_KEY.search(key) and not _REFERENCE_KEY.search(key)
    )


def masked_dump(settings: Settings) -> dict[str, Any]:
    """The effective config for display: secrets and URL credentials masked."""

    def mask(key: str, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: mask(k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [mask(key, v) for v in value]
        if isinstance(value, str):
            if is_secret(key, value):
                return "***"
            if key.endswith("url") or "://" in value:
                return mask_url(value)
        return value

    return typing.cast(dict[str, Any], mask("", settings.model_dump(mode="json")))


def mask_url(url: str) -> str:
    """Hide credentials and API tokens in a URL: keep scheme, host and port only.

    Providers put keys in the path (`/v2/<key>`), the query (`?apikey=`) or the userinfo, so
    everything after the host is replaced and userinfo becomes `***@`.
    """
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*://)(?:([^@/?#]*)@)?([^/?#]*)(.*)$", url)
    if not m:
        return "***"
    scheme, userinfo, host, rest = m.groups()
    creds = "***@" if userinfo is not None else ""
    return f"{scheme}{creds}{host}" + ("/***" if rest.strip("/") else "")
