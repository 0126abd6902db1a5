"""Candidate behaviour: returns by kind, messages, and how selectors judge who is an AI.

Anchor-study reference values (Jiang et al. 2025): AI returned ≈ 19.1 of 30 vs ≈ 11.4 for humans
(Cohen's d ≈ 2.6; variance ≈ 11 vs 42); AI messages ≈ 120 characters vs ≈ 48.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import stats

from .io import split_cards

__all__ = ['returns_by_kind', 'candidate_returns', 'cohens_d', 'kind_difference', 'message_length_by_kind',
           'message_return_association', 'belief_accuracy', 'decided_returns', 'written_messages',
           'PROMISE_WORDS']

# Words of a promise or an offer in a message; a crude content feature next to length.
PROMISE_WORDS = re.compile(r'\b(?:promise|return|back|fair|half|trust|share|split|equal)\b', re.IGNORECASE)


def decided_returns(candidates: pd.DataFrame) -> pd.Series:
    """Candidate-rounds whose returns the candidate decided: chosen, and the Return page did not time
    out (a timed-out return is 0 by rule, not a decision)."""
    return (candidates['times_chosen'] > 0) & (candidates['return_timed_out'] != 1)


def written_messages(candidates: pd.DataFrame) -> pd.Series:
    """Active candidate-rounds with a message: a human whose message page timed out wrote nothing (older
    exports give such a message length 0, newer ones an empty cell)."""
    unwritten = (candidates['message_timed_out'] == 1) & (candidates['message'].astype(str) == '')
    return (candidates['active'] != 0) & candidates['message_length'].notna() & ~unwritten


def candidate_returns(candidates: pd.DataFrame) -> pd.DataFrame:
    """One row per decided return (candidate × round × choosing selector) from the candidates export;
    timed-out returns are left out (:func:`decided_returns`).

    Returns columns ``kind``, ``candidate_id``, ``group_key``, ``round``, ``amount_returned`` and
    ``return_share`` (return over the amount that selector's choice brought in, which the export gives
    as ``amount_received / times_chosen``; exact when every selector sends the same amount).
    """
    rows = candidates[decided_returns(candidates)]
    long = rows[['kind', 'candidate_id', 'group_key', 'round', 'returns_list', 'amount_received', 'times_chosen']]
    long = long.explode('returns_list').dropna(subset=['returns_list'])
    per_selector = long['amount_received'] / long['times_chosen']
    return pd.DataFrame({
        'kind': long['kind'], 'candidate_id': long['candidate_id'], 'group_key': long['group_key'],
        'round': long['round'], 'amount_returned': long['returns_list'].astype(float),
        'return_share': long['returns_list'].astype(float) / per_selector,
    }).reset_index(drop=True)


def returns_by_kind(data: pd.DataFrame, kind: str = 'chosen_kind', value: str = 'amount_returned',
                    share: str = 'return_share') -> pd.DataFrame:
    """Returns summarized by candidate kind.

    Parameters
    ----------
    data : one row per return: decisions (kind column ``chosen_kind``) or :func:`candidate_returns`
        (pass ``kind='kind'``). Rows with an empty value (no choice) are left out.

    Returns
    -------
    DataFrame with ``kind``, ``n``, ``mean``, ``sd``, ``variance``, ``median``, ``mean_share``,
    ``sd_share`` (return as a share of the amount received).
    """
    data = data[data[value].notna() & (data[kind].astype(str) != '')]
    grouped = data.groupby(kind)
    table = pd.DataFrame({
        'n': grouped[value].size(),
        'mean': grouped[value].mean(),
        'sd': grouped[value].std(ddof=1),
        'variance': grouped[value].var(ddof=1),
        'median': grouped[value].median(),
        'mean_share': grouped[share].mean(),
        'sd_share': grouped[share].std(ddof=1),
    })
    return table.rename_axis('kind').reset_index()


def cohens_d(x, y) -> float:
    """Cohen's d = (mean x − mean y) / pooled SD (ddof = 1)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    nx, ny = len(x), len(y)
    if nx < 2 or ny < 2:
        return np.nan
    pooled = np.sqrt(((nx - 1) * x.var(ddof=1) + (ny - 1) * y.var(ddof=1)) / (nx + ny - 2))
    return float((x.mean() - y.mean()) / pooled) if pooled > 0 else np.nan


def kind_difference(data: pd.DataFrame, kind: str = 'chosen_kind', value: str = 'amount_returned',
                    ci: float = 0.95) -> pd.DataFrame:
    """AI minus human returns: difference, Cohen's d with CI, Welch t-test, variance ratio.

    Returns one row with ``n_ai``, ``n_human``, ``mean_ai``, ``mean_human``, ``difference``,
    ``cohens_d``, ``d_ci_low``, ``d_ci_high`` (normal approximation, Hedges & Olkin SE),
    ``welch_t``, ``p_value``, ``variance_ratio`` (human / AI).

    Returns are treated as independent; a candidate's repeated returns are correlated, so the
    p-value is optimistic (the mixed models and bootstraps elsewhere handle clustering).
    """
    data = data[data[value].notna()]
    ai = data.loc[data[kind] == 'ai', value].to_numpy(float)
    human = data.loc[data[kind] == 'human', value].to_numpy(float)
    d = cohens_d(ai, human)
    n1, n2 = len(ai), len(human)
    se_d = np.sqrt((n1 + n2) / (n1 * n2) + d ** 2 / (2 * (n1 + n2))) if n1 and n2 else np.nan
    q = stats.norm.ppf(0.5 + ci / 2)
    if n1 > 1 and n2 > 1:
        test = stats.ttest_ind(ai, human, equal_var=False)
        t, p = float(test.statistic), float(test.pvalue)
        ratio = human.var(ddof=1) / ai.var(ddof=1) if ai.var(ddof=1) > 0 else np.nan
    else:
        t = p = ratio = np.nan
    return pd.DataFrame([dict(
        n_ai=n1, n_human=n2, mean_ai=ai.mean() if n1 else np.nan, mean_human=human.mean() if n2 else np.nan,
        difference=(ai.mean() - human.mean()) if n1 and n2 else np.nan, cohens_d=d,
        d_ci_low=d - q * se_d, d_ci_high=d + q * se_d, welch_t=t, p_value=p, variance_ratio=ratio,
    )])


def message_length_by_kind(candidates: pd.DataFrame) -> pd.DataFrame:
    """Message length (characters) by candidate kind, over the messages active candidates wrote
    (:func:`written_messages`: a timed-out message page is no message of length 0).

    Returns ``kind``, ``n_messages``, ``mean``, ``sd``, ``median``, ``min``, ``max``,
    ``share_with_promise`` (messages with a promise/offer word, :data:`PROMISE_WORDS`).
    """
    data = candidates[written_messages(candidates)].copy()
    data['promise'] = data['message'].astype(str).str.contains(PROMISE_WORDS)
    grouped = data.groupby('kind')
    table = pd.DataFrame({
        'n_messages': grouped.size(),
        'mean': grouped['message_length'].mean(),
        'sd': grouped['message_length'].std(ddof=1),
        'median': grouped['message_length'].median(),
        'min': grouped['message_length'].min(),
        'max': grouped['message_length'].max(),
        'share_with_promise': grouped['promise'].mean(),
    })
    return table.rename_axis('kind').reset_index()


def message_return_association(candidates: pd.DataFrame, ci: float = 0.95) -> pd.DataFrame:
    """How well a message predicts the return that follows it.

    Unit: candidate × round with at least one selector choosing it, a written message and decided
    returns (:func:`written_messages`, :func:`decided_returns`); outcome: return share
    (``amount_returned / amount_received``). Predictors: message length in 100s of characters, and
    whether the message holds a promise/offer word.

    Returns
    -------
    DataFrame with ``analysis`` (pearson, spearman, ols_length, ols_length_kind, ols_length_promise_kind),
    ``term``, ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``p_value``, ``r_squared``, ``n``.
    ``ols_length_kind`` asks whether length predicts return beyond the candidate's kind.
    """
    data = candidates[decided_returns(candidates) & written_messages(candidates)
                      & candidates['return_share'].notna()].copy()
    data['length100'] = data['message_length'] / 100.0
    data['promise'] = data['message'].astype(str).str.contains(PROMISE_WORDS).astype(float)
    data['is_ai'] = (data['kind'] == 'ai').astype(float)
    n = len(data)
    rows = []
    if n >= 3 and data['message_length'].nunique() > 1:
        r, p = stats.pearsonr(data['message_length'], data['return_share'])
        z, q = np.arctanh(r), stats.norm.ppf(0.5 + ci / 2)
        half = q / np.sqrt(n - 3) if n > 3 else np.nan
        rows.append(dict(analysis='pearson', term='message_length', estimate=r, se=np.nan,
                         ci_low=np.tanh(z - half), ci_high=np.tanh(z + half), p_value=p, r_squared=r ** 2, n=n))
        rho, p = stats.spearmanr(data['message_length'], data['return_share'])
        rows.append(dict(analysis='spearman', term='message_length', estimate=rho, se=np.nan, ci_low=np.nan,
                         ci_high=np.nan, p_value=p, r_squared=np.nan, n=n))
        formulas = {'ols_length': 'return_share ~ length100'}
        if data['is_ai'].nunique() > 1:
            formulas['ols_length_kind'] = 'return_share ~ length100 + is_ai'
            if data['promise'].nunique() > 1:
                formulas['ols_length_promise_kind'] = 'return_share ~ length100 + promise + is_ai'
        for name, formula in formulas.items():
            # Cluster by candidate: the same candidate returns round after round.
            fit = smf.ols(formula, data).fit(cov_type='cluster',
                                             cov_kwds={'groups': pd.factorize(data['group_key'] + data['candidate_id'])[0]})
            interval = fit.conf_int(1 - ci)
            for term in fit.params.index.drop('Intercept'):
                rows.append(dict(analysis=name, term=term, estimate=fit.params[term], se=fit.bse[term],
                                 ci_low=interval.loc[term, 0], ci_high=interval.loc[term, 1],
                                 p_value=fit.pvalues[term], r_squared=fit.rsquared, n=n))
    return pd.DataFrame(rows, columns=['analysis', 'term', 'estimate', 'se', 'ci_low', 'ci_high', 'p_value',
                                       'r_squared', 'n'])


def belief_accuracy(decisions: pd.DataFrame, treatment: str = 'treatment') -> pd.DataFrame:
    """Accuracy of the selectors' AI/human guesses, aligned card by card with ``offered_kinds``.

    Only rows with elicited guesses count (hidden and false_label when ``elicit_beliefs``).

    Returns
    -------
    DataFrame with ``treatment``, ``n_selectors``, ``n_judgements``, ``accuracy``, ``n_ai_cards``,
    ``ai_judged_human`` (share of AI candidates taken for humans), ``n_human_cards``,
    ``human_judged_ai`` (share of humans taken for AIs), ``p_value_vs_chance`` (binomial test of
    accuracy against 0.5; judgements treated as independent).
    """
    rows = decisions[split_cards(decisions['belief_guesses']).map(len) > 0]
    table = []
    for name, part in rows.groupby(treatment, sort=True):
        kinds = np.concatenate(split_cards(part['offered_kinds']).to_list())
        guesses = np.concatenate(split_cards(part['belief_guesses']).to_list())
        correct = kinds == guesses
        is_ai = kinds == 'ai'
        k, n = int(correct.sum()), len(correct)
        table.append(dict(
            treatment=name, n_selectors=part['selector_id'].nunique(), n_judgements=n, accuracy=k / n,
            n_ai_cards=int(is_ai.sum()),
            ai_judged_human=float((guesses[is_ai] == 'human').mean()) if is_ai.any() else np.nan,
            n_human_cards=int((~is_ai).sum()),
            human_judged_ai=float((guesses[~is_ai] == 'ai').mean()) if (~is_ai).any() else np.nan,
            p_value_vs_chance=float(stats.binomtest(k, n, 0.5).pvalue),
        ))
    return pd.DataFrame(table, columns=['treatment', 'n_selectors', 'n_judgements', 'accuracy', 'n_ai_cards',
                                        'ai_judged_human', 'n_human_cards', 'human_judged_ai', 'p_value_vs_chance'])
