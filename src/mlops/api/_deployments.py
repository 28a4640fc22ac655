"""The /deployments routes of the API (being written; see issue 7)."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(tags=["deployments"])
