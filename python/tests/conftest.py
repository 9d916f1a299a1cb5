"""Shared fixtures. A missing GPU adapter skips the GPU tests loudly on a workstation and
fails them under CI (CI set and not 0/false), as the Rust tests do."""

import os
import signal
import sys

import numpy as np
import pytest

import gpurevolve as gr


def under_ci():
    return os.environ.get("CI", "") not in ("", "0", "false")


@pytest.fixture
def sigint():
    """Python's own Ctrl-C handler for the test. A process started in the background by a
    shell without job control starts with SIGINT ignored, and then `_thread.interrupt_main`
    does nothing: the Ctrl-C tests would fail for the way they were launched."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="session")
def device():
    try:
        return gr.Device()
    except gr.GpuError as e:
        if under_ci():
            pytest.fail(f"CI is set and no GPU adapter is usable: {e}")
        sys.stderr.write(f"\n!!!!! SKIPPING GPU TEST: {e}\n")
        pytest.skip(f"no GPU adapter: {e}")


def surface_survey(shape, spacing, shots, depth_cells=2):
    """Sources spread along x at the surface, a receiver at every column: the main job's."""
    ex = (shape[0] - 1) * spacing
    depth = depth_cells * spacing
    xs = [ex / 2] if shots == 1 else [ex * (i + 0.5) / shots for i in range(shots)]
    sources = np.array([[x, depth] for x in xs])
    receivers = np.stack([np.arange(shape[0]) * spacing, np.full(shape[0], depth)], axis=1)
    return sources, receivers


SMALL_SHAPE, SMALL_H = (30, 20), 10.0


@pytest.fixture
def case():
    """A small random model (30 x 20 cells of 10 m) and the keywords of a two-shot survey on
    it: what the bad-input tests change one argument of."""
    rng = np.random.default_rng()
    vp = rng.uniform(1500.0, 3000.0, SMALL_SHAPE)
    sources, receivers = surface_survey(SMALL_SHAPE, SMALL_H, 2)
    common = dict(spacing=SMALL_H, sources=sources, receivers=receivers, space_order=4, nbl=8)
    return vp, common


def forward(device, vp, common, **changes):
    """``device.forward`` of ``case``'s survey with ``changes``; 60 samples unless ``nt`` or
    ``tmax`` is given."""
    kwargs = {**common, **changes}
    if "tmax" not in kwargs:
        kwargs.setdefault("nt", 60)
    return device.forward(vp, **kwargs)
