"""Fingerprints of what determines a result: data, weights and the code a model runs. Cache keys
and run checks compare them, so that nothing is reused for inputs it was not computed from."""
from __future__ import annotations

import hashlib
import types

import torch
from torch import nn

from .data.splits import TensorSplit
from .data.streaming import LoaderSplit


def _hash_tensor(h, t: torch.Tensor) -> None:
    """Feed a tensor's dtype, shape and raw bytes to ``h``; hashes a zero-copy view when the tensor is
    already a contiguous CPU one, so fingerprinting a data set costs one pass over its memory."""
    t = t.detach().cpu().contiguous()
    h.update(f"{t.dtype}|{tuple(t.shape)}|".encode())
    if t.numel():
        # A uint8 view works for every dtype, including those numpy lacks (bfloat16).
        h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))


def data_fingerprint(split: TensorSplit | LoaderSplit) -> str | None:
    """sha256 over the inputs and labels of ``split`` (bytes, dtype and shape) and its augmentation;
    None for a streamed split, whose loader may shuffle or augment differently on every pass."""
    if not isinstance(split, TensorSplit):
        return None
    h = hashlib.sha256()
    for name, t in (("x", split.x), ("y", split.y)):
        h.update(name.encode())
        _hash_tensor(h, t)
    if split.augment != "none":  # training with augmentation gives other weights (absent: keys made before it)
        h.update(f"augment={split.augment}".encode())
    return h.hexdigest()


def weights_fingerprint(model: nn.Module) -> str:
    """sha256 over every state-dict tensor of ``model`` (name, bytes, dtype and shape), in key order."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode() + b"\0")
        if isinstance(t, torch.Tensor):
            _hash_tensor(h, t)
        else:  # a module's non-tensor extra state
            h.update(repr(t).encode())
    return h.hexdigest()


PLAIN = (str, int, float, bool, type(None))


def code_fingerprint(model: nn.Module) -> str:
    """sha256 over what ``model`` computes besides its weights: the bytecode of every method of its
    module classes and of their base classes outside torch, of the functions those call by global or
    enclosed name, the plain values (numbers, strings) of the globals they read and of each module's
    public attributes, and torch's version. Editing a ``forward``, a helper it calls or a flag it reads
    changes it; comments and blank lines do not. Bytecode rather than source, as classes defined in
    a notebook have no source file."""
    h = hashlib.sha256(f"torch {torch.__version__}".encode())
    seen: set = set()
    for cls in sorted({type(m) for m in model.modules()}, key=_qualname):
        for klass in cls.__mro__:
            if klass in seen or klass.__module__.partition(".")[0] in ("torch", "builtins"):
                continue
            seen.add(klass)
            h.update(_qualname(klass).encode())
            for name, attr in sorted(vars(klass).items()):
                h.update(name.encode())
                if isinstance(attr, property):
                    attr = attr.fget
                _hash_function(h, getattr(attr, "__func__", attr), seen)  # staticmethod / classmethod
    for name, module in model.named_modules():
        plain = {k: v for k, v in vars(module).items() if not k.startswith("_") and k != "training" and _plain(v)}
        h.update(f"{name}:{sorted(plain.items())!r}".encode())
    return h.hexdigest()


def _plain(value) -> bool:
    return isinstance(value, PLAIN) or isinstance(value, tuple) and all(map(_plain, value))


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _hash_function(h, f, seen: set) -> None:
    if not isinstance(f, types.FunctionType) or f in seen:
        return
    seen.add(f)
    defaults = (*(f.__defaults__ or ()), *sorted((f.__kwdefaults__ or {}).items()))
    h.update(repr([d if _plain(d) else type(d).__name__ for d in defaults]).encode())
    called = {**f.__globals__, **{name: cell.cell_contents for name, cell in
                                  zip(f.__code__.co_freevars, f.__closure__ or ()) if _filled(cell)}}
    _hash_code(h, f.__code__, called, seen)


def _filled(cell) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # a closure variable not yet bound
        return False
    return True


def _hash_code(h, code: types.CodeType, names: dict, seen: set) -> None:
    h.update(code.co_code)
    h.update(repr((code.co_names, code.co_varnames, code.co_freevars)).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):  # a nested function, lambda or comprehension
            _hash_code(h, const, names, seen)
        else:
            h.update(_stable_repr(const).encode())
    for name in (*code.co_names, *code.co_freevars):
        value = names.get(name)
        if isinstance(value, types.FunctionType) and (value.__module__ or "").partition(".")[0] != "torch":
            _hash_function(h, value, seen)
        elif _plain(value) and name in names:
            h.update(f"{name}={value!r}".encode())


def _stable_repr(const) -> str:
    """repr of a code constant; a frozenset's (``x in {...}``) in sorted order, as string hashing is
    randomised per process."""
    if isinstance(const, frozenset):
        return "frozenset(" + repr(sorted(map(_stable_repr, const))) + ")"
    if isinstance(const, tuple):
        return "(" + ",".join(map(_stable_repr, const)) + ")"
    return repr(const)
