"""The participant's journey: the questionnaire file and its checks, the consent file, and a bot session of
an arrival-grouped study where some participants do not qualify (intro → game → exit)."""
import csv
from types import SimpleNamespace

import pytest

from game_logic import questionnaire
from game_logic.session_config import ConfigError, parse
from study import journey
from otree_bots import BotJob

ITEMS_FILE = journey.project_path('_texts/questionnaire.csv')
HEADER = 'name,kind,text,choices,low,high,required,shown_to\n'


def write(tmp_path, body: str):
    path = tmp_path / 'items.csv'
    path.write_text(HEADER + body, encoding='utf-8')
    return path


def test_the_shipped_questionnaire_loads_and_asks_undisclosed_selectors_who_was_an_ai():
    items = questionnaire.load_items(ITEMS_FILE)
    names = [item.name for item in items]
    assert {'age', 'gender', 'chatbot_use', 'aias_1', 'aias_4', 'strategy', 'suspected_ai'} <= set(names)
    suspected = items[names.index('suspected_ai')]
    assert questionnaire.shown(suspected, 'selector', 'hidden')
    assert questionnaire.shown(suspected, 'selector', 'false_label')
    assert not questionnaire.shown(suspected, 'selector', 'disclosed')
    assert not questionnaire.shown(suspected, 'candidate', 'hidden')


@pytest.mark.parametrize('body, problem', [
    ('Age,integer,How old?,,18,100,yes,all\n', 'snake_case'),
    ('age,integer,How old?,,18,100,yes,all\nage,text,Again?,,,,no,all\n', 'used twice'),
    ('age,number,How old?,,18,100,yes,all\n', 'kind'),
    ('age,integer,How old?,,100,18,yes,all\n', 'low < high'),
    ('age,integer,How old?,,eighteen,100,yes,all\n', 'whole number'),
    ('g,choice,Gender?,Only one,,,yes,all\n', 'two options'),
    ('s,scale,Agree?,Low|Mid|High,1,7,yes,all\n', 'two ends'),
    ('s,text,,,,,yes,all\n', 'empty'),
    ('s,text,Why?,,,,maybe,all\n', 'yes or no'),
    ('s,text,Why?,,,,yes,everyone\n', 'shown_to'),
])
def test_a_bad_questionnaire_file_names_the_row_and_the_problem(tmp_path, body, problem):
    with pytest.raises(questionnaire.QuestionnaireError, match=problem) as error:
        questionnaire.load_items(write(tmp_path, body))
    assert 'row ' in str(error.value)


def test_a_questionnaire_file_without_a_column_or_not_utf8_is_refused(tmp_path):
    path = tmp_path / 'items.csv'
    path.write_text('name,kind,text\nage,integer,How old?\n', encoding='utf-8')
    with pytest.raises(questionnaire.QuestionnaireError, match='lacks the column'):
        questionnaire.load_items(path)
    path.write_bytes((HEADER + 'age,text,Wie alt bist du, Jürgen?,,,,yes,all\n').encode('latin-1'))
    with pytest.raises(questionnaire.QuestionnaireError, match='not UTF-8'):
        questionnaire.load_items(path)
    with pytest.raises(questionnaire.QuestionnaireError, match='does not exist'):
        questionnaire.load_items(tmp_path / 'missing.csv')


@pytest.mark.parametrize('kind, raw, stored, error', [
    ('integer', '42', '42', None), ('integer', '17', '', 'from 18 to 100'), ('integer', '٤٢', '', 'from 18'),
    ('integer', ' 42x', '', 'from 18'), ('integer', '', '', 'Please answer'), ('choice', 'Man', 'Man', None),
    ('choice', 'Other', '', 'one of the options'), ('scale', '7', '7', None), ('scale', '8', '', 'from 1 to 7'),
    ('text', 'short', 'short', None), ('text', 'x' * 11, '', 'limit is 10'),
])
def test_every_answer_is_checked_against_its_item(kind, raw, stored, error):
    item = {
        'integer': questionnaire.Item('age', 'integer', 'Age?', low=18, high=100),
        'choice': questionnaire.Item('g', 'choice', 'Gender?', ('Woman', 'Man')),
        'scale': questionnaire.Item('s', 'scale', 'Agree?', ('No', 'Yes'), 1, 7),
        'text': questionnaire.Item('t', 'text', 'Why?', high=10),
    }[kind]
    value, message = questionnaire.check_answer(item, raw)
    assert value == stored
    assert (message is None) if error is None else (error in message)


def test_an_optional_item_may_stay_empty():
    item = questionnaire.Item('t', 'text', 'Why?', high=10, required=False)
    assert questionnaire.check_answer(item, '  ') == ('', None)


def config(**fields):
    return parse(dict(fields), num_rounds_max=20)


def test_the_consent_text_fills_the_placeholders_and_escapes_them():
    paragraphs = journey.consent_paragraphs(
        config(study_contact='Dr <A> Researcher, a@example.org', ethics_approval='IRB 2026-17',
               study_duration_minutes=25), '$2.00')
    text = ' '.join(paragraphs)
    assert 'about 25 minutes' in text and '$2.00' in text and 'IRB 2026-17' in text
    assert 'Dr &lt;A&gt; Researcher' in text  # the researcher's values are escaped like any text
    assert 'Prolific ID' in text  # truthful about the ids stored
    assert 'Consent text shown' not in text and '{' not in text  # comments and placeholders are gone


def test_a_consent_file_with_an_unknown_placeholder_or_missing_fails_at_creation(tmp_path):
    path = tmp_path / 'consent.txt'
    path.write_text('Contact {study_contact}. Approved by {ethics_board}.', encoding='utf-8')
    with pytest.raises(ConfigError, match='ethics_board'):
        journey.consent_paragraphs(config(consent_file=str(path)), '$1')
    with pytest.raises(ConfigError, match='cannot read'):
        journey.consent_paragraphs(config(consent_file=str(tmp_path / 'none.txt')), '$1')


def test_the_app_sequence_must_be_intro_game_exit():
    good = SimpleNamespace(config=dict(name='x', app_sequence=['intro', 'partner_selection', 'exit']))
    journey.check_app_sequence(good)
    with pytest.raises(ConfigError, match="app_sequence must be"):
        journey.check_app_sequence(SimpleNamespace(config=dict(name='x', app_sequence=['partner_selection'])))


# 12 participants grouped by arrival; the intro routes 2 out (one refuses consent, one fails the
# comprehension check): the 10 qualified form two complete groups, the 2 leave at once.
# Three rounds: H1 times out its messages of rounds 1 and 2, so it is dropped from round 3 whether or not a
# selector chose it (in 2 rounds the drop needed its round-1 return to time out too, which happens only
# when it was chosen). The others time out only their round-1 return: no streak of 2.
ARRIVAL = BotJob('check_journey_arrival', case='timeouts', overrides={'num_rounds': 3}, export=True)


@pytest.mark.bots
@pytest.mark.otree_bots(ARRIVAL)
def test_groups_form_among_the_qualified_and_the_excluded_leave_at_once(otree_bot_runs):
    run = otree_bot_runs[ARRIVAL]
    assert run.ok, run.failure()  # the apps' bots check pages, pay and the Prolific URLs on the way
    decisions = run.rows('partner_selection_custom')
    groups = {}
    for row in decisions:
        groups.setdefault(row['group_id'], set()).add(row['selector_id'])
    assert len(groups) == 2
    assert {row['group_incomplete'] for row in decisions} == {'0'}
    assert {(row['group_selectors'], row['group_human_candidates']) for row in decisions} == {('3', '2')}
    with open(run.export_path('exit_custom'), newline='', encoding='utf-8') as handle:
        answers = list(csv.DictReader(handle))
    assert len(answers) == 10  # everyone who played answered it; the 2 routed out did not see it
    selectors = [row for row in answers if row['game_role'] == 'selector']
    assert len(selectors) == 6
    for row in answers:
        asks = row['game_role'] == 'selector' and row['treatment'] == 'hidden'
        assert bool(row['suspected_ai']) == asks, row
        assert 18 <= int(row['age']) <= 100
    assert_nobody_passes_pages_of_unplayed_rounds(run)


def assert_nobody_passes_pages_of_unplayed_rounds(run):
    """From oTree's page-times export (every page completion): no page of a round after the last played
    one, no game page for the 2 routed out in the intro, and a dropped candidate submits no game page from
    the round of the drop on. (oTree writes a wait page's completion for every member of the group when it
    opens, left ones included, so only pages a participant submits count as passed.)"""
    [config] = run.rows('partner_selection_config')
    num_rounds = int(config['num_rounds'])
    pages = run.rows('page_times')
    game = [row for row in pages if row['app_name'] == 'partner_selection']
    assert game and max(int(row['round_number']) for row in game) == num_rounds
    played = {row['participant_code'] for row in game}
    everyone = {row['participant_code'] for row in pages}
    routed_out = everyone - played
    assert len(routed_out) == 2
    for code in routed_out:
        intro = [row['page_name'] for row in pages if row['participant_code'] == code and row['app_name'] == 'intro']
        assert intro[-1] in {'Consent', 'Comprehension'}, intro  # left at the page that excluded them
    dropped_from = {}
    for row in run.rows('partner_selection_candidates'):
        if row['dropped'] == '1' and row['participant_code']:
            round_number = int(row['round'])
            dropped_from[row['participant_code']] = min(round_number, dropped_from.get(row['participant_code'], round_number))
    assert dropped_from, 'the timeouts case drops a candidate: nothing would be checked'
    for code, round_number in dropped_from.items():
        submitted = [row for row in game if row['participant_code'] == code and row['is_wait_page'] == '0']
        assert all(int(row['round_number']) < round_number for row in submitted), (code, round_number)
    for code in played:  # everyone who played reached the exit app's questionnaire and debrief
        assert {'Questionnaire', 'Debrief'} <= {row['page_name'] for row in pages
                                                if row['participant_code'] == code and row['app_name'] == 'exit'}
