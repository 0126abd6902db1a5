"""Page kinds both games (and the intro and exit apps) share: every page has a timeout, a decision
page's or an information page's."""
from otree.api import Page

from .config import info_timeout, page_timeout


class DecisionPage(Page):
    """A page where the participant decides: times out after page_timeout_seconds (0 = never)."""

    get_timeout_seconds = page_timeout


class InfoPage(Page):
    """A page that informs (instructions, results, debrief) or waits: info_page_timeout_seconds."""

    get_timeout_seconds = info_timeout
