"""Three L-BFGS-B iterations through the Python API reduce the misfit: the gradient points
downhill for a real optimiser, with the water layer fixed and the velocities bounded."""

import numpy as np
import pytest

scipy_optimize = pytest.importorskip("scipy.optimize")

import gpurevolve as gr  # noqa: E402
from conftest import surface_survey  # noqa: E402


def test_three_iterations_reduce_the_misfit(device):
    shape, h, vmax = (48, 24), 20.0, 4800.0
    true = gr.marmousi_like(shape, h, seed=2)
    start = gr.smoothed(true, 4)
    water = 2
    start[:, :water] = true[:, :water]
    sources, receivers = surface_survey(shape, h, 3)
    common = dict(spacing=h, sources=sources, receivers=receivers, f0=6.0, space_order=4,
                  nbl=10, dt=gr.default_dt(np.full(shape, vmax), h, 4), boundary_velocity=vmax)
    observed = device.forward(true, tmax=0.8, **common)
    misfits = []

    def objective(x):
        v = start.copy()
        v[:, water:] = x.reshape(shape[0], -1) * 1000.0
        misfit, g, _ = device.gradient(v, observed, snaps=8, **common)
        misfits.append(misfit)
        return misfit / misfits[0], (gr.velocity_gradient(g, v)[:, water:] * 1000.0
                                     / misfits[0]).ravel()

    result = scipy_optimize.minimize(
        objective, start[:, water:].ravel() / 1000.0, jac=True, method="L-BFGS-B",
        bounds=[(1.4, vmax / 1000.0)] * start[:, water:].size, options=dict(maxiter=3))
    assert result.nit == 3
    assert result.fun * misfits[0] < 0.7 * misfits[0], misfits
