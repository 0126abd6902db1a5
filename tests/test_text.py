"""study.text: clean_text (participant / LLM text before it is stored), plain_integer (what a whole-number
form field accepts) and escape_text; and study.forms' check on a real WTForms field."""
import pytest

import wtforms
from wtforms import validators

from study.forms import NOT_PLAIN_INTEGER, _require_plain_integer
from study.text import clean_text, escape_text, plain_integer

BIDI_CONTROLS = '\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c'


def test_clean_text_removes_nul_and_control_characters_but_keeps_tab_and_newline():
    assert clean_text('a\x00b') == 'ab'
    assert clean_text('bell\x07 esc\x1b[31m del\x7f c1\x85') == 'bell esc[31m del c1'
    assert clean_text('one\ttwo\nthree') == 'one\ttwo\nthree'
    assert clean_text(''.join(chr(c) for c in range(32))) == '\t\n\n'  # \r alone becomes a line break


def test_clean_text_removes_every_bidirectional_control():
    assert clean_text('pay ' + BIDI_CONTROLS + 'me') == 'pay me'
    # the classic trick: an override that makes 'I return 0' read as something else
    assert clean_text('I return \u202e0 stniop\u202c') == 'I return 0 stniop'


def test_clean_text_normalises_line_breaks():
    assert clean_text('a\r\nb\rc\nd') == 'a\nb\nc\nd'


def test_clean_text_keeps_ordinary_text_markup_and_emoji_unchanged():
    text = 'Hi selectors!\nI return half 🙂 <b>promise</b> & "quotes" — ünïcödé, עברית, العربية ٥, 👩‍💻'
    assert clean_text(text) == text  # the emoji's zero-width joiner stays; markup is escape_text's business


def test_clean_text_of_nothing_is_empty():
    assert clean_text(None) == ''
    assert clean_text('') == ''
    assert clean_text('\x00\u202e') == ''


def test_clean_text_removes_lone_surrogates():
    assert clean_text('a\ud800b') == 'ab'


def test_clean_text_is_idempotent_and_then_escaped_as_before():
    dirty = '\x00<script>\u202ealert(1)</script>\r\n'
    once = clean_text(dirty)
    assert clean_text(once) == once
    assert escape_text(once) == '&lt;script&gt;alert(1)&lt;/script&gt;<br>'


@pytest.mark.parametrize('raw, value', [('0', 0), ('5', 5), ('-1', -1), ('007', 7), ('1' * 20, int('1' * 20)), (12, 12)])
def test_plain_integer_reads_ascii_digits(raw, value):
    assert plain_integer(raw) == value  # bounds are the field's min/max, not checked here


@pytest.mark.parametrize('raw', ['', ' ', ' 5 ', '5 ', ' 5', '5\n', '\t5', '+5', '1_000', '1,000', '1.0', '2.5', '1e3',
                                 '\u0665', '\u0661\u0662', '\u0e53', '\uff15', '²', '--1', '-', 'abc', '0x10', '5\x00'])
def test_plain_integer_refuses_anything_else(raw):
    assert plain_integer(raw) is None


def test_plain_integer_refuses_more_digits_than_python_converts():
    assert plain_integer('9' * 10_000) is None


def _integer_field(raw, low=0, high=1000):
    """A WTForms IntegerField as oTree builds it (bounds, required), with study.forms' check in front."""
    class PostData(dict):
        def getlist(self, key):
            return [self[key]] if key in self else []

    class Form(wtforms.Form):
        amount = wtforms.IntegerField(validators=[validators.NumberRange(min=low, max=high), validators.InputRequired()])

    form = Form(PostData(amount=raw))
    form.amount.validators = [_require_plain_integer, *form.amount.validators]
    form.validate()
    return form.amount


def test_form_check_refuses_what_int_would_take_with_one_clear_message():
    for raw in (' 5 ', '\u0665', '+5', '1_000'):
        assert _integer_field(raw).errors == [NOT_PLAIN_INTEGER], raw


def test_form_check_leaves_bounds_and_wtforms_own_errors_alone():
    assert _integer_field('5').errors == []
    assert _integer_field('-1').errors and _integer_field('-1').errors[0].startswith('Number must be between')
    assert _integer_field('1' * 20).errors[0].startswith('Number must be between')
    assert _integer_field('abc').errors[0] == 'Not a valid integer value'
