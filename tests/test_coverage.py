"""A fast version of the Monte Carlo coverage study (benchmarks/coverage_study.py, docs/coverage.md):
20 small two-treatment datasets of heterogeneous Rescorla–Wagner learners; the 95% CIs of the GEE fixed
effects and of the per-treatment RW parameters cover their pseudo-true values (the same estimators on
one dataset 10× larger)."""
import importlib.util
from pathlib import Path

import pytest

STUDY = Path(__file__).resolve().parents[1] / 'benchmarks' / 'coverage_study.py'


def _study():
    spec = importlib.util.spec_from_file_location('coverage_study', STUDY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_gee_and_rw_per_treatment_intervals_cover_their_estimands():
    study = _study()
    config = study.design(n_groups=30, n_rounds=12)
    truth = study.pseudo_truth(config, 10, families=('gee', 'rw'))
    draws = study.run(config, 20, families=('gee', 'rw'), seed=5, progress=False)
    table = study.summarize(draws, truth)
    assert set(table['family']) == {'gee', 'rw'}
    assert len(table) == 4 + 5  # 4 GEE terms; alpha, beta in both treatments and the bias in disclosed only
    assert (table['n_with_ci'] >= 18).all()  # at most 2 of 20 fits with an estimate on a bound
    # 20 intervals each: at 95% true coverage, 4+ misses of 20 happen with probability 0.016 per parameter;
    # over all 180 intervals the share covered is much more stable
    assert (table['coverage'] >= 0.8).all(), table[['family', 'treatment', 'parameter', 'coverage']]
    covered = (table['coverage'] * table['n_with_ci']).sum() / table['n_with_ci'].sum()
    assert covered >= 0.88
