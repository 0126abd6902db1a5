"""Logistic regressions of choosing an AI candidate: a GLMM (R's lme4 ``glmer``) and a GEE cross-check.

Model: ``chose_ai ~ round0 * C(treatment)`` where ``round0 = round − 1`` (so the intercept and the
treatment terms describe round 1), with a random intercept and a random round slope for each selector
(correlated) and, where a group holds several selectors, a random intercept for each mini-society group
(``(1 + round0 | selector) + (1 | group)``; selector ids are unique, so this covers selectors nested in
groups as well as crossed designs). The random slope is there because learners differ in how fast they
learn: without it the round terms' SEs ignore that spread and are too small.

The mixed model is a maximum-likelihood GLMM fitted by lme4's ``glmer`` (Bates, Mächler, Bolker &
Walker 2015, J. Stat. Softw. 67(1), doi:10.18637/jss.v067.i01) through ``Rscript`` in a subprocess
(data and results pass as CSV files in a temporary directory). The likelihood integral over the
random effects uses the Laplace approximation (``nAGQ=1``); with a selector intercept as the only
random effect (``random_slope=False, group=None``), adaptive Gauss–Hermite quadrature (``nAGQ > 1``)
is available. Fixed-effect SEs are Wald SEs from ``vcov()`` of the fit: the covariance of the fixed
effects at the estimated variance parameters (from the fit's ``RX`` factor; with
``check_gradient=True`` the inverse finite-difference Hessian); p-values and CIs are the normal
approximation. Their coverage is measured in docs/coverage.md. The optimizer's status and lme4's
singular-fit check are kept (columns ``converged``, ``singular``, ``fit_message``) and also raised as
:class:`GLMMConvergenceWarning`. R and lme4 are system packages (Debian: ``r-base-core r-cran-lme4``);
without them :func:`mixed_logit` raises :class:`GLMMUnavailable`: there is no fallback.

The GEE (exchangeable correlation within selector, robust SEs) estimates population-averaged effects,
which are smaller in size than the subject-specific mixed-model ones but should agree in sign and
significance.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import patsy
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats

__all__ = ['mixed_logit', 'gee_logit', 'regression_frame', 'TIDY_COLUMNS', 'GLMM_COLUMNS', 'GLMMUnavailable',
           'GLMMConvergenceWarning', 'RSCRIPT', 'R_PACKAGES']

TIDY_COLUMNS = ['model', 'term', 'estimate', 'se', 'z', 'p_value', 'ci_low', 'ci_high', 'odds_ratio']
# Extra columns of mixed_logit, the same on every row of one fit.
GLMM_COLUMNS = ['converged', 'singular', 'fit_message']

# The Rscript executable (a name looked up on PATH, or a path); tests point it elsewhere.
RSCRIPT = 'Rscript'
# Debian packages that provide it and lme4.
R_PACKAGES = 'r-base-core r-cran-lme4'


class GLMMUnavailable(RuntimeError):
    """Rscript or R's lme4 package is not installed, so the mixed logit cannot be fitted."""


class GLMMConvergenceWarning(UserWarning):
    """glmer reported a convergence problem or a singular (boundary) fit."""


def regression_frame(data: pd.DataFrame, dv: str = 'chose_ai', round: str = 'round', treatment: str = 'treatment',
                     reference: str | None = None) -> pd.DataFrame:
    """Rows with a choice, plus ``round0`` and ``treatment`` as an ordered categorical.

    reference : the baseline treatment (default 'hidden' if present, else the first alphabetically).
    """
    frame = data[data[dv].notna()].copy()
    if frame.empty:
        raise ValueError('no decisions with a choice: nothing to regress')
    levels = sorted(frame[treatment].unique())
    reference = reference if reference is not None else ('hidden' if 'hidden' in levels else levels[0])
    if reference not in levels:
        raise ValueError(f'reference treatment {reference!r} not in the data ({levels})')
    levels = [reference] + [t for t in levels if t != reference]
    frame['treatment'] = pd.Categorical(frame[treatment], categories=levels)
    frame['round0'] = frame[round].astype(float) - 1.0
    frame['chose_ai'] = frame[dv].astype(float)
    return frame


def _formula(frame: pd.DataFrame) -> str:
    # One treatment in the data: the treatment terms would be collinear with the intercept.
    if frame['treatment'].nunique() > 1:
        return 'chose_ai ~ round0 * C(treatment)'
    return 'chose_ai ~ round0'


def _tidy(model_name, terms, estimate, se, ci) -> pd.DataFrame:
    estimate, se = np.asarray(estimate, float), np.asarray(se, float)
    z = estimate / se
    q = stats.norm.ppf(0.5 + ci / 2)
    return pd.DataFrame({
        'model': model_name, 'term': list(terms), 'estimate': estimate, 'se': se, 'z': z,
        'p_value': 2 * stats.norm.sf(np.abs(z)), 'ci_low': estimate - q * se, 'ci_high': estimate + q * se,
        'odds_ratio': np.exp(estimate),
    })[TIDY_COLUMNS]


# Reads design.csv (y, selector, [group], x0..xk: the fixed-effect design built by patsy in Python, so
# the term names match the GEE's), fits glmer, writes fixef.csv, ranef.csv, info.tsv and messages.txt.
# Exit status 3: lme4 is not installed.
_GLMER_SCRIPT = r'''
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]; nagq <- as.integer(args[2]); optimizer <- args[3]; slope <- args[4] == "1"
derivs <- args[5] == "1"
if (!requireNamespace("lme4", quietly = TRUE)) quit(status = 3)
d <- read.csv(file.path(dir, "design.csv"), colClasses = c(selector = "character", group = "character"))
x <- grep("^x[0-9]+$", names(d), value = TRUE)
re <- if (slope) "(1 + round0 | selector)" else "(1 | selector)"
if ("group" %in% names(d)) re <- paste(re, "+ (1 | group)")
f <- as.formula(paste("y ~ 0 +", paste(x, collapse = " + "), "+", re))
# nloptwrap's default tolerances stop about 0.1 log-likelihood units short on 975 selectors x 20 rounds
opt_ctrl <- if (optimizer == "nloptwrap") list(xtol_rel = 1e-10, ftol_rel = 1e-12, maxeval = 1e5) else list()
msgs <- character(0)
t0 <- proc.time()[["elapsed"]]
fit <- withCallingHandlers(
  lme4::glmer(f, data = d, family = binomial, nAGQ = nagq,
              control = lme4::glmerControl(optimizer = optimizer, calc.derivs = derivs, optCtrl = opt_ctrl)),
  warning = function(w) { msgs <<- c(msgs, conditionMessage(w)); invokeRestart("muffleWarning") },
  message = function(m) { msgs <<- c(msgs, conditionMessage(m)); invokeRestart("muffleMessage") })
elapsed <- proc.time()[["elapsed"]] - t0
# without calc.derivs lme4 does not say it itself
if (lme4::isSingular(fit) && !any(grepl("singular", msgs)))
  msgs <- c(msgs, "boundary (singular) fit: see help('isSingular')")
num <- function(v) sprintf("%.17g", v)
b <- lme4::fixef(fit)
se <- sqrt(diag(as.matrix(vcov(fit))))
writeLines(c("term,estimate,se", paste(names(b), num(b), num(se[names(b)]), sep = ",")),
           file.path(dir, "fixef.csv"))
vc <- as.data.frame(lme4::VarCorr(fit))
# one row per SD (var2 empty) and per correlation of a selector's intercept and slope
v1 <- ifelse(is.na(vc$var1), "", vc$var1); v2 <- ifelse(is.na(vc$var2), "", vc$var2)
writeLines(c("group,var1,var2,value", paste(vc$grp, v1, v2, num(vc$sdcor), sep = ",")), file.path(dir, "ranef.csv"))
conv <- fit@optinfo$conv
lme4_msgs <- unlist(conv$lme4$messages)
opt_msg <- fit@optinfo$message
if (is.null(opt_msg)) opt_msg <- ""
info <- c(
  optimizer_code = as.character(conv$opt),
  optimizer_message = gsub("[\t\n]", " ", paste(opt_msg, collapse = " ")),
  # a singular (boundary) fit is reported apart (isSingular), not as a failure to converge
  lme4_messages = gsub("[\t\n]", " ", paste(grep("singular", lme4_msgs, value = TRUE, invert = TRUE),
                                              collapse = "; ")),
  singular = as.character(lme4::isSingular(fit)),
  loglik = num(as.numeric(logLik(fit))),
  n_obs = as.character(nobs(fit)),
  seconds = num(elapsed),
  lme4_version = as.character(packageVersion("lme4")),
  r_version = paste(R.version$major, R.version$minor, sep = "."))
writeLines(paste(names(info), info, sep = "\t"), file.path(dir, "info.tsv"))
writeLines(unique(trimws(gsub("\n", " ", c(msgs, lme4_msgs)))), file.path(dir, "messages.txt"))
'''


def _rscript() -> str:
    found = shutil.which(RSCRIPT)
    if found is None:
        raise GLMMUnavailable(f'mixed_logit fits the GLMM with R\'s lme4, but Rscript ({RSCRIPT!r}) was not found. '
                              f'Install the Debian packages {R_PACKAGES} '
                              f'(apt-get install -y --no-install-recommends {R_PACKAGES}).')
    return found


def _random_term(row: dict) -> str:
    """Term name of one row of lme4's VarCorr: sd(selector), sd(selector:round0), cor(selector), sd(group)."""
    if row['var2']:
        return f"cor({row['group']})"
    if row['var1'] in ('', '(Intercept)'):
        return f"sd({row['group']})"
    return f"sd({row['group']}:{row['var1']})"


def mixed_logit(data: pd.DataFrame, selector: str = 'selector_id', group: str | None = 'group_key',
                reference: str | None = None, ci: float = 0.95, seed: int | None = None, n_agq: int = 1,
                optimizer: str = 'nloptwrap', timeout: float = 600.0, random_slope: bool = True,
                check_gradient: bool = False) -> pd.DataFrame:
    """Mixed-effects logistic regression ``chose_ai ~ round0 * C(treatment)`` with random effects (lme4).

    Parameters
    ----------
    data : validated decisions (rows without a choice are dropped here).
    selector, group : columns whose levels get random intercepts (group=None: selectors only; a group
        column with one selector per group, or a single group, adds nothing and is skipped).
    reference : baseline treatment (see :func:`regression_frame`).
    ci : confidence level of the Wald intervals.
    seed : ignored (glmer is deterministic); kept so callers written for the earlier variational fit work.
    n_agq : quadrature points per random effect: 1 = Laplace approximation (any random effects);
        > 1 = adaptive Gauss–Hermite quadrature, only with a selector intercept as the single random
        effect (``group=None, random_slope=False``).
    random_slope : also give each selector its own round slope, correlated with its intercept
        (``(1 + round0 | selector)``; default). Learners differ in how fast they move, so without it the
        round terms' model-based SEs are too small (coverage 0.86 instead of 0.95: docs/coverage.md).
    optimizer : ``glmerControl(optimizer=...)`` for both stages: 'nloptwrap' (default, with tight
        tolerances: xtol_rel 1e-10, ftol_rel 1e-12) or 'bobyqa' (the same optimum within 0.003 in the
        estimates on 975 selectors × 20 rounds, but 200 s instead of 11 s with the random slope).
    check_gradient : run lme4's finite-difference gradient and Hessian checks (``calc.derivs=TRUE``) and
        take the SEs from that Hessian. Off by default: with the random slope the checks cost more than
        the fit and their Hessian was degenerate (so lme4 fell back to the SEs used without them).
    timeout : seconds before the R process is stopped.

    Returns
    -------
    DataFrame with columns :data:`TIDY_COLUMNS` (model name 'mixed_logit_glmer') then
    :data:`GLMM_COLUMNS`: one row per fixed effect (Wald SE from ``vcov``), then the random effects
    (estimate only: no SE, p or CI): ``sd(selector)`` (intercepts), with a random slope
    ``sd(selector:round0)`` and ``cor(selector)`` (correlation of a selector's intercept and slope), and,
    if fitted, ``sd(group)``. ``converged`` is False when the optimizer (or, with ``check_gradient``, lme4's
    gradient/Hessian checks) report a problem; ``singular`` is lme4's ``isSingular`` (a random-effect SD at 0); ``fit_message`` holds
    every warning and message glmer gave ('' if none). ``result.attrs['glmer']`` has the log-likelihood,
    optimizer code and message, n_agq, seconds, and the R and lme4 versions.

    Raises
    ------
    GLMMUnavailable : Rscript or lme4 is missing (Debian packages :data:`R_PACKAGES`).
    """
    frame = regression_frame(data, reference=reference)
    if n_agq < 1:
        raise ValueError(f'n_agq must be >= 1 (1 = Laplace; nAGQ=0 is not a final estimate), got {n_agq}')
    exog = patsy.dmatrix(_formula(frame).split('~')[1], frame, return_type='dataframe')
    terms = list(exog.columns)
    design = pd.DataFrame(exog.to_numpy(), columns=[f'x{i}' for i in range(len(terms))], index=frame.index)
    design.insert(0, 'y', frame['chose_ai'].astype(int).to_numpy())
    design.insert(1, 'selector', frame[selector].astype(str).to_numpy())
    design['round0'] = frame['round0'].to_numpy()
    random_effects = ['selector']
    # A group level needs at least two groups (one group is a constant, absorbed by the intercept) and
    # a group with several selectors (else it is the selector's own intercept).
    if (group and group in frame and frame[group].nunique() > 1
            and frame.groupby(group)[selector].nunique().max() > 1):
        design.insert(2, 'group', frame[group].astype(str).to_numpy())
        random_effects.append('group')
    if n_agq > 1 and (len(random_effects) > 1 or random_slope):
        raise ValueError(f'n_agq={n_agq} (adaptive Gauss-Hermite) needs a single scalar random effect; with a '
                         'random round slope or group intercepts use n_agq=1 (Laplace), or pass group=None and '
                         'random_slope=False')
    rscript = _rscript()
    with tempfile.TemporaryDirectory(prefix='glmer_') as tmp:
        tmp = Path(tmp)
        design.to_csv(tmp / 'design.csv', index=False)
        (tmp / 'fit.R').write_text(_GLMER_SCRIPT)
        started = time.perf_counter()
        proc = subprocess.run([rscript, '--vanilla', str(tmp / 'fit.R'), str(tmp), str(n_agq), optimizer,
                               '1' if random_slope else '0', '1' if check_gradient else '0'],
                              capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, 'OMP_NUM_THREADS': '1', 'OPENBLAS_NUM_THREADS': '1'})
        seconds = time.perf_counter() - started
        if proc.returncode == 3:
            raise GLMMUnavailable(f'R is installed but its lme4 package is not: install the Debian packages '
                                  f'{R_PACKAGES} (apt-get install -y --no-install-recommends {R_PACKAGES}).')
        if proc.returncode != 0:
            raise RuntimeError(f'glmer failed (Rscript exit status {proc.returncode}):\n{proc.stderr.strip()}')
        fixef = pd.read_csv(tmp / 'fixef.csv')
        ranef = pd.read_csv(tmp / 'ranef.csv', dtype={'group': str, 'var1': str, 'var2': str}, keep_default_na=False)
        info = dict(line.split('\t', 1) for line in (tmp / 'info.tsv').read_text().splitlines() if '\t' in line)
        messages = [m for m in (tmp / 'messages.txt').read_text().splitlines() if m.strip()]
    # glmer names the fixed effects by their design column; map back to patsy's names.
    name_of = {f'x{i}': term for i, term in enumerate(terms)}
    fixef = fixef.set_index('term').loc[list(name_of)]
    model_name = 'mixed_logit_glmer'
    fixed = _tidy(model_name, terms, fixef['estimate'], fixef['se'], ci)
    random = pd.DataFrame([dict(model=model_name, term=_random_term(row), estimate=float(row['value']), se=np.nan,
                                z=np.nan, p_value=np.nan, ci_low=np.nan, ci_high=np.nan, odds_ratio=np.nan)
                           for row in ranef.to_dict('records')], columns=TIDY_COLUMNS)
    singular = info.get('singular') == 'TRUE'
    converged = info.get('optimizer_code') == '0' and not info.get('lme4_messages')
    fit_message = '; '.join(messages)
    table = pd.concat([fixed, random], ignore_index=True)
    table['converged'], table['singular'], table['fit_message'] = converged, singular, fit_message
    table.attrs['glmer'] = dict(loglik=float(info['loglik']), n_obs=int(info['n_obs']), n_agq=n_agq,
                                optimizer=optimizer, check_gradient=check_gradient, optimizer_code=int(info['optimizer_code']),
                                optimizer_message=info.get('optimizer_message', ''),
                                random_effects=random_effects, random_slope=random_slope, seconds_glmer=float(info['seconds']),
                                seconds_total=seconds, lme4_version=info.get('lme4_version'),
                                r_version=info.get('r_version'), messages=messages)
    problems = [text for text, flag in (('did not converge', not converged), ('singular fit', singular)) if flag]
    if problems:
        warnings.warn(f'glmer: {" and ".join(problems)}: {fit_message}', GLMMConvergenceWarning, stacklevel=2)
    return table


def gee_logit(data: pd.DataFrame, selector: str = 'selector_id', reference: str | None = None,
              ci: float = 0.95) -> pd.DataFrame:
    """GEE logistic regression, selectors as clusters, exchangeable working correlation, robust SEs.

    Returns a tidy DataFrame (columns :data:`TIDY_COLUMNS`), model name 'gee_logit'.
    """
    frame = regression_frame(data, reference=reference)
    model = smf.gee(_formula(frame), groups=frame[selector], data=frame, family=sm.families.Binomial(),
                    cov_struct=sm.cov_struct.Exchangeable())
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        result = model.fit()
        # tiny data can give a non-positive robust variance: its SE is NaN, without a warning
        se = result.bse.to_numpy()
    return _tidy('gee_logit', result.params.index, result.params.to_numpy(), se, ci)
