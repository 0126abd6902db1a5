"""Analysis of partner_selection and trust_game exports (README: docs/README_analysis.md).

Modules, one per topic: ``io`` (loading, validation), ``curves`` (AI-choice share by round),
``learning_curve`` (parametric curves), ``regression`` (mixed logit, GEE), ``learning_models``
(Rescorla–Wagner, EWA), ``candidates`` (returns, messages, beliefs), ``simulate`` (synthetic exports),
``report`` (figures and HTML). Command line: ``python -m analysis --help``.
"""
from .io import ExportError, load_candidates, load_decisions, load_trust_game, read_export

__all__ = ['ExportError', 'load_decisions', 'load_candidates', 'load_trust_game', 'read_export']
