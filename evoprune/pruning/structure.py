"""Which tensors a filter decision touches, found once per base model with Torch-Pruning's
DependencyGraph, and the slicing of a state dict to the kept filters (no model copy)."""
from __future__ import annotations

import copy
import math
import traceback
from collections import defaultdict
from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import nn

from ..devices import device_of
from ..errors import EvopruneError
from ..models.saving import fit_to_weight

# Parameters and buffers of each layer type, by the side of the channel they follow.
_OUT = {nn.Conv2d: ("weight", "bias"), nn.Linear: ("weight", "bias"),
        nn.modules.batchnorm._NormBase: ("weight", "bias", "running_mean", "running_var")}  # BatchNorm, InstanceNorm
_IN = {nn.Conv2d: ("weight",), nn.Linear: ("weight",)}


@dataclass(frozen=True)
class PrunableLayer:
    """One decision: the filters of ``name`` (and every layer coupled to them)."""

    name: str
    channels: int


@dataclass(frozen=True)
class CoupledTensor:
    """The part of one tensor that a decision removes, one row per position along the pruned
    dimension; ``root[i]`` is the decision's filter behind row i (a flattened feature map gives
    several rows per filter)."""

    key: str
    side: str              # "out": the tensor follows the filters' outputs; "in": it consumes them
    is_weight_matrix: bool  # a conv or linear weight (not a bias or BatchNorm vector)
    root: torch.Tensor
    values: torch.Tensor


@dataclass(frozen=True)
class _Slice:
    layer: int             # index of the PrunableLayer that decides these entries
    idxs: torch.Tensor     # positions along the tensor's dimension
    root: torch.Tensor     # the decision's filter index behind each position


def is_depthwise(conv: nn.Conv2d) -> bool:
    """A conv whose every filter reads one input channel of its own (Torch-Pruning's test): its
    input and output channels are pruned together, as one."""
    return conv.groups > 1 and conv.groups == conv.out_channels == conv.in_channels


def _own(module: nn.Module) -> dict[str, torch.Tensor]:
    tensors = dict(module.named_parameters(recurse=False)) | dict(module.named_buffers(recurse=False))
    return {k: t for k, t in tensors.items() if t is not None and k != "num_batches_tracked"}


def _probed(module: nn.Module, prune) -> dict[str, int] | None:
    """The dimension along which Torch-Pruning's pruner function ``prune`` shrinks each tensor of
    ``module``, found by removing channel 0 from a copy; None where it cannot be sliced that way
    (the pruner fails, changes a tensor otherwise, or resizes a layer that has no tensor to size
    it by)."""
    probe = copy.deepcopy(module)
    try:
        probe = prune(probe, [0]) or probe
    except Exception:  # Torch-Pruning has no pruner for this layer type
        return None
    before, after = _own(module), _own(probe)
    if before.keys() != after.keys():
        return None
    dims = {}
    for key, tensor in before.items():
        old, new = tensor.shape, after[key].shape
        changed = [d for d in range(len(old)) if len(new) == len(old) and old[d] != new[d]]
        if old == new:
            continue
        if len(changed) != 1 or old[changed[0]] - new[changed[0]] != 1:
            return None
        dims[key] = changed[0]
    if not dims and probe.extra_repr() != module.extra_repr():
        return None  # its sizes change, but it has no tensor to carry them
    return dims


def _unprunable(touched: list, grouped: set, names: dict) -> str | None:
    """Why the channels shared by the layers ``touched`` cannot be removed one at a time, if so."""
    if any(m in grouped for m in touched):
        return "coupled to a grouped convolution"
    for m in touched:
        if isinstance(m, nn.GroupNorm) and 1 < m.num_groups < m.num_channels:
            return (f"coupled to GroupNorm {names[m]!r}, whose {m.num_channels} channels are normalised in "
                    f"{m.num_groups} groups")
    return None


def dependency_graph(model: nn.Module, input_shape: tuple[int, ...]) -> tp.DependencyGraph:
    """Torch-Pruning's dependency graph of ``model``, traced on one zero image of ``input_shape``."""
    was_training = model.training
    model.eval()  # tracing runs a forward pass: keep BatchNorm statistics untouched
    try:
        with torch.enable_grad():  # Torch-Pruning traces through autograd
            return tp.DependencyGraph().build_dependency(model, torch.zeros(1, *input_shape, device=device_of(model)),
                                                         verbose=False)
    except EvopruneError:
        raise
    except Exception as e:  # an operation Torch-Pruning cannot map (e.g. a channel shuffle's reshape)
        where = traceback.extract_tb(e.__traceback__)[-1]
        said = str(e).splitlines()[0][:120] if str(e) else ""
        raise EvopruneError(f"Torch-Pruning cannot trace which layers of this model are coupled ({type(e).__name__}"
                            f"{': ' + said if said else ''}, in {where.name}), and filter pruning needs that; this "
                            "architecture cannot be pruned here") from None
    finally:
        model.train(was_training)


class PrunableStructure:
    """The prunable conv layers of ``model`` and, for each, the (tensor, dim) entries it removes.

    Left out of the search, named in ``ignored`` with the reason in ``reasons``: the layers named
    in ``ignored`` (as Torch-Pruning's ``ignored_layers``), a conv whose channels are the model's
    outputs, and every decision that would touch a grouped (not depthwise) convolution or a
    GroupNorm with several channels per group, whose channels cannot be removed one at a time, or
    a layer Torch-Pruning cannot slice. Depthwise convolutions follow the layer that feeds them:
    their channels go with its filters. Conv, Linear, BatchNorm and InstanceNorm tensors are
    sliced by the tables above; any other layer (GroupNorm, LayerNorm, PReLU, ...) as
    Torch-Pruning's own pruner for it slices it."""

    def __init__(self, model: nn.Module, input_shape: tuple[int, ...], ignored: tuple[str, ...] = ()):
        self.input_shape = tuple(input_shape)
        modules = dict(model.named_modules())
        names = {m: n for n, m in modules.items()}
        params = {p: n for n, p in model.named_parameters()}
        convs = [m for m in modules.values() if isinstance(m, nn.Conv2d)]
        conv_names = [names[m] for m in convs]
        for name in ignored:
            if name not in conv_names:
                shown = ", ".join(conv_names[:12]) + (", ..." if len(conv_names) > 12 else "")
                raise EvopruneError(f"ignored layer {name!r} is not a convolution of the model; its convolutions: "
                                    f"{shown or 'none'}")
        graph = dependency_graph(model, self.input_shape)
        grouped = {m for m in convs if m.groups > 1 and not is_depthwise(m)}
        # depthwise as built: a depthwise layer cut to one channel looks like an ordinary convolution
        self.depthwise = {names[m] for m in convs if is_depthwise(m)}
        self.resized: set[str] = set()  # every sliced layer: its sizes follow its tensors per candidate
        unreached = [names[m] for m in convs if m not in graph.module2node and names[m] not in ignored]
        if unreached:
            raise EvopruneError(f"convolution {unreached[0]!r} is not reached by the model's forward pass in eval mode "
                                "(an auxiliary head used in training only?); build the model without it, or name it "
                                "in --ignore if it is never used")
        convs = [m for m in convs if m in graph.module2node]
        outputs = [m for m in convs if not graph.module2node[m].outputs]
        self.layers: list[PrunableLayer] = []
        self._slices: dict[tuple[str, int], list[_Slice]] = defaultdict(list)
        self._sizes: dict[tuple[str, int], int] = {}
        self.ignored: list[str] = []
        self.reasons: dict[str, str] = {}
        for name in ignored:
            self._leave_out(name, "ignored as asked")
        user_ignored = [modules[n] for n in ignored]
        try:
            groups = list(graph.get_all_groups(ignored_layers=outputs + user_ignored, root_module_types=[nn.Conv2d]))
        except MemoryError:  # its index mappings through reshapes can grow without bound (Swin v2)
            raise EvopruneError("Torch-Pruning ran out of memory grouping the layers coupled to this model's "
                                "convolutions; this architecture cannot be pruned here") from None
        position = {m: i for i, m in enumerate(modules.values())}
        groups.sort(key=lambda g: position[g[0].dep.target.module])  # decision order = forward order
        for group in groups:
            root = group[0].dep.target.module
            touched = [item.dep.target.module for item in group]
            reason = _unprunable(touched, grouped, names)
            if reason:
                self._leave_out(names[root], reason)
                continue
            layer = len(self.layers)
            self.layers.append(PrunableLayer(names[root], root.out_channels))
            reason = next(filter(None, (self._add(item, layer, names, params, graph) for item in group)), None)
            if reason is None and not any(dim == 1 and s.layer == layer
                                          for (_, dim), slices in self._slices.items() for s in slices):
                # no layer consumes these channels: they reach the output (e.g. a logits conv
                # before global pooling), and pruning them would change what the model predicts
                reason = "its channels are the model's outputs"
            if reason:
                self._drop_last(names[root], reason)
        if not self.layers:
            left = "; ".join(f"{n}: {r}" for n, r in self.reasons.items())
            raise EvopruneError("the model has no prunable convolution layer (filter pruning needs at least one "
                                "nn.Conv2d whose output feeds another layer" + (f"; left out: {left})" if left else ")"))

    def _leave_out(self, name: str, reason: str) -> None:
        if name not in self.reasons:
            self.ignored.append(name)
            self.reasons[name] = reason

    def _add(self, item, layer: int, names: dict, params: dict, graph) -> str | None:
        """Record the entries of one coupled layer that decision ``layer`` removes; the reason
        why the decision cannot be made, if it cannot."""
        module = item.dep.target.module
        if isinstance(module, nn.Module) and type(module).__module__.startswith("torch_pruning"):
            return None  # a traced functional op (flatten, add, cat, ...): it owns no tensor
        idxs = torch.as_tensor(item.idxs, dtype=torch.long)
        if isinstance(module, nn.Parameter) and module in params:
            # a free parameter (ConvNeXt's layer scale): Torch-Pruning slices the dimension it chose
            dim = getattr(graph.module2node.get(module), "pruning_dim", None)
            if dim is None:
                return f"coupled to parameter {params[module]!r}, which cannot be sliced"
            tensors = {params[module]: (module, dim)}
        elif not isinstance(module, nn.Module) or module not in names:
            return f"coupled to a {type(module).__name__} that is not a module of the model"
        else:
            handler = item.dep.handler
            out = graph.is_out_channel_pruning_fn(handler)
            table = _OUT if out else _IN if graph.is_in_channel_pruning_fn(handler) else {}
            keys = next((v for t, v in table.items() if isinstance(module, t)), None)
            if keys is not None:
                dims = {k: 0 if out else 1 for k in keys if getattr(module, k, None) is not None}
            else:
                dims = _probed(module, handler)
                if dims is None:
                    return f"coupled to layer {names[module]!r} ({type(module).__name__}), which cannot be sliced"
            if dims:
                self.resized.add(names[module])
            tensors = {f"{names[module]}.{k}" if names[module] else k: (getattr(module, k), d) for k, d in dims.items()}
        for full, (tensor, dim) in tensors.items():
            if len(idxs) and int(idxs.max()) >= tensor.shape[dim]:
                return (f"Torch-Pruning maps its channels past the {tensor.shape[dim]} of {full} (a split or "
                        "concatenation it traces wrongly)")
        root = torch.as_tensor(item.root_idxs, dtype=torch.long)
        order = torch.argsort(idxs)
        for full, (tensor, dim) in tensors.items():
            new = _Slice(layer, idxs[order], root[order])
            if any(s.layer == layer and torch.equal(s.idxs, new.idxs) for s in self._slices[(full, dim)]):
                continue  # the same entries reached twice (a depthwise conv's input and output)
            self._slices[(full, dim)].append(new)
            self._sizes[(full, dim)] = tensor.shape[dim]
        return None

    def _drop_last(self, name: str, reason: str) -> None:
        layer = len(self.layers) - 1
        for key in list(self._slices):
            self._slices[key] = [s for s in self._slices[key] if s.layer != layer]
            if not self._slices[key]:
                del self._slices[key]
        self.layers.pop()
        self._leave_out(name, reason)

    def regroup(self, network: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
        """Give the layers of ``network`` (this architecture, or a part of it with the same module
        names) whose sizes show in their forward pass (depthwise groups, GroupNorm, LayerNorm, ...)
        the sizes of ``state``, so that it runs ``state``."""
        for name in self.resized:
            try:
                module = network.get_submodule(name)
            except AttributeError:
                continue  # a part of the network without this layer (the shared prefix's suffix)
            weight = state.get(f"{name}.weight" if name else "weight")
            if weight is None:
                weight = state.get(f"{name}.running_mean")
            if weight is not None:
                fit_to_weight(module, weight, depthwise=name in self.depthwise)
        return network

    @property
    def total_filters(self) -> int:
        return sum(layer.channels for layer in self.layers)

    def deciders(self, key: str) -> set[tuple[int, int]]:
        """(layer index, dimension) of every decision that slices tensor ``key``."""
        return {(s.layer, dim) for (k, dim), slices in self._slices.items() if k == key for s in slices}

    def coupled(self, layer: int, state: dict[str, torch.Tensor]) -> list[CoupledTensor]:
        """Every tensor of ``state`` that decision ``layer`` slices, as rows per removed position."""
        group = []
        for (key, dim), slices in self._slices.items():
            tensor = state[key].detach().cpu()  # scores are computed on the CPU, wherever the model lies
            for s in slices:
                if s.layer == layer:
                    rows = tensor.index_select(dim, s.idxs).movedim(dim, 0).reshape(len(s.idxs), -1)
                    group.append(CoupledTensor(key, "out" if dim == 0 else "in", tensor.ndim >= 2, s.root, rows))
        return group

    def slice_state(self, state: dict[str, torch.Tensor], keep: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """A new state dict holding only the kept filters: ``keep[i]`` lists the kept filter indices
        of layer i; coupled tensors (next layer's inputs, BatchNorm, flattened features) follow."""
        kept = self._kept_masks(keep)
        sliced = dict(state)
        for key, dim in self._slices:
            mask = self._kept_along(key, dim, kept)
            if not mask.all():
                t = sliced[key]
                sliced[key] = t.index_select(dim, mask.nonzero().squeeze(1).to(t.device))
        return sliced

    def sliced_numel(self, state: dict[str, torch.Tensor], keep: list[torch.Tensor], keys) -> dict[str, int]:
        """The size of each tensor ``keys`` of ``state`` in ``slice_state(state, keep)``, without slicing."""
        kept = self._kept_masks(keep)
        shapes = {key: list(state[key].shape) for key in keys}
        for key, dim in self._slices:
            if key in shapes:
                shapes[key][dim] = int(self._kept_along(key, dim, kept).sum())
        return {key: math.prod(shape) for key, shape in shapes.items()}

    def kept_positions(self, key: str, dim: int, keep: list[torch.Tensor], size: int) -> torch.Tensor:
        """Positions along ``dim`` of tensor ``key`` (``size`` long) that ``slice_state`` keeps."""
        if (key, dim) not in self._slices:
            return torch.arange(size)
        return self._kept_along(key, dim, self._kept_masks(keep)).nonzero().squeeze(1)

    def _kept_masks(self, keep: list[torch.Tensor]) -> list[torch.Tensor]:
        kept = []
        for layer, k in zip(self.layers, keep):
            mask = torch.zeros(layer.channels, dtype=torch.bool)
            mask[k] = True
            kept.append(mask)
        return kept

    def _kept_along(self, key: str, dim: int, kept: list[torch.Tensor]) -> torch.Tensor:
        mask = torch.ones(self._sizes[(key, dim)], dtype=torch.bool)
        for s in self._slices[(key, dim)]:
            mask[s.idxs[~kept[s.layer][s.root]]] = False
        return mask
