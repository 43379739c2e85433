"""The work units a scale's claims need: which models are trained and which measurements are made.

One function, :func:`plan`, turns a scale and a selection of claims into an ordered list of
:class:`Unit` (a model, one campaign of a model under one fault model, a model's sharpness, a model's
sparsity), each listed once. The experiment runs exactly these units, its progress counts them, and
``verify`` checks a recorded folder for exactly these keys (completeness), so the three never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .claims import CLAIMS
from .scales import ScaleConfig

KINDS = ("models", "campaigns", "sharpness", "sparsity")


@dataclass(frozen=True)
class Unit:
    """One independent piece of work: ``kind`` of ``variant`` at training ``seed`` (and ``fault_model``)."""

    kind: str
    variant: str
    seed: int
    fault_model: str = ""

    def label(self, scale: ScaleConfig) -> str:
        mid = scale.model_id(self.variant, self.seed)
        return f"{mid} {self.fault_model}" if self.fault_model else mid


def claim_units(scale: ScaleConfig, claim_id: str) -> list[Unit]:
    """The units one claim needs at a scale, in run order (model first, then its measurements)."""
    c = CLAIMS[claim_id]
    groups: list[tuple[tuple[str, ...], tuple[str, ...], bool, bool]] = []
    if c.variants:
        groups.append((c.variants, scale.fault_models if c.campaign else (), c.sharpness, c.sparsity))
    if c.sweep:
        groups.append((tuple(scale.sweep_variants()), (scale.sweep_fault_model,), False, True))
    out: list[Unit] = []
    for variants, fault_models, sharpness, sparsity in groups:
        for v in variants:
            for s in scale.seeds:
                out.append(Unit("models", v, s))
                out += [Unit("campaigns", v, s, fm) for fm in fault_models]
                if sharpness:
                    out.append(Unit("sharpness", v, s))
                if sparsity:
                    out.append(Unit("sparsity", v, s))
    return out


def plan(scale: ScaleConfig, claim_ids: Iterable[str] | None = None) -> list[Unit]:
    """Every unit the selected claims (default: the scale's claims, or all) need, each once, in run order."""
    ids = list(claim_ids) if claim_ids is not None else list(scale.claims or CLAIMS)
    seen: dict[Unit, None] = {}
    for cid in ids:
        for u in claim_units(scale, cid):
            seen.setdefault(u, None)
    return list(seen)


def totals(units: Iterable[Unit]) -> dict[str, int]:
    """Units per kind (the progress counters' totals)."""
    out = dict.fromkeys(KINDS, 0)
    for u in units:
        out[u.kind] += 1
    return out
