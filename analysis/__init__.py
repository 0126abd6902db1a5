"""Analysis of partner_selection and trust_game exports (README: docs/README_analysis.md).

Modules, one per topic: ``io`` (loading, validation), ``curves`` (AI-choice share by round),
``learning_curve`` (parametric curves), ``regression`` (mixed logit, GEE), ``learning_models``
(Rescorla–Wagner, EWA), ``candidates`` (returns, messages, beliefs), ``simulate`` (synthetic exports),
``report`` (figures and HTML). Command line: ``python -m analysis --help``.
"""
import os
import sys

# The fits are many small optimizations; multi-threaded BLAS makes each tiny scipy call spin up and
# wait on threads, measured 36× slower (L-BFGS-B, 2 busy cores). One thread per process is faster
# here. This only takes effect if numpy is not imported yet (python -m analysis, the tests).
if 'numpy' not in sys.modules:
    for _name in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ.setdefault(_name, '1')

from .io import ExportError, load_candidates, load_decisions, load_trust_game, read_export  # noqa: E402

__all__ = ['ExportError', 'load_decisions', 'load_candidates', 'load_trust_game', 'read_export']
