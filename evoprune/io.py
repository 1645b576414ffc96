"""Atomic file writes: a reader never sees a half-written file, and every file gets the
permissions the user's umask gives a newly created one."""
from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch


def atomic_write(path: Path | str, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None:  # a full disk names no file: name the one not written
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


def write_text(path: Path | str, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path | str, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_csv(path: Path | str, frame) -> Path:
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def save_torch(path: Path | str, obj: Any) -> Path:
    """``torch.save`` through memory: saved to a file, the archive records that file's (random,
    temporary) name, and the same object would not give the same bytes twice."""
    buffer = io.BytesIO()
    if isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        obj = {k: v.detach().cpu() for k, v in obj.items()}  # a state dict: loadable on any machine
    torch.save(obj, buffer)
    return atomic_write(path, lambda tmp: tmp.write_bytes(buffer.getvalue()))


def save_figure(path: Path | str, fig) -> Path:
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=Path(path).suffix[1:], dpi=120, bbox_inches="tight"))
