"""The server-log check of the browser tests: real errors are reported, websocket hang-ups are not."""
from hosting.otree_server import is_disconnect_noise, tracebacks

APP_ERROR = '''INFO:     127.0.0.1:1 - "POST /p/abc/partner_selection/Choose/9 HTTP/1.1" 500 Internal Server Error
Traceback (most recent call last):
  File "partner_selection/__init__.py", line 10, in before_next_page
    player.chosen_candidate_id = by_label[player.choice]['candidate_id']
KeyError: 'Q'
INFO:     127.0.0.1:1 - "GET /favicon.ico HTTP/1.1" 307 Temporary Redirect
'''
HANG_UP = '''closing handshake failed
Traceback (most recent call last):
  File "websockets/legacy/protocol.py", line 1309, in close_connection
    self.transport.write_eof()
OSError: [Errno 107] Transport endpoint is not connected
'''


def test_app_error_in_log_is_reported():
    blocks = tracebacks(HANG_UP + APP_ERROR)
    assert len(blocks) == 2
    reported = [block for block in blocks if not is_disconnect_noise(block)]
    assert len(reported) == 1 and reported[0].endswith("KeyError: 'Q'")


def test_log_without_tracebacks_has_none():
    assert tracebacks('INFO: started\nINFO: GET / 200\n') == []
