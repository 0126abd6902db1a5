"""Analysis of partner_selection and trust_game exports (docs/analysis.md).

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


def _single_thread_openblas() -> None:
    """numpy already imported (e.g. under pytest): tell the loaded OpenBLAS copies directly."""
    import ctypes

    import scipy.optimize  # noqa: F401  (loads scipy's own OpenBLAS copy)
    try:
        with open('/proc/self/maps') as maps:
            paths = {line.split()[-1] for line in maps if 'openblas' in line.lower() and '/' in line}
    except OSError:
        return
    for path in paths:
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol in ('scipy_openblas_set_num_threads64_', 'scipy_openblas_set_num_threads',
                       'openblas_set_num_threads64_', 'openblas_set_num_threads'):
            setter = getattr(library, symbol, None)
            if setter is not None:
                setter(1)
                break


if os.environ.get('ANALYSIS_BLAS_THREADS', '1') == '1':
    _single_thread_openblas()

from .io import ExportError, load_candidates, load_decisions, load_trust_game, read_export  # noqa: E402

__all__ = ['ExportError', 'load_decisions', 'load_candidates', 'load_trust_game', 'read_export']
