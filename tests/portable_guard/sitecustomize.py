"""Loaded first by a server started with this folder on PYTHONPATH: pidfd, eventfd and every
/proc path refuse to work and each attempt is written to $PORTABLE_GUARD_LOG, so a test sees
whether the portable layer (MAESTRO_PLATFORM=portable) still needs any of them."""

import builtins
import io
import os
import traceback

_LOG = os.environ["PORTABLE_GUARD_LOG"]
_real_open = builtins.open


def _record(what: str) -> None:
    with _real_open(_LOG, "a", encoding="utf-8") as log:
        log.write(f"{what}\n{''.join(traceback.format_stack(limit=8))}\n")


def _refusing(name: str):
    def refuse(*args, **kwargs):
        _record(name)
        raise OSError(38, f"{name} is off in this test")
    return refuse


def _guarding(function):
    def guarded(path, *args, **kwargs):
        if isinstance(path, (str, bytes, os.PathLike)):
            text = os.fsdecode(path)
            if text == "/proc" or text.startswith("/proc/"):
                _record(f"{function.__name__}({text})")
                raise PermissionError(13, "/proc is off in this test", text)
        return function(path, *args, **kwargs)
    return guarded


for _name in ("pidfd_open", "eventfd", "eventfd_read", "eventfd_write"):
    if hasattr(os, _name):
        setattr(os, _name, _refusing(_name))
builtins.open = io.open = _guarding(_real_open)
for _name in ("listdir", "scandir", "stat", "lstat", "open", "readlink", "access"):
    setattr(os, _name, _guarding(getattr(os, _name)))
