"""The paper reproduction: scales, claims and their verdicts, the experiment pipeline,
verification, reports, and the ablation (plan in ``ablation_plan.md``, reference bands in ``bands/``)."""
