"""Fixtures for the real-browser tests: an oTree production server, Debian's Chromium, a screenshot folder.

Needs `bash scripts/setup_browser.sh` (apt chromium + the playwright Python package). Set
SKIP_BROWSER_TESTS=1 to skip these tests explicitly; otherwise missing pieces fail with the fix.
"""
import os
import shutil
from pathlib import Path

import pytest

from hosting.otree_server import start_server

CHROMIUM = os.environ.get('BROWSER_TESTS_CHROMIUM', '/usr/bin/chromium')
# Headless Chromium as root in a container: no sandbox, no GPU, no calls home, no first-run UI.
CHROMIUM_ARGS = [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--no-first-run',
    '--disable-sync',
]
SETUP_HINT = 'run `bash scripts/setup_browser.sh` (or set SKIP_BROWSER_TESTS=1 to skip the browser tests)'
SCREENSHOTS_KEY = pytest.StashKey[Path]()


@pytest.fixture(scope='session')
def sync_playwright_api():
    if os.environ.get('SKIP_BROWSER_TESTS') == '1':
        pytest.skip('SKIP_BROWSER_TESTS=1')
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f'the playwright Python package is missing: {SETUP_HINT}', pytrace=False)
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.fail(f'{CHROMIUM} is missing: {SETUP_HINT}', pytrace=False)
    return sync_playwright


@pytest.fixture(scope='session')
def browser(sync_playwright_api):
    """One headless Chromium for the whole run; each participant gets its own context (cookies, storage)."""
    with sync_playwright_api() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope='session')
def otree_server(tmp_path_factory, sync_playwright_api):
    """A fresh `otree prodserver` on 127.0.0.1 (free port, own SQLite DB), stopped after the run."""
    server = start_server(tmp_path_factory.mktemp('otree_server'))
    yield server
    server.stop()


@pytest.fixture(scope='session')
def screenshot_dir(tmp_path_factory, request) -> Path:
    """Folder for one screenshot per page type and treatment; its path is printed at the end of the run."""
    path = tmp_path_factory.mktemp('browser_screenshots')
    request.config.stash[SCREENSHOTS_KEY] = path
    print(f'\nbrowser test screenshots: {path}')
    return path


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    path = config.stash.get(SCREENSHOTS_KEY, None)
    if path is not None:
        shots = sorted(path.rglob('*.png'))
        terminalreporter.write_line(f'browser test screenshots ({len(shots)} PNG): {path}')
