"""Page kinds both games share: every page has a timeout (a decision page's, or an information page's),
and the pages after the last played round."""
from otree.api import Page

from .config import info_timeout, is_last_round, page_timeout


class DecisionPage(Page):
    """A page where the participant decides: times out after page_timeout_seconds (0 = never)."""

    get_timeout_seconds = page_timeout


class InfoPage(Page):
    """A page that informs (instructions, results, debrief) or waits: info_page_timeout_seconds."""

    get_timeout_seconds = info_timeout


class LastRoundPage(InfoPage):
    """An information page after the last played round (debrief, payment)."""

    @staticmethod
    def is_displayed(player):
        return is_last_round(player)


class PaymentPage(LastRoundPage):
    """Points, their money value, the participation fee and the total."""

    @staticmethod
    def payment_vars(player) -> dict:
        pp = player.participant
        return dict(
            points=pp.payoff,
            money_from_points=pp.payoff.to_real_world_currency(player.session),
            participation_fee=player.session.config['participation_fee'],  # oTree's money type, as shown
            total=pp.payoff_plus_participation_fee(),
        )
