"""Share of selectors choosing an AI candidate per round and treatment, against the chance level.

The chance level is the mean ``ai_share_offered`` (AI cards among those offered): a selector picking
cards at random chooses an AI that often. Confidence intervals come from a participant-clustered
bootstrap: selectors (with all their rounds) are resampled within each treatment, so the repeated
choices of one selector are not treated as independent.

:func:`early_late_shares` and :func:`compare_early_late` give the AI-choice share in the first and the last
``k_rounds`` rounds, its change (late − early) and treatment contrasts of all three. They are identified
whether or not the treatment learns (unlike a learning curve's plateau and rate), and their SEs are
selector-clustered: the share Σa/Σn over a window is a ratio estimator, linearised per selector
(u_i = (a_i − share·n_i)/Σn, var = G/(G−1)·Σu_i², G selectors), the change uses the difference of the
two windows' u_i within each selector, and treatments (independent groups of selectors) add variances.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ['ai_choice_share', 'ai_choice_share_by_selector_kind', 'early_late_shares', 'compare_early_late']


def ai_choice_share(data: pd.DataFrame, round: str = 'round', treatment: str = 'treatment',
                    selector: str = 'selector_id', dv: str = 'chose_ai', chance: str = 'ai_share_offered',
                    n_boot: int = 1000, ci: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """AI-choice share per round × treatment with clustered bootstrap CIs.

    Parameters
    ----------
    data : long DataFrame, one row per selector × round; rows whose ``dv`` is empty (no choice) are
        left out of shares (pass :func:`analysis.io.fit_sample` output to make that explicit).
    n_boot : bootstrap replicates (selectors resampled with replacement within treatment); 0 = no CIs.
    seed : seed of the bootstrap, so a report is reproducible.

    Returns
    -------
    DataFrame with columns ``treatment``, ``round``, ``n_selectors`` (with a choice that round),
    ``n_ai_chosen``, ``share_ai``, ``chance`` (mean ai_share_offered), ``ci_low``, ``ci_high``,
    ``above_chance`` (True when the CI lies above the chance level, False when below, NaN otherwise).
    """
    rng = np.random.default_rng(seed)
    data = data[data[dv].notna()]
    alpha = (1 - ci) / 2
    tables = []
    for name, part in data.groupby(treatment, sort=True):
        n = part.pivot_table(index=selector, columns=round, values=dv, aggfunc='size', fill_value=0)
        ai = part.pivot_table(index=selector, columns=round, values=dv, aggfunc='sum', fill_value=0).reindex_like(n)
        n_mat, ai_mat = n.to_numpy(float), ai.fillna(0).to_numpy(float)
        counts, chosen = n_mat.sum(axis=0), ai_mat.sum(axis=0)
        table = pd.DataFrame({
            'treatment': name,
            'round': n.columns.astype(int),
            'n_selectors': counts.astype(int),
            'n_ai_chosen': chosen.astype(int),
            'share_ai': chosen / counts,
            'chance': part.groupby(round)[chance].mean().reindex(n.columns).to_numpy(),
        })
        if n_boot:
            n_sel = n_mat.shape[0]
            # A multinomial weight per selector is the same as resampling selectors with replacement.
            weights = rng.multinomial(n_sel, np.full(n_sel, 1.0 / n_sel), size=n_boot)
            with np.errstate(invalid='ignore', divide='ignore'):
                shares = (weights @ ai_mat) / (weights @ n_mat)
            table['ci_low'] = np.nanquantile(shares, alpha, axis=0)
            table['ci_high'] = np.nanquantile(shares, 1 - alpha, axis=0)
        else:
            table['ci_low'] = np.nan
            table['ci_high'] = np.nan
        tables.append(table)
    out = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(
        columns=['treatment', 'round', 'n_selectors', 'n_ai_chosen', 'share_ai', 'chance', 'ci_low', 'ci_high'])
    above = pd.Series(np.nan, index=out.index, dtype=object)
    above[out['ci_low'] > out['chance']] = True
    above[out['ci_high'] < out['chance']] = False
    out['above_chance'] = above
    return out


SHARE_COLUMNS = ['treatment', 'quantity', 'rounds', 'n_selectors', 'n_choices', 'estimate', 'chance', 'se', 'z',
                 'p_value', 'ci_low', 'ci_high', 'note']


def ai_choice_share_by_selector_kind(data: pd.DataFrame, kind: str = 'selector_kind', round: str = 'round',
                                     treatment: str = 'treatment', dv: str = 'chose_ai',
                                     chance: str = 'ai_share_offered') -> pd.DataFrame:
    """AI-choice share per treatment × selector kind (human / ai: AI selectors, session config
    num_ai_selectors) × round, and over all rounds (round = 'all'); descriptive, no CIs.

    Parameters
    ----------
    data : long DataFrame, one row per selector × round (validated decisions); rows whose ``dv`` is empty
        (no choice) are left out.

    Returns
    -------
    DataFrame with columns ``treatment``, ``selector_kind``, ``round`` (a number, or ``'all'``),
    ``n_choices``, ``n_ai_chosen``, ``share_ai``, ``chance`` (mean ai_share_offered).

    Examples
    --------
    >>> rows = pd.DataFrame(dict(treatment='hidden', selector_kind=['human', 'ai', 'ai'], round=1,
    ...                          chose_ai=[1.0, 0.0, 1.0], ai_share_offered=0.5))
    >>> ai_choice_share_by_selector_kind(rows)[['selector_kind', 'round', 'share_ai']].values.tolist()
    [['ai', 1, 0.5], ['ai', 'all', 0.5], ['human', 1, 1.0], ['human', 'all', 1.0]]
    """
    data = data[data[dv].notna()]
    keys = [treatment, kind]
    by_round = data.groupby([*keys, round], sort=True).agg(
        n_choices=(dv, 'size'), n_ai_chosen=(dv, 'sum'), chance=(chance, 'mean')).reset_index()
    overall = data.groupby(keys, sort=True).agg(
        n_choices=(dv, 'size'), n_ai_chosen=(dv, 'sum'), chance=(chance, 'mean')).reset_index()
    overall[round] = 'all'
    by_round[round] = by_round[round].astype(int).astype(object)  # validated rounds are floats
    table = pd.concat([by_round, overall], ignore_index=True)
    table['order'] = table[round].map(lambda r: float('inf') if r == 'all' else float(r))
    table = table.sort_values([*keys, 'order'], kind='stable').drop(columns='order').reset_index(drop=True)
    table['n_ai_chosen'] = table['n_ai_chosen'].astype(int)
    table['share_ai'] = table['n_ai_chosen'] / table['n_choices']
    table = table.rename(columns={treatment: 'treatment', kind: 'selector_kind', round: 'round'})
    return table[['treatment', 'selector_kind', 'round', 'n_choices', 'n_ai_chosen', 'share_ai', 'chance']]


def _windows(rounds, k_rounds: int):
    """First and last ``k_rounds`` of the sorted rounds (shortened so they never overlap)."""
    rounds = np.sort(np.unique(rounds))
    k = max(1, min(int(k_rounds), len(rounds) // 2))
    return rounds[:k], rounds[-k:]


def _label(window) -> str:
    return f'{int(window[0])}-{int(window[-1])}' if len(window) > 1 else f'{int(window[0])}'


def _window_parts(part, window, round, dv, selector, selectors):
    inside = part[part[round].isin(window)]
    grouped = inside.groupby(selector)[dv]
    n = grouped.size().reindex(selectors, fill_value=0).to_numpy(float)
    a = grouped.sum().reindex(selectors, fill_value=0).to_numpy(float)
    return n, a, inside


def _influence(n, a):
    """Share Σa/Σn and each selector's linearised contribution to it."""
    total = n.sum()
    share = a.sum() / total if total else np.nan
    return share, ((a - share * n) / total if total else np.full_like(n, np.nan))


def _per_treatment_windows(data, k_rounds, treatment, round, dv, selector, chance):
    """{treatment: (early, late) each (share, influence, n_choices, chance)} and the two windows."""
    data = data[data[dv].notna()]
    early, late = _windows(data[round], k_rounds)
    out = {}
    for name, part in data.groupby(treatment, sort=True):
        selectors = part[selector].unique()
        cells = []
        for window in (early, late):
            n, a, inside = _window_parts(part, window, round, dv, selector, selectors)
            share, u = _influence(n, a)
            level = float(inside[chance].mean()) if chance in inside and len(inside) else np.nan
            cells.append((share, u, int(n.sum()), level))
        out[name] = (cells, len(selectors))
    return out, early, late


def _wald(estimate, variance, null, g, min_selectors, zq):
    """se, z, p, ci_low, ci_high, note; all NaN (with a note) below min_selectors."""
    if g < max(2, min_selectors):
        return dict(se=np.nan, z=np.nan, p_value=np.nan, ci_low=np.nan, ci_high=np.nan,
                    note=f'withheld: fewer than {max(2, min_selectors)} selectors')
    se = float(np.sqrt(variance))
    if not (np.isfinite(se) and se > 0):
        return dict(se=np.nan, z=np.nan, p_value=np.nan, ci_low=np.nan, ci_high=np.nan, note='no variation')
    z = (estimate - null) / se if np.isfinite(null) else np.nan
    return dict(se=se, z=z, p_value=float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else np.nan,
                ci_low=estimate - zq * se, ci_high=estimate + zq * se, note='')


def early_late_shares(data: pd.DataFrame, k_rounds: int = 3, treatment: str = 'treatment', round: str = 'round',
                      selector: str = 'selector_id', dv: str = 'chose_ai', chance: str = 'ai_share_offered',
                      ci: float = 0.95, min_selectors: int = 10) -> pd.DataFrame:
    """AI-choice share in the first and last ``k_rounds`` rounds per treatment, and late − early.

    Rounds are the sorted rounds present in ``data`` (all treatments); with fewer than 2·k_rounds rounds,
    k shrinks so that the windows do not overlap. Rows with an empty ``dv`` are left out.

    Returns
    -------
    DataFrame with :data:`SHARE_COLUMNS`: ``treatment``, ``quantity`` ('early_share', 'late_share',
    'late_minus_early'), ``rounds`` ('1-3', '18-20', '18-20 minus 1-3'), ``n_selectors``, ``n_choices``,
    ``estimate``, ``chance`` (mean ai_share_offered in the window; the null of the shares' test; 0 for
    the change), ``se`` (selector-clustered, module docstring), ``z``, ``p_value`` (two-sided normal test
    against ``chance``), ``ci_low``, ``ci_high`` (Wald), ``note`` ('withheld: …' below ``min_selectors``
    selectors: no SE, CI or p).
    """
    zq = stats.norm.ppf(0.5 + ci / 2)
    per, early, late = _per_treatment_windows(data, k_rounds, treatment, round, dv, selector, chance)
    rows = []
    for name, (((s_e, u_e, n_e, c_e), (s_l, u_l, n_l, c_l)), g) in per.items():
        factor = g / (g - 1) if g > 1 else np.nan
        for quantity, label, est, u, n, level in (
                ('early_share', _label(early), s_e, u_e, n_e, c_e),
                ('late_share', _label(late), s_l, u_l, n_l, c_l),
                ('late_minus_early', f'{_label(late)} minus {_label(early)}', s_l - s_e, u_l - u_e, n_e + n_l, 0.0)):
            rows.append(dict(treatment=name, quantity=quantity, rounds=label, n_selectors=g, n_choices=n,
                             estimate=est, chance=level,
                             **_wald(est, factor * np.sum(u ** 2), level, g, min_selectors, zq)))
    return pd.DataFrame(rows, columns=SHARE_COLUMNS)


def compare_early_late(data: pd.DataFrame, reference: str | None = None, k_rounds: int = 3,
                       treatment: str = 'treatment', round: str = 'round', selector: str = 'selector_id',
                       dv: str = 'chose_ai', ci: float = 0.95, min_selectors: int = 10) -> pd.DataFrame:
    """Treatment contrasts (other − reference) of the early share, late share and late − early change.

    reference : default 'hidden' if present, else the first treatment; one treatment only: empty table.

    Returns
    -------
    DataFrame with ``contrast``, ``quantity``, ``rounds``, ``estimate_other``, ``estimate_reference``,
    ``difference``, ``se`` (selector-clustered, the two treatments' variances added), ``z``, ``p_value``
    (two-sided normal, null 0), ``ci_low``, ``ci_high``, ``se_method`` ('cluster_linearised'), ``note``.
    """
    columns = ['contrast', 'quantity', 'rounds', 'estimate_other', 'estimate_reference', 'difference', 'se', 'z',
               'p_value', 'ci_low', 'ci_high', 'se_method', 'note']
    zq = stats.norm.ppf(0.5 + ci / 2)
    per, early, late = _per_treatment_windows(data, k_rounds, treatment, round, dv, selector, 'ai_share_offered')
    names = list(per)
    if len(names) < 2:
        return pd.DataFrame(columns=columns)
    reference = reference if reference is not None else ('hidden' if 'hidden' in names else names[0])
    if reference not in names:
        raise ValueError(f'reference treatment {reference!r} not in the data ({names})')

    def quantities(name):
        ((s_e, u_e, _, _), (s_l, u_l, _, _)), g = per[name]
        factor = g / (g - 1) if g > 1 else np.nan
        return g, {'early_share': (s_e, factor * np.sum(u_e ** 2)), 'late_share': (s_l, factor * np.sum(u_l ** 2)),
                   'late_minus_early': (s_l - s_e, factor * np.sum((u_l - u_e) ** 2))}

    labels = {'early_share': _label(early), 'late_share': _label(late),
              'late_minus_early': f'{_label(late)} minus {_label(early)}'}
    g_ref, ref = quantities(reference)
    rows = []
    for other in names:
        if other == reference:
            continue
        g_other, oth = quantities(other)
        for quantity in ('early_share', 'late_share', 'late_minus_early'):
            diff = oth[quantity][0] - ref[quantity][0]
            wald = _wald(diff, oth[quantity][1] + ref[quantity][1], 0.0, min(g_other, g_ref), min_selectors, zq)
            rows.append(dict(contrast=f'{other} - {reference}', quantity=quantity, rounds=labels[quantity],
                             estimate_other=oth[quantity][0], estimate_reference=ref[quantity][0], difference=diff,
                             se_method='cluster_linearised', **wald))
    return pd.DataFrame(rows, columns=columns)
