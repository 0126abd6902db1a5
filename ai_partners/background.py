"""Run AI decisions in the background so no participant ever waits on an LLM.

oTree's server handles one request at a time: a slow call inside a page hook freezes everyone. So the
app starts each AI decision when it becomes possible (broker.start returns at once) and collects it
later, at a wait page, with a deadline (broker.collect). Whatever goes wrong — the call never started
(e.g. the server restarted in between), is still running at the deadline, or raised — collect returns
the scripted fallback flagged with a reason, so the session always goes on.
"""
from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from dataclasses import dataclass

from .decision import DECISIONS, AIDecision, GameView
from .partners import check_amounts, check_view
from .selectors import check_selector_view

log = logging.getLogger('ai_partners')


@dataclass
class _Job:
    future: concurrent.futures.Future
    started: float  # time.monotonic() at start


class DecisionBroker:
    """A thread pool plus a thread-safe dict key -> running decision."""

    # Threads that wait on the network cost little; the pool must hold every call of a round at once
    # (AI candidates x selectors over all groups), since time queued here counts against the deadline.
    def __init__(self, max_workers: int = 256):
        self.max_workers = max_workers
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        # Created on first use so importing the package starts no threads.
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=self.max_workers, thread_name_prefix='ai-partner')
        return self._pool

    def start(self, key: str, partner, decision: str, view: GameView, **kwargs) -> bool:
        """Start partner's decision in the background under key; returns at once.

        Returns True if started, False if a decision under this key is already pending (a page
        reload must not start a second call). kwargs for 'return': amount_sent, amount_received,
        counterpart. partner may be an AI selector (ai_partners.selectors) with decision 'choice'.
        """
        if decision not in (*DECISIONS, 'choice'):
            raise ValueError(f"decision must be one of {(*DECISIONS, 'choice')}, got {decision!r}")
        # Bad input is the caller's bug: say so now, not as a fallback at collect time.
        if decision == 'choice':  # an AI selector's (ai_partners.selectors)
            check_selector_view(view)
        else:
            check_view(view)
        if decision == 'return':
            check_amounts(kwargs.get('amount_sent'), kwargs.get('amount_received'))
        with self._lock:
            if key in self._jobs:
                return False
            future = self._executor().submit(partner.decide, decision, view, **kwargs)
            self._jobs[key] = _Job(future, time.monotonic())
            return True

    def collectable(self, keys, requested_at: float, deadline_seconds: float, now: float | None = None) -> bool:
        """True when collecting every key now would not wait: each finished, or is not running in this
        process (lost in a server restart: it can only fall back), or the deadline has passed.

        requested_at is epoch seconds (time.time()) so it can be stored in the database.
        """
        now = time.time() if now is None else now
        if now >= requested_at + deadline_seconds:
            return True
        with self._lock:
            jobs = [self._jobs.get(key) for key in keys]
        return all(job is None or job.future.done() for job in jobs)

    @staticmethod
    def seconds_left(requested_at: float, deadline_seconds: float, now: float | None = None) -> float:
        """What remains of a deadline counted from requested_at (epoch seconds); never negative."""
        now = time.time() if now is None else now
        return max(0.0, requested_at + deadline_seconds - now)

    def pending(self) -> list[str]:
        """Keys started and not yet collected."""
        with self._lock:
            return list(self._jobs)

    def collect(self, key: str, partner, decision: str, view: GameView, deadline_seconds: float = 5.0,
                **kwargs) -> AIDecision:
        """The decision under key, waiting at most deadline_seconds; removes the key.

        If the call was never started, is still running at the deadline, or raised, returns
        partner's scripted decision with fallback=True and fallback_reason 'not_started',
        'deadline' or 'error:<ExceptionType>'. Same kwargs as start.
        """
        with self._lock:
            job = self._jobs.pop(key, None)
        if job is None:
            return partner.fallback(decision, view, 'not_started', **kwargs)
        try:
            result = job.future.result(timeout=max(0.0, float(deadline_seconds)))
        except concurrent.futures.TimeoutError:
            # The call keeps running in its thread (it has its own timeout); its result is discarded.
            job.future.cancel()
            waited_ms = (time.monotonic() - job.started) * 1000
            return partner.fallback(decision, view, 'deadline', latency_ms=waited_ms, **kwargs)
        except Exception as error:  # noqa: BLE001 - any failure of the partner becomes a flagged fallback
            log.exception("AI partner call %s raised", key)
            waited_ms = (time.monotonic() - job.started) * 1000
            return partner.fallback(decision, view, f'error:{type(error).__name__}', latency_ms=waited_ms,
                                    **kwargs)
        return result

    def shutdown(self) -> None:
        """Forget all pending decisions and stop the pool (tests; the app never needs this)."""
        with self._lock:
            self._jobs.clear()
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


broker = DecisionBroker()
