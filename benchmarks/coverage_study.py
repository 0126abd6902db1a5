"""Monte Carlo recovery and coverage of the headline estimates (issue 13, item 6; docs/coverage.md).

Data-generating process: partner_selection sessions (analysis.simulate) with two treatments, hidden and
disclosed, in rotation over mini-societies of 3 selectors, 2 human and 2 AI candidates; heterogeneous
Rescorla–Wagner learners, each selector drawing its own alpha ~ Beta(mean 0.3, sd 0.1), beta ~
lognormal(mean 8, sd 3), bias ~ Normal(−1, 0.5) (the bias acts on a badge, so only in disclosed), all
starting from q0 = 1/3; 2% of choice pages time out.

Estimates, each with its 95% CI as the analysis reports it:
  curve    p0, p_inf per treatment            analysis.learning_curve.fit_learning_curves (cluster bootstrap)
  rw       alpha, beta, bias per treatment    analysis.learning_models.fit_by_treatment (clustered sandwich)
  gee      fixed effects                      analysis.regression.gee_logit (robust)
  glmm     fixed effects (--glmm)             analysis.regression.mixed_logit

Estimand ("pseudo-true value"): what each estimator converges to under this process, approximated by
the same estimator on one dataset ``--truth-scale`` times larger (its own seed). The models are
approximations of heterogeneous learners (one RW parameter set per treatment, a logit-linear trend, an
exponential curve), so their limits are not the means of the selectors' own parameters; coverage is
of the pseudo-true value, and the "pooling gap" column says how far the pooled RW estimand lies from
the population mean of the individual parameters.

A second, smaller experiment shows the initial value's effect: selectors start from q0 = 0.6
(optimistic), and RW is fitted with q0 fixed at 1/3, q0='data' and q0='free'.

Usage: python benchmarks/coverage_study.py [--datasets 100] [--workers N] [--glmm] [--markdown FILE]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.power import Design, simulate_design  # noqa: E402

POPULATION = {
    'alpha': {'dist': 'beta', 'mean': 0.3, 'sd': 0.1},
    'beta': {'dist': 'lognormal', 'mean': 8.0, 'sd': 3.0},
    'bias': {'dist': 'normal', 'mean': -1.0, 'sd': 0.5},
}
# The population means of the individual parameters (the bias only where badges show).
POPULATION_MEAN = {('disclosed', 'alpha'): 0.3, ('disclosed', 'beta'): 8.0, ('disclosed', 'bias'): -1.0,
                   ('hidden', 'alpha'): 0.3, ('hidden', 'beta'): 8.0}
FAMILIES = ('curve', 'rw', 'gee')


def design(n_groups: int = 40, n_rounds: int = 15, q0: float = 1 / 3) -> Design:
    params = {name: dict(spec) for name, spec in POPULATION.items()}
    params['q0'] = q0
    return Design(n_groups=n_groups, n_rounds=n_rounds, params=params, timeout_rate=0.02)


def _rows(family, table, treatment_col=None, parameters=None):
    rows = []
    for _, r in table.iterrows():
        parameter = r['parameter'] if 'parameter' in r else r['term']
        if parameters is not None and parameter not in parameters:
            continue
        rows.append(dict(family=family, treatment=r[treatment_col] if treatment_col else '', parameter=parameter,
                         estimate=float(r['estimate']), se=float(r.get('se', np.nan)),
                         ci_low=float(r.get('ci_low', np.nan)), ci_high=float(r.get('ci_high', np.nan)),
                         at_bound=bool(r.get('at_bound', False))))
    return rows


def estimates(data: pd.DataFrame, families=FAMILIES, q0=1 / 3, n_starts: int = 3, curve_boot: int = 0) -> pd.DataFrame:
    """The headline estimates of one validated dataset as rows: family, treatment, parameter, estimate,
    se, ci_low, ci_high, at_bound. A family whose fit fails gives a row with parameter 'error'.
    curve_boot : learning-curve CIs from this many selector-clustered bootstrap replicates (the report's
        default is 200); 0: Wald CIs from the clustered SEs."""
    from analysis import learning_curve, regression
    from analysis.learning_models import RescorlaWagner, fit_by_treatment, prepare_trials
    rows = []
    for family in families:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                if family == 'curve':
                    fitted = learning_curve.fit_learning_curves(data, n_boot=curve_boot)
                    params = fitted[0] if isinstance(fitted, tuple) else fitted
                    params = params[params['estimate'].notna()]  # a quantity withheld as not identified
                    rows += _rows('curve', params, 'treatment', ('p0', 'p_inf'))
                elif family == 'rw':
                    est, _ = fit_by_treatment(RescorlaWagner(q0=q0), prepare_trials(data), n_starts=n_starts)
                    rows += _rows('rw' if q0 == 1 / 3 else f'rw_q0={q0}', est, 'treatment')
                elif family == 'gee':
                    rows += _rows('gee', regression.gee_logit(data))
                elif family == 'glmm':
                    table = regression.mixed_logit(data)
                    rows += _rows('glmm', table[~table['term'].str.match(r'(sd|cor)\(')])
        except Exception as exc:  # noqa: BLE001  (recorded, the study goes on)
            rows.append(dict(family=family, treatment='', parameter='error', estimate=np.nan, se=np.nan,
                             ci_low=np.nan, ci_high=np.nan, at_bound=False, error=f'{type(exc).__name__}: {exc}'))
    return pd.DataFrame(rows)


def _replicate(job):
    config, seed, families, q0_study, curve_boot = job
    data = simulate_design(config, seed)
    out = estimates(data, families, curve_boot=curve_boot).assign(dataset=seed)
    if q0_study:
        optimistic = simulate_design(replace(config, params={**config.params, 'q0': 0.6}), seed + 500_000)
        for q0 in (1 / 3, 'data', 'free'):
            out = pd.concat([out, estimates(optimistic, ('rw',), q0=q0).assign(
                dataset=seed, family=f'q0 study: fit q0={"1/3" if q0 == 1 / 3 else q0}')], ignore_index=True)
    return out


def run(config: Design, n_datasets: int, families=FAMILIES, seed: int = 0, workers: int = 1, progress: bool = True,
        q0_study: bool = False, curve_boot: int = 0) -> pd.DataFrame:
    """All replicates' estimates (one DataFrame, column ``dataset`` = the replicate's seed)."""
    jobs = [(config, seed * 10 ** 6 + r, tuple(families), q0_study, curve_boot) for r in range(n_datasets)]
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(jobs), desc='coverage datasets', unit='dataset')
    results = []
    if workers > 1:
        import multiprocessing
        with multiprocessing.get_context('fork').Pool(workers) as pool:
            for item in pool.imap_unordered(_replicate, jobs, chunksize=1):
                results.append(item)
                bar and bar.update()
    else:
        for job in jobs:
            results.append(_replicate(job))
            bar and bar.update()
    bar and bar.close()
    return pd.concat(results, ignore_index=True)


def pseudo_truth(config: Design, scale: int, families=FAMILIES, seed: int = 999_999, q0_study: bool = False):
    """The estimators on one dataset ``scale`` times as many groups: their (approximate) limits."""
    big = replace(config, n_groups=config.n_groups * scale)
    truth = estimates(simulate_design(big, seed), families, n_starts=5)
    if q0_study:
        optimistic = simulate_design(replace(big, params={**config.params, 'q0': 0.6}), seed + 1)
        for q0, label in ((0.6, 'q0 study: truth (fit q0=0.6)'),):
            truth = pd.concat([truth, estimates(optimistic, ('rw',), q0=q0, n_starts=5).assign(family=label)],
                              ignore_index=True)
    return truth


def summarize(draws: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Bias and coverage per family × treatment × parameter.

    Columns: ``family``, ``treatment``, ``parameter``, ``pseudo_true``, ``population_mean`` (RW: mean of the
    selectors' own parameters), ``pooling_gap`` (pseudo_true − population_mean), ``mean_estimate``, ``bias``
    (mean_estimate − pseudo_true), ``sd_estimate``, ``mean_se``, ``coverage`` (share of CIs containing
    pseudo_true, among replicates with a CI), ``n_with_ci``, ``n_at_bound``, ``n_datasets``.
    """
    key = ['family', 'treatment', 'parameter']
    truth = truth[truth['parameter'] != 'error'].set_index(key)['estimate']
    rows = []
    for (family, treatment, parameter), part in draws[draws['parameter'] != 'error'].groupby(key, sort=False):
        target = truth.get((family if not family.startswith('q0 study') else 'q0 study: truth (fit q0=0.6)',
                            treatment, parameter), np.nan)
        pop = POPULATION_MEAN.get((treatment, parameter), np.nan) if family.startswith(('rw', 'q0')) else np.nan
        if parameter == 'q0':  # estimated initial value: everyone's true q0 (0.6 in the q0 study)
            target = pop = 0.6
        has_ci = part['ci_low'].notna() & part['ci_high'].notna()
        covered = (part['ci_low'] <= target) & (target <= part['ci_high'])
        rows.append(dict(family=family, treatment=treatment, parameter=parameter, pseudo_true=target,
                         population_mean=pop, pooling_gap=target - pop, mean_estimate=part['estimate'].mean(),
                         bias=part['estimate'].mean() - target, sd_estimate=part['estimate'].std(ddof=1),
                         mean_se=part['se'].mean(), coverage=covered[has_ci].mean() if has_ci.any() else np.nan,
                         n_with_ci=int(has_ci.sum()), n_at_bound=int(part['at_bound'].sum()),
                         n_datasets=int(part['dataset'].nunique())))
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame) -> str:
    columns = ['family', 'treatment', 'parameter', 'pseudo_true', 'population_mean', 'pooling_gap', 'mean_estimate',
               'bias', 'sd_estimate', 'mean_se', 'coverage', 'n_with_ci']
    def cell(v):
        if isinstance(v, float):
            return '' if np.isnan(v) else f'{v:.3f}'
        return str(v)
    lines = ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]
    for _, r in table.iterrows():
        lines.append('| ' + ' | '.join(cell(r[c]) for c in columns) + ' |')
    return '\n'.join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--datasets', type=int, default=100, help='simulated datasets (default 100)')
    parser.add_argument('--groups', type=int, default=40, help='mini-societies per dataset (default 40 = 120 selectors)')
    parser.add_argument('--rounds', type=int, default=15, help='rounds (default 15)')
    parser.add_argument('--truth-scale', type=int, default=40, help='pseudo-truth dataset size, × groups (default 40)')
    parser.add_argument('--families', default=','.join(FAMILIES), help=f'estimates to study (default {",".join(FAMILIES)})')
    parser.add_argument('--curve-boot', type=int, default=200,
                        help='bootstrap replicates for the curve CIs, as the report (default 200; 0: Wald)')
    parser.add_argument('--glmm', action='store_true', help='include the GLMM (analysis.regression.mixed_logit)')
    parser.add_argument('--no-q0-study', action='store_true', help='skip the initial-value experiment')
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1, help='processes (default: all cores)')
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--csv', help='write the summary table here')
    parser.add_argument('--draws-csv', help='write every replicate estimate here')
    parser.add_argument('--markdown', help='write the summary as a markdown table here')
    parser.add_argument('--no-progress', action='store_true')
    args = parser.parse_args(argv)

    families = tuple(f.strip() for f in args.families.split(',') if f.strip()) + (('glmm',) if args.glmm else ())
    config = design(args.groups, args.rounds)
    print(f'machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, '
          f'load {os.getloadavg()[0]:.1f}, Python {platform.python_version()}', flush=True)
    started = time.perf_counter()
    truth = pseudo_truth(config, args.truth_scale, families, q0_study=not args.no_q0_study)
    print(f'pseudo-truth ({config.n_groups * args.truth_scale} groups): {time.perf_counter() - started:.0f} s',
          flush=True)
    draws = run(config, args.datasets, families, seed=args.seed, workers=args.workers,
                progress=not args.no_progress, q0_study=not args.no_q0_study, curve_boot=args.curve_boot)
    elapsed = time.perf_counter() - started
    table = summarize(draws, truth)
    errors = pd.concat([draws, truth])
    errors = errors[errors['parameter'] == 'error'] if 'error' in errors else errors.iloc[:0]
    with pd.option_context('display.width', 200, 'display.max_columns', 30):
        print(table.to_string(index=False, float_format=lambda v: f'{v:.3f}'))
    if len(errors):
        print('\nfailed fits:')
        print(errors.groupby(['family', 'error']).size().to_string())
    print(f'\n{args.datasets} datasets of {config.n_groups * 3} selectors x {config.n_rounds} rounds, '
          f'{args.workers} worker(s): {elapsed:.0f} s')
    if args.csv:
        table.to_csv(args.csv, index=False)
    if args.draws_csv:
        draws.to_csv(args.draws_csv, index=False)
    if args.markdown:
        Path(args.markdown).write_text(markdown(table) + '\n', encoding='utf-8')
    return 0


if __name__ == '__main__':
    sys.exit(main())
