"""A pytest plugin for tests/test_reproduce_console.py: Ctrl-C in the middle of a reproduction.

``FLATENN_INTERRUPT_AFTER=N``: the first N campaigns of the run finish, the next one is interrupted after its
first trials (KeyboardInterrupt from inside the campaign, as a Ctrl-C lands).
"""

import os

import flatenn.faults.campaign as campaign
import flatenn.repro.measurements as measurements

_real = campaign.run_campaign
_calls = [0]


def _interrupting(*args, **kwargs):
    _calls[0] += 1
    if _calls[0] <= int(os.environ.get("FLATENN_INTERRUPT_AFTER", "0")):
        return _real(*args, **kwargs)
    real_eval = campaign.faulty_evaluator

    def evaluator(*a, **k):
        run = real_eval(*a, **k)
        done = [0]

        def interrupted_after_three():
            done[0] += 1
            if done[0] > 3:
                raise KeyboardInterrupt
            return run()

        return interrupted_after_three

    campaign.faulty_evaluator = evaluator
    try:
        return _real(*args, **kwargs)
    finally:
        campaign.faulty_evaluator = real_eval


measurements.run_campaign = _interrupting
