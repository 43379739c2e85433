"""The FlatENN paper's claims as parametrized benchmark cases (one per claim x metric x scale).

Each case trains or loads its models through the zoo, runs the seeded campaigns and measurements it
needs (resuming from ``results/<scale>/``), computes its effect with a 95% CI, records it in
``claims.csv``, then asserts (1) the effect lies in the scale's band and (2) for hypothesis cases,
that the claim is supported. A claim our recorded run did not support is a strict xfail whose reason
states the recorded effect and CI: if a later change makes it pass, the suite says so.
"""

from __future__ import annotations

import pytest

from flatenn.claims import CLAIMS, cases, load_bands

from .conftest import scales_of


class ClaimNotSupported(AssertionError):
    """The measured effect's CI does not lie on the side the paper claims."""


FAMILY_MARKS = {"saq": pytest.mark.saq, "sparse": pytest.mark.sparsity, "sharp": pytest.mark.sharpness}


def _params(scales: list[str]):
    out = []
    for scale in scales:
        bands = load_bands(scale)
        for case in cases():
            claim = CLAIMS[case.claim]
            marks = [pytest.mark.claim] + [FAMILY_MARKS[f] for f in claim.family]
            if claim.campaign or claim.sweep:
                marks.append(pytest.mark.campaign)
            band = bands.get(case.id, {})
            expected = band.get("expected_verdict", "supported" if case.direction else "reported")
            if case.direction and expected != "supported":
                marks.append(pytest.mark.xfail(strict=True, raises=ClaimNotSupported,
                                               reason=f"recorded at {scale}: {band.get('recorded', expected)}"))
            out.append(pytest.param(scale, case, id=f"{scale}-{case.id}", marks=marks))
    return out


def pytest_generate_tests(metafunc):
    if {"scale", "case"} <= set(metafunc.fixturenames):
        metafunc.parametrize(("scale", "case"), _params(scales_of(metafunc.config)))


def test_claim(scale, case, experiments):
    exp = experiments(scale)
    exp.ensure_for(case.claim)
    rows = exp.record_claims([case.id])
    assert len(rows) == 1, f"{case.id}: its inputs were not recorded at {scale}"
    row = rows.iloc[0]
    summary = f"{case.id} at {scale}: effect {row.effect:.4g} {case.unit}, 95% CI [{row.ci_low:.4g}, {row.ci_high:.4g}]"
    assert row.in_band, f"{summary} lies outside the band [{row.band_low:.4g}, {row.band_high:.4g}]"
    if case.direction and row.verdict != "supported":
        raise ClaimNotSupported(f"{summary}: {row.verdict}")
