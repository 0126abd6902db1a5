import time

from otree.api import *

from game_logic import round_engine, session_config, society
from game_logic.payoffs import InvalidAmount, comprehension_example, validate_return
from study import ai_decisions
from study.forms import CleanInputPage
from study.text import escape_text
from study.config import GameConstants, ai_settings_of, build_config, config_of, game_vars
from study.config import is_played_round
from study.pages import DecisionPage, InfoPage, LastRoundPage, PaymentPage

doc = """
Communication-based partner selection in hybrid mini-societies of humans and AI candidates.
Each round, candidates (human participants and server-side AI partners) write a message; each
selector picks one candidate and plays a Berg–Dickhaut–McCabe (1995) trust game with it.
Identity of AI candidates is disclosed, hidden, or falsely labelled (session config `identity`).
Anchor study: Jiang, Brinkmann, Nussberger, Soraperra, Bonnefon & Rahwan (2025), "Humans learn to
prefer trustworthy AI over human partners", arXiv 2507.13524.
The round's rules are game_logic/round_engine.py; this module maps pages and models onto them.
"""


class C(GameConstants):  # PLAYERS_PER_GROUP = None, NUM_ROUNDS = OTREE_MAX_ROUNDS (study/config.py)
    NAME_IN_URL = 'partner_selection'
    # The roles kept on participant.ps_role (not oTree's id_in_group roles: groups have any size).
    SELECTOR = 'selector'
    CANDIDATE = 'candidate'
    # The Player has one return field per choosing selector and one belief field per card (return_1..,
    # belief_1..): session creation refuses a config that would need more (game_logic/session_config.py).
    MAX_RETURN_SLOTS = session_config.MAX_RETURN_SLOTS
    MAX_BELIEF_CARDS = session_config.MAX_BELIEF_CARDS


class Subsession(BaseSubsession):
    pass


class Group(BaseGroup):
    treatment = models.StringField(doc='hidden | disclosed | false_label')
    incomplete = models.BooleanField(
        initial=False, doc='formed with fewer humans than configured (arrival fallback or lab remainder)'
    )
    display_labels = models.LongStringField(initial='{}', doc='JSON: candidate id -> card letter this round')
    ai_messages_requested_at = models.FloatField(initial=0, doc='epoch seconds the AI messages were requested')
    ai_messages_collected = models.BooleanField(initial=False)
    ai_returns_requested_at = models.FloatField(initial=0)
    round_settled = models.BooleanField(initial=False, doc='all returns in and payoffs set')


def _belief_field():
    return models.StringField(
        choices=[['ai', 'AI'], ['human', 'Human']], blank=True, widget=widgets.RadioSelectHorizontal
    )


def _return_field():
    return models.IntegerField(min=0, max=C.MAX_RECEIVED, blank=True, label='Points to return')


class Player(BasePlayer):
    ps_role = models.StringField(doc='selector | candidate, kept for the whole session')
    candidate_id = models.StringField(initial='', doc='H1, H2, … for human candidates')
    treatment = models.StringField(initial='')
    # --- round 1: consent and comprehension ---
    consent = models.BooleanField(
        label='I have read the information above and agree to take part.', widget=widgets.CheckboxInput
    )
    consent_timed_out = models.BooleanField(initial=False)
    # Filled by the consent page from the online room's URL (Prolific STUDY_ID / SESSION_ID), else ''.
    prolific_study_id = models.StringField(blank=True, initial='')
    prolific_session_id = models.StringField(blank=True, initial='')
    comp_received = models.IntegerField(min=0, max=C.MAX_RECEIVED, label='')
    comp_payoff = models.IntegerField(min=0, max=C.MAX_RECEIVED, label='')
    comprehension_attempts = models.IntegerField(initial=0)
    comprehension_failed = models.BooleanField(initial=False)
    # --- candidates: one return field per selector who chose them (MAX_RETURN_SLOTS) ---
    message = models.LongStringField(blank=True, label='Your message to the selectors')
    message_timed_out = models.BooleanField(initial=False)
    return_slots = models.StringField(initial='', doc='selector codes behind return_1, return_2, … this round')
    return_1, return_2, return_3, return_4, return_5, return_6 = (_return_field() for _ in range(6))
    return_7, return_8, return_9, return_10, return_11, return_12 = (_return_field() for _ in range(6))
    candidate_return_timed_out = models.BooleanField(initial=False)
    # --- selectors: one belief field per card (MAX_BELIEF_CARDS) ---
    offered_candidate_ids = models.StringField(initial='')
    offered_display_labels = models.StringField(initial='')
    choice = models.StringField(blank=True, doc='card letter the selector picked')
    amount = models.IntegerField(min=0, max=C.MAX_SENT, label='Points to send')  # amount_max: the endowment
    belief_1, belief_2, belief_3, belief_4, belief_5, belief_6 = (_belief_field() for _ in range(6))
    belief_7, belief_8, belief_9, belief_10, belief_11, belief_12 = (_belief_field() for _ in range(6))
    choice_loaded_at = models.FloatField(initial=0)
    seconds_on_choice_page = models.FloatField(initial=0)
    choice_timed_out = models.BooleanField(initial=False)
    chosen_candidate_id = models.StringField(initial='')
    amount_sent = models.IntegerField(initial=0)
    amount_returned = models.IntegerField(initial=0)
    return_timed_out = models.BooleanField(initial=False)
    return_fallback = models.BooleanField(initial=False)
    belief_guesses = models.StringField(initial='')
    belief_n_correct = models.IntegerField(initial=0)
    belief_bonus_earned = models.IntegerField(
        initial=0, doc="points this round's correct guesses would pay (paid only if belief_round_paid)")
    # Set once after the last played round (round_flow.pay_beliefs); never shown before the debrief.
    belief_round_paid = models.BooleanField(initial=False, doc="this round's guesses are paid")
    belief_bonus_paid = models.IntegerField(initial=0, doc="points paid for this round's guesses (in participant.payoff)")
    feedback_timed_out = models.BooleanField(initial=False)


class Candidate(ExtraModel):
    """One candidate (human or AI) in one round: the same fields for both kinds, so code loops over all."""

    group = models.Link(Group)
    candidate_id = models.StringField()
    candidate_key = models.StringField(doc='session-group-candidate, stable across rounds')
    kind = models.StringField()
    participant_code = models.StringField()
    policy = models.StringField()
    round_number = models.IntegerField()
    active = models.BooleanField()
    dropped = models.BooleanField()
    message = models.LongStringField(initial='')
    message_timed_out = models.BooleanField(initial=False)
    message_fallback = models.BooleanField(initial=False)
    times_chosen = models.IntegerField(initial=0)
    amount_received = models.IntegerField(initial=0)
    amount_returned = models.IntegerField(initial=0)
    returns = models.StringField(initial='')
    payoff = models.IntegerField(initial=0)
    return_timed_out = models.BooleanField(initial=False)
    return_fallback = models.BooleanField(initial=False)


AICall = ai_decisions.ai_call_model(Group, __name__)


# FUNCTIONS
def is_excluded(player: Player) -> bool:
    return bool(player.participant.excluded)


def is_selector(player: Player) -> bool:
    return player.participant.ps_role == C.SELECTOR and not is_excluded(player)


def is_active_candidate(player: Player) -> bool:
    pp = player.participant
    return pp.ps_role == C.CANDIDATE and not pp.excluded and not pp.dropped


def creating_session(subsession: Subsession):
    config = build_config(subsession.session, C.NUM_ROUNDS)  # every bad field fails here
    if subsession.round_number == 1:
        for pp in subsession.session.get_participants():
            pp.excluded, pp.dropped, pp.timeout_streak, pp.ps_role, pp.treatment = False, False, 0, '', ''
            pp.exclusion_reason = ''  # no_consent, comprehension_failed or left_over (grouping.LEFT_OVER)
    if config.grouping == 'arrival':
        return  # groups form on the arrival wait page
    if subsession.round_number == 1:
        ids = [p.id_in_subsession for p in subsession.get_players()]
        subsession.set_group_matrix(society.split_into_groups(ids, config.group_size))
        for index, group in enumerate(subsession.get_groups(), start=1):
            set_up_group(group, index)
    else:
        subsession.group_like_round(1)
        for group in subsession.get_groups():
            copy_group_setup(group.in_round(1), group)


def choice_choices(player: Player):
    """Only the card letters this selector was shown are valid choices."""
    return [label for label in player.offered_display_labels.split(';') if label]


def amount_max(player: Player):
    return config_of(player).endowment


def elicits_beliefs(player: Player) -> bool:
    return round_engine.elicits_beliefs(config_of(player).elicit_beliefs, player.treatment)


def comprehension(player: Player):
    """The worked example of the comprehension check and its right answers, for this player's role."""
    config = config_of(player)
    return comprehension_example(config.endowment, config.multiplier, player.participant.ps_role == C.SELECTOR)


# Session-config fields the templates show under their own names.
CONFIG_ON_PAGES = ('num_selectors', 'num_candidates', 'selector_chooses_amount', 'candidate_base_pay',
                   'belief_payment', 'max_message_length', 'persistent_candidate_labels')


def common_vars(player: Player) -> dict:
    config = config_of(player)
    return dict(
        game_vars(player),
        **{name: getattr(config, name) for name in CONFIG_ON_PAGES},
        num_ai=config.num_ai_candidates,
        is_selector=player.participant.ps_role == C.SELECTOR,
        treatment=player.treatment,
        identity_shown=player.treatment != 'hidden',
        elicit_beliefs=elicits_beliefs(player),
        belief_bonus_points=config.belief_bonus,
        ai_description=ai_settings_of(player).ai_description,
    )


# Group formation and the round's steps at the oTree boundary (they use the models above):
# partner_selection/grouping.py and round_flow.py
from .grouping import (  # noqa: E402
    copy_group_setup, group_by_arrival_time_method, is_left_over, set_up_arrived_group, set_up_group,
)
from .round_flow import (  # noqa: E402
    collect_messages, engine_cards, offered_cards, past_rounds, process_choices, return_decisions, return_slots,
    returns_arrived, belief_summary, page_cards,
    round_candidates, round_rules, selector_history, start_round, try_collect_ai_messages, try_settle_round,
)


# PAGES
class RoundWaitPage(WaitPage):
    """A wait page of every played round (unplayed rounds are skipped)."""

    title_text = 'Please wait'

    @staticmethod
    def is_displayed(player: Player):
        return is_played_round(player) and not is_left_over(player)


class ArrivalWaitPage(WaitPage):
    group_by_arrival_time = True
    after_all_players_arrive = set_up_arrived_group
    title_text = 'Waiting for other participants'
    body_text = 'The study starts as soon as enough participants have arrived.'

    @staticmethod
    def is_displayed(player: Player):
        if player.round_number != 1 or config_of(player).grouping != 'arrival':
            return False
        pp = player.participant
        if not pp.vars.get('arrived_at'):
            pp.arrived_at = time.time()
        return True


class Consent(InfoPage):
    form_model = 'player'
    form_fields = ['consent', 'prolific_study_id', 'prolific_session_id']

    @staticmethod
    def is_displayed(player: Player):
        return player.round_number == 1 and not is_left_over(player)

    @staticmethod
    def before_next_page(player: Player, timeout_happened):
        pp = player.participant
        for field in ('prolific_study_id', 'prolific_session_id'):
            value = society.clean_external_id(player.field_maybe_none(field) or '')
            setattr(player, field, value)
            setattr(pp, field, value)
        # No consent, no participation: an idle consent page is not consent.
        if timeout_happened:
            player.consent_timed_out = True
            player.consent = False
            player.participant.excluded = True
            player.participant.exclusion_reason = 'no_consent'


class Instructions(InfoPage):

    @staticmethod
    def is_displayed(player: Player):
        return player.round_number == 1 and not is_excluded(player)

    vars_for_template = common_vars


class Comprehension(CleanInputPage, DecisionPage):
    """A wrong answer costs an attempt; at the last one it lets the participant through (routed out).
    Malformed input (not plain digits, out of bounds) is a form error and costs nothing, also at the last."""

    form_model = 'player'
    form_fields = ['comp_received', 'comp_payoff']

    @staticmethod
    def is_displayed(player: Player):
        return player.round_number == 1 and not is_excluded(player)

    @staticmethod
    def vars_for_template(player: Player):
        left = config_of(player).comprehension_max_attempts - player.comprehension_attempts
        return dict(common_vars(player), attempts_left=left, example=comprehension(player))

    @staticmethod
    def error_message(player: Player, values):
        max_attempts = config_of(player).comprehension_max_attempts
        example = comprehension(player)
        wrong = []
        if values['comp_received'] != example.received:
            wrong.append('how many points a candidate receives')
        if values['comp_payoff'] != example.payoff:
            wrong.append('the payoff in the example')
        if not wrong:
            return
        player.comprehension_attempts += 1
        if player.comprehension_attempts >= max_attempts:
            player.comprehension_failed = True
            return  # let them through to the exit page instead of looping forever
        return f"Not quite: check {' and '.join(wrong)}. Attempts left: {max_attempts - player.comprehension_attempts}."

    @staticmethod
    def before_next_page(player: Player, timeout_happened):
        if timeout_happened or player.comprehension_failed:
            player.comprehension_failed = True
            player.participant.excluded = True
            player.participant.exclusion_reason = 'comprehension_failed'


class ComprehensionFailed(InfoPage):

    @staticmethod
    def is_displayed(player: Player):
        return player.round_number == 1 and player.comprehension_failed


class RoundStart(RoundWaitPage):
    after_all_players_arrive = start_round
    body_text = 'The next round is about to start.'


class WriteMessage(CleanInputPage, DecisionPage):
    """The message is cleaned (study.text.clean_text) as the form reads it, before any check or storage."""

    form_model = 'player'
    form_fields = ['message']

    @staticmethod
    def is_displayed(player: Player):
        return is_played_round(player) and is_active_candidate(player)

    vars_for_template = common_vars

    @staticmethod
    def error_message(player: Player, values):
        limit = config_of(player).max_message_length
        text = (values['message'] or '').strip()
        if not text:
            return 'Please write a message to the selectors.'
        if len(text) > limit:
            return f'Your message has {len(text)} characters; the limit is {limit}.'

    @staticmethod
    def before_next_page(player: Player, timeout_happened):
        pp = player.participant
        pp.timeout_streak = society.update_timeout_streak(pp.timeout_streak, timeout_happened)
        if timeout_happened:
            player.message_timed_out = True
            player.message = ''
        else:
            player.message = player.message.strip()


class MessagesWaitPage(RoundWaitPage):
    after_all_players_arrive = collect_messages
    body_text = 'Waiting for all candidates to write their messages.'


class AIMessagesGate(ai_decisions.AIGate):
    """Shown to selectors only while AI messages are still on their way."""

    advance = staticmethod(try_collect_ai_messages)

    @staticmethod
    def is_displayed(player: Player):
        return is_played_round(player) and is_selector(player) and not player.group.ai_messages_collected


class Choose(CleanInputPage, DecisionPage):
    form_model = 'player'

    @staticmethod
    def is_displayed(player: Player):
        return is_played_round(player) and is_selector(player)

    @staticmethod
    def get_form_fields(player: Player):
        fields = ['choice']
        if config_of(player).selector_chooses_amount:
            fields.append('amount')
        if elicits_beliefs(player):
            fields += [card['belief_field'] for card in offered_cards(player)]
        return fields

    @staticmethod
    def vars_for_template(player: Player):
        if not player.choice_loaded_at:
            player.choice_loaded_at = time.time()
        return dict(common_vars(player), cards=page_cards(player), history=selector_history(player))

    @staticmethod
    def error_message(player: Player, values):
        if not values.get('choice'):
            return 'Please choose one candidate.'
        if elicits_beliefs(player):
            missing = [card['label'] for card in offered_cards(player) if not values.get(card['belief_field'])]
            if missing:
                return 'Please say for every candidate whether you think it is an AI (missing: %s).' % ', '.join(
                    missing
                )

    @staticmethod
    def before_next_page(player: Player, timeout_happened):
        player.seconds_on_choice_page = round(time.time() - player.choice_loaded_at, 3)
        player.choice_timed_out = timeout_happened
        cards = engine_cards(player)
        # A timed-out form is not a decision: whatever it held is dropped (no choice, nothing sent).
        label = None if timeout_happened else player.choice
        amount = player.field_maybe_none('amount')
        choice = round_engine.choose(player.participant.code, cards, label, amount, round_rules(player))
        player.choice = label or ''
        player.chosen_candidate_id = choice.candidate_id
        player.amount_sent = choice.amount_sent
        if choice.made and elicits_beliefs(player):
            guesses = [player.field_maybe_none(f'belief_{card.position}') for card in cards]
            score = round_engine.score_beliefs(cards, guesses, round_rules(player))
            player.belief_guesses = score.guesses_text
            player.belief_n_correct = score.n_correct
            player.belief_bonus_earned = score.bonus


class ChoicesWaitPage(RoundWaitPage):
    after_all_players_arrive = process_choices
    body_text = 'Waiting for all selectors to choose.'


class Return(CleanInputPage, DecisionPage):
    form_model = 'player'

    @staticmethod
    def is_displayed(player: Player):
        return is_played_round(player) and is_active_candidate(player) and bool(player.return_slots)

    @staticmethod
    def get_form_fields(player: Player):
        return [field for field, _ in return_slots(player)]

    @staticmethod
    def vars_for_template(player: Player):
        return dict(common_vars(player), decisions=return_decisions(player))

    @staticmethod
    def error_message(player: Player, values):
        errors = {}
        for decision in return_decisions(player):
            try:
                validate_return(values.get(decision['field']), decision['received'])
            except InvalidAmount:
                errors[decision['field']] = f"Enter a whole number from 0 to {decision['received']}."
            if values.get(decision['field']) is None:
                errors[decision['field']] = 'Please enter how many points you return.'
        return errors or None

    @staticmethod
    def before_next_page(player: Player, timeout_happened):
        pp = player.participant
        pp.timeout_streak = society.update_timeout_streak(pp.timeout_streak, timeout_happened)
        if timeout_happened:
            player.candidate_return_timed_out = True
            for field, _ in return_slots(player):
                setattr(player, field, 0)


class ReturnsWaitPage(RoundWaitPage):
    after_all_players_arrive = returns_arrived
    body_text = 'Waiting for the chosen candidates to decide how much to return.'


class AIReturnsGate(ai_decisions.AIGate):
    """Shown only while AI returns are still on their way, or the minimum delay is not over."""

    advance = staticmethod(try_settle_round)

    @staticmethod
    def is_displayed(player: Player):
        pp = player.participant
        return is_played_round(player) and not pp.excluded and not pp.dropped and not player.group.round_settled


class Feedback(InfoPage):

    @staticmethod
    def is_displayed(player: Player):
        pp = player.participant
        return is_played_round(player) and not pp.excluded and not pp.dropped

    @staticmethod
    def vars_for_template(player: Player):
        data = common_vars(player)
        if player.participant.ps_role == C.SELECTOR:
            labels = dict(zip(player.offered_candidate_ids.split(';'), player.offered_display_labels.split(';')))
            data.update(
                chosen_label=labels.get(player.chosen_candidate_id, ''),
                history=selector_history(player),
            )
        else:
            candidate = next(c for c in round_candidates(player.group) if c.candidate_id == player.candidate_id)
            data.update(candidate=candidate)
        return data

    @staticmethod
    def before_next_page(player: Player, timeout_happened):
        player.feedback_timed_out = timeout_happened


class Debrief(LastRoundPage):
    """Who each chosen partner was; in hidden and false_label the first time a selector learns it."""

    @staticmethod
    def is_displayed(player: Player):
        return LastRoundPage.is_displayed(player) and not is_left_over(player)

    @staticmethod
    def vars_for_template(player: Player):
        rounds = []
        if player.participant.ps_role == C.SELECTOR and not is_excluded(player):
            played = past_rounds(player.in_rounds(1, config_of(player).num_rounds))
            rounds = [dict(round=row.round, label=row.label, shown=row.badge,
                           kind='an AI' if row.kind == 'ai' else 'a human participant')
                      for row in round_engine.debrief_rows(played)]
        return dict(common_vars(player), rounds=rounds, reveal=round_engine.debrief_reveals(player.treatment),
                    **belief_summary(player))


class Payment(PaymentPage):
    @staticmethod
    def vars_for_template(player: Player):
        return dict(
            PaymentPage.payment_vars(player),
            excluded=is_excluded(player),
            **belief_summary(player),
            completion_url=escape_text(config_of(player).prolific_completion_url),
        )


page_sequence = [
    # round 1: arrival (online), consent, instructions, comprehension check
    ArrivalWaitPage, Consent, Instructions, Comprehension, ComprehensionFailed,
    # every played round: messages, choices, returns, feedback
    RoundStart, WriteMessage, MessagesWaitPage, AIMessagesGate, Choose, ChoicesWaitPage, Return, ReturnsWaitPage,
    AIReturnsGate, Feedback,
    # the last played round
    Debrief, Payment,
]


# EXPORTS: partner_selection/exports.py (decisions, candidates, AI calls)
from .exports import (  # noqa: E402
    custom_export, custom_export_ai_calls, custom_export_candidates, custom_export_config,
)
