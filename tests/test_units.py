from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtgen_opt.units import lcm_fraction, parse_duration, to_us_down, to_us_nearest, to_us_up


@pytest.mark.parametrize("text, seconds", [
    ("60s", Fraction(60)), ("16.67ms", Fraction(1667, 100000)), ("500us", Fraction(1, 2000)),
    ("2min", Fraction(120)), ("1h", Fraction(3600)), (" 5 s ", Fraction(5)), (0, Fraction(0)),
    (".5s", Fraction(1, 2)), ("10µs", Fraction(1, 100000)),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["60", 60, 1.5, "-1s", "1 sec", "s", "", None, True, "1e3ms",
                                  "5 s s"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_a_negative_duration_says_the_limit_not_the_unit():
    with pytest.raises(ValueError, match="^a non-negative duration"):
        parse_duration("-1s")
    with pytest.raises(ValueError, match="^a positive duration"):
        parse_duration(" -5s", positive=True)
    with pytest.raises(ValueError, match="with a unit"):
        parse_duration("-5")


def test_rounding_directions():
    third = Fraction(1, 3) / 1000  # 333.33... us
    assert (to_us_down(third), to_us_nearest(third), to_us_up(third)) == (333, 333, 334)
    half = Fraction(1, 2_000_000)  # 0.5 us rounds half up
    assert to_us_nearest(half) == 1


@given(st.integers(1, 10**6), st.integers(1, 10**4), st.integers(1, 10**6), st.integers(1, 10**4))
def test_lcm_fraction_is_common_multiple(a, b, c, d):
    x, y = Fraction(a, b), Fraction(c, d)
    m = lcm_fraction(x, y)
    assert (m / x).denominator == 1 and (m / y).denominator == 1
    # and the least: no proper divisor of m is a common multiple
    for p in (2, 3, 5, 7):
        assert not ((m / p / x).denominator == 1 and (m / p / y).denominator == 1)
