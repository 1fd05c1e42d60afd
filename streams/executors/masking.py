"""Masking of secrets in anything an executor logs or reports (pure, stdlib only).

A value is secret when its key names a credential: ``Authorization``, ``Cookie``,
``X-Api-Key`` (and their proxy / set- variants), or any name containing ``token``,
``secret``, ``password``, ``api_key`` or ``apikey`` — case-insensitive, ``-`` read as
``_`` (so ``X-Api-Key`` and ``x_api_key`` are the same name).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
_SECRET_NAMES = frozenset(
    {"authorization", "proxy_authorization", "cookie", "set_cookie", "x_api_key"}
)
_SECRET_PARTS = ("token", "secret", "password", "api_key", "apikey")


def is_secret_name(name: str) -> bool:
    """Does a header, key or query parameter of this name hold a credential?"""
    low = name.strip().lower().replace("-", "_")
    return low in _SECRET_NAMES or any(part in low for part in _SECRET_PARTS)


def mask_secrets(obj: Any) -> Any:
    """A copy of ``obj`` with the value of every secret-named key replaced by ``***``,
    recursively through dicts, lists and tuples. Other values are returned as they are."""
    if isinstance(obj, dict):
        return {k: MASK if isinstance(k, str) and is_secret_name(k) else mask_secrets(v)
                for k, v in obj.items()}  # fmt: skip
    if isinstance(obj, list):
        return [mask_secrets(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(mask_secrets(v) for v in obj)
    return obj


def mask_url(url: str) -> str:
    """``url`` with secret-named query parameters and any userinfo password masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_secret_name(k) for k, _ in pairs):
            query = urlencode([(k, MASK if is_secret_name(k) else v) for k, v in pairs],
                              safe="*")  # fmt: skip
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
