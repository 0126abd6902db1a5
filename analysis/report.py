"""The report: runs every analysis on an export and writes PNG figures and one HTML page.

``build_report(export, out_dir, candidates=None, ...)`` is what ``python -m analysis report`` calls.
Figures use matplotlib's Agg backend (no display needed).
"""
from __future__ import annotations

import html
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
from .io import ExportError, exclusion_summary, fit_sample, load_candidates, read_export  # noqa: E402

__all__ = ['build_report', 'plot_choice_share', 'plot_returns_by_kind', 'plot_model_comparison',
           'MIXED_AUTO_LIMIT', 'MIN_SELECTORS', 'WithheldStatistic']

# Above this many choices the variational mixed model takes minutes (26 s at 19,500); "auto" then skips it.
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


def plot_choice_share(shares: pd.DataFrame, curve_params: pd.DataFrame | None, path) -> None:
    """AI-choice share by round with CIs, chance level (dashed) and fitted curves, per treatment."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, part in shares.groupby('treatment'):
        color = _COLORS.get(name)
        ax.errorbar(part['round'], part['share_ai'],
                    yerr=[part['share_ai'] - part['ci_low'], part['ci_high'] - part['share_ai']],
                    fmt='o', color=color, capsize=3, label=f'{name} (observed, 95% CI)')
        ax.plot(part['round'], part['chance'], linestyle=':', color=color, alpha=0.7)
        if curve_params is not None and not curve_params.empty:
            estimate = curve_params[curve_params['treatment'] == name].set_index('parameter')['estimate']
            if len(estimate) == 3:
                t = np.linspace(part['round'].min(), part['round'].max(), 200)
                ax.plot(t, learning_curve.curve_probability(t, estimate['p0'], estimate['p_inf'], estimate['k']),
                        color=color, label=f'{name} (fitted curve)')
    ax.set_xlabel('round')
    ax.set_ylabel('share of selectors choosing an AI candidate')
    ax.set_ylim(0, 1)
    ax.set_title('AI choice by round (dotted: chance = AI share of cards offered)')
    ax.legend(fontsize=7, loc='best')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_returns_by_kind(returns: pd.DataFrame, path, kind: str = 'chosen_kind', value: str = 'amount_returned') -> None:
    """Histogram of points returned, AI vs human candidates."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    data = returns[returns[value].notna()]
    top = max(1.0, float(data[value].max())) if len(data) else 1.0
    bins = np.arange(-0.5, top + 1.5, max(1.0, np.ceil(top / 30)))
    for name, color in (('ai', '#ff7f0e'), ('human', '#7f7f7f')):
        values = data.loc[data[kind] == name, value]
        if len(values):
            ax.hist(values, bins=bins, alpha=0.6, color=color, density=True,
                    label=f'{name}: mean {values.mean():.1f}, sd {values.std(ddof=1):.1f} (n={len(values)})')
    ax.set_xlabel('points returned to a selector')
    ax.set_ylabel('density')
    ax.set_title('Returns by candidate kind')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_model_comparison(table: pd.DataFrame, path) -> None:
    """ΔAIC and ΔBIC of each learning model (lower is better)."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    labels = table['model'] + ' (' + table['fit'] + ')'
    y = np.arange(len(table))
    ax.barh(y - 0.2, table['delta_aic'], height=0.4, label='ΔAIC')
    ax.barh(y + 0.2, table['delta_bic'], height=0.4, label='ΔBIC')
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel('difference to the best model (lower is better)')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _withhold(frame: pd.DataFrame, columns, small: set, treatment: str = 'treatment') -> pd.DataFrame:
    """frame with ``columns`` blanked (NaN) in the rows of the treatments in ``small``."""
    frame = frame.copy()
    rows = frame[treatment].isin(small)
    for column in columns:
        if column in frame:
            frame[column] = frame[column].astype(object) if frame[column].dtype == bool else frame[column]
            frame.loc[rows, column] = np.nan
    return frame


def _table(frame: pd.DataFrame) -> str:
    # 4 significant digits, but no exponent for log-likelihoods and AICs in the tens of thousands
    return frame.to_html(index=False, float_format=lambda x: f'{x:.1f}' if 1e3 <= abs(x) < 1e9 else f'{x:.4g}',
                         na_rep='', border=0, classes='t', escape=True)


class _Page:
    """Collects HTML sections in order."""

    def __init__(self, title):
        self.title = title
        self.parts = []
        self.warnings = []

    def heading(self, text):
        self.parts.append(f'<h2>{html.escape(text)}</h2>')

    def text(self, text):
        self.parts.append(f'<p>{html.escape(text)}</p>')

    def warning(self, text):
        """A withheld statistic: shown where it would have been, listed at the top, raised as a warning."""
        self.warnings.append(text)
        self.parts.append(f'<p class="warning"><strong>Withheld:</strong> {html.escape(text)}</p>')
        warnings.warn(text, WithheldStatistic, stacklevel=3)

    def table(self, caption, frame):
        self.parts.append(f'<h3>{html.escape(caption)}</h3>' + _table(frame))

    def figure(self, filename, alt):
        self.parts.append(f'<p><img src="{html.escape(filename)}" alt="{html.escape(alt)}"></p>')

    def render(self) -> str:
        style = ('body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}'
                 'table.t{border-collapse:collapse;font-size:13px;margin-bottom:1em}'
                 'table.t td,table.t th{border:1px solid #ccc;padding:2px 6px;text-align:right}'
                 'h2{border-bottom:1px solid #999;margin-top:2em}.warning{color:#a00}')
        summary = ''
        if self.warnings:
            items = ''.join(f'<li>{html.escape(w)}</li>' for w in self.warnings)
            summary = (f'<div class="warning"><h2>Warnings: {len(self.warnings)} statistic(s) withheld</h2>'
                       f'<ul>{items}</ul></div>')
        return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(self.title)}</title>'
                f'<style>{style}</style></head><body><h1>{html.escape(self.title)}</h1>' + summary
                + '\n'.join(self.parts) + '</body></html>')


def build_report(export, out_dir, candidates=None, n_boot: int = 1000, curve_boot: int = 200, mixed: str = 'auto',
                 per_selector: bool = False, n_starts: int = 5, seed: int = 0,
                 progress: bool = True) -> Path:
    """Analyse an export and write ``out_dir/report.html`` with its PNG figures; return the HTML path.

    Parameters
    ----------
    export : decisions export (partner_selection) or trust_game export.
    candidates : optional candidates export (messages; returns per candidate).
    n_boot : bootstrap replicates for the AI-choice share CIs; curve_boot: for the learning-curve CIs.
    mixed : 'auto' (mixed logit only up to :data:`MIXED_AUTO_LIMIT` choices), 'on' or 'off'.
    per_selector : also fit the learning models per selector.
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    kind, data = read_export(export)
    if kind == 'candidates':
        raise ExportError(f'{export}: this is the candidates export; give the decisions export as EXPORT '
                          'and this file with --candidates')
    if kind == 'trust_game':
        return _trust_game_report(data, out_dir, export, n_boot, seed)
    cand_data = load_candidates(candidates) if candidates else None
    page = _Page('Partner selection: analysis report')
    started = time.time()
    steps = tqdm(total=7, desc='report', unit='step', disable=not progress)

    page.heading('Data')
    page.text(f'Decisions export: {export} ({len(data)} selector × round rows, '
              f'{data["selector_id"].nunique()} selectors, {data["group_key"].nunique()} groups).'
              + (f' Candidates export: {candidates}.' if candidates else ''))
    exclusions = exclusion_summary(data)
    page.table('Decisions kept and excluded from the fits (no choice = timed out or empty chose_ai)', exclusions)
    sample = fit_sample(data)
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

    page.heading('AI choice by round')
    shares = curves.ai_choice_share(sample, n_boot=n_boot, seed=seed)
    steps.update()
    params, fits = learning_curve.fit_learning_curves(sample, n_boot=curve_boot, seed=seed)
    differences = learning_curve.compare_learning_curves(sample, n_boot=curve_boot, seed=seed, params=params)
    plot_choice_share(_withhold(shares, ['ci_low', 'ci_high'], small), params, out_dir / 'ai_choice_by_round.png')
    page.figure('ai_choice_by_round.png', 'AI-choice share by round and treatment')
    if small:
        page.warning(few('bootstrap CIs of the AI-choice share and the comparison with chance'))
    page.table(f'Share choosing an AI candidate (selector-clustered bootstrap CIs, {n_boot} replicates)',
               _withhold(shares, ['ci_low', 'ci_high', 'above_chance'], small))
    page.text('Learning curve p(t) = p_inf − (p_inf − p0)·exp(−k(t−1)), maximum likelihood per treatment; '
              f'CIs from {curve_boot} selector-clustered bootstrap replicates; se: selector-clustered sandwich '
              '(se_model: inverse Hessian, choices treated as independent).')
    if small:
        page.warning(few('learning-curve SEs, CIs and the likelihood-ratio test against a flat curve'))
    page.table('Learning-curve parameters', _withhold(params, ['se', 'se_model', 'ci_low', 'ci_high'], small))
    page.table('Fit and likelihood-ratio test against a flat curve (df = 2)',
               _withhold(fits, ['lr_stat', 'lr_p_value'], small))
    if not differences.empty:
        involved = differences['contrast'].map(lambda c: bool(set(c.split(' - ')) & small))
        if involved.any():
            page.warning(few('Treatment differences in the curve parameters involving these treatments'))
        if not involved.all():
            page.table('Treatment differences in the curve parameters', differences[~involved])
    steps.update()

    page.heading('Logistic regressions: chose_ai ~ round0 × treatment')
    if small:
        page.warning(few('GEE and mixed logit (their SEs rest on the selector clusters of every treatment)'))
    else:
        gee = regression.gee_logit(sample)
        page.table('GEE (selector clusters, exchangeable, robust SEs)', gee)
    n_choices = int(sample['chose_ai'].notna().sum())
    if small:
        pass  # withheld above, with the GEE
    elif mixed == 'on' or (mixed == 'auto' and n_choices <= MIXED_AUTO_LIMIT):
        page.table('Mixed logit, random intercepts for selector and group (variational Bayes)',
                   regression.mixed_logit(sample, seed=seed))
    else:
        page.text(f'Mixed logit skipped ({n_choices} choices > {MIXED_AUTO_LIMIT}; it takes minutes at this size). '
                  'Run with --mixed on to include it.')
    steps.update()

    page.heading('Learning models')
    trials = learning_models.prepare_trials(sample)
    comparison, model_fits = learning_models.compare_models(trials, per_selector=per_selector, n_starts=n_starts,
                                                            seed=seed, progress=progress,
                                                            min_selectors=MIN_SELECTORS)
    plot_model_comparison(comparison, out_dir / 'model_comparison.png')
    page.figure('model_comparison.png', 'model comparison')
    page.table('Model comparison (AIC/BIC; lower is better; per_treatment = one parameter set per treatment)',
               comparison)
    estimates = pd.concat([v[0] for (name, fit), v in model_fits.items() if fit == 'per_treatment'], ignore_index=True)
    fit_stats = pd.concat([v[1] for (name, fit), v in model_fits.items() if fit == 'per_treatment'], ignore_index=True)
    estimates.to_csv(out_dir / 'learning_models_by_treatment.csv', index=False)
    fit_stats.to_csv(out_dir / 'learning_models_fit_by_treatment.csv', index=False)
    page.text('Each treatment is fitted on its own (never hidden and disclosed pooled). The identity bias is not '
              'estimated where no badge is shown (hidden): it has no row there. se: selector-clustered sandwich; '
              'CI: Wald 95%. An estimate on a bound of its range (at_bound) has no se: the asymptotics behind it '
              'do not hold there.')
    if small:
        page.warning(few('learning-model SEs and CIs'))
    page.table('Learning-model estimates per treatment', estimates)
    page.table('Learning-model fits per treatment (at_bound: parameters on a bound)', fit_stats)
    for model in (learning_models.RescorlaWagner(), learning_models.EWA()):
        page.table(f'Parameters of {model.name}', model.describe())
        table = model_fits.get((model.name, 'per_selector'))
        if table is not None:
            page.table(f'{model.name} per selector: estimates by treatment and how many selectors sit on a bound',
                       learning_models.summarize_per_selector(table, model))
    steps.update()

    page.heading('Candidates')
    # A timed-out return is 0 by rule, not the candidate's decision: out of the candidate statistics
    # (the learning models keep it, since it is what the selector got).
    decided = sample[sample['return_timed_out'] != 1]
    page.text(f'{len(sample) - len(decided)} returns that timed out are left out of the candidate statistics.')
    page.table('Returns by kind (points returned to each choosing selector)', cand.returns_by_kind(decided))
    n_selectors = int(sample['selector_id'].nunique())
    if n_selectors < MIN_SELECTORS:
        page.warning(f"AI vs human returns: Cohen's d CI and Welch test: {n_selectors} selector(s) in the file, "
                     f'fewer than {MIN_SELECTORS}.')
        page.table("AI vs human returns: Cohen's d (descriptive)",
                   cand.kind_difference(decided).drop(columns=['d_ci_low', 'd_ci_high', 'welch_t', 'p_value'],
                                                      errors='ignore'))
    else:
        page.table("AI vs human returns: Cohen's d, Welch test", cand.kind_difference(decided))
    plot_returns_by_kind(decided, out_dir / 'returns_by_kind.png')
    page.figure('returns_by_kind.png', 'returns by kind')
    if cand_data is not None:
        chosen = cand_data['times_chosen'] > 0
        page.text(f'Candidates export: {int((~cand.written_messages(cand_data)).sum())} candidate-rounds without '
                  f'a written message (inactive or timed out) and '
                  f'{int((chosen & ~cand.decided_returns(cand_data)).sum())} chosen candidate-rounds whose returns '
                  'timed out are left out of the message statistics below.')
        page.table('Message length by kind (characters)', cand.message_length_by_kind(cand_data))
        n_candidates = int(cand_data.groupby(['group_key', 'candidate_id']).ngroups) if 'group_key' in cand_data \
            else int(cand_data['candidate_id'].nunique())
        if n_candidates < MIN_CANDIDATES:
            page.warning(f'Message → return regressions (SEs clustered by candidate): {n_candidates} candidates, '
                         f'fewer than {MIN_CANDIDATES}.')
        else:
            page.table('Does the message predict the return? (return share; OLS SEs clustered by candidate)',
                       cand.message_return_association(cand_data))
    steps.update()
    beliefs = cand.belief_accuracy(data)
    if not beliefs.empty:
        page.heading('Beliefs: who is an AI?')
        page.table('Belief accuracy and misattribution (hidden / false_label)', beliefs)
    steps.update()
    steps.close()
    page.text(f'Report built in {time.time() - started:.1f} s.')
    path = out_dir / 'report.html'
    path.write_text(page.render(), encoding='utf-8')
    return path


def _trust_game_report(data: pd.DataFrame, out_dir: Path, export, n_boot: int, seed: int) -> Path:
    """Assigned-partner baseline: amount sent by round, identity treatment and true partner kind."""
    sample = data[~data['excluded_from_fit']]
    page = _Page('Trust game: analysis report')
    page.text(f'Trust-game export: {export} ({len(data)} rows, {data["trustor_id"].nunique()} trustors; '
              f'{int(data["excluded_from_fit"].sum())} send timeouts excluded).')
    table = (sample.groupby(['identity', 'partner_kind', 'round'])
             .agg(n=('amount_sent', 'size'), mean_sent=('amount_sent', 'mean'), sd_sent=('amount_sent', 'std'),
                  mean_returned=('amount_returned', 'mean'))
             .reset_index())
    fig, ax = plt.subplots(figsize=(7, 4))
    for (identity, kind), part in table.groupby(['identity', 'partner_kind']):
        ax.plot(part['round'], part['mean_sent'], marker='o', label=f'{identity}, {kind} trustee')
    ax.set_xlabel('round')
    ax.set_ylabel('mean amount sent')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / 'trust_sent_by_round.png', dpi=110)
    plt.close(fig)
    page.figure('trust_sent_by_round.png', 'amount sent by round')
    page.table('Amount sent and returned by identity, partner kind and round', table)
    # A timed-out return is 0 by rule, not the trustee's decision.
    returns = sample[sample['return_timed_out'] != 1].rename(columns={'partner_kind': 'kind'})
    page.text(f'{int((sample["return_timed_out"] == 1).sum())} returns that timed out are left out of the '
              'returns by trustee kind.')
    returns = returns.assign(return_share=returns['amount_returned'] / returns['amount_received'].replace(0, np.nan))
    page.table('Returns by trustee kind', cand.returns_by_kind(returns, kind='kind'))
    path = out_dir / 'report.html'
    path.write_text(page.render(), encoding='utf-8')
    return path
