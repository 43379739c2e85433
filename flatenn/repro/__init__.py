"""The paper reproduction: scales, claims and their verdicts, the experiment pipeline, results tables,
verification, reports, and the ablation (plan in ``ablation_plan.md``, reference bands in ``bands/``)."""
