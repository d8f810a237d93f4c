"""Meta blueprint: the open health check and the OpenAPI document."""

from __future__ import annotations

from flask import Blueprint, request

from . import API_PREFIX, ok
from .openapi import document

bp = Blueprint("meta", __name__)


@bp.get("/health")
def health():
    return ok({"status": "ok"})


@bp.get(f"{API_PREFIX}/openapi.json")
def openapi():
    return document(request.script_root + API_PREFIX)
