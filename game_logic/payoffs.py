"""Berg–Dickhaut–McCabe (1995) investment-game arithmetic, one implementation for both apps.

The sender (trustor / selector) keeps ``endowment - sent``; ``sent`` is multiplied and the
receiver (trustee / candidate) returns an integer between 0 and the multiplied amount.
"""
from dataclasses import dataclass


class InvalidAmount(ValueError):
    """An amount outside the game's rules; the message says which rule and the allowed range."""


@dataclass(frozen=True)
class TrustOutcome:
    sent: int
    received: int  # sent × multiplier, what the receiver gets
    returned: int
    sender_payoff: int  # endowment − sent + returned
    receiver_payoff: int  # received − returned (any base pay is added by the caller)


def _require_int(name: str, value) -> int:
    # bool is an int subclass; True as "1 point" would hide a form bug
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidAmount(f'{name} must be a whole number of points, got {value!r}')
    return value


def validate_sent(sent, endowment: int) -> int:
    sent = _require_int('amount sent', sent)
    if not 0 <= sent <= endowment:
        raise InvalidAmount(f'amount sent must be between 0 and {endowment}, got {sent}')
    return sent


def validate_return(returned, received: int) -> int:
    returned = _require_int('amount returned', returned)
    if not 0 <= returned <= received:
        raise InvalidAmount(f'amount returned must be between 0 and {received}, got {returned}')
    return returned


def trust_outcome(endowment: int, sent: int, multiplier: int, returned: int) -> TrustOutcome:
    """Payoffs of one sender–receiver interaction; raises InvalidAmount on any out-of-rule amount."""
    _require_int('endowment', endowment)
    _require_int('multiplier', multiplier)
    if endowment < 0 or multiplier < 1:
        raise InvalidAmount(f'endowment must be >= 0 and multiplier >= 1, got {endowment}, {multiplier}')
    sent = validate_sent(sent, endowment)
    received = sent * multiplier
    returned = validate_return(returned, received)
    return TrustOutcome(
        sent=sent,
        received=received,
        returned=returned,
        sender_payoff=endowment - sent + returned,
        receiver_payoff=received - returned,
    )


def comprehension_example_return(endowment: int, multiplier: int) -> int:
    """The return in the comprehension check's worked example: 40 % of what a full endowment becomes
    (12 of 30 by default), so that the example fits any endowment and multiplier."""
    return endowment * multiplier * 2 // 5


@dataclass(frozen=True)
class ComprehensionExample:
    returned: int  # the example's return (comprehension_example_return)
    received: int  # right answer 1: what a candidate receives when the whole endowment is sent
    payoff: int  # right answer 2: the selector's points, or what the candidate keeps of what it received


def comprehension_example(endowment: int, multiplier: int, is_selector: bool) -> ComprehensionExample:
    """The comprehension check's worked example and its right answers, for a selector or a candidate
    (the candidate's question asks what it keeps of what it received: no base pay)."""
    returned = comprehension_example_return(endowment, multiplier)
    outcome = trust_outcome(endowment, endowment, multiplier, returned)
    payoff = outcome.sender_payoff if is_selector else outcome.receiver_payoff
    return ComprehensionExample(returned=returned, received=outcome.received, payoff=payoff)
