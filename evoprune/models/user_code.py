"""The user's own architecture by name: ``path/to/nets.py:MyNet`` or ``my_package.nets:MyNet``.

NAME is a class or factory, called with ``num_classes`` and ``in_channels`` where it takes them.
Importing a file runs it, so a run directory never decides what is imported: a run records the
code's location and a hash of its file, and the commands that rebuild the network from a run
(``resume``, ``pick``, ``evaluate``, ``export``) import it only when the user names it again
(``--model SPEC``), and only if that file still holds the same code."""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import EvopruneError

_IDENTIFIER = r"[A-Za-z_]\w*"
_MODULE = re.compile(rf"{_IDENTIFIER}(\.{_IDENTIFIER})*")
_TRUSTED: dict[str, str] = {}  # code hash -> spec the user named in this process


def is_code_spec(name: object) -> bool:
    """Whether ``name`` has the shape of a code spec (FILE.py:NAME or MODULE:NAME); a registered
    family such as ``torchvision:`` is decided by the registry first."""
    if not isinstance(name, str) or ":" not in name:
        return False
    where, _, attr = name.rpartition(":")
    return bool(re.fullmatch(_IDENTIFIER, attr)) and (where.endswith(".py") or bool(_MODULE.fullmatch(where)))


def trust(spec: str) -> None:
    """The user named ``spec`` themselves: its code may be imported in this process."""
    _TRUSTED[_code_hash(spec)] = spec


def code_arch(spec: str, **kwargs: Any) -> dict[str, Any]:
    """The architecture record of ``spec``: where its code was, with the hash of that code."""
    where, _, attr = spec.rpartition(":")
    located = f"{Path(where).expanduser().resolve()}:{attr}" if where.endswith(".py") else spec
    # keys in the order config.json keeps them (sorted), so that a resumed run saves the same bytes
    return {"code_sha256": _code_hash(spec), "kwargs": dict(sorted(kwargs.items())), "name": located}


def build_code_arch(arch: dict[str, Any]) -> nn.Module:
    """The network of a recorded code architecture, from the code the user named (same hash)."""
    spec = _TRUSTED.get(arch.get("code_sha256"))
    if spec is None:
        named = [s for s in _TRUSTED.values() if s.rpartition(":")[2] == arch["name"].rpartition(":")[2]]
        if named:
            raise EvopruneError(f"the code of {named[0]} differs from the code {arch['name']} held when this was made "
                                "(its file's hash); name the same code with --model")
        raise EvopruneError(f"this network is defined by your own code, {arch['name']}; importing it runs that code, "
                            "so it is never imported from what a run records: pass --model FILE.py:NAME (or "
                            "MODULE:NAME) naming the same code")
    return build_code_model(spec, **arch.get("kwargs", {}))


def build_code_model(spec: str, **kwargs: Any) -> nn.Module:
    """Import ``spec`` (which the user named: see ``trust``) and call it with the keyword arguments
    its signature takes."""
    if spec not in _TRUSTED.values():
        raise EvopruneError(f"model {spec} is your own code: name it with --model to import it")
    factory = getattr(_module(spec), spec.rpartition(":")[2], None)
    if not callable(factory):
        raise EvopruneError(f"{spec.rpartition(':')[0]} defines no class or function {spec.rpartition(':')[2]!r}")
    try:
        params = inspect.signature(factory).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    except (TypeError, ValueError):  # a builtin without a signature: call it as it is
        params, takes_any = {}, False
    model = factory(**{k: v for k, v in kwargs.items() if takes_any or k in params})
    if not isinstance(model, nn.Module):
        raise EvopruneError(f"{spec} returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def _module(spec: str):
    where = spec.rpartition(":")[0]
    try:
        if not where.endswith(".py"):
            return importlib.import_module(where)
        name = f"evoprune_user_code_{_code_hash(spec)[:16]}"
        if name not in sys.modules:  # one module per code, so its classes stay the same objects
            loader = importlib.util.spec_from_file_location(name, Path(where).expanduser())
            module = importlib.util.module_from_spec(loader)
            sys.modules[name] = module
            try:
                loader.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
        return sys.modules[name]
    except EvopruneError:
        raise
    except Exception as e:  # the user's code may raise anything while it is imported
        first = (str(e).strip().splitlines() or [""])[0]
        raise EvopruneError(f"importing {where} for model {spec} failed: {type(e).__name__}: {first}") from None


def _code_hash(spec: str) -> str:
    """sha256 of the file that defines ``spec`` (for a module: its source file)."""
    where = spec.rpartition(":")[0]
    if where.endswith(".py"):
        path = Path(where).expanduser()
        if not path.is_file():
            raise EvopruneError(f"model {spec}: there is no file {where}")
    else:
        try:
            found = importlib.util.find_spec(where)
        except (ImportError, ValueError) as e:
            raise EvopruneError(f"model {spec}: module {where} cannot be found ({e})") from None
        if found is None or not found.origin or not Path(found.origin).is_file():
            raise EvopruneError(f"model {spec}: there is no importable module {where} (is its package installed?)")
        path = Path(found.origin)
    return hashlib.sha256(path.read_bytes()).hexdigest()
