"""Time the analysis fits on a simulated 975-selector × 20-round partner_selection export.

    python benchmarks/bench_analysis_fits.py [--groups 325] [--rounds 20] [--no-mixed] [--seed 0]

Prints one line per step (seconds) and the machine's core count; the figures are quoted in
docs/benchmarks.md. 975 selectors = 325 mini-societies × 3 selectors (2 human + 2 AI candidates),
treatments hidden / disclosed / false_label in rotation, Rescorla–Wagner choosers.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import analysis  # noqa: E402,F401  (sets single-threaded BLAS before numpy loads)
from analysis import curves, learning_curve, learning_models, regression  # noqa: E402
from analysis.io import fit_sample, load_decisions, write_export  # noqa: E402
from analysis.simulate import simulate_session  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--groups', type=int, default=325, help='mini-societies of 3 selectors (default 325 = 975)')
    parser.add_argument('--rounds', type=int, default=20, help='rounds (default 20)')
    parser.add_argument('--no-mixed', action='store_true', help='skip the (slow) variational mixed logit')
    parser.add_argument('--seed', type=int, default=0, help='simulation seed')
    args = parser.parse_args(argv)

    timings = []

    def timed(label, function, *a, **kw):
        started = time.perf_counter()
        result = function(*a, **kw)
        timings.append((label, time.perf_counter() - started))
        print(f'{label:<58s} {timings[-1][1]:8.2f} s', flush=True)
        return result

    print(f'machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python '
          f'{platform.python_version()}')
    decisions, _ = timed(f'simulate {args.groups * 3} selectors x {args.rounds} rounds (RW)', simulate_session,
                         'rescorla_wagner', dict(alpha=0.3, beta=8.0, bias=-1.0), n_groups=args.groups,
                         n_rounds=args.rounds, timeout_rate=0.02, seed=args.seed)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / 'decisions.csv'
        timed('write export CSV', write_export, decisions, path)
        data = timed('load + validate export', load_decisions, path)
    sample = fit_sample(data)
    print(f'  {len(sample)} choices used, {int(data["excluded_from_fit"].sum())} timeouts excluded')
    timed('AI-choice share, clustered bootstrap (1000)', curves.ai_choice_share, sample, n_boot=1000)
    timed('learning curves, 3 treatments, Hessian SEs', learning_curve.fit_learning_curves, sample)
    timed('learning curves + bootstrap CIs (200 per treatment)', learning_curve.fit_learning_curves, sample,
          n_boot=200)
    timed('GEE logit (selector clusters)', regression.gee_logit, sample)
    if not args.no_mixed:
        timed('mixed logit, selector + group intercepts (VB)', regression.mixed_logit, sample)
    trials = timed('arrange trials for learning models', learning_models.prepare_trials, sample)
    for model in (learning_models.RescorlaWagner(), learning_models.EWA()):
        estimates, _ = timed(f'{model.name}: MLE per treatment + clustered SEs, 5 starts',
                             learning_models.fit_by_treatment, model, trials, n_starts=5)
        for treatment, part in estimates.groupby('treatment', sort=False):
            print(f'  {treatment}: ' + ', '.join(f'{r.parameter}={r.estimate:.3f} (se {r.se:.3f})'
                                                for r in part.itertuples()))
        timed(f'{model.name}: per selector ({len(trials.selectors)}), 3 starts',
              learning_models.fit_per_selector, model, trials, n_starts=3)
    timed('model comparison (4 models per treatment, 5 starts)', learning_models.compare_models, trials)
    print(f'total {sum(t for _, t in timings):.1f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
