"""Simulated participants for the production tests (hosting.http_participant over one shared client)."""
import asyncio
import concurrent.futures

import httpx

from hosting.http_participant import HttpParticipant, PartnerSelectionPolicy


def participants_for(server, session: dict, policy_factory=None, **options) -> list:
    """HttpParticipant per participant of a session (share one client via `client=`)."""
    policy_factory = policy_factory or (lambda i: PartnerSelectionPolicy(seed=i))
    return [HttpParticipant(server.base_url, p['code'], policy_factory(i), **options)
            for i, p in enumerate(session['participants'])]


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(follow_redirects=True, timeout=120)


def run(coroutine):
    """asyncio.run in a worker thread: the browser tests' session-scoped Playwright keeps an event loop
    running in the main thread, where asyncio.run refuses to start."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
