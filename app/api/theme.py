"""Theme blueprint: the active theme, the built-in list, and switching."""

from __future__ import annotations

from flask import Blueprint

from .. import themes
from . import API_PREFIX, json_body, ok, services, text_field
from .limits import THEME_ID_MAX

bp = Blueprint("theme", __name__, url_prefix=API_PREFIX)


@bp.get("/theme")
def get_theme():
    return ok({"theme": services().active_theme()})


@bp.get("/themes")
def list_themes():
    available = themes.list_themes()
    return ok({"themes": available, "count": len(available),
               "activeThemeId": services().active_theme()["id"]})


@bp.put("/theme")
def set_theme():
    theme_id = text_field(json_body(), "id", required=True, max_length=THEME_ID_MAX)
    return ok({"success": True, "theme": services().set_theme(theme_id)})
