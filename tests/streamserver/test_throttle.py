"""The sign-in throttle on its own: a fake clock, no server."""

from __future__ import annotations

from dataclasses import dataclass

from streamserver.throttle import CHECKING_WAIT_S, FailureThrottle, SigninThrottle


@dataclass
class FakeClock:
    now_s: float = 1000.0

    def __call__(self) -> float:
        return self.now_s


def fail(throttle: FailureThrottle, key: str) -> None:
    assert throttle.retry_after_s(key) == 0, "only attempts that were let through can fail"
    throttle.begin(key)
    throttle.end(key, failed=True)


def test_a_key_may_fail_freely_then_waits_longer_after_each_further_failure() -> None:
    clock = FakeClock()
    throttle = FailureThrottle(failures_free=3, delay_s=10, delay_s_max=35, clock=clock)
    for _ in range(2):
        fail(throttle, "li@example.cn")
        assert throttle.retry_after_s("li@example.cn") == 0
    fail(throttle, "li@example.cn")
    assert throttle.retry_after_s("li@example.cn") == 10
    clock.now_s += 4
    assert throttle.retry_after_s("li@example.cn") == 6
    clock.now_s += 6
    fail(throttle, "li@example.cn")
    assert throttle.retry_after_s("li@example.cn") == 20
    clock.now_s += 20
    fail(throttle, "li@example.cn")
    assert throttle.retry_after_s("li@example.cn") == 35  # 40, capped
    assert throttle.retry_after_s("wang@example.cn") == 0


def test_a_success_resets_the_key() -> None:
    clock = FakeClock()
    throttle = FailureThrottle(failures_free=2, delay_s=10, clock=clock)
    fail(throttle, "li")
    throttle.succeeded("li")
    fail(throttle, "li")
    assert throttle.retry_after_s("li") == 0
    fail(throttle, "li")
    assert throttle.retry_after_s("li") == 10


def test_attempts_being_checked_count_so_a_burst_cannot_overshoot() -> None:
    throttle = FailureThrottle(failures_free=3, delay_s=10, clock=FakeClock())
    fail(throttle, "li")
    throttle.begin("li")
    assert throttle.retry_after_s("li") == 0  # 1 failed + 1 under way: a third may go
    throttle.begin("li")
    assert throttle.retry_after_s("li") == CHECKING_WAIT_S
    throttle.end("li", failed=False)
    throttle.end("li", failed=False)
    assert throttle.retry_after_s("li") == 0


def test_failures_long_ago_are_forgotten_once_no_lock_holds() -> None:
    clock = FakeClock()
    throttle = FailureThrottle(failures_free=2, delay_s=10, forget_after_s=60, clock=clock)
    fail(throttle, "li")
    clock.now_s += 61
    fail(throttle, "li")
    assert throttle.retry_after_s("li") == 0  # the first failure no longer counts
    assert len(throttle) == 1


def test_memory_stays_bounded_dropping_the_least_recently_failed() -> None:
    throttle = FailureThrottle(failures_free=1, delay_s=10, keys_max=100, clock=FakeClock())
    fail(throttle, "target")
    for i in range(99):
        fail(throttle, f"other{i}")
    assert len(throttle) == 100
    assert throttle.retry_after_s("target") == 10
    fail(throttle, "one more")
    assert len(throttle) == 100
    assert throttle.retry_after_s("target") == 0


def test_sign_in_counts_by_email_and_by_address_and_success_clears_only_the_email() -> None:
    clock = FakeClock()
    throttle = SigninThrottle(
        FailureThrottle(failures_free=2, delay_s=10, clock=clock),
        FailureThrottle(failures_free=3, delay_s=30, clock=clock),
    )

    def attempt(email: str, address: str, *, signed_in: bool = False) -> None:
        assert throttle.start(email, address) == 0
        throttle.finish(email, address, signed_in=signed_in)

    attempt("Li@Example.cn", "10.0.0.1")
    attempt("li@example.cn ", "10.0.0.2")
    assert throttle.start("li@example.cn", "10.0.0.3") == 10  # one mailbox, any case
    attempt("wang@example.cn", "10.0.0.1")
    attempt("wang@example.cn", "10.0.0.1", signed_in=True)  # counts at neither key
    assert throttle.start("wang@example.cn", "10.0.0.4") == 0  # the email was forgiven
    throttle.finish("wang@example.cn", "10.0.0.4", signed_in=True)
    assert throttle.start("zhou@example.cn", "10.0.0.1") == 0
    throttle.finish("zhou@example.cn", "10.0.0.1", signed_in=False)  # the address's third failure
    assert throttle.start("zhao@example.cn", "10.0.0.1") == 30
    clock.now_s += 0.5
    assert throttle.start("zhao@example.cn", "10.0.0.1") == 30  # whole seconds, rounded up
