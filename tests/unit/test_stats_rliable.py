"""IQM and probability of improvement against the rliable package on the same data.

Only ``rliable.metrics`` is needed (it imports numpy and scipy alone); the test skips when rliable is not
installed (it is in the test extra).
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.report import stats

metrics = pytest.importorskip("rliable.metrics", reason="rliable not installed (pip install rliable)")


def _scores(rng, runs, tasks, shift=0.0):
    """A runs x tasks matrix of F1-like scores, rounded so that ties between methods occur."""
    return np.round(rng.normal(0.6 + shift, 0.03, size=(runs, tasks)), 2)


def test_iqm_matches_rliable():
    rng = np.random.default_rng(0)
    for runs, tasks in ((3, 1), (5, 4), (10, 3)):
        s = _scores(rng, runs, tasks)
        expected = metrics.aggregate_iqm(s)
        assert stats.iqm(s) == pytest.approx(expected)
        # the table's function takes one array of runs per task
        assert stats.iqm_with_ci(list(s.T), n_boot=50)[0] == pytest.approx(expected)


def test_probability_of_improvement_matches_rliable():
    rng = np.random.default_rng(1)
    for runs_x, runs_y, tasks in ((3, 3, 1), (5, 4, 3), (6, 6, 5)):
        x, y = _scores(rng, runs_x, tasks, 0.01), _scores(rng, runs_y, tasks)
        x[0, 0] = y[0, 0]  # a tie
        expected = metrics.probability_of_improvement(x, y)
        assert stats.probability_of_improvement(list(x.T), list(y.T)) == pytest.approx(expected)
        assert stats.poi_with_ci(list(x.T), list(y.T), n_boot=50)[0] == pytest.approx(expected)
    same = _scores(rng, 4, 2)
    assert stats.probability_of_improvement(list(same.T), list(same.T)) == pytest.approx(
        metrics.probability_of_improvement(same, same))
