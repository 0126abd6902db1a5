"""Page forms that take only clean input: whole numbers in plain ASCII digits, text without NUL or
control / bidirectional-control characters.

oTree's IntegerField converts input with Python's int(), which also takes ' 5 ', '+5', '1_000' and other
scripts' digits ('٥' is 5). A page that mixes in CleanInputPage refuses such input with an ordinary field
error (shown beside the field; bots' SubmissionMustFail and error_fields see it; on a timeout oTree
replaces the field's value by its default as for any invalid field). The fields' min/max bounds are
checked as before. Field errors come before the page's error_message, which is not called while one stands.

Text fields (StringField, LongStringField) are cleaned with study.text.clean_text as the form reads them:
the page's error_message sees the cleaned text and oTree stores it. Cleaning later (before_next_page) is
too late: oTree has written the raw text to the model by then, and the next query flushes it to the
database, where PostgreSQL refuses NUL (HTTP 500).
"""
from wtforms.fields import IntegerField, StringField
from wtforms.validators import StopValidation

from .text import clean_text, plain_integer

NOT_PLAIN_INTEGER = 'Please enter a whole number using the digits 0–9 only (no spaces or other characters).'


def _require_plain_integer(form, field):
    # field.data is None when int() already refused the input: oTree's own error stands then.
    if field.raw_data and field.data is not None and plain_integer(field.raw_data[0]) is None:
        raise StopValidation(NOT_PLAIN_INTEGER)


class CleanInputPage:
    """Page mixin (put it before the oTree page class): IntegerFields take plain digits only, text
    fields are cleaned before validation and storage."""

    def get_form(self, instance, formdata=None):
        form = super().get_form(instance, formdata=formdata)
        for field in form._fields.values():
            if isinstance(field, IntegerField):
                field.validators = [_require_plain_integer, *field.validators]
            elif isinstance(field, StringField) and isinstance(field.data, str):
                field.data = clean_text(field.data)
        return form
