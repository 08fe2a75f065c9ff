"""Sign-in throttling: exponential back-off after repeated failed attempts.

Two counters, one keyed by the email (guessing one account's password from many
addresses) and one by the client address (trying many accounts from one address).
After `failures_free` failures a key is locked for `delay_s`, then twice that after each
further failure, up to `delay_s_max`; a key with no failure for `forget_after_s` starts
afresh. Attempts still being checked count as possible failures, so a burst of
concurrent guesses cannot all pass before the first failure is recorded. Memory is
bounded: at most `keys_max` keys per counter, the least recently failed forgotten first.

Counted per server process: several `lianbo serve` nodes behind one name each keep
their own counts, so an attacker spreading attempts over n nodes gets n times the budget.
That is accepted here; scrypt keeps each attempt slow anyway. Nothing here reads the
wall clock: the clock is given (monotonic in the server, a fake in tests).
"""

from __future__ import annotations

import math
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

EMAIL_FAILURES_FREE: Final = 5
ADDRESS_FAILURES_FREE: Final = 20  # an office or a mall's NAT signs in many staff
DELAY_S: Final = 30.0
DELAY_S_MAX: Final = 15 * 60.0
FORGET_AFTER_S: Final = 60 * 60.0
KEYS_MAX: Final = 10_000
CHECKING_WAIT_S: Final = 1.0  # how long to wait for attempts being checked to finish


@dataclass(slots=True)
class _Failures:
    count: int
    last_at_s: float
    locked_until_s: float


@dataclass(slots=True, kw_only=True)
class FailureThrottle:
    """Failed attempts per key, and how long a key must wait before trying again."""

    failures_free: int
    delay_s: float = DELAY_S
    delay_s_max: float = DELAY_S_MAX
    forget_after_s: float = FORGET_AFTER_S
    keys_max: int = KEYS_MAX
    clock: Callable[[], float] = time.monotonic
    _keys: OrderedDict[str, _Failures] = field(init=False, default_factory=OrderedDict)
    _checking: Counter[str] = field(init=False, default_factory=Counter)  # attempts under way

    def retry_after_s(self, key: str) -> float:
        """Seconds until `key` may try again; 0 when it may try now."""
        entry = self._current(key)
        failures = 0 if entry is None else entry.count
        if entry is not None and entry.locked_until_s > self.clock():
            return entry.locked_until_s - self.clock()
        checking = self._checking[key]
        if checking and failures + checking >= self.failures_free:
            return CHECKING_WAIT_S  # if those fail, this attempt would be one too many
        return 0.0

    def begin(self, key: str) -> None:
        """An attempt is being checked; `end` it whatever happens."""
        self._checking[key] += 1

    def end(self, key: str, *, failed: bool) -> None:
        self._checking[key] -= 1
        if self._checking[key] <= 0:
            del self._checking[key]
        if failed:
            self._failed(key)

    def succeeded(self, key: str) -> None:
        self._keys.pop(key, None)

    def __len__(self) -> int:
        return len(self._keys)

    def _failed(self, key: str) -> None:
        now = self.clock()
        entry = self._current(key) or _Failures(0, now, now)
        entry.count += 1
        entry.last_at_s = now
        over = entry.count - self.failures_free
        if over >= 0:
            entry.locked_until_s = now + min(self.delay_s_max, self.delay_s * 2.0 ** min(over, 32))
        self._keys[key] = entry
        self._keys.move_to_end(key)
        while len(self._keys) > self.keys_max:
            self._keys.popitem(last=False)

    def _current(self, key: str) -> _Failures | None:
        entry = self._keys.get(key)
        if entry is None:
            return None
        now = self.clock()
        if now - entry.last_at_s > self.forget_after_s and now >= entry.locked_until_s:
            del self._keys[key]
            return None
        return entry


@dataclass(slots=True)
class SigninThrottle:
    """The email's and the address's counters together, as sign-in uses them."""

    by_email: FailureThrottle
    by_address: FailureThrottle

    @classmethod
    def default(cls, clock: Callable[[], float] = time.monotonic) -> SigninThrottle:
        return cls(
            FailureThrottle(failures_free=EMAIL_FAILURES_FREE, clock=clock),
            FailureThrottle(failures_free=ADDRESS_FAILURES_FREE, clock=clock),
        )

    def start(self, email: str, address: str) -> int:
        """Whole seconds to wait (a Retry-After value), or 0: go ahead, then `finish`."""
        email = _email_key(email)
        wait = max(self.by_email.retry_after_s(email), self.by_address.retry_after_s(address))
        if wait > 0:
            return math.ceil(wait)
        self.by_email.begin(email)
        self.by_address.begin(address)
        return 0

    def finish(self, email: str, address: str, *, signed_in: bool) -> None:
        """After a started attempt. A success forgets the email's failures; the address
        keeps its count (one known password must not reset guessing at others)."""
        email = _email_key(email)
        self.by_email.end(email, failed=not signed_in)
        self.by_address.end(address, failed=not signed_in)
        if signed_in:
            self.by_email.succeeded(email)


def _email_key(email: str) -> str:
    return email.strip().lower()  # Li@x.cn and li@x.cn are one mailbox to an attacker
