"""The planner against Revolve's closed form, and its actions carried out by hand."""

import random
from math import comb

import pytest

import gpurevolve as gr


def closed_form(n, s):
    """Griewank & Walther: t is the least with C(s + t, t) >= n; p = t n - C(s + t, t - 1)."""
    if n == 1:
        return 0, 0
    s = min(s, n - 1)
    t = 0
    while comb(s + t, t) < n:
        t += 1
    return t, t * n - comb(s + t, t - 1)


@pytest.mark.parametrize("seed", range(3))
def test_plan_matches_the_closed_form(seed):
    rng = random.Random(seed * 7919 + random.randrange(1 << 30))
    for _ in range(200):
        n = rng.randrange(1, 5000)
        s = rng.randrange(1, 60)
        t, p = closed_form(n, s)
        info = gr.plan(n, s)
        assert (info["repetitions"], info["advances"]) == (t, p), (n, s)
        assert info["total_forward"] == n + p
        assert info["state_adjoint_forward"] == p + 1
        assert info["recompute_factor"] == pytest.approx((n + p) / n, rel=1e-15)
    # The reference values of DESIGN.md.
    assert gr.plan(1000, 10)["total_forward"] == 4636
    assert gr.plan(10000, 20)["advances"] == 37976


def run_by_hand(n, s):
    """Carries out the schedule on a stand-in state (its step number): every reverse must
    find the right state, each step reversed once, in order, within s slots."""
    live, slots, reversed_steps, advances = 0, {}, [], 0
    for a in gr.Revolve(n, s):
        if a.kind == "advance":
            assert live == a.start
            advances += a.stop - a.start
            live = a.stop
        elif a.kind == "save":
            assert live == a.step and a.slot not in slots and a.slot < s
            slots[a.slot] = live
        elif a.kind == "restore":
            assert slots[a.slot] == a.step
            live = a.step
        elif a.kind == "free":
            assert slots.pop(a.slot) == a.step
        elif a.kind == "reverse":
            assert live == a.step
            reversed_steps.append(a.step)
            live = None
        else:
            assert a.kind == "end"
    assert reversed_steps == list(range(n - 1, -1, -1))
    assert not slots
    return advances


def test_revolve_actions_reverse_every_step_with_the_fewest_advances():
    rng = random.Random()
    for _ in range(30):
        n = rng.randrange(1, 300)
        s = rng.randrange(1, min(12, n) + 1)  # more snapshots than steps is refused
        assert run_by_hand(n, s) == closed_form(n, s)[1], (n, s)


def test_revolve_is_read_once_and_prints():
    r = gr.Revolve(4, 2)
    assert (r.steps, r.snaps) == (4, 2)
    first = list(r)
    assert first[-1].kind == "end"
    assert list(r) == []
    assert "advance" in repr([a for a in first if a.kind == "advance"][0])


@pytest.mark.parametrize("n, s", [(0, 3), (10, 0)])
def test_bad_plans_are_value_errors(n, s):
    with pytest.raises(ValueError, match="must be at least 1"):
        gr.plan(n, s)
    with pytest.raises(ValueError, match="must be at least 1"):
        gr.Revolve(n, s)


def test_more_snapshots_than_steps_is_a_value_error():
    with pytest.raises(ValueError, match="snapshots"):
        gr.Revolve(10, 11)
