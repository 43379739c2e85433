"""The work units a scale's claims need: which models are trained and which measurements are made.

One function, :func:`plan`, turns a scale and a selection of claims into an ordered list of
:class:`Unit` (a model, one campaign of a model under one fault model, a model's sharpness, a model's
sparsity), each listed once. The experiment runs exactly these units, its progress counts them, and
``verify`` checks a recorded folder for exactly these keys (completeness), so the three never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .claims import CLAIMS, claim_variants, scale_claims
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


def claim_units(scale: ScaleConfig, claim_id: str, seeds: Iterable[int] | None = None) -> list[Unit]:
    """The units one claim needs at a scale (at ``seeds``, default the scale's), in run order (model first)."""
    seeds = tuple(scale.seeds if seeds is None else seeds)
    c = CLAIMS[claim_id]
    groups: list[tuple[tuple[str, ...], tuple[str, ...], bool, bool]] = []
    if c.variants:
        groups.append(
            (claim_variants(claim_id, scale), scale.fault_models if c.campaign else (), c.sharpness, c.sparsity)
        )
    if c.sweep:
        groups.append((tuple(scale.sweep_variants()), (scale.sweep_fault_model,), False, True))
    out: list[Unit] = []
    for variants, fault_models, sharpness, sparsity in groups:
        for v in variants:
            for s in seeds:
                out.append(Unit("models", v, s))
                out += [Unit("campaigns", v, s, fm) for fm in fault_models]
                if sharpness:
                    out.append(Unit("sharpness", v, s))
                if sparsity:
                    out.append(Unit("sparsity", v, s))
    return out


def plan(scale: ScaleConfig, claim_ids: Iterable[str] | None = None, seeds: Iterable[int] | None = None) -> list[Unit]:
    """Every unit the selected claims (default: the scale's claims, or all) need, each once, in run order."""
    ids = list(claim_ids) if claim_ids is not None else list(scale_claims(scale.claims))
    seeds = tuple(scale.seeds if seeds is None else seeds)
    seen: dict[Unit, None] = {}
    for cid in ids:
        for u in claim_units(scale, cid, seeds):
            seen.setdefault(u, None)
    return list(seen)


def is_sequential(scale: ScaleConfig) -> bool:
    """Whether the scale is recorded under plan v2's group-sequential design (plans/v2.toml lists it)."""
    from .decide import PLAN

    return scale.plan_version >= 2 and scale.name in PLAN.scales


def sequential_units(scale: ScaleConfig, tables: dict, through: str = "next") -> list[Unit]:
    """The units of a plan-v2 scale, replayed from its recorded rows.

    Every claim's units at the full seeds (``full_seeds``), then, for each look, the units of the primary
    claims still open when that look's block began at the block's other seeds. ``through="next"``: up to
    and including the first look not yet complete (what a recording runs next); ``"complete"``: the
    complete looks only (what a finished or paused recording must hold).
    """
    from .decide import PLAN, sequential

    sp = PLAN.scales[scale.name]
    state = sequential(tables, scale)
    family = [p.case for p in PLAN.primary if scale.claims is None or p.claim in scale.claims]
    last = state.next_look if through == "next" else state.next_look - 1
    out = plan(scale, seeds=range(sp.full_seeds))
    seen = dict.fromkeys(out)
    lo = 0
    for k, n in enumerate(sp.looks[: max(last + 1, 0)]):
        claims = [c.split("[")[0] for c in family if state.decided_at.get(c, len(sp.looks)) >= k]
        for u in plan(scale, claims, seeds=[s for s in range(lo, n) if s >= sp.full_seeds]):
            seen.setdefault(u, None)
        lo = n
    return list(seen)


def planned_units(scale: ScaleConfig, tables: dict | None = None, through: str = "next") -> list[Unit]:
    """The scale's units: :func:`plan` for a fixed design, :func:`sequential_units` (replayed) for plan v2."""
    if is_sequential(scale):
        return sequential_units(scale, tables or {}, through)
    return plan(scale)


def seeds_recorded(scale: ScaleConfig) -> tuple[int, ...]:
    """Every seed a scale may record: the cap of a plan-v2 scale, else the scale's seeds."""
    if is_sequential(scale):
        from .decide import PLAN

        return tuple(range(PLAN.scales[scale.name].looks[-1]))
    return tuple(scale.seeds)


def totals(units: Iterable[Unit]) -> dict[str, int]:
    """Units per kind (the progress counters' totals)."""
    out = dict.fromkeys(KINDS, 0)
    for u in units:
        out[u.kind] += 1
    return out
