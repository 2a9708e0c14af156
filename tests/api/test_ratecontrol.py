"""The AIMD rate controller against a simulated server that enforces a limit it does not tell.

The simulation is a discrete-event loop on a fake clock: each client's workers claim a slot,
send, the server's token bucket (burst of one second, like the sandbox's) accepts or refuses,
and the answer comes back one RTT later. Fast (no sockets, no sleeping); the real-server
figures are in bench/README.md.
"""

from __future__ import annotations

import heapq
import itertools
import json
import time

import pytest

from akool_flows.api import ratecontrol as rc
from akool_flows.api.core import ClientCore


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def simulate(limit: float, *, clients: int = 1, workers: int = 32, rtt: float = 0.05, seconds: float = 20.0,
             gate: bool = True, stagger: float = 0.0, count_from: float = 0.0) -> tuple[list[rc.RateController], list[list[int]]]:
    clock = Clock()
    ctls = [rc.RateController(clock=clock, initial=rc.DEFAULT_INITIAL) for _ in range(clients)]
    tokens, last = float(limit), 0.0
    events: list = []
    seq = itertools.count()
    active = [0] * clients
    stats = [[0, 0] for _ in range(clients)]
    for c in range(clients):
        for _ in range(workers):
            heapq.heappush(events, (c * stagger, next(seq), "go", c, None))
    while events:
        t, _, what, c, data = heapq.heappop(events)
        if t > seconds:
            break
        clock.t = t
        ctl = ctls[c]
        if what == "go":
            if gate and active[c] >= ctl.concurrency(workers):
                heapq.heappush(events, (t + 0.01, next(seq), "go", c, None))
                continue
            active[c] += 1
            wait, epoch = ctl.acquire()
            heapq.heappush(events, (t + wait + rtt / 2, next(seq), "arrive", c, (epoch, t + wait)))
        elif what == "arrive":
            tokens = min(float(limit), tokens + (t - last) * limit)
            last = t
            ok = tokens >= 1
            tokens -= ok
            heapq.heappush(events, (t + rtt / 2, next(seq), "answer", c, (*data, ok)))
        else:
            epoch, sent, ok = data
            ctl.record(epoch, sent, refused=not ok)
            active[c] -= 1
            if t >= count_from:
                stats[c][0 if ok else 1] += 1
            heapq.heappush(events, (t, next(seq), "go", c, None))
    return ctls, stats


@pytest.mark.parametrize("limit", [50, 100, 300])
def test_one_process_finds_the_limit_without_hammering_it(limit):
    seconds = 30.0
    _, [[accepted, refused]] = simulate(limit, seconds=seconds)
    assert accepted / seconds >= 0.9 * limit
    assert refused / (accepted + refused) <= 0.05


@pytest.mark.parametrize("rtt", [0.05, 0.15])
@pytest.mark.parametrize("limit", [50, 100, 300])
@pytest.mark.parametrize("late", [0.0, 10.0])
def test_two_processes_share_one_account_fairly(limit, rtt, late):
    """Started together, or the second 10 s after the first filled the account: counted from the
    moment both run, each gets within 30% of a fair share and <= 10% of all calls are refused.
    (With x0.85 / +5 per second the late one had 0.62 of its share at 300/s; see ratecontrol.)"""
    _, stats = simulate(limit, clients=2, workers=64, rtt=rtt, seconds=late + 30.0, stagger=late, count_from=late)
    accepted = sum(s[0] for s in stats)
    refused = sum(s[1] for s in stats)
    assert refused / (accepted + refused) <= 0.10
    assert accepted / 30.0 >= 0.9 * limit
    fair = accepted / 2
    assert all(abs(s[0] - fair) <= 0.3 * fair for s in stats), stats


def test_a_newcomer_refused_in_its_first_second_keeps_the_rate_it_was_sending_at():
    """Refused 0.2 s after its first answer, with 10 calls accepted at 50/s: it measured 50/s,
    not the 10/s a full second's window would say (and then crawl up from a fifth of its share)."""
    clock = Clock()
    ctl = rc.RateController(clock=clock, initial=50.0)
    clock.t = 100.0
    for n in range(10):
        _, epoch = ctl.acquire()
        ctl.record(epoch, clock.t - 0.02, refused=False)
        clock.t += 0.02
    _, epoch = ctl.acquire()
    ctl.record(epoch, clock.t - 0.02, refused=True)
    assert ctl.rate == pytest.approx(min(50.0, 10 / 0.2) * rc.DECREASE, rel=0.05)


def test_a_fixed_rate_above_the_limit_is_what_the_controller_avoids():
    """The same simulation with the controller's adaptation switched off (a fixed 64-wide
    concurrency, no pacing to speak of) is refused most of the time: the test can tell."""
    clock = Clock()
    ctl = rc.RateController(clock=clock, initial=rc.CEILING)
    ctl._accepted = lambda now: None  # type: ignore[method-assign]
    ctl._refused = lambda now, epoch, ra: None  # type: ignore[method-assign]
    ctl.concurrency = lambda maximum: maximum  # type: ignore[method-assign]
    import unittest.mock as mock
    with mock.patch.object(rc, "RateController", lambda **kw: ctl):
        _, [[accepted, refused]] = simulate(100, workers=64, seconds=10.0)
    assert refused / (accepted + refused) > 0.4


def test_one_decrease_per_round_and_retry_after_pauses_every_slot():
    clock = Clock()
    ctl = rc.RateController(clock=clock, initial=100.0)
    tickets = [ctl.acquire() for _ in range(10)]
    ctl.record(tickets[0][1], 0.0, refused=False)  # the first answer: the controller is 2 s old below
    clock.t = 2.0
    for i in range(20):  # enough accepted calls in the window to measure
        ctl.record(tickets[0][1], 1.9, refused=False)
    rate_before = ctl.rate
    for _, epoch in tickets:
        ctl.record(epoch, 1.95, refused=True)
    assert ctl.refused == 10
    assert ctl.rate == pytest.approx(min(rate_before, 20.0) * rc.DECREASE)  # once, not ten times
    ctl.record(tickets[0][1], 1.95, refused=True, retry_after=7.0)
    wait, _ = ctl.acquire()
    assert wait == pytest.approx(7.0)


def test_the_rate_grows_only_while_callers_wait_for_it():
    clock = Clock()
    ctl = rc.RateController(clock=clock, initial=50.0)
    for n in range(200):  # one call every 0.5 s: far below the pace, never waits
        clock.t = n * 0.5
        wait, epoch = ctl.acquire()
        assert wait == 0
        ctl.record(epoch, clock.t, refused=False)
    assert ctl.rate == 50.0


def test_concurrency_follows_rate_and_latency():
    clock = Clock()
    ctl = rc.RateController(clock=clock, initial=100.0)
    assert ctl.concurrency(64) == 64  # nothing measured yet
    _, epoch = ctl.acquire()
    clock.t = 0.1
    ctl.record(epoch, 0.0, refused=False)  # 100 ms answers
    assert ctl.concurrency(64) == 17  # 100/s x 0.1 s x 1.5 headroom + 2
    assert ctl.concurrency(8) == 8


def test_the_good_rate_is_remembered_by_hash_and_reused(tmp_path):
    state = tmp_path / "rates.json"
    rc.remember_rates(state)
    try:
        secret = "sk-very-secret-api-key"
        key = rc.credential_key("https://openapi.akool.com", secret)
        ctl = rc.RateController(key=key, initial=80.0)
        ctl.save()
        text = state.read_text()
        assert secret not in text and key in text
        assert json.loads(text)[key]["rate"] == 80.0
        assert rc.RateController(key=key).rate == 80.0  # the next run starts there...
        assert rc.RateController(key=key).ssthresh == 80.0  # ...and probes up slowly from it
        assert rc.RateController(key="other").rate == rc.DEFAULT_INITIAL
    finally:
        rc.remember_rates(None)


def test_clients_of_one_credential_share_one_controller():
    a = ClientCore(api_key="k1", base_url="http://127.0.0.1:1")
    b = ClientCore(api_key="k1", base_url="http://127.0.0.1:1")
    c = ClientCore(api_key="k2", base_url="http://127.0.0.1:1")
    assert a.rate_control is b.rate_control
    assert a.rate_control is not c.rate_control
    assert "k1" not in repr(a.rate_control) and "k1" not in (a.rate_control.key or "")


def test_pacer_spaces_slots():
    clock = Clock()
    p = rc.Pacer(10.0, clock=clock)
    assert [round(p.delay(), 3) for _ in range(3)] == [0.0, 0.1, 0.2]
    assert rc.Pacer(None).delay() == 0.0


def test_bursts_far_below_the_pace_do_not_grow_it():
    """64 callers at once every second: each burst waits for slots, but the pace is 90% unused."""
    clock = Clock()
    ctl = rc.RateController(clock=clock, initial=500.0)
    for second in range(20):
        clock.t = float(second)
        tickets = [ctl.acquire() for _ in range(50)]
        clock.t += 0.05
        for _, epoch in tickets:
            ctl.record(epoch, clock.t - 0.01, refused=False)
    assert ctl.rate == 500.0


def test_a_client_made_before_the_state_file_is_named_still_starts_from_the_remembered_rate(tmp_path):
    """The runner names the state file when a batch starts; a client the caller made earlier
    (``arun_batch(..., client=...)``, the bench, a notebook) already has its controller. It must
    still start from the remembered pace - a late-joining process otherwise starts from the
    default and leaves the account to the process that was there first for longer."""
    key = rc.credential_key("http://sandbox.invalid", "tok-remember")
    state = tmp_path / "rates.json"
    state.write_text(json.dumps({key: {"rate": 180.0, "at": time.time()}}))
    ctl = rc.controller_for(key)  # made first, as the client does
    try:
        assert ctl.rate == rc.DEFAULT_INITIAL
        rc.remember_rates(state)
        assert ctl.rate == 180.0 and ctl.ssthresh == 180.0
        # One that has already sent keeps its own pace: it has measured, the file has not.
        other = rc.controller_for(rc.credential_key("http://sandbox.invalid", "tok-busy"))
        other.record(other.acquire()[1], 0.0, refused=False)
        state.write_text(json.dumps({other.key: {"rate": 180.0, "at": time.time()}}))
        rc.remember_rates(state)
        assert other.rate == rc.DEFAULT_INITIAL
    finally:
        rc.remember_rates(None)
        rc._REGISTRY.pop(key, None)
        rc._REGISTRY.pop(rc.credential_key("http://sandbox.invalid", "tok-busy"), None)
