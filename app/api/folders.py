"""Folders blueprint: the sub-folders of a folder, for the new-session folder picker."""

from __future__ import annotations

from flask import Blueprint

from ..errors import ApiError
from ..folders import list_folders
from ..roles import VIEWER, caller_role
from . import API_PREFIX, ok, query_arg, services
from .limits import PATH_MAX

bp = Blueprint("folders", __name__, url_prefix=API_PREFIX)


@bp.get("/dirs")
def list_dirs():
    if caller_role() == VIEWER:  # the machine's folders are not for a watch link
        raise ApiError(403, "A view-only link cannot list the machine's folders")
    settings = services().settings
    path = query_arg("path")
    if path and (len(path) > PATH_MAX or "\0" in path):
        raise ApiError(400, f"Folder must be a path of at most {PATH_MAX} characters "
                            "without NUL bytes")
    listing = list_folders(path, outside_home=settings.browse_outside_home,
                           limit=settings.dirs_max)
    return ok(listing)
