"""Opaque page tokens for list endpoints: keyset paging over a sorted sequence.

A token carries the sort key of the last item served and a fingerprint of the query that
produced it, so a token replayed against another query is refused rather than silently
skipping or repeating items. Clients must treat tokens as opaque strings.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import TypeVar

from mlops.errors import InvalidInput

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "decode_token", "encode_token", "fingerprint", "page"]

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

T = TypeVar("T")
Key = int | str


def fingerprint(*parts: object) -> str:
    """A short digest of the query parameters a token belongs to."""
    text = json.dumps(parts, default=str, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_token(after: Key, query: str) -> str:
    raw = json.dumps({"after": after, "q": query}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, query: str) -> Key:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after, given = data["after"], data["q"]
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidInput(
            "page_token is not a token this API returned; pass the next_page_token of "
            "the previous page unchanged, or leave it out for the first page"
        ) from error
    if given != query:
        raise InvalidInput(
            "page_token belongs to a different query; repeat the parameters of the request "
            "that returned it (only page_token changes between pages)"
        )
    if isinstance(after, bool) or not isinstance(after, int | str):
        raise InvalidInput("page_token is corrupted; start again from the first page")
    return after


def page(
    items: Sequence[T],
    key: Callable[[T], Key],
    *,
    limit: int,
    page_token: str | None,
    query: str,
) -> tuple[list[T], str | None]:
    """The items after the token's key (``items`` sorted ascending by ``key``) and the
    token of the next page, or None on the last one."""
    # Sorted here, not trusted from the database: SQL collations order text differently.
    rest: Sequence[T] = sorted(items, key=key)
    if page_token:
        after = decode_token(page_token, query)
        rest = [item for item in rest if _after(key(item), after)]
    chunk = list(rest[: limit + 1])
    if len(chunk) <= limit:
        return chunk, None
    chunk = chunk[:limit]
    return chunk, encode_token(key(chunk[-1]), query)


def _after(value: Key, after: Key) -> bool:
    if isinstance(value, int) and isinstance(after, int):
        return value > after
    if isinstance(value, str) and isinstance(after, str):
        return value > after
    raise InvalidInput("page_token is corrupted; start again from the first page")
