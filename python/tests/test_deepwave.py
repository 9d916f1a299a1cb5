"""Same call, same answer: gpurevolve.torch.scalar against deepwave.scalar (PyPI) on one
problem: traces in sign and scale, and the gradients of one loss to the velocity and to the
wavelet. The long form, with memory and timings, is scripts/compare_deepwave.py."""

import numpy as np
import pytest
import torch

import gpurevolve as gr
from conftest import under_ci

try:
    import deepwave
    import gpurevolve.torch as gt
except ImportError as e:  # pragma: no cover - what CI must never do
    if under_ci():
        raise
    pytest.skip(f"!!!!! SKIPPING THE DEEPWAVE COMPARISON: {e}", allow_module_level=True)


def correlation(a, b):
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def test_traces_and_gradients_agree_with_deepwave(device):
    rng = np.random.default_rng()
    ny, nx, h, f0, nt = 48, 40, 10.0, 15.0, 240
    v = torch.full((ny, nx), 2000.0, dtype=torch.float32)
    v[int(rng.integers(20, 30)):, :] = 2500.0
    true = v.clone()
    y0, x0 = int(rng.integers(12, 20)), int(rng.integers(8, 20))
    true[y0:y0 + 10, x0:x0 + 12] = 2250.0
    dt = gr.default_dt(true.numpy(), h, space_order=4) * 0.9
    wavelet = torch.tensor(gr.ricker(f0, nt, dt), dtype=torch.float32)
    shots = torch.tensor([[[int(rng.integers(5, 20)), 3]], [[int(rng.integers(28, 43)), 3]]])
    call = dict(grid_spacing=h, dt=dt, source_locations=shots,
                receiver_locations=torch.stack([torch.arange(ny), torch.full((ny,), 3)], 1)
                .repeat(2, 1, 1), accuracy=4, pml_width=20, pml_freq=f0)

    def run(scalar, **extra):
        with torch.no_grad():
            observed = scalar(true, source_amplitudes=wavelet.repeat(2, 1, 1), **call,
                              **extra)[-1]
        vv = v.clone().requires_grad_()
        q = wavelet.repeat(2, 1, 1).requires_grad_()
        traces = scalar(vv, source_amplitudes=q, **call, **extra)[-1]
        ((traces - observed) ** 2).sum().backward()
        return traces.detach().numpy(), vv.grad.numpy(), q.grad.numpy()

    d_traces, d_gv, d_gq = run(deepwave.scalar)
    o_traces, o_gv, o_gq = run(gt.scalar, device=device)
    assert correlation(d_traces, o_traces) >= 0.99  # sign included: −1 if it were wrong
    assert abs(np.linalg.norm(o_traces) / np.linalg.norm(d_traces) - 1) <= 0.05
    assert correlation(d_gv, o_gv) >= 0.98
    assert correlation(d_gq, o_gq) >= 0.98
