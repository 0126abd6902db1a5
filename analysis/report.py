"""The report: runs every analysis on an export and writes one HTML page, its figures (SVG and 300-dpi
PNG), every table as CSV and the headline estimates as ``results.json`` (docs/analysis.md, "Report outputs").

``build_report(export, out_dir, candidates=None, ...)`` is what ``python -m analysis report`` calls.
Figures use matplotlib's Agg backend (no display needed).
"""
from __future__ import annotations

import html
import json
import os
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from . import candidates as cand  # noqa: E402
from . import curves, learning_curve, learning_models, regression  # noqa: E402
from . import ai_calls as aic  # noqa: E402
from .io import ExportError, exclusion_summary, fit_sample, load_ai_calls, load_candidates, read_export  # noqa: E402

__all__ = ['build_report', 'plot_choice_share', 'plot_returns_by_kind', 'plot_model_comparison',
           'MIXED_AUTO_LIMIT', 'MIN_SELECTORS', 'WithheldStatistic', 'DISPLAY_NAMES', 'RESULTS_VERSION']

# Above this many choices "auto" skips the mixed logit (lme4 glmer through Rscript: 7-24 s at 19,500 choices on
# the 2-core machine, quiet to busy; with a core free it runs in the background from the start, while the curves
# and the learning models are fitted).
MIXED_AUTO_LIMIT = 25000
# Fewest selectors (the clusters) in a treatment for a standard error, CI or test on it; below it they are
# withheld with a warning. Cluster-robust SEs and the cluster bootstrap need many clusters (with one they
# are 0: "p = 0, CI [0, 0]"); 10 only stops the absurd, with 10-30 read the SEs as rough.
MIN_SELECTORS = 10
# Fewest candidates for the message-return regressions (SEs clustered by candidate).
MIN_CANDIDATES = 10


class WithheldStatistic(UserWarning):
    """A statistic left out of the report because there are too few selectors or candidates for it."""
_COLORS = {'hidden': '#1f77b4', 'disclosed': '#d62728', 'false_label': '#2ca02c'}
# Figures are written twice: SVG (vector, for papers) and PNG at this resolution.
PNG_DPI = 300


def _save(fig, path) -> None:
    """Write ``path`` with .svg and .png (300 dpi) suffixes; ``path`` may carry either suffix or none."""
    path = Path(path)
    stem = path.with_suffix('') if path.suffix in ('.png', '.svg', '') else path
    fig.savefig(stem.with_suffix('.svg'))
    fig.savefig(stem.with_suffix('.png'), dpi=PNG_DPI)
    plt.close(fig)


def _integer_rounds(ax) -> None:
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_choice_share(shares: pd.DataFrame, fits: pd.DataFrame | None, params: pd.DataFrame | None, path) -> None:
    """AI-choice share by round with CIs (treatments dodged), the selected curve per treatment (flat or
    exponential) and the chance level (black dashed, drawn on top)."""
    from matplotlib import patheffects
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    names = sorted(shares['treatment'].unique())
    offsets = dict(zip(names, np.linspace(-0.12, 0.12, len(names)) if len(names) > 1 else [0.0]))
    for name, part in shares.groupby('treatment'):
        color = _COLORS.get(name)
        x = part['round'].to_numpy(float) + offsets[name]
        err = np.vstack([part['share_ai'] - part['ci_low'], part['ci_high'] - part['share_ai']])
        no_ci = np.isnan(err).all()
        ax.errorbar(x, part['share_ai'], yerr=None if no_ci else err, fmt='o', markersize=4, color=color, capsize=2,
                    elinewidth=1, zorder=3, label=f'{name}: observed' + ('' if no_ci else ' (95% CI)'))
        if fits is not None and params is not None and name in set(fits['treatment']):
            t = np.linspace(part['round'].min(), part['round'].max(), 200)
            fit = fits.set_index('treatment').loc[name]
            flat = fit['selected_model'] == 'flat'
            label = f'{name}: flat, share {fit["p_flat"]:.2f}' if flat else f'{name}: exponential curve'
            ax.plot(t, learning_curve.selected_curve(fits, params, name, t), color=color, linewidth=1.8,
                    # dashes shifted per treatment: two flat lines at the same share both stay visible
                    linestyle=(4 * names.index(name), (6, 6)) if flat else '-', zorder=2, label=label)
    outline = [patheffects.withStroke(linewidth=3.5, foreground='white')]
    by_treatment = shares.pivot_table(index='round', columns='treatment', values='chance')
    if len(by_treatment.columns) > 1 and float(np.nanmax(by_treatment.max(axis=1) - by_treatment.min(axis=1))) > 0.01:
        for name in by_treatment.columns:  # chance differs by treatment: one line each, in its colour
            ax.plot(by_treatment.index, by_treatment[name], linestyle=(0, (2, 2)), color=_COLORS.get(name, 'black'),
                    linewidth=1.4, zorder=10, path_effects=outline, label=f'{name}: chance')
    else:
        chance = shares.groupby('round')['chance'].mean()
        ax.plot(chance.index, chance.to_numpy(), linestyle=(0, (5, 3)), color='black', linewidth=1.4, zorder=10,
                path_effects=outline, label='chance (AI share of cards offered)')
    _integer_rounds(ax)
    ax.set_xlabel('round')
    ax.set_ylabel('share of selectors choosing an AI candidate')
    ax.set_ylim(0, 1)
    ax.set_title('AI choice by round, with the curve selected per treatment')
    ax.legend(fontsize=7, loc='best', framealpha=0.9)
    fig.tight_layout()
    _save(fig, path)


def plot_returns_by_kind(returns: pd.DataFrame, path, kind: str = 'chosen_kind', value: str = 'amount_returned') -> None:
    """Histogram of points returned, AI vs human candidates."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    data = returns[returns[value].notna()]
    top = max(1.0, float(data[value].max())) if len(data) else 1.0
    bins = np.arange(-0.5, top + 1.5, max(1.0, np.ceil(top / 30)))
    for name, color in (('ai', '#ff7f0e'), ('human', '#7f7f7f')):
        values = data.loc[data[kind] == name, value]
        if len(values):
            ax.hist(values, bins=bins, alpha=0.6, color=color, density=True,
                    label=f'{name}: mean {values.mean():.1f}, sd {values.std(ddof=1):.1f} (n={len(values)})')
    _integer_rounds(ax)
    ax.set_xlabel('points returned to a selector')
    ax.set_ylabel('density')
    ax.set_title('Returns by candidate kind')
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def plot_model_comparison(table: pd.DataFrame, path) -> None:
    """ΔAIC and ΔBIC of each learning model against the best (0, marked ◆); symlog axis so that small
    differences stay visible next to the random-choice model's thousands."""
    fig, ax = plt.subplots(figsize=(7, 0.55 * len(table) + 1.6))
    labels = table['model'] + ' (' + table['fit'] + ')'
    y = np.arange(len(table))
    for offset, column, color, name in ((-0.2, 'delta_aic', '#4c72b0', 'ΔAIC'), (0.2, 'delta_bic', '#dd8452', 'ΔBIC')):
        values = table[column].to_numpy(float)
        ax.barh(y + offset, values, height=0.38, color=color, label=name)
        best = np.isclose(values, 0)
        ax.scatter(np.zeros(best.sum()), (y + offset)[best], marker='D', s=36, color=color, edgecolor='black',
                   zorder=5)
        for yy, v in zip(y + offset, values):
            text, x = ('best (0)', 1.2) if np.isclose(v, 0) else (f'{v:.1f}', v * 1.12 + 1.0)
            ax.text(x, yy, text, va='center', fontsize=7)
    ax.set_xscale('symlog', linthresh=10)
    top = float(np.nanmax(table[['delta_aic', 'delta_bic']].to_numpy())) if len(table) else 0.0
    ax.set_xlim(left=-1.0, right=max(30.0, top * 5))
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel('difference to the best model (0 = best, ◆; symlog scale; lower is better)')
    ax.legend(fontsize=8, loc='lower left', bbox_to_anchor=(0, 1.0), ncol=2, frameon=False)
    fig.tight_layout()
    _save(fig, path)


def _withhold(frame: pd.DataFrame, columns, small: set, treatment: str = 'treatment') -> pd.DataFrame:
    """frame with ``columns`` blanked (NaN) in the rows of the treatments in ``small``."""
    frame = frame.copy()
    rows = frame[treatment].isin(small)
    for column in columns:
        if column in frame:
            frame[column] = frame[column].astype(object) if frame[column].dtype == bool else frame[column]
            frame.loc[rows, column] = np.nan
    return frame


# Column headers as shown in the HTML (display only: the CSVs keep the snake_case names).
DISPLAY_NAMES = {
    'n_selectors': 'selectors (n)', 'n_choices': 'choices (n)', 'n_decisions': 'decisions (n)',
    'n_choice_timed_out': 'choice timed out (n)', 'n_no_choice': 'no choice (n)',
    'n_return_timed_out': 'return timed out (n)', 'n_used_in_fits': 'used in fits (n)',
    'n_ai_chosen': 'AI chosen (n)', 'share_ai': 'AI-choice share (0-1)', 'chance': 'chance level (0-1)',
    'ci_low': '95% CI low', 'ci_high': '95% CI high', 'above_chance': 'CI above chance',
    'se': 'SE (selector-clustered)', 'se_model': 'SE (model-based)', 'ci_method': 'CI method',
    'selected_model': 'selected model', 'selection_basis': 'selection basis', 'p_flat': 'flat share (0-1)',
    'p_flat_se': 'flat share SE', 'log_lik': 'log-likelihood', 'log_lik_flat': 'log-likelihood (flat)',
    'bic_flat': 'BIC (flat)', 'bic_exponential': 'BIC (exponential)', 'aic_flat': 'AIC (flat)',
    'aic_exponential': 'AIC (exponential)', 'lr_stat': 'LR statistic', 'lr_df': 'LR df',
    'lr_p_value': 'LR p (selector permutation)', 'lr_p_chi2': 'LR p (chi2(2), nominal)',
    'n_perm': 'permutations (n)', 'estimate_other': 'other treatment', 'estimate_reference': 'reference treatment',
    'p_value': 'p', 'se_method': 'SE method', 'n_params': 'parameters (n)', 'n_obs': 'choices (n)', 'aic': 'AIC',
    'bic': 'BIC', 'delta_aic': 'ΔAIC', 'delta_bic': 'ΔBIC', 'aic_weight': 'Akaike weight',
    'at_bound': 'on a bound (at_bound)', 'se_withheld': 'SE withheld', 'odds_ratio': 'odds ratio',
    'mean': 'mean', 'sd': 'SD', 'mean_share': 'mean return share (0-1)', 'sd_share': 'SD of return share',
    'cohens_d': "Cohen's d", 'd_ci_low': 'd 95% CI low', 'd_ci_high': 'd 95% CI high', 'welch_t': 'Welch t',
    'mean_ai': 'mean AI (points)', 'mean_human': 'mean human (points)', 'difference': 'difference',
    'variance_ratio': 'variance ratio (human/AI)', 'n_judgements': 'judgements (n)', 'accuracy': 'accuracy (0-1)',
    'ai_judged_human': 'AI judged human (share)', 'human_judged_ai': 'human judged AI (share)',
    'p_value_vs_chance': 'p vs chance', 'n_messages': 'messages (n)', 'r_squared': 'R²',
    'share_with_promise': 'share with a promise word', 'mean_sent': 'mean sent (points)',
    'sd_sent': 'SD sent (points)', 'mean_returned': 'mean returned (points)',
}


def _display(frame: pd.DataFrame, names: dict | None = None) -> pd.DataFrame:
    """frame with readable headers: :data:`DISPLAY_NAMES` (then ``names``), else underscores as spaces."""
    names = {**DISPLAY_NAMES, **(names or {})}
    return frame.rename(columns={c: names.get(c, str(c).replace('_', ' ')) for c in frame.columns})


def _table(frame: pd.DataFrame) -> str:
    # 4 significant digits, but no exponent for log-likelihoods and AICs in the tens of thousands
    return frame.to_html(index=False, float_format=lambda x: f'{x:.1f}' if 1e3 <= abs(x) < 1e9 else f'{x:.4g}',
                         na_rep='', border=0, classes='t', escape=True)


class _Page:
    """Collects HTML sections in order; every table is also written as ``out_dir/<name>.csv``."""

    def __init__(self, title, out_dir: Path | None = None):
        self.title = title
        self.out_dir = out_dir
        self.parts = []
        self.warnings = []
        self.tables = []

    def heading(self, text):
        self.parts.append(f'<h2>{html.escape(text)}</h2>')

    def text(self, text):
        self.parts.append(f'<p>{html.escape(text)}</p>')

    def warning(self, text):
        """A withheld statistic: shown where it would have been, listed at the top, raised as a warning."""
        self.warnings.append(text)
        self.parts.append(f'<p class="warning"><strong>Withheld:</strong> {html.escape(text)}</p>')
        warnings.warn(text, WithheldStatistic, stacklevel=3)

    def table(self, caption, frame, name: str | None = None, names: dict | None = None, csv_frame=None):
        """Show ``frame`` under ``caption`` with readable headers; write it (snake_case; or ``csv_frame``, a
        fuller version of it) as ``name``.csv."""
        link = ''
        if name and self.out_dir is not None:
            (frame if csv_frame is None else csv_frame).to_csv(self.out_dir / f'{name}.csv', index=False)
            self.tables.append(f'{name}.csv')
            link = f' <small>(<a href="{html.escape(name)}.csv">{html.escape(name)}.csv</a>)</small>'
        self.parts.append(f'<h3>{html.escape(caption)}{link}</h3>' + _table(_display(frame, names)))

    def placeholder(self) -> int:
        """Reserve the current position for a section that is computed later (:meth:`fill`)."""
        self.parts.append('')
        return len(self.parts) - 1

    def fill(self, slot: int, write) -> None:
        """Run ``write()`` (e.g. ``lambda: page.table(...)``) and move what it added to ``slot``."""
        before = len(self.parts)
        write()
        added = self.parts[before:]
        del self.parts[before:]
        self.parts[slot] = '\n'.join(added)

    def figure(self, filename, alt):
        """``filename`` is the PNG (300 dpi); the SVG beside it is linked."""
        svg = str(Path(filename).with_suffix('.svg'))
        self.parts.append(f'<p><a href="{html.escape(svg)}"><img src="{html.escape(filename)}" '
                          f'alt="{html.escape(alt)}" style="max-width:800px;width:100%"></a><br>'
                          f'<small>{html.escape(alt)}: <a href="{html.escape(svg)}">SVG</a>, '
                          f'<a href="{html.escape(filename)}">PNG 300 dpi</a></small></p>')

    def render(self) -> str:
        style = ('body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}'
                 'table.t{border-collapse:collapse;font-size:13px;margin-bottom:1em}'
                 'table.t td,table.t th{border:1px solid #ccc;padding:2px 6px;text-align:right}'
                 'table.t th{background:#f3f3f3}'
                 'h2{border-bottom:1px solid #999;margin-top:2em}.warning{color:#a00}')
        summary = ''
        if self.warnings:
            items = ''.join(f'<li>{html.escape(w)}</li>' for w in self.warnings)
            summary = (f'<div class="warning"><h2>Warnings: {len(self.warnings)} statistic(s) withheld</h2>'
                       f'<ul>{items}</ul></div>')
        return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(self.title)}</title>'
                f'<style>{style}</style></head><body><h1>{html.escape(self.title)}</h1>' + summary
                + '\n'.join(self.parts) + '</body></html>')


def _free_cores() -> float:
    """Cores not busy now: core count minus the 1-minute load average (0 where the load is unknown)."""
    try:
        return (os.cpu_count() or 1) - os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def _records(frame: pd.DataFrame | None, columns=None) -> list:
    """JSON-ready rows: numpy scalars as Python numbers, NaN as null."""
    if frame is None or frame.empty:
        return []
    frame = frame[[c for c in columns if c in frame]] if columns else frame
    rows = []
    for row in frame.to_dict('records'):
        rows.append({k: _json_value(v) for k, v in row.items()})
    return rows


def _json_value(value):
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if value is None or (isinstance(value, str) is False and pd.isna(value)):
        return None
    return value


RESULTS_VERSION = 1


def _selectors_to_fit(sample: pd.DataFrame, selectors: str) -> tuple[pd.DataFrame, str]:
    """The rows of the selectors whose choices the estimates use, and which ('human', 'ai' or 'all')."""
    if selectors not in ('auto', 'human', 'ai', 'all'):
        raise ValueError(f"selectors must be 'auto', 'human', 'ai' or 'all', got {selectors!r}")
    kinds = set(sample['selector_kind'])
    if selectors == 'auto':
        selectors = 'human' if len(kinds) > 1 else 'all'
    if selectors == 'all':
        return sample, 'all'
    if selectors not in kinds:
        raise ExportError(f'--selectors {selectors}: the export has no {selectors} selectors '
                          f'(selector_kind: {", ".join(sorted(kinds))})')
    return sample[sample['selector_kind'] == selectors], selectors


def q0_sensitivity(trials, model_fits: dict, n_starts: int = 5, seed: int = 0, min_selectors: int = 1) -> pd.DataFrame:
    """Rescorla–Wagner per treatment with q0 fixed at 1/3 (the fit already in ``model_fits``), from the data and
    free: one row per rule × treatment × parameter (``q0`` = 'fixed 1/3', 'data', 'free'; then the columns of
    :func:`analysis.learning_models.fit_by_treatment`'s estimates and its ``log_lik``).

    The two refits start from the fixed-q0 estimates of their treatment (with q0 = 1/3 for the free one, so its
    likelihood cannot end below the fixed fit's) and from the declared init, without random starts: q0 moves
    the optimum only a little from the fixed fit's, and two starts instead of ``n_starts`` keep the report fast."""
    fixed = model_fits.get(('rescorla_wagner', 'per_treatment'))
    if fixed is None:
        fixed = learning_models.fit_by_treatment(learning_models.RescorlaWagner(), trials, n_starts=n_starts,
                                                 seed=seed, min_selectors=min_selectors)
    warm = {t: dict(zip(part['parameter'], part['estimate'])) | {'q0': 1 / 3}
            for t, part in fixed[0].groupby('treatment')}
    rows = []
    for rule, q0 in (('fixed 1/3', None), ('data', 'data'), ('free', 'free')):
        if q0 is None:
            estimates, fits = fixed
        else:
            estimates, fits = learning_models.fit_by_treatment(learning_models.RescorlaWagner(q0=q0), trials,
                                                               n_starts=min(n_starts, 1), seed=seed,
                                                               min_selectors=min_selectors, warm_starts=warm)
        log_lik = fits.set_index('treatment')['log_lik']
        rows.append(estimates.assign(q0=rule, log_lik=estimates['treatment'].map(log_lik)))
    table = pd.concat(rows, ignore_index=True)
    return table[['q0', 'treatment', 'parameter', 'estimate', 'se', 'ci_low', 'ci_high', 'at_bound', 'n_selectors',
                  'log_lik']]


def build_report(export, out_dir, candidates=None, ai_calls=None, n_boot: int = 1000, curve_boot: int = 200, mixed: str = 'auto',
                 per_selector: bool = False, n_starts: int = 5, seed: int = 0,
                 progress: bool = True, timings: dict | None = None, k_rounds: int = 3,
                 curve_perm: int = 199, selectors: str = 'auto') -> Path:
    """Analyse an export and write ``out_dir/report.html``, its figures (SVG + 300-dpi PNG), one CSV per
    table and ``results.json`` (headline estimates; keys in docs/analysis.md, "Report outputs"); return the
    HTML path.

    Parameters
    ----------
    export : decisions export (partner_selection) or trust_game export.
    candidates : optional candidates export (messages; returns per candidate).
    ai_calls : optional AI-calls export: the AI agents' fallback shares, reasons, latency and tokens.
    n_boot : bootstrap replicates for the AI-choice share CIs; curve_boot: for the learning-curve CIs.
    mixed : 'auto' (mixed logit only up to :data:`MIXED_AUTO_LIMIT` choices), 'on' or 'off'.
    per_selector : also fit the learning models per selector.
    k_rounds : rounds in the early and the late window of the treatment contrasts.
    curve_perm : selector permutations of the flat-versus-learning test per treatment.
    timings : a dict to fill with seconds per report step (the benchmark reads it).
    selectors : whose choices every estimate uses: 'auto' (default) = the human selectors where human and AI
        selectors (session config num_ai_selectors) share the export, else everyone; 'human', 'ai', or
        'all' (both kinds pooled). The table split by selector kind always shows both.
    """
    from tqdm.auto import tqdm

    timings = {} if timings is None else timings
    clock = [time.perf_counter()]
    started = time.time()

    def mark(name):
        now = time.perf_counter()
        timings[name] = timings.get(name, 0.0) + now - clock[0]
        clock[0] = now

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    kind, data = read_export(export)
    if kind == 'candidates':
        raise ExportError(f'{export}: this is the candidates export; give the decisions export as EXPORT '
                          'and this file with --candidates')
    if kind == 'ai_calls':
        raise ExportError(f'{export}: this is the AI-calls export; give the decisions export as EXPORT '
                          'and this file with --ai-calls')
    if kind == 'trust_game':
        return _trust_game_report(data, out_dir, export, n_boot, seed, ai_calls)
    cand_data = load_candidates(candidates) if candidates else None
    mark('read export')
    page = _Page('Partner selection: analysis report', out_dir)
    steps = tqdm(total=7, desc='report', unit='step', disable=not progress)

    def step(description):
        steps.set_description(f'report: {description}')

    results = dict(version=RESULTS_VERSION, export=str(export), candidates=str(candidates) if candidates else None,
                   n_rows=int(len(data)), n_selectors=int(data['selector_id'].nunique()),
                   n_groups=int(data['group_key'].nunique()), seed=seed, k_rounds=k_rounds)

    step('data')
    page.heading('Data')
    page.text(f'Decisions export: {export} ({len(data)} selector × round rows, '
              f'{data["selector_id"].nunique()} selectors, {data["group_key"].nunique()} groups).'
              + (f' Candidates export: {candidates}.' if candidates else ''))
    exclusions = exclusion_summary(data)
    page.table('Decisions kept and excluded from the fits (no choice = timed out or empty chose_ai)', exclusions,
               'exclusions')
    sample = fit_sample(data)
    both_kinds = fit_sample(data) if sample['selector_kind'].nunique() > 1 else None
    sample, selector_note = _selectors_to_fit(sample, selectors)
    results['selectors'] = selector_note
    if selector_note != 'all':
        page.text(f'Estimates below use the {selector_note} selectors only (option --selectors); '
                  'the table by selector kind shows both.')
    per_treatment = sample[sample['chose_ai'].notna()].groupby('treatment')['selector_id'].nunique()
    small = {t for t, n in per_treatment.items() if n < MIN_SELECTORS}

    def few(what):
        names = ', '.join(f'{t} ({per_treatment[t]} selector{"s" if per_treatment[t] != 1 else ""})'
                          for t in sorted(small))
        return f'{what}: fewer than {MIN_SELECTORS} selectors with a choice in {names}.'

    if small:
        page.text(f'Standard errors, CIs and tests need at least {MIN_SELECTORS} selectors (clusters) per '
                  'treatment; below that they are withheld and the estimates are descriptive only.')
    steps.update()
    mark('data')

    # glmer runs in R (a subprocess): with a core free, start it now, so it works while Python fits the learning
    # curves and models on the other core; its table goes to the GEE section when done. On a machine already
    # busy the two only slow each other down (measured: 45 s in parallel against 40 s in turn at load 4-7 on
    # 2 cores), so then it runs in the GEE section, in turn.
    from concurrent.futures import Future, ThreadPoolExecutor

    n_choices = int(sample['chose_ai'].notna().sum())
    wants_mixed = not small and (mixed == 'on' or (mixed == 'auto' and n_choices <= MIXED_AUTO_LIMIT))

    def run_mixed():
        begun = time.perf_counter()
        try:
            return regression.mixed_logit(sample, seed=seed)
        finally:
            timings['mixed logit in R (background or not)'] = time.perf_counter() - begun

    pool = background_mixed = None
    if wants_mixed and _free_cores() >= 1:
        pool = ThreadPoolExecutor(max_workers=1)
        background_mixed = pool.submit(run_mixed)

    step('AI-choice share')
    page.heading('AI choice by round')
    shares = curves.ai_choice_share(sample, n_boot=n_boot, seed=seed)
    steps.update()
    mark('AI-choice share')

    step('learning curves')
    params, fits = learning_curve.fit_learning_curves(sample, n_boot=curve_boot, seed=seed, progress=progress,
                                                      n_perm=curve_perm, min_selectors=MIN_SELECTORS)
    windows = curves.early_late_shares(sample, k_rounds=k_rounds, min_selectors=MIN_SELECTORS)
    contrasts = learning_curve.compare_treatments(sample, fits, params, k_rounds=k_rounds,
                                                  min_selectors=MIN_SELECTORS)
    plot_choice_share(_withhold(shares, ['ci_low', 'ci_high'], small), fits, params, out_dir / 'ai_choice_by_round')
    page.figure('ai_choice_by_round.png', 'AI-choice share by round and treatment')
    if small:
        page.warning(few('bootstrap CIs of the AI-choice share and the comparison with chance'))
    page.table(f'Share choosing an AI candidate (selector-clustered bootstrap CIs, {n_boot} replicates)',
               _withhold(shares, ['ci_low', 'ci_high', 'above_chance'], small), 'ai_choice_share')
    if both_kinds is not None:
        # Sessions with AI selectors beside people (num_ai_selectors): how each kind of selector chose.
        page.text('Human and AI selectors (session config num_ai_selectors) chose among the same cards; this '
                  'table splits them (descriptive).')
        page.table('Share choosing an AI candidate by selector kind (round "all": every round)',
                   curves.ai_choice_share_by_selector_kind(both_kinds), 'ai_choice_by_selector_kind')
    page.text('Flat versus learning, per treatment: the flat model p(t) = p against the exponential curve '
              'p(t) = p_inf − (p_inf − p0)·exp(−k(t−1)), both by maximum likelihood. Under a flat series k and '
              'p_inf are not identified and the likelihood-ratio statistic has no chi-square reference, so the '
              f'LR p is from {curve_perm} selector permutations (each selector\'s choices shuffled across its '
              'rounds). The exponential curve is selected when its BIC is lower and that p is below 0.05; the '
              'figure draws the selected curve.')
    if small:
        page.warning(few('learning-curve SEs, CIs and the flat-versus-learning test (selection by BIC alone)'))
    page.table('Flat versus learning: model selection per treatment', fits, 'curve_selection',
               names={'delta_bic': 'ΔBIC (exponential − flat)', 'log_lik': 'log-likelihood (exponential)'})
    shown = params[params['identified'].astype(bool)]
    page.text('Curve parameters (se: selector-clustered sandwich; se_model: inverse Hessian, choices treated as '
              f'independent; CIs from {curve_boot} selector-clustered bootstrap replicates). Where the flat model '
              'is selected, p_inf and k are not identified and not shown (curve_parameters.csv keeps them, '
              'flagged identified = False).')
    inference = ['se', 'se_model', 'ci_low', 'ci_high']
    page.table('Learning-curve parameters', _withhold(shown, inference, small), 'curve_parameters',
               csv_frame=_withhold(params, inference, small))
    page.table(f'AI-choice share in the first and last {k_rounds} rounds (selector-clustered SEs; p against '
               'chance, for the change against 0)', windows, 'early_late_shares')
    if not contrasts.empty:
        involved = contrasts['contrast'].map(lambda c: bool(set(c.split(' - ')) & small))
        if involved.any():
            page.warning(few('Treatment differences involving these treatments'))
        page.table('Treatment differences on identified quantities (other − reference; selector-clustered SEs, '
                   'Wald CIs; the plateau only where both treatments select the exponential curve)', contrasts,
                   'treatment_contrasts')
    results['treatments'] = {}
    for fit in fits.itertuples():
        name = fit.treatment
        curve = {r['parameter']: {k: _json_value(r[k]) for k in ('estimate', 'se', 'ci_low', 'ci_high', 'identified')}
                 for r in params[params['treatment'] == name].to_dict('records')}
        mine = windows[windows['treatment'] == name].set_index('quantity')
        results['treatments'][name] = dict(
            n_selectors=int(fit.n_selectors), n_choices=int(fit.n_choices), selected_model=fit.selected_model,
            p_flat=_json_value(fit.p_flat), p_flat_se=_json_value(fit.p_flat_se), lr_stat=_json_value(fit.lr_stat),
            lr_p_value=_json_value(fit.lr_p_value), delta_bic=_json_value(fit.delta_bic), curve=curve,
            **{q: {k: _json_value(mine.loc[q, k]) for k in ('rounds', 'estimate', 'se', 'ci_low', 'ci_high',
                                                           'p_value')}
               for q in mine.index})
    results['contrasts'] = _records(contrasts, ['contrast', 'quantity', 'rounds', 'difference', 'se', 'ci_low',
                                                'ci_high', 'p_value', 'note'])
    steps.update()
    mark('learning curves')

    step('GEE')
    page.heading('Logistic regressions: chose_ai ~ round0 × treatment')
    results['regressions'] = {}
    if small:
        page.warning(few('GEE and mixed logit (their SEs rest on the selector clusters of every treatment)'))
    else:
        gee = regression.gee_logit(sample)
        page.table('GEE (selector clusters, exchangeable, robust SEs)', gee, 'gee')
        results['regressions']['gee'] = _records(gee, ['term', 'estimate', 'se', 'ci_low', 'ci_high', 'p_value'])
    mark('GEE')
    mixed_job = background_mixed
    if small:
        pass  # withheld above, with the GEE
    elif wants_mixed:
        mixed_slot = page.placeholder()
        if mixed_job is None:  # no core was free at the start: run it here, in turn
            mixed_job = Future()
            step('mixed logit (R)')
            try:
                mixed_job.set_result(run_mixed())
            except Exception as exc:  # handed on below, as the background job would
                mixed_job.set_exception(exc)
            mark('mixed logit')
    else:
        page.text(f'Mixed logit skipped ({n_choices} choices > {MIXED_AUTO_LIMIT}; it takes minutes at this size). '
                  'Run with --mixed on to include it.')
    steps.update()

    step('learning models')
    page.heading('Learning models')
    trials = learning_models.prepare_trials(sample)
    comparison, model_fits = learning_models.compare_models(trials, per_selector=per_selector, n_starts=n_starts,
                                                            seed=seed, progress=progress,
                                                            min_selectors=MIN_SELECTORS)
    plot_model_comparison(comparison, out_dir / 'model_comparison')
    page.figure('model_comparison.png', 'model comparison (ΔAIC, ΔBIC; best = 0)')
    page.table('Model comparison (AIC/BIC; lower is better; per_treatment = one parameter set per treatment)',
               comparison, 'model_comparison')
    estimates = pd.concat([v[0] for (name, fit), v in model_fits.items() if fit == 'per_treatment'], ignore_index=True)
    fit_stats = pd.concat([v[1] for (name, fit), v in model_fits.items() if fit == 'per_treatment'], ignore_index=True)
    page.text('Each treatment is fitted on its own (never hidden and disclosed pooled). The identity bias is not '
              'estimated where no badge is shown (hidden): it has no row there. se: selector-clustered sandwich; '
              'CI: Wald 95%. An estimate on a bound of its range (at_bound) has no se: the asymptotics behind it '
              'do not hold there.')
    if small:
        page.warning(few('learning-model SEs and CIs'))
    page.table('Learning-model estimates per treatment', estimates, 'learning_models_by_treatment')
    page.table('Learning-model fits per treatment (at_bound: parameters on a bound)', fit_stats,
               'learning_models_fit_by_treatment')
    best = comparison.sort_values('aic').iloc[0] if len(comparison) else None
    results['learning_models'] = dict(
        best_by_aic=None if best is None else f'{best["model"]} ({best["fit"]})',
        comparison=_records(comparison, ['model', 'fit', 'n_params', 'log_lik', 'aic', 'bic', 'delta_aic',
                                         'delta_bic']),
        estimates=_records(estimates, ['model', 'treatment', 'parameter', 'estimate', 'se', 'ci_low', 'ci_high',
                                       'at_bound']))
    q0_table = q0_sensitivity(trials, model_fits, n_starts=n_starts, seed=seed, min_selectors=MIN_SELECTORS)
    page.text('What selectors expect before any return (the initial value q0) is not observed; a wrong one is '
              'absorbed by the other parameters, the identity bias among them. The estimates above fix q0 at 1/3 '
              '(break-even); below, Rescorla–Wagner refitted with q0 from the data (the mean return share of the '
              'first choice, per treatment) and with q0 estimated. If the identity bias moves between these rows, '
              'it depends on what selectors are assumed to expect at the start: report the range and lean on '
              'the model-free contrasts above (docs/coverage.md, "Initial value q0").')
    page.table('Rescorla–Wagner per treatment by initial value q0', q0_table, 'learning_models_q0_sensitivity')
    results['learning_models']['q0_sensitivity'] = _records(q0_table, ['q0', 'treatment', 'parameter', 'estimate',
                                                                       'se', 'ci_low', 'ci_high', 'at_bound'])
    for model in (learning_models.RescorlaWagner(), learning_models.EWA()):
        page.table(f'Parameters of {model.name}', model.describe(), f'parameters_{model.name}')
        table = model_fits.get((model.name, 'per_selector'))
        if table is not None:
            page.table(f'{model.name} per selector: estimates by treatment and how many selectors sit on a bound',
                       learning_models.summarize_per_selector(table, model), f'per_selector_{model.name}')
    steps.update()
    mark('learning models')

    if mixed_job is not None:
        step('mixed logit (waiting for R)')
        try:
            mixed_table = mixed_job.result()
        except regression.GLMMUnavailable as exc:
            page.fill(mixed_slot, lambda: page.warning(f'Mixed logit: {exc}'))
        else:
            page.fill(mixed_slot, lambda: page.table(
                'Mixed logit, random intercept and round slope by selector, random intercept by group (lme4 glmer, Laplace; Wald SEs)', mixed_table,
                'mixed_logit'))
            results['regressions']['mixed_logit'] = _records(mixed_table, ['term', 'estimate', 'se', 'ci_low',
                                                                           'ci_high', 'p_value'])
        finally:
            if pool is not None:
                pool.shutdown()
        mark('waiting for mixed logit')

    step('candidates')
    page.heading('Candidates')
    # A timed-out return is 0 by rule, not the candidate's decision: out of the candidate statistics
    # (the learning models keep it, since it is what the selector got).
    decided = sample[sample['return_timed_out'] != 1]
    page.text(f'{len(sample) - len(decided)} returns that timed out are left out of the candidate statistics.')
    by_kind = cand.returns_by_kind(decided)
    page.table('Returns by kind (points returned to each choosing selector)', by_kind, 'returns_by_kind')
    n_selectors = int(sample['selector_id'].nunique())
    if n_selectors < MIN_SELECTORS:
        page.warning(f"AI vs human returns: Cohen's d CI and Welch test: {n_selectors} selector(s) in the file, "
                     f'fewer than {MIN_SELECTORS}.')
        difference = cand.kind_difference(decided).drop(columns=['d_ci_low', 'd_ci_high', 'welch_t', 'p_value'],
                                                        errors='ignore')
        page.table("AI vs human returns: Cohen's d (descriptive)", difference, 'returns_ai_vs_human')
    else:
        difference = cand.kind_difference(decided)
        page.table("AI vs human returns: Cohen's d, Welch test", difference, 'returns_ai_vs_human')
    results['returns'] = dict(by_kind=_records(by_kind), ai_vs_human=_records(difference))
    plot_returns_by_kind(decided, out_dir / 'returns_by_kind')
    page.figure('returns_by_kind.png', 'returns by kind')
    if cand_data is not None:
        chosen = cand_data['times_chosen'] > 0
        page.text(f'Candidates export: {int((~cand.written_messages(cand_data)).sum())} candidate-rounds without '
                  f'a written message (inactive or timed out) and '
                  f'{int((chosen & ~cand.decided_returns(cand_data)).sum())} chosen candidate-rounds whose returns '
                  'timed out are left out of the message statistics below.')
        page.table('Message length by kind (characters)', cand.message_length_by_kind(cand_data),
                   'message_length_by_kind', names={'mean': 'mean (characters)', 'sd': 'SD (characters)',
                                                    'median': 'median (characters)', 'min': 'min (characters)',
                                                    'max': 'max (characters)'})
        n_candidates = int(cand_data.groupby(['group_key', 'candidate_id']).ngroups) if 'group_key' in cand_data \
            else int(cand_data['candidate_id'].nunique())
        if n_candidates < MIN_CANDIDATES:
            page.warning(f'Message → return regressions (SEs clustered by candidate): {n_candidates} candidates, '
                         f'fewer than {MIN_CANDIDATES}.')
        else:
            page.table('Does the message predict the return? (return share; OLS SEs clustered by candidate)',
                       cand.message_return_association(cand_data), 'message_return')
    steps.update()
    mark('candidates')
    step('beliefs')
    beliefs = cand.belief_accuracy(data)
    if not beliefs.empty:
        page.heading('Beliefs: who is an AI?')
        page.table('Belief accuracy and misattribution (hidden / false_label)', beliefs, 'beliefs')
    results['beliefs'] = _records(beliefs)
    steps.update()
    steps.close()
    mark('beliefs')
    results['ai_calls'] = _ai_calls_section(page, ai_calls)
    page.text(f'Report built in {time.time() - started:.1f} s. Tables as CSV: {", ".join(page.tables)}; headline '
              'estimates: results.json.')
    results['withheld'] = list(page.warnings)
    results['tables'] = list(page.tables)
    results['seconds'] = {k: round(v, 3) for k, v in timings.items()}
    (out_dir / 'results.json').write_text(json.dumps(results, indent=1, allow_nan=False, ensure_ascii=False),
                                          encoding='utf-8')
    path = out_dir / 'report.html'
    path.write_text(page.render(), encoding='utf-8')
    return path


def _ai_calls_section(page, ai_calls) -> dict | None:
    """The AI agents' calls (analysis.ai_calls), if an AI-calls export was given; its results.json entry."""
    if not ai_calls:
        return None
    calls = load_ai_calls(ai_calls)
    page.heading('AI calls')
    page.text(f'AI-calls export: {ai_calls} ({len(calls)} calls). A fallback is a decision the configured '
              'fallback policy made instead of the agent (timeout, unreachable endpoint, a reply outside the '
              f'schema); CIs are clustered by agent and withheld with fewer than {aic.MIN_AGENTS} agents.')
    summary = aic.call_summary(calls)
    page.table('Calls, fallbacks, latency and tokens by decision and policy', summary, 'ai_calls',
               names={'latency_ms_median': 'median latency (ms)', 'latency_ms_p95': 'p95 latency (ms)',
                      'prompt_tokens_mean': 'mean prompt tokens', 'completion_tokens_mean': 'mean completion tokens'})
    reasons = aic.fallback_reasons(calls)
    if not reasons.empty:
        page.table('Why calls fell back', reasons, 'ai_call_fallback_reasons')
    return dict(file=str(ai_calls), summary=_records(summary), fallback_reasons=_records(reasons))


def _trust_game_report(data: pd.DataFrame, out_dir: Path, export, n_boot: int, seed: int, ai_calls=None) -> Path:
    """Assigned-partner baseline: amount sent by round, identity treatment and true partner kind."""
    sample = data[~data['excluded_from_fit']]
    page = _Page('Trust game: analysis report', out_dir)
    page.text(f'Trust-game export: {export} ({len(data)} rows, {data["trustor_id"].nunique()} trustors; '
              f'{int(data["excluded_from_fit"].sum())} send timeouts excluded).')
    table = (sample.groupby(['identity', 'partner_kind', 'round'])
             .agg(n=('amount_sent', 'size'), mean_sent=('amount_sent', 'mean'), sd_sent=('amount_sent', 'std'),
                  mean_returned=('amount_returned', 'mean'))
             .reset_index())
    fig, ax = plt.subplots(figsize=(7, 4))
    groups = list(table.groupby(['identity', 'partner_kind']))
    offsets = np.linspace(-0.12, 0.12, len(groups)) if len(groups) > 1 else [0.0]
    for offset, ((identity, kind), part) in zip(offsets, groups):
        ax.plot(part['round'] + offset, part['mean_sent'], marker='o', label=f'{identity}, {kind} trustee')
    _integer_rounds(ax)
    ax.set_xlabel('round')
    ax.set_ylabel('mean amount sent (points)')
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, out_dir / 'trust_sent_by_round')
    page.figure('trust_sent_by_round.png', 'amount sent by round')
    page.table('Amount sent and returned by identity, partner kind and round', table, 'trust_sent_by_round')
    # A timed-out return is 0 by rule, not the trustee's decision.
    returns = sample[sample['return_timed_out'] != 1].rename(columns={'partner_kind': 'kind'})
    page.text(f'{int((sample["return_timed_out"] == 1).sum())} returns that timed out are left out of the '
              'returns by trustee kind.')
    returns = returns.assign(return_share=returns['amount_returned'] / returns['amount_received'].replace(0, np.nan))
    page.table('Returns by trustee kind', cand.returns_by_kind(returns, kind='kind'), 'trust_returns_by_kind')
    _ai_calls_section(page, ai_calls)
    path = out_dir / 'report.html'
    path.write_text(page.render(), encoding='utf-8')
    return path
