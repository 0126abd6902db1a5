import time

from otree.api import *

from game_logic import round_engine, session_config, society
from game_logic.payoffs import InvalidAmount, validate_return
from study import ai_decisions, journey
from study.journey import peek
from study.forms import CleanInputPage
from study.config import GameConstants, ai_settings_of, build_config, config_of, game_vars
from study.config import is_last_round, is_played_round
from study.pages import DecisionPage, InfoPage

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
    ai_composition = models.StringField(
        initial='', doc="the group's AI-candidate mix (ai_candidate_mix / its entry of compositions); '' = ai_policy")
    incomplete = models.BooleanField(
        initial=False, doc='formed with fewer humans than configured (arrival fallback or lab remainder)'
    )
    display_labels = models.LongStringField(initial='{}', doc='JSON: candidate id -> card letter this round')
    ai_messages_requested_at = models.FloatField(initial=0, doc='epoch seconds the AI messages were requested')
    ai_messages_collected = models.BooleanField(initial=False)
    ai_choices_requested_at = models.FloatField(initial=0, doc="epoch seconds the AI selectors' choices were requested")
    choices_processed = models.BooleanField(initial=False, doc='every choice, human and AI, is in; return slots set')
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
    choice_reassigned = models.BooleanField(
        initial=False, doc='the card picked was full (candidate_capacity): chosen_candidate_id is the card moved to')
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


class AISelector(ExtraModel):
    """One AI selector (a selector seat the server plays, session config num_ai_selectors) in one round: the
    Player's selector fields under the same names, so code loops over human and AI selectors alike."""

    group = models.Link(Group)
    round_number = models.IntegerField()
    selector_id = models.StringField(doc='S1, S2, …')
    selector_key = models.StringField(doc='session-group-selector: its code in return slots, AI calls and exports')
    policy = models.StringField(doc='random | learner:<model> | llm:<model>')
    params_json = models.StringField(initial='', doc="the learner's parameters as used (JSON)")
    treatment = models.StringField()
    offered_candidate_ids = models.StringField(initial='')
    offered_display_labels = models.StringField(initial='')
    choice = models.StringField(initial='')
    chosen_candidate_id = models.StringField(initial='')
    choice_reassigned = models.BooleanField(initial=False)
    amount_sent = models.IntegerField(initial=0)
    amount_returned = models.IntegerField(initial=0)
    return_timed_out = models.BooleanField(initial=False)
    return_fallback = models.BooleanField(initial=False)
    choice_fallback = models.BooleanField(initial=False, doc='the choice is the fallback policy\'s (an llm fault)')
    choice_timed_out = models.BooleanField(initial=False)  # an AI selector always chooses (its fallback)
    seconds_on_choice_page = models.FloatField(initial=0, doc='the decision\'s latency')
    belief_guesses = models.StringField(initial='')
    belief_n_correct = models.IntegerField(initial=0)
    belief_bonus_earned = models.IntegerField(initial=0)
    belief_round_paid = models.BooleanField(initial=False)
    belief_bonus_paid = models.IntegerField(initial=0)
    payoff = models.IntegerField(initial=0)

    @property
    def session(self):
        return self.group.session


AICall = ai_decisions.ai_call_model(Group, __name__)


# FUNCTIONS
def role_of(player: Player) -> str:
    return peek(player.participant, 'ps_role')


def is_excluded(player: Player) -> bool:
    return bool(peek(player.participant, 'excluded'))


def is_selector(player: Player) -> bool:
    return role_of(player) == C.SELECTOR and not is_excluded(player)


def is_active_candidate(player: Player) -> bool:
    return role_of(player) == C.CANDIDATE and not journey.is_out(player.participant)


def creating_session(subsession: Subsession):
    build_config(subsession.session, C.NUM_ROUNDS)  # every bad field fails here
    if subsession.round_number == 1:
        for pp in subsession.session.get_participants():
            pp.timeout_streak, pp.ps_role, pp.treatment, pp.candidate_id = 0, '', '', ''
    # Groups form in round 1 among those who qualified in the intro app (grouping.py): by arrival, or
    # in lab order once everybody has qualified or left.


def choice_choices(player: Player):
    """Only the card letters this selector was shown are valid choices."""
    return [label for label in player.offered_display_labels.split(';') if label]


def amount_max(player: Player):
    return config_of(player).endowment


def elicits_beliefs(player: Player) -> bool:
    return round_engine.elicits_beliefs(config_of(player).elicit_beliefs, player.treatment)


# Session-config fields the templates show under their own names (the group's size is the actual one).
CONFIG_ON_PAGES = ('selector_chooses_amount', 'candidate_base_pay', 'belief_payment', 'max_message_length',
                   'persistent_candidate_labels', 'candidate_capacity')


def rules_before_grouping(player) -> dict:
    """The rules as the intro app shows them, before groups, roles and treatments exist: the group as
    configured, and the identity treatment only when the session has one (else the game's Instructions
    page, after grouping, says whether cards carry labels)."""
    config = config_of(player)
    rotation = config.treatment_rotation
    treatment = rotation[0] if len(set(rotation)) == 1 else ''
    return dict(
        **{name: getattr(config, name) for name in CONFIG_ON_PAGES},
        # AI selectors count among the selectors, as on the game's pages (group_counts)
        **composition_vars(config.num_selectors + config.num_ai_selectors, config.num_human_candidates,
                           config.num_ai_candidates),
        treatment=treatment, identity_shown=treatment not in ('hidden', ''),
        elicit_beliefs=round_engine.elicits_beliefs(config.elicit_beliefs, treatment) if treatment
        else config.elicit_beliefs,
        belief_bonus_points=config.belief_bonus, ai_description=ai_settings_of(player).ai_description,
        sender_word='selector', receiver_word='candidate', base_pay_word=bool(config.candidate_base_pay),
        before_grouping=True,
    )


def exit_vars(player: Player) -> dict:
    """What the exit app's debrief and payment pages show (debrief.html, payment_details.html)."""
    config = config_of(player)
    rounds = []
    if player.participant.ps_role == C.SELECTOR:
        played = past_rounds([p for p in player.in_rounds(1, min(player.round_number, config.num_rounds))
                              if p.offered_candidate_ids])
        rounds = [dict(round=row.round, label=row.label, shown=row.badge,
                       kind='an AI' if row.kind == 'ai' else 'a human participant')
                  for row in round_engine.debrief_rows(played)]
    counts = group_counts(player.group)
    return dict(composition_vars(**counts), rounds=rounds, treatment=player.treatment,
                reveal=round_engine.debrief_reveals(player.treatment),
                ai_description=ai_settings_of(player).ai_description,
                belief_bonus_points=config.belief_bonus, **belief_summary(player))


def group_counts(group: Group) -> dict:
    """The group as formed (not as configured): its selectors (human and AI), human candidates and AI
    candidates."""
    roles = [role_of(p) for p in group.get_players()]
    config = config_of(group)
    return dict(num_selectors=roles.count(C.SELECTOR) + config.num_ai_selectors, num_human=roles.count(C.CANDIDATE),
                num_ai=config.num_ai_candidates)


def composition_vars(num_selectors: int, num_human: int, num_ai: int) -> dict:
    return dict(num_selectors=num_selectors, num_human=num_human, num_ai=num_ai, num_candidates=num_human + num_ai)


def common_vars(player: Player) -> dict:
    """What the game's pages show: the rules with the group as it actually formed."""
    config = config_of(player)
    return dict(
        game_vars(player),
        **{name: getattr(config, name) for name in CONFIG_ON_PAGES},
        **composition_vars(**group_counts(player.group)),
        is_selector=role_of(player) == C.SELECTOR,
        # How selectors see a human candidate (what the AI candidates' prompts say about themselves); for
        # candidates only: a selector's page holds nothing computed from a kind.
        own_badge=society.badge_for('human', player.treatment) if role_of(player) == C.CANDIDATE else '',
        before_grouping=False,
        treatment=player.treatment,
        identity_shown=player.treatment != 'hidden',
        elicit_beliefs=elicits_beliefs(player),
        belief_bonus_points=config.belief_bonus,
        ai_description=ai_settings_of(player).ai_description,
    )


def leave_if_out(player: Player, upcoming_apps):
    """app_after_this_page of the wait pages where a participant may be routed out (left over when groups
    form, a human candidate dropped for inactivity): to the exit app at once; a dropped candidate takes the
    debrief and payment details along."""
    pp = player.participant
    if not journey.is_out(pp):
        return None
    if pp.ps_role:
        finish(player)
    return journey.EXIT_APP


def leave_after_last_round(player: Player, upcoming_apps):
    """app_after_this_page of Feedback: after the last played round, to the exit app (no walk through the
    unplayed rounds)."""
    if is_last_round(player):
        finish(player)
        return journey.EXIT_APP


def finish(player: Player):
    pp = player.participant
    pp.journey_role, pp.journey_identity = pp.ps_role, player.treatment
    journey.finish_game(pp, exit_vars(player))


# Group formation and the round's steps at the oTree boundary (they use the models above):
# partner_selection/grouping.py and round_flow.py
from .grouping import (  # noqa: E402
    copy_group_setup, form_lab_groups, group_by_arrival_time_method, is_left_over, set_up_arrived_group,
)
from .round_flow import (  # noqa: E402
    ai_selectors, choices_arrived, collect_messages, engine_cards, human_returns_in, market_cards, offered_cards,
    past_rounds, return_decisions, return_fields, return_slots, returns_arrived, belief_summary, page_cards,
    round_candidates, round_rules, selector_code, selector_history, selector_seats, selector_view, start_round,
    time_out_returns, try_collect_ai_messages, try_process_choices, try_settle_round,
)


# PAGES
class RoundWaitPage(WaitPage):
    """A wait page of every played round (unplayed rounds are skipped)."""

    title_text = 'Please wait'

    @staticmethod
    def is_displayed(player: Player):
        return is_played_round(player) and not is_left_over(player)


class ArrivalWaitPage(WaitPage):
    """Online grouping: only the qualified reach this page (the intro app routes the others out)."""

    group_by_arrival_time = True
    after_all_players_arrive = set_up_arrived_group
    app_after_this_page = staticmethod(leave_if_out)  # the left over (remainder = leave)
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


class LabGroupingWaitPage(WaitPage):
    """Lab grouping: once everybody has qualified in the intro app or left for the exit app, groups form
    among the qualified in participant order (who left counts as arrived: oTree passes them by)."""

    wait_for_all_groups = True
    after_all_players_arrive = form_lab_groups
    app_after_this_page = staticmethod(leave_if_out)  # the left over (remainder = leave)
    title_text = 'Waiting for other participants'
    body_text = 'The study starts as soon as everybody has read the instructions.'

    @staticmethod
    def is_displayed(player: Player):
        return player.round_number == 1 and config_of(player).grouping == 'lab'


class Instructions(InfoPage):
    """Round 1, after grouping: the participant's role and the rules with the group as formed."""

    @staticmethod
    def is_displayed(player: Player):
        return player.round_number == 1 and not journey.is_out(player.participant)

    vars_for_template = common_vars


class RoundStart(RoundWaitPage):
    after_all_players_arrive = start_round
    app_after_this_page = staticmethod(leave_if_out)  # human candidates dropped for inactivity
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
    """Shown to selectors only while AI messages are still on their way (no minimum delay: the messages of
    AI and human candidates are revealed together)."""

    advance = staticmethod(try_collect_ai_messages)

    @staticmethod
    def requested_at(group: Group) -> float:
        return group.ai_messages_requested_at

    @staticmethod
    def is_displayed(player: Player):
        return is_played_round(player) and is_selector(player) and not AIMessagesGate.is_open(player)


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
    after_all_players_arrive = choices_arrived
    body_text = 'Waiting for all selectors to choose.'


class AIChoicesGate(ai_decisions.AIGate):
    """Everyone of the round, only while AI selectors' choices are still on their way (they were requested
    once the messages were in, so they mostly are by now). Its display depends on the AI selectors' timing,
    never on a candidate's kind."""

    wait_text = 'Waiting for all selectors to choose.'
    advance = staticmethod(try_process_choices)

    @staticmethod
    def requested_at(group: Group) -> float:
        return group.ai_choices_requested_at

    @staticmethod
    def is_displayed(player: Player):
        return is_played_round(player) and not journey.is_out(player.participant) and not AIChoicesGate.is_open(player)


class Return(CleanInputPage, DecisionPage):
    form_model = 'player'

    @staticmethod
    def is_displayed(player: Player):
        return (is_played_round(player) and is_active_candidate(player) and bool(player.return_slots)
                and not player.group.round_settled)

    @staticmethod
    def get_form_fields(player: Player):
        return return_fields(player)

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
        if timeout_happened or player.group.round_settled:
            # A late answer after the returns gate timed out is not used: the round was paid with 0.
            time_out_returns(player)


class ReturnsWaitPage(RoundWaitPage):
    """Bots only (they cannot run the gate's script): settles the round once everyone has decided."""

    after_all_players_arrive = returns_arrived
    body_text = 'Waiting for the chosen candidates to decide how much to return.'

    @staticmethod
    def is_displayed(player: Player):
        return RoundWaitPage.is_displayed(player) and ai_decisions.has_bots(player)


class ReturnsGate(ai_decisions.AIGate):
    """Everyone of the round, every played round: the one page where people wait for the returns.

    It opens when every return is in, human or AI, and ai_min_return_seconds have passed since the
    choices (try_settle_round), so the pages a selector passes, their titles and the least wait never
    depend on whom anyone chose. A chosen human candidate reaches it after deciding: its request opens
    the gate for everyone of the group on it at once."""

    wait_text = 'Waiting for the results of this round…'
    not_ready_text = 'Still waiting for the results. Please wait a moment.'
    advance = staticmethod(try_settle_round)
    holds_min_delay = True

    @staticmethod
    def requested_at(group: Group) -> float:
        return group.ai_returns_requested_at

    @staticmethod
    def awaits_people(group: Group) -> bool:
        return not human_returns_in(group)

    @staticmethod
    def is_displayed(player: Player):
        return (is_played_round(player) and not journey.is_out(player.participant)
                and not ai_decisions.has_bots(player))


class Feedback(InfoPage):

    @staticmethod
    def is_displayed(player: Player):
        return is_played_round(player) and not journey.is_out(player.participant)

    @staticmethod
    def vars_for_template(player: Player):
        data = common_vars(player)
        if role_of(player) == C.SELECTOR:
            labels = dict(zip(player.offered_candidate_ids.split(';'), player.offered_display_labels.split(';')))
            data.update(
                chosen_label=labels.get(player.chosen_candidate_id, ''),
                history=selector_history(player),
            )
        else:
            candidate = next(c for c in round_candidates(player.group) if c.candidate_id == player.candidate_id)
            data.update(candidate=candidate,
                        market=market_cards(player.group) if config_of(player).market_feedback else [])
        return data

    app_after_this_page = staticmethod(leave_after_last_round)

    @staticmethod
    def before_next_page(player: Player, timeout_happened):
        player.feedback_timed_out = timeout_happened


page_sequence = [
    # round 1: groups form among the qualified (the intro app came first), then the role's instructions
    ArrivalWaitPage, LabGroupingWaitPage, Instructions,
    # every played round: messages, choices, returns, feedback; after the last one, the exit app
    RoundStart, WriteMessage, MessagesWaitPage, AIMessagesGate, Choose, ChoicesWaitPage, AIChoicesGate, Return,
    ReturnsWaitPage, ReturnsGate, Feedback,
]


# EXPORTS: partner_selection/exports.py (decisions, candidates, AI calls)
from .exports import (  # noqa: E402
    custom_export, custom_export_ai_calls, custom_export_candidates, custom_export_config,
)
