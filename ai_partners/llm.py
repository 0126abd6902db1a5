"""The llm policy: decisions from any OpenAI-compatible /chat/completions endpoint.

Works with OpenAI, vLLM, Ollama (/v1) and llama.cpp's server. The API key is read only from the
environment variable named by the session config's llm_api_key_env (no key: no Authorization header).
The reply must be one JSON object, validated with extra fields forbidden:
  message decision: {"message": "<non-empty text of at most max_message_length characters>"}
  return decision:  {"return": <integer from 0 to the amount received>}
Anything else — timeout, refused connection, HTTP error, rate limiting beyond the retry budget,
malformed JSON, a value out of range — gives the scripted preset's decision with fallback=True and
a reason (see FALLBACK_REASONS). Calls are synchronous; the broker runs them concurrently.
"""
from __future__ import annotations

import email.utils
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import httpx

from . import prompting
from .decision import AIDecision, GameView
from .partners import Partner, check_amounts, check_view

log = logging.getLogger('ai_partners')

FALLBACK_REASONS = {
    'timeout': 'no complete reply within llm_timeout_seconds (the whole call: connect, retries, body)',
    'connection_error': 'the endpoint could not be reached (refused, reset, DNS, TLS)',
    'bad_api_key': 'the key variable holds white space or non-printable characters inside (e.g. two '
                   'pasted keys); nothing is sent, and the key never reaches the data',
    'http_<status>': 'the endpoint answered with an HTTP error status, e.g. http_500, http_404',
    'rate_limited': 'HTTP 429 on every attempt within the retry budget',
    'bad_response': 'HTTP 200 but the body is not a chat completion (no choices[0].message.content)',
    'invalid_json': 'the reply contains no JSON object',
    'schema:<detail>': 'the JSON object does not fit the schema, e.g. schema:extra_field:reason, '
                       'schema:missing_return, schema:return_not_integer, schema:return_out_of_range, '
                       'schema:message_not_string, schema:empty_message, schema:message_too_long, '
                       'schema:not_an_object',
    'error:<Type>': 'an unforeseen exception in the client (a bug); logged with its traceback',
}

# 429 handling: at most this many attempts, waiting Retry-After (capped) or an exponential backoff,
# and never beyond the call's timeout budget.
MAX_ATTEMPTS = 4
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0
RAW_REPLY_LIMIT = 4000  # characters of an error body kept in the data

# Building an SSL context costs ~0.1-0.6 s (it loads the CA bundle); one is shared by all calls.
_SSL_CONTEXT = None
_SSL_CONTEXT_LOCK = threading.Lock()

# Endpoints that answered 400 to response_format; later calls to them skip it.
_NO_RESPONSE_FORMAT: set[str] = set()
_NO_RESPONSE_FORMAT_LOCK = threading.Lock()


class ReplyProblem(Exception):
    """The model's reply does not conform; .reason is the fallback reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --- reply parsing: pure functions -----------------------------------------------------------

def extract_json_object(text: str) -> dict:
    """The JSON object in a reply: the whole text, or the first {...} inside fences or prose.

    Raises ReplyProblem('invalid_json') if there is none, 'schema:not_an_object' if the whole reply
    is JSON but not an object.
    """
    if not isinstance(text, str):
        raise ReplyProblem('invalid_json')
    stripped = text.strip()
    try:
        whole = json.loads(stripped)
    except ValueError:
        pass
    else:
        if isinstance(whole, dict):
            return whole
        raise ReplyProblem('schema:not_an_object')
    decoder = json.JSONDecoder()
    start = stripped.find('{')
    while start != -1:
        try:
            found, _ = decoder.raw_decode(stripped, start)
        except ValueError:
            found = None
        if isinstance(found, dict):
            return found
        start = stripped.find('{', start + 1)
    raise ReplyProblem('invalid_json')


def _only_field(obj: dict, name: str):
    extra = sorted(set(obj) - {name})
    if extra:
        raise ReplyProblem(f'schema:extra_field:{extra[0]}')
    if name not in obj:
        raise ReplyProblem(f'schema:missing_{name}')
    return obj[name]


def parse_message_reply(text: str, max_message_length: int) -> str:
    """Reply text -> the message (stripped), or ReplyProblem."""
    message = _only_field(extract_json_object(text), 'message')
    if not isinstance(message, str):
        raise ReplyProblem('schema:message_not_string')
    message = message.strip()
    if not message:
        raise ReplyProblem('schema:empty_message')
    if len(message) > max_message_length:
        raise ReplyProblem('schema:message_too_long')
    return message


def parse_return_reply(text: str, amount_received: int) -> int:
    """Reply text -> the returned amount, an int in [0, amount_received], or ReplyProblem."""
    value = _only_field(extract_json_object(text), 'return')
    if not isinstance(value, int) or isinstance(value, bool):
        raise ReplyProblem('schema:return_not_integer')
    if not 0 <= value <= amount_received:
        raise ReplyProblem('schema:return_out_of_range')
    return value


def retry_after_seconds(header: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if absent/bad."""
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def backoff_seconds(attempt: int, retry_after: float | None) -> float:
    """Wait before attempt+1: Retry-After if given, else BASE * 2^(attempt-1); both capped."""
    wait = retry_after if retry_after is not None else BACKOFF_BASE_SECONDS * 2 ** (attempt - 1)
    return min(wait, BACKOFF_CAP_SECONDS)


# --- the partner -----------------------------------------------------------------------------

class _CallResult:
    """What came back from the endpoint (or why nothing usable did)."""

    def __init__(self):
        self.content = None  # the model's reply text, when there is one
        self.raw_reply = ''
        self.model = ''
        self.prompt_tokens = None
        self.completion_tokens = None
        self.failure = ''  # fallback reason for transport/HTTP failures


class LLMPartner(Partner):
    """AI partner whose decisions come from an OpenAI-compatible chat-completions endpoint."""

    policy = 'llm'

    @property
    def url(self) -> str:
        return self.settings.llm_base_url.rstrip('/') + '/chat/completions'

    def api_key(self) -> str:
        """The key from the environment variable named by llm_api_key_env ('' if none), stripped."""
        env = self.settings.llm_api_key_env
        return os.environ.get(env, '').strip() if env else ''

    def headers(self) -> dict:
        """Request headers; Authorization only if the named environment variable holds a key."""
        headers = {'Content-Type': 'application/json'}
        key = self.api_key()
        if key:
            headers['Authorization'] = f'Bearer {key}'
        return headers

    def redact(self, text: str) -> str:
        """text with the API key (if any) replaced, so that no error message carries it into the data."""
        key = self.api_key()
        return text.replace(key, '[API key]') if key else text

    def payload(self, messages: list[dict], response_format: bool) -> dict:
        body = dict(model=self.settings.llm_model, messages=messages,
                    temperature=self.settings.llm_temperature, max_tokens=self.settings.llm_max_tokens)
        if self.settings.llm_seed is not None:
            body['seed'] = self.settings.llm_seed
        if response_format:
            body['response_format'] = {'type': 'json_object'}
        return body

    def write_message(self, view: GameView) -> AIDecision:
        check_view(view)
        messages = prompting.message_messages(view, self.settings.llm_persona)
        return self._decide('message', view, messages,
                            lambda text: parse_message_reply(text, view.max_message_length))

    def decide_return(self, view: GameView, amount_sent: int, amount_received: int,
                      counterpart: str = '') -> AIDecision:
        check_view(view)
        check_amounts(amount_sent, amount_received)
        messages = prompting.return_messages(view, amount_sent, amount_received, self.settings.llm_persona)
        return self._decide('return', view, messages, lambda text: parse_return_reply(text, amount_received),
                            amount_sent=amount_sent, amount_received=amount_received, counterpart=counterpart)

    def fallback(self, decision: str, view: GameView, reason: str, latency_ms: float = 0.0,
                 **kwargs) -> AIDecision:
        """Scripted value, flagged, with the prompt that was (or would have been) sent."""
        row = super().fallback(decision, view, reason, latency_ms=latency_ms, **kwargs)
        if decision == 'message':
            messages = prompting.message_messages(view, self.settings.llm_persona)
        else:
            messages = prompting.return_messages(view, kwargs.get('amount_sent', 0),
                                                 kwargs.get('amount_received', 0), self.settings.llm_persona)
        row.model = self.settings.llm_model
        row.endpoint_host = self.settings.endpoint_host
        row.prompt = prompting.prompt_record(messages)
        return row

    def _decide(self, decision, view, messages, parse, **kwargs) -> AIDecision:
        started = time.perf_counter()
        try:
            result = self.call(messages)
        except Exception as error:  # noqa: BLE001 - an unforeseen client failure must not stop the session
            log.exception("AI partner %s: LLM call failed unexpectedly", self.candidate_key)
            result = _CallResult()
            result.failure = f'error:{type(error).__name__}'
            result.raw_reply = self.redact(str(error))[:RAW_REPLY_LIMIT]
        row = AIDecision(decision=decision, value=None, policy='llm',
                         model=result.model or self.settings.llm_model,
                         endpoint_host=self.settings.endpoint_host,
                         prompt=prompting.prompt_record(messages), raw_reply=result.raw_reply,
                         prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens)
        reason = result.failure
        if not reason:
            try:
                row.value = parse(result.content)
            except ReplyProblem as problem:
                reason = problem.reason
        if reason:
            row.value = self.scripted_value(decision, view, **kwargs)
            row.fallback, row.fallback_reason = True, reason
            log.warning("AI partner %s: LLM %s decision in round %s fell back to the scripted preset %s (%s)",
                        self.candidate_key, decision, view.round_number, self.preset.name, reason)
        row.latency_ms = (time.perf_counter() - started) * 1000
        return row

    def call(self, messages: list[dict]) -> _CallResult:
        """POST the chat messages, retrying 429s within the timeout budget. Never raises for
        endpoint faults: they come back as result.failure."""
        result = _CallResult()
        budget_ends = time.monotonic() + self.settings.llm_timeout_seconds
        if not is_sendable_key(self.api_key()):
            result.failure = 'bad_api_key'
            result.raw_reply = f'the variable {self.settings.llm_api_key_env} holds no valid key'
            return result
        use_format, dropped_format = self.url not in _NO_RESPONSE_FORMAT, False
        attempt = 0
        with httpx.Client(headers=self.headers(), follow_redirects=True, verify=shared_ssl_context()) as client:
            while True:
                remaining = budget_ends - time.monotonic()
                if remaining <= 0:
                    result.failure = 'timeout'
                    return result
                attempt += 1
                try:
                    response = post_within(client, self.url, self.payload(messages, use_format), budget_ends)
                except httpx.TimeoutException:
                    result.failure = 'timeout'
                    return result
                except (httpx.TransportError, httpx.TooManyRedirects) as error:
                    result.failure = 'connection_error'
                    result.raw_reply = self.redact(f'{type(error).__name__}: {error}')[:RAW_REPLY_LIMIT]
                    return result
                if response.status_code == 400 and use_format:
                    # Some servers reject response_format; the prompt asks for JSON anyway, so retry
                    # once without it (not counted as an attempt).
                    use_format, dropped_format = False, True
                    attempt -= 1
                    continue
                if response.status_code == 429:
                    result.raw_reply = response.text[:RAW_REPLY_LIMIT]
                    wait = backoff_seconds(attempt, retry_after_seconds(response.headers.get('Retry-After')))
                    if attempt >= MAX_ATTEMPTS or wait >= budget_ends - time.monotonic():
                        result.failure = 'rate_limited'
                        return result
                    time.sleep(wait)
                    continue
                if response.status_code >= 400:
                    result.failure = f'http_{response.status_code}'
                    result.raw_reply = response.text[:RAW_REPLY_LIMIT]
                    return result
                if dropped_format:
                    with _NO_RESPONSE_FORMAT_LOCK:  # remember, so later calls skip the failing request
                        _NO_RESPONSE_FORMAT.add(self.url)
                return read_completion(response, result)


def is_sendable_key(key: str) -> bool:
    """An empty key (send none) or one of printable ASCII without white space, as an HTTP header needs."""
    return all('!' <= ch <= '~' for ch in key)


@dataclass
class Reply:
    """An HTTP response read in full: what the client needs of it."""

    status_code: int
    headers: httpx.Headers
    text: str

    def json(self):
        return json.loads(self.text)


def post_within(client: httpx.Client, url: str, body: dict, budget_ends: float) -> Reply:
    """POST body and read the whole response before time.monotonic() reaches budget_ends.

    httpx's timeout limits each connect or read, not the call: a server that drips its reply a byte at
    a time would hold the call indefinitely. So the body is streamed and the budget checked between
    chunks; a call ends at most one read timeout (itself within the budget) after it. Raises
    httpx.ReadTimeout when the budget is spent.
    """
    remaining = max(0.001, budget_ends - time.monotonic())
    with client.stream('POST', url, json=body, timeout=httpx.Timeout(remaining)) as response:
        chunks = []
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            if time.monotonic() > budget_ends:
                raise httpx.ReadTimeout('llm_timeout_seconds spent while reading the reply',
                                        request=response.request)
        text = b''.join(chunks).decode(response.encoding or 'utf-8', errors='replace')
        return Reply(response.status_code, response.headers, text)


def shared_ssl_context():
    """The process-wide SSL context for endpoint calls (created on first use)."""
    global _SSL_CONTEXT
    with _SSL_CONTEXT_LOCK:
        if _SSL_CONTEXT is None:
            _SSL_CONTEXT = httpx.create_ssl_context()
        return _SSL_CONTEXT


def read_completion(response: Reply, result: _CallResult) -> _CallResult:
    """Fill result from a 200 chat-completion response (content, model, usage)."""
    result.raw_reply = response.text[:RAW_REPLY_LIMIT]
    try:
        body = response.json()
        content = body['choices'][0]['message']['content']
    except (ValueError, KeyError, IndexError, TypeError):
        result.failure = 'bad_response'
        return result
    if not isinstance(content, str):
        result.failure = 'bad_response'
        return result
    result.content = content
    result.raw_reply = content
    result.model = body.get('model') if isinstance(body.get('model'), str) else ''
    usage = body.get('usage') if isinstance(body.get('usage'), dict) else {}
    result.prompt_tokens = _int_or_none(usage.get('prompt_tokens'))
    result.completion_tokens = _int_or_none(usage.get('completion_tokens'))
    return result


def _int_or_none(value):
    return value if isinstance(value, int) and not isinstance(value, bool) else None
