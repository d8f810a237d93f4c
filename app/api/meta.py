"""Meta blueprint: the open health check and the OpenAPI document."""

from __future__ import annotations

from flask import Blueprint, request

from ..sessions.model import TERMINAL_TOOL
from . import API_PREFIX, ok, services
from .openapi import document

bp = Blueprint("meta", __name__)


@bp.get("/health")
def health():
    return ok({"status": "ok"})


@bp.get(f"{API_PREFIX}/openapi.json")
def openapi():
    settings = services().settings
    return document(request.script_root + API_PREFIX, (TERMINAL_TOOL, *settings.agents),
                    settings.max_command_chars)
