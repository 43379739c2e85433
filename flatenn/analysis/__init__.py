"""Statistics (``stats``: confidence intervals, tests, multiplicity) and sharpness metrics (``sharpness``)."""
