"""Participants in real browser tabs and a round-robin driver that lets them play concurrently.

A `Person` is one participant's page plus everything that went wrong in it (HTTP errors, console
errors, uncaught exceptions). `play_together` visits people in turn: one on a wait page is left alone
(oTree's wait page advances by itself over its WebSocket); one on a form page gets its handler, which
fills the page as a person would and clicks Next. Every wait has a deadline, and a session in which
nobody moves for `stall_seconds` fails with where everyone is.
"""
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional
from urllib.parse import urlparse

from playwright.sync_api import Error as PlaywrightError

# Pages a participant only watches: oTree wait pages (they advance over their WebSocket) and the app's
# AI gates (shown while AI decisions are still coming; they submit themselves once the server is ready).
WAIT_PAGES = {
    'ArrivalWaitPage',
    'LabGroupingWaitPage',
    'PairingWaitPage',
    'RoundStart',
    'MessagesWaitPage',
    'AIMessagesGate',
    'ChoicesWaitPage',
    'AIChoicesGate',
    'ReturnsWaitPage',
    'ReturnsGate',
}
LAST_PAGE = 'Payment'
ACTION_TIMEOUT_MS = 15_000
NAVIGATION_TIMEOUT_MS = 20_000
# Requests whose failure a participant never notices and that say nothing about the app.
IGNORED_URL_PARTS = ('/favicon.ico',)


def is_navigating(error: Exception) -> bool:
    """A page that navigates (a wait page reloading by itself) while we look at it is not an error."""
    text = str(error)
    return 'Execution context was destroyed' in text or 'navigat' in text


class StuckError(AssertionError):
    """Nobody could move for too long; the message lists every participant's page."""


def page_name_from_url(url: str) -> str:
    """'/p/<code>/<app>/<PageName>/<index>' -> 'PageName'; any other URL -> its path."""
    parts = urlparse(url).path.strip('/').split('/')
    if len(parts) >= 5 and parts[0] == 'p':
        return parts[3]
    return urlparse(url).path


def round_from_title(title: str) -> Optional[int]:
    """'Round 2: choose a candidate' -> 2 (oTree's URL index counts pages, not rounds)."""
    match = re.match(r'Round (\d+):', title)
    return int(match.group(1)) if match else None


@dataclass
class Person:
    """One participant in one browser context; `role` and `number` are learned from the pages."""

    id_in_session: int
    code: str
    page: object  # playwright Page
    device: str = 'desktop'
    role: str = ''
    problems: List[str] = field(default_factory=list)
    visits: List[str] = field(default_factory=list)
    done: bool = False

    def watch(self) -> None:
        """Collects what a participant would see go wrong: error responses, console errors, JS exceptions."""
        self.page.on('console', self._on_console)
        self.page.on('pageerror', lambda error: self.problems.append(f'uncaught JS exception: {error}'))
        self.page.on('response', self._on_response)

    def _on_console(self, message) -> None:
        if message.type == 'error':
            self.problems.append(f'console error on {page_name_from_url(self.page.url)}: {message.text}')

    def _on_response(self, response) -> None:
        if response.status >= 400 and not any(part in response.url for part in IGNORED_URL_PARTS):
            self.problems.append(f'HTTP {response.status} for {response.request.method} {response.url}')

    @property
    def name(self) -> str:
        return f'participant {self.id_in_session} ({self.role or "role unknown"}, {self.device})'

    @property
    def page_name(self) -> str:
        return page_name_from_url(self.page.url)

    def title(self) -> str:
        heading = self.page.locator('#_otree-title')
        return heading.inner_text().strip() if heading.count() else ''

    def content_text(self) -> str:
        """The visible text of the page body (what the participant reads)."""
        return self.page.locator('body').inner_text()

    def form_errors(self) -> List[str]:
        """oTree's error banner and per-field errors, as shown."""
        locator = self.page.locator('.otree-form-errors, .form-control-errors, .invalid-feedback')
        return [text.strip() for text in locator.all_inner_texts() if text.strip()]

    def click_next(self) -> None:
        """Clicks Next and waits until the next page (or the same page with errors) has loaded."""
        with self.page.expect_navigation(wait_until='load', timeout=NAVIGATION_TIMEOUT_MS):
            self.page.get_by_role('button', name='Next').click()
        self.check_no_server_error()

    def check_no_server_error(self) -> None:
        text = self.content_text()
        for marker in ('Internal Server Error', 'Server Error', 'Traceback (most recent call last)'):
            assert marker not in text, f'{self.name} sees a server error on {self.page.url}:\n{text[:2000]}'
        assert not self.problems, f'{self.name}: ' + '\n'.join(self.problems)

    def wait_page_failed(self) -> bool:
        """oTree shows '#_otree-server-error' on a wait page when the code run at the wait page fails."""
        banner = self.page.locator('#_otree-server-error')
        return banner.count() > 0 and banner.is_visible()


Handler = Callable[[Person], None]


@dataclass
class Screenshots:
    """One full-page screenshot per (page type, role, device), taken the first time it is seen."""

    folder: Path
    prefix: str
    taken: Dict[str, Path] = field(default_factory=dict)

    def take(self, person: Person, suffix: str = '') -> Optional[Path]:
        key = f'{self.prefix}_{person.page_name}_{person.role or "participant"}_{person.device}{suffix}'
        if key in self.taken:
            return None
        path = self.folder / f'{key}.png'
        person.page.screenshot(path=str(path), full_page=True)
        self.taken[key] = path
        return path


def where_everyone_is(people: List[Person]) -> str:
    lines = []
    for person in people:
        try:
            title = person.title()
        except Exception as error:  # a closed or crashed page still gets reported
            title = f'<unreadable: {error}>'
        lines.append(f'  {person.name}: {person.page_name} "{title}" {person.page.url} visits={person.visits[-6:]}')
    return '\n'.join(lines)


def play_together(
    people: List[Person],
    handlers: Dict[str, Handler],
    screenshots: Screenshots,
    stall_seconds: float = 30,
    total_seconds: float = 240,
    poll_ms: int = 100,
) -> None:
    """Drives everyone round-robin until all reach the Payment page (handled by handlers['Payment'])."""
    started = last_progress = time.monotonic()
    while not all(person.done for person in people):
        moved = False
        for person in people:
            if person.done:
                continue
            page_name = person.page_name
            if page_name in WAIT_PAGES:
                try:
                    failed = person.wait_page_failed()
                    screenshots.take(person)
                except PlaywrightError as error:
                    if is_navigating(error):
                        continue
                    raise
                assert not failed, (
                    f'{person.name}: the wait page {page_name} reports a server error.\n' + where_everyone_is(people)
                )
                continue
            person.page.wait_for_load_state('load', timeout=NAVIGATION_TIMEOUT_MS)
            if person.page_name != page_name:  # moved on while we looked; visit it next time
                continue
            handler = handlers.get(page_name)
            assert handler, f'{person.name} is on a page the test does not know: {person.page.url}'
            person.check_no_server_error()
            person.visits.append(page_name)
            screenshots.take(person)
            handler(person)
            if page_name == LAST_PAGE:
                person.done = True
            moved = True
        now = time.monotonic()
        if moved:
            last_progress = now
        elif now - last_progress > stall_seconds:
            raise StuckError(f'nobody could move for {stall_seconds} s:\n' + where_everyone_is(people))
        if now - started > total_seconds:
            raise StuckError(f'the session took longer than {total_seconds} s:\n' + where_everyone_is(people))
        if not moved:
            people[0].page.wait_for_timeout(poll_ms)
