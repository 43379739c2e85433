"""Prefix reuse: evaluate only the part of a model that faults in some layers can change.

When every fault of a trial lies in a set of layers, every activation that does not depend on those
layers is the clean one. :class:`SuffixEvaluator` traces the model with ``torch.fx`` (quantized
layers, activation quantizers and FATReLU as leaves), keeps the nodes that depend on the faulted
layers (the *suffix*), computes the clean values that feed them (the *frontier*) once per batch, and
then evaluates each trial on the suffix alone. The suffix runs the same modules and functions on the
same inputs as the full forward, so its outputs are bit-identical (checked by the tests); the saving is
the fraction of the network before the first faulted layer.

Models that fx cannot trace (data-dependent control flow) raise :class:`NotTraceable`; callers fall back
to the full forward.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.fx as fx
from torch import nn

from ..core.activations import FATReLU
from ..core.evaluate import Batches, eval_mode, score_batches, score_outputs
from ..core.quant import ActQuant, QuantizedWeightMixin


class NotTraceable(RuntimeError):
    """torch.fx could not trace the model."""


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, (QuantizedWeightMixin, ActQuant, FATReLU)) or super().is_leaf_module(m, qualname)


def _trace(model: nn.Module) -> fx.GraphModule:
    try:
        graph = _Tracer().trace(model)
    except Exception as e:  # noqa: BLE001 - fx raises many kinds; all mean "not traceable"
        raise NotTraceable(f"torch.fx cannot trace the model ({type(e).__name__}: {e})") from None
    return fx.GraphModule(model, graph)


class _Recorder(fx.Interpreter):
    """Runs the full graph and keeps the values of the frontier nodes."""

    def __init__(self, gm: fx.GraphModule, keep: set[str]) -> None:
        super().__init__(gm)
        self.keep, self.values = keep, {}

    def run_node(self, n: fx.Node):
        out = super().run_node(n)
        if n.name in self.keep:
            self.values[n.name] = out
        return out


class SuffixEvaluator:
    """Accuracy and loss over fixed batches, recomputing only what depends on ``faulted`` layers."""

    def __init__(self, model: nn.Module, batches: Batches, faulted: set[str]) -> None:
        gm = _trace(model)
        graph = gm.graph
        affected: set[fx.Node] = set()
        for node in graph.nodes:
            hit = node.op == "call_module" and node.target in faulted
            if hit or any(a in affected for a in node.all_input_nodes):
                affected.add(node)
        if not any(n.op == "call_module" and n.target in faulted for n in graph.nodes):
            raise ValueError(f"none of the layers {sorted(faulted)} is called by the model")
        frontier = [n for n in graph.nodes if n not in affected and any(u in affected for u in n.users)]
        suffix = fx.Graph()
        env: dict[fx.Node, fx.Node] = {n: suffix.placeholder(f"frontier_{n.name}") for n in frontier}
        for node in graph.nodes:
            if node in affected and node.op != "output":
                env[node] = suffix.node_copy(node, lambda a: env[a])
            elif node.op == "output":
                suffix.output(fx.graph.map_arg(node.args[0], lambda a: env[a]))
        self.suffix = fx.GraphModule(gm, suffix)
        self.model, self.frontier = model, [n.name for n in frontier]
        self.fraction_skipped = 1 - sum(n.op == "call_module" for n in affected) / max(
            1, sum(n.op == "call_module" for n in graph.nodes)
        )
        rec_names = set(self.frontier)
        self.cache = []
        with torch.no_grad(), eval_mode(model):
            for xb, yb in batches:
                r = _Recorder(gm, rec_names)
                r.run(xb)
                self.cache.append(([r.values[name] for name in self.frontier], yb))

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        """(accuracy in percent, mean cross-entropy), as :func:`flatenn.core.evaluate.evaluate_batches` computes
        them; the model must be in eval mode (campaigns hold it)."""
        return score_outputs((self.suffix(*values), yb) for values, yb in self.cache)


def faulty_evaluator(
    model: nn.Module, batches: Batches, faulted: set[str], prefix_reuse: bool = True
) -> Callable[[], tuple[float, float]]:
    """(accuracy, loss) of the model as it is now: the suffix after ``faulted`` when the model can be traced
    and ``prefix_reuse`` is on, else the full forward (same numbers either way).

    The evaluator does not switch modes on every call: hold the model in eval mode while using it
    (``with eval_mode(model): ...``, as campaigns and vulnerability maps do).
    """
    if any(m.training for m in model.modules()):
        raise RuntimeError("put the model in eval mode first: with flatenn.core.evaluate.eval_mode(model): ...")
    if prefix_reuse:
        try:
            return SuffixEvaluator(model, batches, faulted).evaluate
        except (NotTraceable, ValueError):
            pass
    return lambda: score_batches(model, batches)
