"""Shared request dependencies."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

if TYPE_CHECKING:
    from gateway.app import Gateway


def gateway(request: Request) -> Gateway:
    return request.app.state.gateway
