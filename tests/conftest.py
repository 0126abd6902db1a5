"""Test lanes (pytest markers, registered in pyproject.toml) and the shared oTree bot-session fixture.

Every test gets its lane markers here, from where it lives, so a new test file is `unit` by default:

  unit        fast, no server, no oTree process (the default)
  bots        oTree bot sessions (tests/otree_bots.py, scripts/bot_session.py)
  production  `otree prodserver` on PostgreSQL (tests/production/)
  browser     real Chromium (tests/browser/)
  llm         a session or call against an LLM endpoint; the real local model needs .venv-llm
  slow        everything outside the fast lane: `python -m pytest -m "not slow"` runs the unit tests
              and one short bot session

A test's own lane markers (`@pytest.mark.bots`, ...) replace the ones its file would give it: that is
how a module mixes lanes (e.g. the one fast bot session in tests/test_otree_configs.py).
"""
from pathlib import Path

import pytest

from otree_bots import BotRuns, jobs_of, run_bot_jobs

TESTS = Path(__file__).resolve().parent
LANES = ('unit', 'bots', 'production', 'browser', 'llm', 'slow')

# Lanes by folder or module (path relative to tests/); anything not listed is `unit`.
LANES_BY_PATH = {
    'production/': ('production', 'slow'),
    'browser/': ('browser', 'slow'),
    'test_otree_configs.py': ('bots', 'slow'),
    'test_partner_selection_export.py': ('bots', 'slow'),
    'test_llm_session.py': ('llm', 'bots', 'slow'),
    'test_ai_selectors_session.py': ('llm', 'bots', 'slow'),
    'test_ai_partners_real_model.py': ('llm', 'slow'),
}
# Tests using these fixtures need the lane's machinery wherever they live.
LANES_BY_FIXTURE = {
    'llama_server_url': ('llm', 'slow'),  # the real local model (.venv-llm)
    'otree_bot_runs': ('bots', 'slow'),
}


def default_lanes(item) -> set:
    try:
        relative = Path(item.fspath).resolve().relative_to(TESTS).as_posix()
    except ValueError:
        return {'unit'}
    lanes = set()
    for prefix, marks in LANES_BY_PATH.items():
        if relative == prefix or (prefix.endswith('/') and relative.startswith(prefix)):
            lanes.update(marks)
    for fixture, marks in LANES_BY_FIXTURE.items():
        if fixture in getattr(item, 'fixturenames', ()):
            lanes.update(marks)
    return lanes or {'unit'}


def own_lanes(item) -> set:
    """Lane markers written on the test itself (function, class or parameter), not on its module."""
    own = {m.name for m in getattr(item, 'own_markers', []) if m.name in LANES}
    cls = getattr(item, 'cls', None)
    if cls is not None:
        own |= {m.name for m in getattr(cls, 'pytestmark', []) if m.name in LANES}
    return own


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(config, items):
    for item in items:
        lanes = own_lanes(item) or default_lanes(item)
        for lane in sorted(lanes - {m.name for m in item.iter_markers() if m.name in LANES}):
            item.add_marker(getattr(pytest.mark, lane))


@pytest.fixture(scope='session')
def otree_bot_runs(request, tmp_path_factory) -> BotRuns:
    """Runs the bot jobs of every selected test (@pytest.mark.otree_bots) in a few oTree processes, once."""
    jobs = jobs_of(request.session.items)
    return BotRuns(run_bot_jobs(jobs, tmp_path_factory.mktemp('otree_bots')))
