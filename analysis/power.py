"""Power analysis by simulation: how many mini-societies a planned partner-selection study needs.

For a planned design (groups of S selectors, H human and A AI candidates, rounds, treatments, the
assumed behaviour as population distributions of learning-model parameters or as learning curves, a
timeout share) the design is simulated many times (:func:`analysis.simulate.simulate_session`) and
each replicate is analysed with the key tests:

``late_share``
    disclosed vs hidden AI-choice share in the last ``late_rounds`` rounds: linear probability model
    ``chose_ai ~ disclosed`` on those rounds' choices, standard errors clustered by mini-society
    (selectors in a group share candidates), t reference with G − 1 degrees of freedom.
``trend_disclosed``
    learning trend in disclosed: the round slope of the GEE logit ``chose_ai ~ round0`` on disclosed
    choices (:func:`analysis.regression.gee_logit`, selector-clustered robust SE).
``identity_bias``
    the Rescorla–Wagner identity bias in disclosed (:func:`analysis.learning_models.fit_pooled`,
    selector-clustered sandwich SE), Wald test of bias = 0. Learning-model designs only.

Power is the share of replicates with p < alpha (replicates where a test cannot be computed count as
not rejecting, and are counted in ``n_failed``). The number of groups needed for 80%/90% power is read
off the grid by linear interpolation between the two grid points that bracket the target (NaN if
the grid never reaches it). Command line: ``python -m analysis power --help``; docs/analysis.md
("Power analysis") has a worked example.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ['Design', 'DEFAULT_PARAMS', 'TESTS', 'simulate_design', 'run_tests', 'power_grid', 'groups_needed',
           'plot_power', 'build_parser', 'main']

TESTS = ('late_share', 'trend_disclosed', 'identity_bias')

# Assumed behaviour by default: heterogeneous Rescorla–Wagner learners (the anchor study's returns),
# an anti-AI identity bias where badges show; in 'hidden' the bias has nothing to act on.
DEFAULT_PARAMS = {
    'alpha': {'dist': 'beta', 'mean': 0.3, 'sd': 0.1},
    'beta': {'dist': 'lognormal', 'mean': 8.0, 'sd': 3.0},
    'bias': {'dist': 'normal', 'mean': -0.5, 'sd': 0.5},
}


@dataclass
class Design:
    """A planned study: the arguments of :func:`analysis.simulate.simulate_session` that matter for power.

    model : 'rescorla_wagner', 'ewa', 'static', 'random' or 'curve'; params as simulate_session takes
    them (population distributions as dicts {'dist', 'mean', 'sd'}, per treatment as {treatment: {...}}).
    """
    n_groups: int = 20
    n_selectors: int = 3
    n_human: int = 2
    n_ai: int = 2
    n_rounds: int = 15
    treatments: tuple = ('hidden', 'disclosed')
    model: str = 'rescorla_wagner'
    params: dict = field(default_factory=lambda: json.loads(json.dumps(DEFAULT_PARAMS)))
    timeout_rate: float = 0.02


def simulate_design(design: Design, seed: int) -> pd.DataFrame:
    """One simulated session of ``design``, validated as an export would be (no belief elicitation)."""
    from .io import validate_decisions
    from .simulate import simulate_session
    decisions, _ = simulate_session(design.model, design.params, treatments=list(design.treatments),
                                    n_groups=design.n_groups, n_selectors=design.n_selectors,
                                    n_human=design.n_human, n_ai=design.n_ai, n_rounds=design.n_rounds,
                                    timeout_rate=design.timeout_rate, elicit_beliefs=False,
                                    session_code=f'pw{seed:06d}', seed=seed)
    return validate_decisions(decisions.astype(str).replace({'nan': ''}))


def _late_share_test(data: pd.DataFrame, late_rounds: int) -> float:
    import statsmodels.formula.api as smf
    late = data[(data['round'] > data['round'].max() - late_rounds) & data['chose_ai'].notna()
                & data['treatment'].isin(['disclosed', 'hidden'])].copy()
    if late['treatment'].nunique() < 2 or late['group_key'].nunique() < 3:
        return np.nan
    late['disclosed'] = (late['treatment'] == 'disclosed').astype(float)
    late['chose_ai'] = late['chose_ai'].astype(float)
    fit = smf.ols('chose_ai ~ disclosed', data=late).fit(cov_type='cluster', use_t=True,
                                                         cov_kwds={'groups': pd.factorize(late['group_key'])[0]})
    return float(fit.pvalues['disclosed'])


def _trend_test(data: pd.DataFrame) -> float:
    from .regression import gee_logit
    disclosed = data[data['treatment'] == 'disclosed']
    if disclosed['selector_id'].nunique() < 3:
        return np.nan
    table = gee_logit(disclosed).set_index('term')
    return float(table.loc['round0', 'p_value'])


def _bias_test(data: pd.DataFrame, model_name: str) -> float:
    from scipy import stats

    from .learning_models import MODELS, fit_pooled, prepare_trials
    if model_name not in ('rescorla_wagner', 'ewa', 'static'):
        return np.nan
    trials = prepare_trials(data[data['treatment'] == 'disclosed'])
    fit = fit_pooled(MODELS[model_name](), trials, n_starts=2, se=True)
    se = fit.get('se_bias', np.nan)
    if not np.isfinite(se) or se <= 0:
        return np.nan
    return float(2 * stats.norm.sf(abs(fit['bias'] / se)))


def run_tests(data: pd.DataFrame, model: str = 'rescorla_wagner', tests=TESTS, late_rounds: int = 5) -> dict:
    """p-values of the key tests on one (validated) dataset: {test name: p} (NaN: not computable)."""
    out = {}
    for test in tests:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                if test == 'late_share':
                    out[test] = _late_share_test(data, late_rounds)
                elif test == 'trend_disclosed':
                    out[test] = _trend_test(data)
                elif test == 'identity_bias':
                    out[test] = _bias_test(data, model)
                else:
                    raise ValueError(f'unknown test {test!r}; expected some of {list(TESTS)}')
        except ValueError:
            raise
        except Exception:  # a failed fit in one replicate is a non-rejection, counted in n_failed
            out[test] = np.nan
    return out


def _replicate(job):
    design, seed, tests, late_rounds = job
    return design.n_groups, seed, run_tests(simulate_design(design, seed), design.model, tests, late_rounds)


def power_grid(design: Design, groups, n_sims: int = 200, alpha: float = 0.05, tests=TESTS, late_rounds: int = 5,
               seed: int = 0, workers: int = 1, progress: bool = True) -> pd.DataFrame:
    """Simulate ``design`` with each number of groups in ``groups``, ``n_sims`` times, and count rejections.

    Replicate r of grid point g uses seed ``seed·10⁶ + g·10³ + r`` (reproducible, independent of
    ``workers``). ``workers`` > 1 runs replicates in that many processes.

    Returns
    -------
    DataFrame, one row per groups × test: ``n_groups``, ``n_selectors`` (all treatments), ``test``,
    ``power`` (share of replicates with p < alpha), ``mc_se`` (its binomial Monte Carlo SE), ``n_sims``,
    ``n_failed`` (replicates where the test could not be computed), ``alpha``.
    """
    tests = tuple(tests)
    jobs = [(replace(design, n_groups=int(g)), seed * 10 ** 6 + int(g) * 10 ** 3 + r, tests, late_rounds)
            for g in groups for r in range(n_sims)]
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(jobs), desc='power simulations', unit='dataset')
    results = []
    if workers > 1:
        import multiprocessing
        with multiprocessing.get_context('fork').Pool(workers) as pool:
            for item in pool.imap_unordered(_replicate, jobs, chunksize=1):
                results.append(item)
                if progress:
                    bar.update()
    else:
        for job in jobs:
            results.append(_replicate(job))
            if progress:
                bar.update()
    if progress:
        bar.close()
    rows = []
    for g in groups:
        mine = [r[2] for r in results if r[0] == int(g)]
        for test in tests:
            p = np.array([m[test] for m in mine], dtype=float)
            power = float(np.mean(np.nan_to_num(p, nan=1.0) < alpha))
            rows.append(dict(n_groups=int(g), n_selectors=int(g) * design.n_selectors, test=test, power=power,
                             mc_se=float(np.sqrt(power * (1 - power) / len(p))), n_sims=len(p),
                             n_failed=int(np.isnan(p).sum()), alpha=alpha))
    return pd.DataFrame(rows)


def groups_needed(table: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per test, the number of groups at which power reaches ``target`` (linear interpolation on the grid;
    NaN if no grid point reaches it; the smallest grid point if it already does)."""
    rows = []
    for test, part in table.groupby('test', sort=False):
        part = part.sort_values('n_groups')
        g, power = part['n_groups'].to_numpy(float), part['power'].to_numpy(float)
        needed = np.nan
        for i in range(len(g)):
            if power[i] >= target:
                if i == 0:
                    needed = g[0]
                else:
                    needed = g[i - 1] + (target - power[i - 1]) / (power[i] - power[i - 1]) * (g[i] - g[i - 1])
                break
        rows.append(dict(test=test, target=target,
                         n_groups=float(np.ceil(round(needed, 6))) if np.isfinite(needed) else np.nan))
    return pd.DataFrame(rows)


_LABELS = {'late_share': 'disclosed vs hidden, late-round AI share', 'trend_disclosed': 'learning trend in disclosed',
           'identity_bias': 'identity bias (RW, disclosed)'}


def plot_power(table: pd.DataFrame, path_stem, title: str = '') -> list:
    """Power curves (power vs groups, one line per test, ±2 MC SE band, 80%/90% lines): PNG (300 dpi) and SVG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    for test, part in table.groupby('test', sort=False):
        part = part.sort_values('n_groups')
        line, = axes.plot(part['n_groups'], part['power'], marker='o', label=_LABELS.get(test, test))
        axes.fill_between(part['n_groups'], (part['power'] - 2 * part['mc_se']).clip(0, 1),
                          (part['power'] + 2 * part['mc_se']).clip(0, 1), color=line.get_color(), alpha=0.15)
    for level in (0.8, 0.9):
        axes.axhline(level, color='0.4', linestyle=':', linewidth=1)
    alpha = float(table['alpha'].iloc[0])
    axes.axhline(alpha, color='0.6', linestyle='--', linewidth=1, label=f'alpha = {alpha:g}')
    axes.set_xlabel('mini-societies (groups)')
    axes.set_ylabel('power')
    axes.set_ylim(0, 1.02)
    axes.set_xticks(sorted(table['n_groups'].unique()))
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=8, loc='center right')
    figure.tight_layout()
    paths = []
    for suffix in ('.png', '.svg'):
        path = Path(str(path_stem) + suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=300)
        paths.append(path)
    plt.close(figure)
    return paths


def _population(text: str):
    """'beta:0.3:0.1' → {'dist': 'beta', 'mean': 0.3, 'sd': 0.1}; a plain number stays a number."""
    if ':' not in text:
        return float(text)
    dist, mean, sd = (text.split(':') + ['0'])[:3]
    return {'dist': dist, 'mean': float(mean), 'sd': float(sd)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m analysis power',
        description='Power of the key tests for a planned partner-selection design, by simulation; writes a CSV '
                    'and a power-curve figure (PNG + SVG).',
        epilog="Parameters: --param NAME=VALUE, VALUE a number or DIST:MEAN:SD with DIST beta, lognormal or normal "
               "(each selector draws its own); TREATMENT.NAME=VALUE for one treatment only "
               "(e.g. disclosed.bias=normal:-0.5:0.5, hidden.beta=0 for chance in hidden). "
               "Default: RW learners alpha=beta:0.3:0.1, beta=lognormal:8:3, bias=normal:-0.5:0.5.")
    parser.add_argument('--groups', default='10,20,30,40,60', help='grid of mini-society counts (default 10,20,30,40,60)')
    parser.add_argument('--selectors', type=int, default=3, help='selectors per group (S, default 3)')
    parser.add_argument('--human', type=int, default=2, help='human candidates per group (H, default 2)')
    parser.add_argument('--ai', type=int, default=2, help='AI candidates per group (A, default 2)')
    parser.add_argument('--rounds', type=int, default=15, help='rounds (default 15)')
    parser.add_argument('--treatments', default='hidden,disclosed', help='treatments in rotation (default hidden,disclosed)')
    parser.add_argument('--model', default='rescorla_wagner',
                        choices=['rescorla_wagner', 'ewa', 'static', 'random', 'curve'],
                        help='assumed behaviour (default rescorla_wagner; curve: p0, p_inf, k per treatment)')
    parser.add_argument('--param', action='append', default=[], metavar='NAME=VALUE',
                        help='assumed parameter (repeatable; replaces the defaults if given)')
    parser.add_argument('--timeout-rate', type=float, default=0.02, help='share of choice pages timing out (default 0.02)')
    parser.add_argument('--tests', default=','.join(TESTS), help=f'tests to run (default {",".join(TESTS)})')
    parser.add_argument('--late-rounds', type=int, default=5, help='rounds counted as late (default 5)')
    parser.add_argument('--alpha', type=float, default=0.05, help='significance level (default 0.05)')
    parser.add_argument('--sims', type=int, default=200, help='simulated datasets per grid point (default 200)')
    parser.add_argument('--seed', type=int, default=0, help='seed (default 0)')
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1,
                        help='processes (default: all cores)')
    parser.add_argument('--out', default='power', help='output stem: STEM.csv, STEM.png, STEM.svg (default power)')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    return parser


def _design(args) -> Design:
    params = {}
    for item in args.param:
        if '=' not in item:
            raise ValueError(f'--param {item!r}: expected NAME=VALUE')
        name, value = item.split('=', 1)
        if '.' in name:
            treatment, name = name.split('.', 1)
            params.setdefault(treatment, {})[name] = _population(value)
        else:
            params[name] = _population(value)
    treatments = tuple(t.strip() for t in args.treatments.split(',') if t.strip())
    if params and any(isinstance(v, dict) and 'dist' not in v for v in params.values()):
        # per-treatment values given: the plain ones apply to every treatment
        shared = {k: v for k, v in params.items() if not (isinstance(v, dict) and 'dist' not in v)}
        params = {t: {**shared, **params.get(t, {})} for t in treatments}
    if not params:
        if args.model == 'curve':
            raise ValueError('--model curve needs --param p0=…, p_inf=…, k=… (or TREATMENT.p0=…)')
        params = json.loads(json.dumps(DEFAULT_PARAMS)) if args.model == 'rescorla_wagner' else {}
    return Design(n_selectors=args.selectors, n_human=args.human, n_ai=args.ai, n_rounds=args.rounds,
                  treatments=treatments, model=args.model, params=params, timeout_rate=args.timeout_rate)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        groups = sorted({int(g) for g in args.groups.split(',') if g.strip()})
        tests = tuple(t.strip() for t in args.tests.split(',') if t.strip())
        unknown = set(tests) - set(TESTS)
        if unknown or not groups or min(groups) < 2:
            raise ValueError(f'unknown test(s) {sorted(unknown)}' if unknown else '--groups needs values >= 2')
        design = _design(args)
        started = time.perf_counter()
        table = power_grid(design, groups, n_sims=args.sims, alpha=args.alpha, tests=tests,
                           late_rounds=args.late_rounds, seed=args.seed, workers=max(1, args.workers),
                           progress=not args.no_progress)
    except ValueError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    needed = pd.concat([groups_needed(table, 0.8), groups_needed(table, 0.9)], ignore_index=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(f'{args.out}.csv', index=False)
    needed.to_csv(f'{args.out}_groups_needed.csv', index=False)
    title = (f'{design.model}, S/H/A = {design.n_selectors}/{design.n_human}/{design.n_ai}, {design.n_rounds} rounds, '
             f'{args.sims} datasets per point')
    paths = plot_power(table, args.out, title)
    with pd.option_context('display.width', 120):
        print(table.to_string(index=False, float_format=lambda v: f'{v:.3f}'))
        print()
        print(needed.pivot(index='test', columns='target', values='n_groups').rename(
            columns=lambda t: f'groups for {t:.0%}').to_string())
    print(f'\ndesign: {json.dumps(asdict(design))}')
    print(f'{len(groups) * args.sims} datasets in {elapsed:.0f} s with {args.workers} worker(s); written: '
          f'{args.out}.csv, {args.out}_groups_needed.csv, ' + ', '.join(map(str, paths)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
