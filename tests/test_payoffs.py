"""The shared Berg–Dickhaut–McCabe arithmetic (game_logic.payoffs), outside oTree."""
import pytest

from game_logic.payoffs import InvalidAmount, comprehension_example_return, trust_outcome, validate_return, validate_sent


@pytest.mark.parametrize(
    'endowment, sent, multiplier, returned, sender, receiver',
    [
        (10, 0, 3, 0, 10, 0),  # nothing sent: the trustor keeps the endowment
        (10, 10, 3, 0, 0, 30),  # everything sent, nothing back
        (10, 10, 3, 30, 30, 0),  # everything sent, everything back
        (10, 4, 3, 5, 11, 7),  # 10 − 4 + 5 and 12 − 5
        (10, 10, 3, 19, 19, 11),  # the anchor study's mean AI return, rounded
        (20, 7, 2, 14, 27, 0),  # another endowment and multiplier
        (0, 0, 3, 0, 0, 0),  # no endowment at all
        (10, 1, 1, 1, 10, 0),  # multiplier 1: a pure transfer
    ],
)
def test_trust_outcome_pays_to_the_point(endowment, sent, multiplier, returned, sender, receiver):
    outcome = trust_outcome(endowment, sent, multiplier, returned)
    assert outcome.sent == sent
    assert outcome.received == sent * multiplier
    assert outcome.returned == returned
    assert outcome.sender_payoff == sender
    assert outcome.receiver_payoff == receiver


def test_points_are_conserved_for_every_decision():
    # what the pair holds together = endowment + (multiplier − 1) × sent, whatever is returned
    for sent in range(0, 11):
        for returned in range(0, 3 * sent + 1):
            outcome = trust_outcome(10, sent, 3, returned)
            assert outcome.sender_payoff + outcome.receiver_payoff == 10 + 2 * sent
            assert outcome.sender_payoff >= 0 and outcome.receiver_payoff >= 0


@pytest.mark.parametrize('sent', [0, 1, 9, 10])
def test_validate_sent_accepts_every_amount_from_0_to_the_endowment(sent):
    assert validate_sent(sent, 10) == sent


@pytest.mark.parametrize('sent', [-1, 11, 1000])
def test_validate_sent_rejects_out_of_range_and_says_the_range(sent):
    with pytest.raises(InvalidAmount, match=r'between 0 and 10, got %d' % sent):
        validate_sent(sent, 10)


@pytest.mark.parametrize('returned', [0, 1, 29, 30])
def test_validate_return_accepts_every_amount_from_0_to_the_amount_received(returned):
    assert validate_return(returned, 30) == returned


@pytest.mark.parametrize('returned', [-1, 31])
def test_validate_return_rejects_out_of_range_and_says_the_range(returned):
    with pytest.raises(InvalidAmount, match=r'between 0 and 30, got %d' % returned):
        validate_return(returned, 30)


def test_nothing_received_means_only_0_can_be_returned():
    assert validate_return(0, 0) == 0
    with pytest.raises(InvalidAmount, match='between 0 and 0'):
        validate_return(1, 0)


@pytest.mark.parametrize('bad', [True, False, 2.0, 2.5, '2', '', None, [2]])
def test_non_integer_amounts_are_rejected_not_coerced(bad):
    with pytest.raises(InvalidAmount, match='whole number of points'):
        validate_sent(bad, 10)
    with pytest.raises(InvalidAmount, match='whole number of points'):
        validate_return(bad, 30)
    with pytest.raises(InvalidAmount, match='whole number of points'):
        trust_outcome(10, bad, 3, 0)


@pytest.mark.parametrize(
    'endowment, sent, multiplier, returned, message',
    [
        (10, 11, 3, 0, 'amount sent must be between 0 and 10'),
        (10, -1, 3, 0, 'amount sent must be between 0 and 10'),
        (10, 5, 3, 16, 'amount returned must be between 0 and 15'),
        (10, 5, 3, -1, 'amount returned must be between 0 and 15'),
        (10, 5, 0, 0, 'multiplier >= 1'),
        (-1, 0, 3, 0, 'endowment must be >= 0'),
        (10.0, 5, 3, 0, 'endowment must be a whole number'),
        (10, 5, 1.5, 0, 'multiplier must be a whole number'),
        (10, 5, True, 0, 'multiplier must be a whole number'),
    ],
)
def test_trust_outcome_rejects_every_out_of_rule_input(endowment, sent, multiplier, returned, message):
    with pytest.raises(InvalidAmount, match=message):
        trust_outcome(endowment, sent, multiplier, returned)


def test_invalid_amount_is_a_value_error():
    # callers that only know ValueError (forms, the analysis) still catch it
    assert issubclass(InvalidAmount, ValueError)


def test_outcome_is_immutable():
    outcome = trust_outcome(10, 5, 3, 5)
    with pytest.raises(AttributeError):
        outcome.returned = 0


@pytest.mark.parametrize('endowment, multiplier, expected', [(10, 3, 12), (4, 2, 3), (1, 1, 0), (20, 4, 32)])
def test_comprehension_example_return_scales_and_stays_within_what_was_received(endowment, multiplier, expected):
    returned = comprehension_example_return(endowment, multiplier)
    assert returned == expected
    trust_outcome(endowment, endowment, multiplier, returned)  # a valid return: raises otherwise
