"""Masking of secrets in anything an executor logs or reports (pure, stdlib only).

A value is secret when its key names a credential: ``Authorization``, ``Cookie``,
``X-Api-Key`` (and their proxy / set- variants), or any name containing ``token``,
``secret``, ``password``, ``api_key`` or ``apikey`` — case-insensitive, ``-`` read as
``_`` (so ``X-Api-Key`` and ``x_api_key`` are the same name).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
_SECRET_NAMES = frozenset(
    {"authorization", "proxy_authorization", "cookie", "set_cookie", "x_api_key"}
)
_SECRET_PARTS = ("token", "secret", "password", "api_key", "apikey")
# Names are checked once each: every reported event's data is masked on the way in, and
# the same few key names come back with every event (8 % of the API's main thread at
# ingest, py-spy).
_NAMES_CACHED = 8192
_NESTED = (dict, list, tuple)


@lru_cache(maxsize=_NAMES_CACHED)
def is_secret_name(name: str) -> bool:
    """Does a header, key or query parameter of this name hold a credential?"""
    low = _normal(name)
    return low in _SECRET_NAMES or any(part in low for part in _SECRET_PARTS)


def mask_keys(obj: Any, is_masked: Callable[[str], bool]) -> Any:
    """A copy of ``obj`` with the value of every key ``is_masked`` names replaced by ``***``,
    recursively through dicts, lists and tuples. Other values are returned as they are."""
    if isinstance(obj, dict):
        return {k: MASK if isinstance(k, str) and is_masked(k)
                else mask_keys(v, is_masked) if isinstance(v, _NESTED) else v
                for k, v in obj.items()}  # fmt: skip
    if isinstance(obj, list):
        return [mask_keys(v, is_masked) for v in obj]
    if isinstance(obj, tuple):
        return tuple(mask_keys(v, is_masked) for v in obj)
    return obj


def mask_secrets(obj: Any) -> Any:
    """``obj`` with the value of every secret-named key (``is_secret_name``) masked."""
    return mask_keys(obj, is_secret_name)


@lru_cache(maxsize=_NAMES_CACHED)
def _normal(name: str) -> str:
    return name.strip().lower().replace("-", "_")


@dataclass(frozen=True)
class Masker:
    """What the read side shows: secret names (always), plus keys containing one of the
    configured ``patterns``, plus the exact ``names`` a caller asked for — all compared
    case-insensitively with ``-`` read as ``_``, at any depth. Calling it masks a copy."""

    patterns: tuple[str, ...] = ()
    names: frozenset[str] = frozenset()
    # is_masked, cached per key name like the module's own checks (set in __post_init__)
    _cached: Callable[[str], bool] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_cached", lru_cache(maxsize=_NAMES_CACHED)(self._decide))

    @classmethod
    def of(cls, patterns: Iterable[str] = (), names: Iterable[str] = ()) -> Masker:
        return cls(tuple(_normal(p) for p in patterns if p.strip()),
                   frozenset(_normal(n) for n in names if n.strip()))  # fmt: skip

    def is_masked(self, name: str) -> bool:
        return self._cached(name)

    def _decide(self, name: str) -> bool:
        low = _normal(name)
        return (is_secret_name(name) or low in self.names
                or any(part in low for part in self.patterns))  # fmt: skip

    def __call__(self, obj: Any) -> Any:
        return mask_keys(obj, self.is_masked)


def mask_event(event: dict[str, Any], masker: Callable[[Any], Any] = mask_secrets
               ) -> dict[str, Any]:  # fmt: skip
    """An event as the API shows it: ``data`` and ``labels`` masked (the stored event is
    left as it is)."""
    shown = dict(event)
    for key in ("data", "labels"):
        if shown.get(key):
            shown[key] = masker(shown[key])
    return shown


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
