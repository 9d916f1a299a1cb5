"""Hostile and careless input (issue 24): sizes past any machine, overflowing counts, physics
the grid cannot carry, negative integers, signals. Each is the documented exception (never an
abort that kills the interpreter, never a non-finite result), and the next call works."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import SMALL_H as H, SMALL_SHAPE as SHAPE, forward


@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(nt=10**12), MemoryError, "traces of one shot"),
        (dict(tmax=1e9), MemoryError, "traces of one shot"),
        (dict(nbl=10**7), MemoryError, "nbl = 10000000"),
        (dict(nt=2**63), ValueError, "nt"),
        (dict(tmax=1e308), ValueError, "tmax"),
        (dict(dt=1e-300, tmax=1.0), ValueError, "tmax"),
        # A grid of 1e-300 m cells (positions scaled with it): 1/h² overflows float32.
        (dict(spacing=1e-300), ValueError, "spacing"),
        (dict(f0=1e308), ValueError, "f0 ≤"),
        (dict(boundary_velocity=1e308), ValueError, "boundary_velocity"),
        (dict(vp=np.full(SHAPE, 3e38)), ValueError, "velocit"),
        (dict(vp=np.broadcast_to(np.float32(2000.0), (10**6, 10**6))), MemoryError, "vp"),
        (dict(vp=np.float32(2000.0)), TypeError, "scalar"),
        (dict(nbl=-1), ValueError, "nbl"),
        (dict(space_order=-4), ValueError, "space_order"),
        (dict(nt=-60), ValueError, "nt"),
    ],
)
def test_hostile_forward_input_raises_what_the_docs_say(device, case, change, error, match):
    vp, common = case
    vp = change.pop("vp", vp)
    given = common
    if "spacing" in change:
        h = change.pop("spacing")
        given = {**common, "spacing": h, "sources": common["sources"] * (h / H),
                 "receivers": common["receivers"] * (h / H)}
    if "tmax" in change:
        change.setdefault("nt", None)
    with pytest.raises(error, match=match) as raised:
        forward(device, vp, given, **change)
    assert len(str(raised.value)) < 400, str(raised.value)
    assert np.isfinite(forward(device, case[0], common)).all()


@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(device_memory=-1), ValueError, "device_memory"),
        (dict(host_memory=-5), ValueError, "host_memory"),
        (dict(disk_memory=1000), ValueError, "disk"),
        (dict(observed=3e38), ValueError, "not finite"),
    ],
)
def test_hostile_gradient_input_raises_what_the_docs_say(device, case, change, error, match):
    vp, common = case
    observed = forward(device, vp * 1.05, common)
    value = change.pop("observed", None)
    if value is not None:
        observed = observed.copy()
        observed[:, 30:, :] = value
    with pytest.raises(error, match=match):
        device.gradient(vp, observed, **common, **change)
    misfit, grad, _ = device.gradient(vp, forward(device, vp * 1.05, common), **common)
    assert np.isfinite(misfit) and np.isfinite(grad).all()


def test_sigterm_during_a_run_removes_its_disk_files(tmp_path):
    """A batch scheduler's SIGTERM ends the process by that signal, after the run has removed
    its checkpoint files."""
    disk = tmp_path / "disk"
    disk.mkdir()
    script = textwrap.dedent(
        f"""
        import os, signal, numpy as np, gpurevolve as gr
        from conftest import surface_survey
        dev = gr.Device()
        vp = np.random.default_rng().uniform(1500.0, 3000.0, {SHAPE})
        sources, receivers = surface_survey({SHAPE}, {H}, 1)
        common = dict(spacing={H}, sources=sources, receivers=receivers, space_order=4, nbl=8)
        observed = dev.forward(vp * 1.05, nt=3000, **common)
        def progress(done, total):
            # Once checkpoint files exist, or at the last tick on a GPU too fast for that.
            files = any(f.startswith("slot-") for _, _, fs in os.walk({str(disk)!r}) for f in fs)
            if (done > 0 and files) or done == total:
                os.kill(os.getpid(), signal.SIGTERM)
        dev.gradient(vp, observed, snaps=6, device_memory=0, host_memory=0,
                     disk={str(disk)!r}, progress=progress, **common)
        print("the run was not stopped")
        """
    )
    env = dict(os.environ, PYTHONPATH=os.path.dirname(__file__))
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == -signal.SIGTERM, (done.returncode, done.stdout, done.stderr)
    assert list(disk.iterdir()) == [], list(disk.rglob("*"))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda gr: gr.plan(-1, 3), "steps"),
        (lambda gr: gr.plan(100, 2**70), "snaps"),
        (lambda gr: gr.Revolve(-1, 2), "steps"),
        (lambda gr: gr.marmousi_like((-1, 5), 15.0), "shape"),
        (lambda gr: gr.marmousi_like((8, 5), 15.0, seed=-1), "seed"),
        (lambda gr: gr.smoothed(np.full((8, 5), 2000.0), -1), "radius"),
        (lambda gr: gr.default_dt(np.full((8, 5), 2000.0), 10.0, space_order=-8), "space_order"),
    ],
)
def test_negative_or_oversized_integers_are_value_errors_everywhere(call, match):
    import gpurevolve as gr

    with pytest.raises(ValueError, match=match):
        call(gr)
