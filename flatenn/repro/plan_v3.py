"""Analysis plan v3 as data: its primary contrasts and the graph of its one closed testing procedure, read from
``plans/v3.toml`` (the committed plan; every number v3 uses is there).

A contrast ``k`` has a direction node ``D_k`` and an equivalence node ``E_k``. The graph gives every D node
``d_weight`` and every E node ``e_weight``; a rejected node passes ``to_each_other_contrast`` of its weight to
each other contrast, split ``split_d_e`` between that contrast's D and E nodes, and nothing to its own sibling.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..analysis.graphical import Graph
from .claims import split_case

PLAN_V3 = Path(__file__).parent / "plans" / "v3.toml"


@dataclass(frozen=True)
class Contrast:
    """A primary contrast of plan v3: its id and the claims.toml case it is computed by."""

    id: str
    case: str

    @property
    def claim(self) -> str:
        return split_case(self.case)[0]

    @property
    def metric(self) -> str:
        return split_case(self.case)[1]


def load_v3(path: Path = PLAN_V3) -> tuple[dict, list[Contrast], Graph]:
    """The plan's settings, its contrasts in order, and its graph (nodes ``D_<id>`` then ``E_<id>`` per contrast)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    with open(path, "rb") as f:
        plan = tomllib.load(f)
    contrasts = [Contrast(c["id"], c["case"]) for c in plan["contrast"]]
    g = plan["graph"]
    m = len(contrasts)
    names = tuple(f"{kind}_{c.id}" for c in contrasts for kind in ("D", "E"))
    weights = np.array([g["d_weight"], g["e_weight"]] * m, dtype=float)
    transitions = np.zeros((2 * m, 2 * m))
    share_d, share_e = g["split_d_e"]
    for k in range(m):
        for j in range(m):
            if j == k:
                continue
            for node in (2 * k, 2 * k + 1):
                transitions[node, 2 * j] = g["to_each_other_contrast"] * share_d
                transitions[node, 2 * j + 1] = g["to_each_other_contrast"] * share_e
    return plan, contrasts, Graph(names, weights, transitions)
