"""``InferenceGuard``: who may call an endpoint that requires an inference token, decided
from brief caches so that a prediction does not wait for the database each time."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable

import anyio.to_thread

from mlops.errors import StorageError
from mlops.governance import (
    AccessControl,
    InferenceTokenInfo,
    inference_token_refusal,
    unknown_inference_token,
)

__all__ = ["DEFAULT_TOKEN_CACHE_SECONDS", "InferenceGuard"]

logger = logging.getLogger("mlops.serving")

#: How long a replica trusts what it read: which endpoints require a token, and each
#: token it looked up. A revocation or a requirement switched on takes effect this late.
DEFAULT_TOKEN_CACHE_SECONDS = 5.0
_MAX_CACHED_TOKENS = 10_000


class InferenceGuard:
    """Checks the ``Authorization`` of requests to endpoints that require an inference
    token, with what ``access`` stores, read at most every ``cache_seconds``.

    The set of endpoints requiring a token is read in one query; each token is looked up
    by its SHA-256 (the secret itself is not kept) and its answer, unknown ones included,
    reused until the cache time passes, while expiry is checked on every request. Use
    from the serving app's event loop only; the database is read in a worker thread.
    """

    def __init__(
        self,
        access: AccessControl,
        *,
        cache_seconds: float = DEFAULT_TOKEN_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._access = access
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._required: frozenset[str] | None = None
        self._required_until = float("-inf")
        self._lock = asyncio.Lock()
        self._tokens: dict[str, tuple[float, InferenceTokenInfo | None]] = {}

    def is_open(self, endpoint: str) -> bool:
        """True when ``endpoint`` is known, without waiting, not to require a token."""
        required = self._required
        return (
            required is not None
            and endpoint not in required
            and self._clock() < self._required_until
        )

    async def refusal(self, endpoint: str, authorization: str | None) -> str | None:
        """Why a request with this ``Authorization`` header may not call ``endpoint``, or
        None when it may. Raises ``StorageError`` when the store cannot be read (and, for
        the endpoints requiring tokens, never could be)."""
        if endpoint not in await self._requiring():
            return None
        scheme, _, token = (authorization or "").partition(" ")
        if authorization and scheme.lower() != "bearer":
            return f"the Authorization header uses the {scheme!r} scheme; send 'Bearer mlinf_…'"
        token = token.strip()
        refusal = inference_token_refusal(endpoint, token or None)
        if refusal is not None:
            return refusal
        info = await self._lookup(token)
        return unknown_inference_token(endpoint) if info is None else info.refusal(endpoint)

    async def _requiring(self) -> frozenset[str]:
        if self._required is not None and self._clock() < self._required_until:
            return self._required
        async with self._lock:  # one read for all the requests that found it stale
            if self._required is None or self._clock() >= self._required_until:
                try:
                    required = await anyio.to_thread.run_sync(
                        self._access.endpoints_requiring_tokens
                    )
                except StorageError as error:
                    if self._required is None:
                        raise
                    # Keep what was read last (it may only be stale by a few seconds more)
                    # rather than refuse every endpoint while the store is away.
                    logger.warning("could not read which endpoints require tokens: %s", error)
                    required = self._required
                self._required = required
                self._required_until = self._clock() + self._cache_seconds
        return self._required

    async def _lookup(self, token: str) -> InferenceTokenInfo | None:
        digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
        cached = self._tokens.get(digest)
        if cached is not None and self._clock() < cached[0]:
            return cached[1]
        info = await anyio.to_thread.run_sync(self._access.find_inference_token, token)
        if len(self._tokens) >= _MAX_CACHED_TOKENS:
            self._tokens.clear()  # a flood of made-up tokens: start over, stay bounded
        self._tokens[digest] = (self._clock() + self._cache_seconds, info)
        return info
