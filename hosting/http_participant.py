"""Simulated participants that use a real oTree server over HTTP the way a browser does.

A participant GETs its start link, fills each form page through a *policy* (a function from the parsed
page to form values), POSTs it, and follows the redirect. On an oTree wait page it opens the page's
WebSocket and reloads when the server says so (as oTree's wait-page JavaScript does), with a periodic
reload as a safety net. On the app's AI gates (pages that wait for AI decisions) it does what the gate's
script does (study/AIGate.html): one live request over the page's live WebSocket when the gate can open,
another when the server says, then the form is posted (`gate_requests` counts the live requests per gate
visit). Dropped connections (a restarted server) are retried until `reconnect_seconds` pass.

Every page load is timed (`PageTiming`), and every accepted decision is kept (`Decision`) so tests and
benchmarks can compare what participants submitted with what the database holds.
"""
import asyncio
import json
import random
import re
import time
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser
from typing import Callable, Dict, List, Optional, Union
from urllib.parse import urlparse

import httpx
import websockets

from game_logic.payoffs import comprehension_example

# Pages that wait for AI decisions: posting them is refused until the server is ready.
GATE_PAGES = {'AIMessagesGate', 'AIChoicesGate', 'ReturnsGate', 'ReturnGate'}
GATE_RETRY_SECONDS = 0.5  # a gate page without its live socket or timing: re-posted this often
GATE_SAFETY_SECONDS = 10.0  # a live request unanswered this long: post the form (as the gate's script)
JS_VARS = re.compile(r'var js_vars = (\{.*?\});</script>', re.S)
LIVE_SOCKET = re.compile(r'id="otree-live" data-socket-url="([^"]+)"')
# Reload a wait page at least this often even if its WebSocket says nothing (a browser would not,
# but a lost message must not hang a benchmark).
WAIT_PAGE_RELOAD_SECONDS = 10.0
FINISHED_PATHS = ('/OutOfRangeNotification',)
WAIT_SOCKET = re.compile(r'makeReconnectingWebSocket\("([^"]+)"\)')
TITLE = re.compile(r'<h2[^>]*id="_otree-title"[^>]*>(.*?)</h2>', re.S)


class ParticipantError(RuntimeError):
    """A participant cannot go on (server error, a page its policy cannot fill, no progress)."""


@dataclass
class PageView:
    """What a participant sees on one page: its name, form inputs, errors, wait-page socket."""

    url: str
    status: int
    html: str
    name: str
    title: str
    inputs: Dict[str, List[dict]]  # input name -> every <input>/<textarea>/<select> with that name
    has_form: bool
    wait_socket: Optional[str]
    shows_error: bool

    @property
    def is_wait_page(self) -> bool:
        return self.wait_socket is not None and not self.has_form

    @property
    def is_finished(self) -> bool:
        return urlparse(self.url).path.startswith(FINISHED_PATHS)

    def text(self) -> str:
        return unescape(re.sub(r'<[^>]+>', ' ', self.html))


class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.inputs: Dict[str, List[dict]] = {}
        self.has_form = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == 'form' and attributes.get('id') == 'form':
            self.has_form = True
        if tag in ('input', 'textarea', 'select') and attributes.get('name'):
            attributes['tag'] = tag
            self.inputs.setdefault(attributes['name'], []).append(attributes)


def page_name(url: str) -> str:
    """'/p/<code>/<app>/<PageName>/<index>' -> 'PageName'; any other URL -> its path."""
    parts = urlparse(url).path.strip('/').split('/')
    return parts[3] if len(parts) >= 5 and parts[0] == 'p' else urlparse(url).path


def parse_page(url: str, status: int, html: str) -> PageView:
    parser = _FormParser()
    parser.feed(html)
    socket = WAIT_SOCKET.search(html)
    title = TITLE.search(html)
    return PageView(
        url=url,
        status=status,
        html=html,
        name=page_name(url),
        title=unescape(re.sub(r'<[^>]+>', '', title.group(1))).strip() if title else '',
        inputs=parser.inputs,
        has_form=parser.has_form,
        wait_socket=socket.group(1) if socket else None,
        shows_error='otree-form-errors' in html or 'invalid-feedback' in html or 'alert-danger' in html,
    )


@dataclass
class PageTiming:
    """One request as the participant waits for it: `kind` is start | submit | wait_reload | gate_retry (a
    gate's form post) | gate_live (a gate's live request, `seconds` until its answer); `redirects`: the
    redirects followed (each one more request to the server)."""

    participant: str
    page: str
    kind: str
    seconds: float
    status: int
    started_at: float
    redirects: int = 0
    passed: tuple = ()  # pages the redirects went through without stopping (a wait page already complete)


@dataclass
class Decision:
    """One accepted form submission carrying a decision (not consent or Next on an info page)."""

    participant: str
    page: str
    round_number: Optional[int]
    values: dict


# --- policies: page -> form values (None = "I cannot fill this page") ------------------------------------

def round_from_title(title: str) -> Optional[int]:
    match = re.match(r'Round (\d+)( of \d+)?:', title)  # 'Round 2: …' or 'Round 2 of 3: …'
    return int(match.group(1)) if match else None


def hidden_values(page: PageView) -> dict:
    return {name: found[0].get('value', '') for name, found in page.inputs.items()
            if found[0].get('type') == 'hidden'}


JOURNEY_PAGES = ('Consent', 'Comprehension', 'Questionnaire')


def journey_values(page: PageView, values: dict, rng: random.Random, endowment: int, multiplier: int) -> dict:
    """The intro and exit apps' forms, as an attentive participant fills them: consent, the right
    comprehension answers, a valid answer to every questionnaire item (q_1, q_2, …)."""
    if page.name == 'Consent':
        values['consent'] = 'True'  # the radio button 'I agree'
    elif page.name == 'Comprehension':
        sender = comprehension_example(endowment, multiplier, True)
        receiver = comprehension_example(endowment, multiplier, False)
        values.update(comp_received=str(sender.received), comp_payoff=str(sender.payoff),
                      comp_kept=str(receiver.payoff))
    else:
        for name, found in page.inputs.items():
            if not name.startswith('q_'):
                continue
            if found[0].get('type') == 'radio':
                values[name] = rng.choice(found).get('value', '')
            elif found[0].get('type') == 'number':
                values[name] = found[0].get('min', '0')
            else:
                values[name] = 'I compared the messages.'
    return values


class PartnerSelectionPolicy:
    """Plays partner_selection like an attentive participant: consents, answers the comprehension check
    correctly, writes a message, picks a random card, returns a random share. Seeded per participant."""

    DECISION_PAGES = {'WriteMessage', 'Choose', 'Return'}

    def __init__(self, endowment: int = 10, multiplier: int = 3, seed: int = 0, message: str = None):
        self.endowment, self.multiplier = endowment, multiplier
        self.rng = random.Random(seed)
        self.message = message

    def __call__(self, page: PageView) -> Optional[dict]:
        values = hidden_values(page)
        name = page.name
        if name in JOURNEY_PAGES:
            return journey_values(page, values, self.rng, self.endowment, self.multiplier)
        elif name == 'WriteMessage':
            values['message'] = self.message or self.rng.choice([
                'I will return half of what I receive, every round.',
                'Pick me: fair returns, no tricks.',
                'Trust is repaid here. I always give back more than you sent.',
            ])
        elif name == 'Choose':
            cards = [item['value'] for item in page.inputs.get('choice', [])]
            if not cards:
                return None
            values['choice'] = self.rng.choice(cards)
            if 'amount' in page.inputs:
                values['amount'] = str(self.rng.randint(0, self.endowment))
            for belief in (n for n in page.inputs if n.startswith('belief_')):
                values[belief] = self.rng.choice(['ai', 'human'])
        elif name == 'Return':
            received = [int(x) for x in re.findall(r'you received (\d+) points', page.text())]
            fields = sorted((n for n in page.inputs if n.startswith('return_')), key=lambda n: int(n[7:]))
            if len(received) != len(fields):
                return None
            for field_name, amount in zip(fields, received):
                values[field_name] = str(self.rng.randint(0, amount) if amount else 0)
        return values

    def is_decision(self, page: PageView) -> bool:
        return page.name in self.DECISION_PAGES


class TrustGamePolicy:
    """Plays trust_game (oTree's sample trust flow: Send, wait, Return, Results): random amounts."""

    DECISION_PAGES = {'Send', 'Return'}

    def __init__(self, seed: int = 0, endowment: int = 10, multiplier: int = 3):
        self.rng = random.Random(seed)
        self.endowment, self.multiplier = endowment, multiplier

    def __call__(self, page: PageView) -> Optional[dict]:
        values = hidden_values(page)
        if page.name in JOURNEY_PAGES:
            return journey_values(page, values, self.rng, self.endowment, self.multiplier)
        fields = {'Send': 'sent_amount', 'Return': 'sent_back_amount'}
        if page.name in fields:
            name = fields[page.name]
            high = self.upper_bound(page, name)
            if high is None:
                return None
            values[name] = str(self.rng.randint(int(page.inputs[name][0].get('min', 0)), high))
        return values

    @staticmethod
    def upper_bound(page: PageView, name: str) -> Optional[int]:
        """N from the page's hint 'from 0 to N' (the rule of this round), else the field's max attribute
        (a bound of the form, which may be above what the round allows)."""
        found = re.search(r'from 0 to (\d+)', page.text())
        high = found.group(1) if found else page.inputs[name][0].get('max')
        return None if high is None else int(high)

    def is_decision(self, page: PageView) -> bool:
        return page.name in self.DECISION_PAGES


# --- the participant ----------------------------------------------------------------------------------

@dataclass
class HttpParticipant:
    """One simulated participant. `await run()` plays from the start link to the end of the session."""

    base_url: str
    code: str
    policy: Callable[[PageView], Optional[dict]]
    client: httpx.AsyncClient
    # pause before each submission, as a person reading the page; a callable gives a fresh pause each time
    think_seconds: Union[float, Callable[[], float]] = 0.0
    reconnect_seconds: float = 60.0
    stall_seconds: float = 300.0  # give up if one page does not change for this long
    # a wait page is reloaded when its WebSocket says so, or after this long without a word (a browser
    # never reloads; a load benchmark raises it so that its safety net does not add load)
    wait_reload_seconds: float = WAIT_PAGE_RELOAD_SECONDS
    silent_reloads: int = 0  # wait-page reloads without the WebSocket's word (safety net, server gone)
    stop_before: Optional[Callable[[PageView], bool]] = None  # pause here (return) instead of submitting
    timings: List[PageTiming] = field(default_factory=list)
    gate_requests: Dict[str, int] = field(default_factory=dict)  # gate visited (page URL) -> live requests
    decisions: List[Decision] = field(default_factory=list)
    rejected: List[str] = field(default_factory=list)
    page: Optional[PageView] = None

    @property
    def start_url(self) -> str:
        return f'{self.base_url}/InitializeParticipant/{self.code}'

    async def _request(self, method: str, url: str, kind: str, data: dict = None) -> PageView:
        """One page load with redirects, retried while the server is unreachable or restarting."""
        deadline = time.monotonic() + self.reconnect_seconds
        while True:
            started = time.monotonic()
            try:
                response = await self.client.request(method, url, data=data)
            except (httpx.TransportError, httpx.TimeoutException) as error:
                if time.monotonic() > deadline:
                    raise ParticipantError(f'{self.code}: server unreachable for {self.reconnect_seconds} s: {error}')
                await asyncio.sleep(0.5)
                continue
            seconds = time.monotonic() - started
            page = parse_page(str(response.url), response.status_code, response.text)
            passed = tuple(page_name(str(hop.url)) for hop in response.history[1:])  # not the URL asked for
            self.timings.append(PageTiming(self.code, page.name, kind, seconds, response.status_code, started,
                                           len(response.history), passed))
            if response.status_code >= 500:
                if time.monotonic() > deadline:
                    raise ParticipantError(f'{self.code}: HTTP {response.status_code} on {url}: {response.text[:300]}')
                await asyncio.sleep(0.5)
                continue
            if response.status_code >= 400:
                raise ParticipantError(f'{self.code}: HTTP {response.status_code} on {url}: {response.text[:300]}')
            return page

    async def start(self) -> PageView:
        self.page = await self._request('GET', self.start_url, 'start')
        return self.page

    async def run(self) -> 'HttpParticipant':
        """Plays until the session's last page is behind it (or `stop_before` says to pause)."""
        if self.page is None:
            await self.start()
        unchanged_since, last_url = time.monotonic(), None
        while not self.page.is_finished:
            if self.page.url != last_url:
                unchanged_since, last_url = time.monotonic(), self.page.url
            elif time.monotonic() - unchanged_since > self.stall_seconds:
                raise ParticipantError(f'{self.code}: stuck on {self.page.name} for {self.stall_seconds} s')
            if self.stop_before and self.stop_before(self.page):
                return self
            if self.page.is_wait_page:
                await self._wait_for_advance(self.page)
                self.page = await self._request('GET', self.page.url, 'wait_reload')
            elif self.page.has_form:
                await self._submit(self.page)
            else:
                raise ParticipantError(f'{self.code}: page {self.page.url} has neither a form nor a wait socket')
        return self

    def _socket_headers(self) -> list:
        """What a browser's WebSocket handshake carries from its pages: the cookies (e.g. HAProxy's server
        cookie, so the socket reaches the participant's server) and the client's own X- headers."""
        headers = [(k, v) for k, v in self.client.headers.items() if k.lower().startswith('x-')]
        cookies = '; '.join(f'{c.name}={c.value}' for c in self.client.cookies.jar)
        return headers + ([('Cookie', cookies)] if cookies else [])

    async def _wait_for_advance(self, page: PageView) -> None:
        """Waits for the wait page's WebSocket message (or the safety-net reload interval)."""
        ws_url = 'ws' + self.base_url[len('http'):] + page.wait_socket
        try:
            async with websockets.connect(ws_url, open_timeout=self.wait_reload_seconds, close_timeout=1,
                                          extra_headers=self._socket_headers()) as socket:
                await asyncio.wait_for(socket.recv(), timeout=self.wait_reload_seconds)
        except (asyncio.TimeoutError, OSError, websockets.WebSocketException):
            self.silent_reloads += 1
            await asyncio.sleep(0.2)  # server gone or silent: reload and see

    async def _wait_at_gate(self, page: PageView) -> None:
        """Until the AI gate may open, as its script does: ask over the live socket at the time the page
        gives, again when the answer says; any word 'advance' (also one sent to the whole group) ends it.
        Without a socket, or with an answer missing for GATE_SAFETY_SECONDS, it returns and the form is
        posted (the server then checks)."""
        self.gate_requests.setdefault(page.url, 0)
        found, socket_path = JS_VARS.search(page.html), LIVE_SOCKET.search(page.html)
        ask_in_ms = json.loads(found.group(1)).get('gate_remaining_ms') if found else None
        if ask_in_ms is None or not socket_path:  # a gate that polls (before issue 14): re-post it
            await asyncio.sleep(GATE_RETRY_SECONDS)
            return
        ask_in = ask_in_ms / 1000
        ws_url = 'ws' + self.base_url[len('http'):] + unescape(socket_path.group(1))
        attempt = 0
        try:
            async with websockets.connect(ws_url, open_timeout=GATE_SAFETY_SECONDS, close_timeout=1,
                                          extra_headers=self._socket_headers()) as socket:
                while True:
                    reply = await self._live_reply(socket, ask_in)  # a word for the group while waiting
                    if reply is None:
                        self.gate_requests[page.url] += 1
                        started = time.monotonic()
                        await socket.send(json.dumps({'attempt': attempt}))
                        reply = await self._live_reply(socket, GATE_SAFETY_SECONDS)
                        self.timings.append(PageTiming(self.code, page.name, 'gate_live',
                                                       time.monotonic() - started, 200, started))
                        if reply is None:
                            return  # unanswered: post the form
                    if reply.get('advance') or 'ask_in_ms' not in reply:  # in, or a server error: post
                        return
                    attempt += 1
                    ask_in = reply['ask_in_ms'] / 1000
        except (OSError, websockets.WebSocketException, asyncio.TimeoutError):
            await asyncio.sleep(GATE_RETRY_SECONDS)  # no live socket: post the form and see

    @staticmethod
    async def _live_reply(socket, timeout: float) -> Optional[dict]:
        """The next live-method answer within `timeout` seconds, else None."""
        try:
            message = json.loads(await asyncio.wait_for(socket.recv(), timeout=max(0.0, timeout)))
        except asyncio.TimeoutError:
            return None
        return message.get('live_method_payload') or {}

    async def _submit(self, page: PageView) -> None:
        values = self.policy(page)
        if values is None:
            raise ParticipantError(f'{self.code}: the policy cannot fill {page.name}:\n{page.text()[:1000]}')
        pause = self.think_seconds() if callable(self.think_seconds) else self.think_seconds
        if page.name in GATE_PAGES:
            await self._wait_at_gate(page)
        elif pause:
            await asyncio.sleep(pause)
        kind = 'gate_retry' if page.name in GATE_PAGES else 'submit'
        next_page = await self._request('POST', page.url, kind, data=values)
        if next_page.url == page.url:  # the same page again: the server refused the submission
            if page.name not in GATE_PAGES:  # (a refused gate post shows when to ask next)
                self.rejected.append(page.name)
                if len(self.rejected) > 20:
                    raise ParticipantError(f'{self.code}: {page.name} keeps refusing:\n{next_page.text()[:1000]}')
        elif getattr(self.policy, 'is_decision', lambda p: False)(page):
            values = {k: v for k, v in values.items() if not k.startswith('_')}
            self.decisions.append(Decision(self.code, page.name, round_from_title(page.title), values))
        self.page = next_page


def percentile(values: List[float], q: float) -> float:
    """The q-th percentile (0–100) by linear interpolation; nan for no values."""
    if not values:
        return float('nan')
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


async def play_all(participants: List[HttpParticipant]) -> None:
    """Runs everyone concurrently; the first participant error cancels the rest and is raised."""
    tasks = [asyncio.create_task(p.run()) for p in participants]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
