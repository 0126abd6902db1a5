"""The AI agents' calls: how often they fell back, why, how long a call took and how many tokens it used.

Reads the AI-calls export (``analysis.io.load_ai_calls``: the apps' ``custom_export_ai_calls`` or the
population engine's ``ai_calls.csv``), one row per AI decision. A fallback (the scripted or configured
policy decided instead: timeout, unreachable endpoint, invalid JSON, a reply outside the schema) matters
for a study: those decisions were not the model's, and a high share in one cell changes what the AI
partners or AI selectors were.

Calls of one agent are not independent (the same model with the same prompt template fails alike), so the
fallback share's confidence interval is cluster-robust over agents (session, group, agent id), and withheld
(NaN) with fewer than :data:`MIN_AGENTS` agents in the cell.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

# Fewest agents (clusters) for a fallback-share confidence interval.
MIN_AGENTS = 5

DEFAULT_BY = ('app', 'decision', 'policy', 'model')


def _agent_key(calls: pd.DataFrame) -> pd.Series:
    return (calls['session_code'].astype(str) + '/' + calls['group_id'].astype(str) + '/'
            + calls['candidate_id'].astype(str))


def clustered_share(flags: pd.Series, clusters: pd.Series, alpha: float = 0.05) -> tuple:
    """Share of 1s in ``flags`` with a cluster-robust (CR1) normal CI, clipped to [0, 1].

    Returns (share, se, ci_low, ci_high, n_clusters); se and the CI are NaN with fewer than
    :data:`MIN_AGENTS` clusters. The SE is the ratio estimator's sandwich: sum over clusters of
    (ones - share × calls)², over N², times G / (G - 1)."""
    flags = flags.astype(float)
    n, g = len(flags), clusters.nunique()
    share = float(flags.mean()) if n else np.nan
    if g < MIN_AGENTS:
        return share, np.nan, np.nan, np.nan, g
    per = pd.DataFrame({'y': flags.to_numpy(), 'c': clusters.to_numpy()}).groupby('c')['y'].agg(['sum', 'size'])
    residual = per['sum'] - share * per['size']
    se = float(np.sqrt((residual ** 2).sum() * g / (g - 1)) / n)
    z = stats.norm.ppf(1 - alpha / 2)
    return share, se, max(0.0, share - z * se), min(1.0, share + z * se), g


def call_summary(calls: pd.DataFrame, by=DEFAULT_BY) -> pd.DataFrame:
    """One row per cell of ``by`` (columns of the AI-calls export).

    Columns: the ``by`` columns; ``n_calls``; ``n_agents`` (distinct session/group/agent ids);
    ``n_fallback``; ``fallback_share`` with ``fallback_se``, ``fallback_ci_low``, ``fallback_ci_high``
    (95 %, clustered by agent; NaN with fewer than :data:`MIN_AGENTS` agents); ``latency_ms_median`` and
    ``latency_ms_p95`` (all calls, fallbacks included: the wait a person had); ``prompt_tokens_mean`` and
    ``completion_tokens_mean`` over the calls whose endpoint reported them (NaN for scripted policies).
    """
    by = [c for c in by if c in calls.columns]
    if calls.empty:
        raise ValueError('no AI calls to summarise')
    agents = _agent_key(calls)
    rows = []
    for key, part in calls.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        share, se, low, high, g = clustered_share(part['fallback'], agents.loc[part.index])
        latency = part['latency_ms'].dropna()
        rows.append(dict(
            zip(by, key), n_calls=len(part), n_agents=g, n_fallback=int(part['fallback'].sum()),
            fallback_share=share, fallback_se=se, fallback_ci_low=low, fallback_ci_high=high,
            latency_ms_median=float(latency.median()) if len(latency) else np.nan,
            latency_ms_p95=float(latency.quantile(0.95)) if len(latency) else np.nan,
            prompt_tokens_mean=float(part['prompt_tokens'].mean()) if part['prompt_tokens'].notna().any() else np.nan,
            completion_tokens_mean=(float(part['completion_tokens'].mean())
                                    if part['completion_tokens'].notna().any() else np.nan),
        ))
    return pd.DataFrame(rows)


def fallback_reasons(calls: pd.DataFrame, by=('decision', 'policy')) -> pd.DataFrame:
    """Why calls fell back: one row per ``by`` cell and reason, with ``n`` and ``share_of_fallbacks`` (of the
    cell's fallbacks). A ``schema:<detail>`` reason is kept whole (it names what was wrong with the reply).
    Empty (the columns only) when nothing fell back."""
    by = [c for c in by if c in calls.columns]
    fell = calls[calls['fallback'] == 1]
    columns = [*by, 'fallback_reason', 'n', 'share_of_fallbacks']
    if fell.empty:
        return pd.DataFrame(columns=columns)
    counts = fell.groupby([*by, 'fallback_reason']).size().rename('n').reset_index()
    totals = counts.groupby(by)['n'].transform('sum')
    counts['share_of_fallbacks'] = counts['n'] / totals
    return counts.sort_values([*by, 'n'], ascending=[True] * len(by) + [False]).reset_index(drop=True)[columns]
