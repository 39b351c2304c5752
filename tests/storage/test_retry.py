import pytest

from storage.retry import NO_RETRY, RetryPolicy


def test_exponential_backoff_capped_at_max_delay():
    policy = RetryPolicy(max_attempts=6, base_delay=1, max_delay=5, factor=2)
    assert [policy.next_delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 5.0, 5.0, None]


def test_gives_up_after_max_attempts():
    policy = RetryPolicy(max_attempts=3)
    assert policy.next_delay(2) is not None
    assert policy.next_delay(3) is None
    assert policy.next_delay(10) is None
    assert NO_RETRY.next_delay(1) is None


def test_constant_delay_and_huge_attempt_numbers():
    assert RetryPolicy(max_attempts=5, base_delay=3, factor=1).next_delay(4) == 3.0
    assert RetryPolicy(max_attempts=10**6, max_delay=60).next_delay(5000) == 60.0


def test_pure_and_frozen():
    policy = RetryPolicy()
    assert policy.next_delay(1) == policy.next_delay(1)
    with pytest.raises(AttributeError):
        policy.max_attempts = 9  # type: ignore[misc]
    assert policy == RetryPolicy() and hash(policy) == hash(RetryPolicy())


@pytest.mark.parametrize("kwargs, word", [
    ({"max_attempts": 0}, "max_attempts"),
    ({"base_delay": -1}, "base_delay"),
    ({"base_delay": 10, "max_delay": 1}, "max_delay"),
    ({"factor": 0.5}, "factor"),
])
def test_bad_values_are_named(kwargs, word):
    with pytest.raises(ValueError, match=word):
        RetryPolicy(**kwargs)


def test_attempts_start_at_one():
    with pytest.raises(ValueError, match="start at 1"):
        RetryPolicy().next_delay(0)
