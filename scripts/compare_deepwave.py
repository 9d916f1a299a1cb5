#!/usr/bin/env python3
"""The same problem through Deepwave and through gpurevolve.torch: traces (correlation,
amplitude ratio, lag of best match) and the gradients of one L2 loss to the velocity and to
the wavelet (each against its own synthetic data from a perturbed model), and the wavefield
memory each holds between forward and backward. Needs `pip install deepwave` beside the
package (not a dependency); CI runs `python/tests/test_deepwave.py`, its short form.

    target/python-venv/bin/python scripts/compare_deepwave.py
"""

import time

import numpy as np
import torch

import deepwave
import gpurevolve as gr
import gpurevolve.torch as ours


def problem(ny=80, nx=60, nt=400, h=10.0, f0=15.0):
    v = torch.full((ny, nx), 2000.0, dtype=torch.float32)
    v[40:, :] = 2600.0
    true = v.clone()
    true[30:50, 20:40] = 2300.0
    dt = gr.default_dt(v.numpy(), h, space_order=4) * 0.9
    wavelet = torch.tensor(gr.ricker(f0, nt, dt), dtype=torch.float32)
    call = dict(
        grid_spacing=h, dt=dt, source_amplitudes=wavelet.repeat(2, 1, 1),
        source_locations=torch.tensor([[[20, 3]], [[60, 3]]]),
        receiver_locations=torch.stack([torch.arange(ny), torch.full((ny,), 3)], 1).repeat(2, 1, 1),
        accuracy=4, pml_width=20, pml_freq=f0,
    )
    return v, true, call


def run(scalar, v, true, call, **extra):
    """Traces, the L2 loss's gradients to v and to the wavelet, seconds."""
    clock = time.perf_counter()
    with torch.no_grad():
        observed = scalar(true, **call, **extra)[-1]
    vv = v.clone().requires_grad_()
    amplitudes = call["source_amplitudes"].clone().requires_grad_()
    args = dict(call, source_amplitudes=amplitudes)
    traces = scalar(vv, **args, **extra)[-1]
    ((traces - observed) ** 2).sum().backward()
    return traces.detach().numpy(), vv.grad.numpy(), amplitudes.grad.numpy(), time.perf_counter() - clock


def correlation(a, b):
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def main():
    v, true, call = problem()
    d_traces, d_gv, d_gq, d_s = run(deepwave.scalar, v, true, call)
    o_traces, o_gv, o_gq, o_s = run(ours.scalar, v, true, call)
    lags = {lag: correlation(d_traces[..., 10:-10], np.roll(o_traces, lag, -1)[..., 10:-10])
            for lag in range(-2, 3)}
    print(f"traces: correlation {correlation(d_traces, o_traces):.6f}, amplitude ratio "
          f"{np.linalg.norm(o_traces) / np.linalg.norm(d_traces):.4f}, best lag "
          f"{max(lags, key=lags.get)} samples")
    print(f"velocity gradient: correlation {correlation(d_gv, o_gv):.6f}, ratio "
          f"{np.linalg.norm(o_gv) / np.linalg.norm(d_gv):.4f}")
    print(f"wavelet gradient: correlation {correlation(d_gq, o_gq):.6f}, ratio "
          f"{np.linalg.norm(o_gq) / np.linalg.norm(d_gq):.4f}")
    # Wavefield memory between forward and backward, per shot: Deepwave stores one padded
    # wavefield a step (its default storage); ours holds the schedule's checkpoints.
    ny, nx = v.shape
    nt = call["source_amplitudes"].shape[-1]
    pad = 2 * (call["pml_width"] + call["accuracy"] // 2)
    deepwave_bytes = nt * (ny + pad) * (nx + pad) * 4
    device = ours._operator.default_device()
    tape = device.record(
        v.numpy(), call["grid_spacing"],
        np.ascontiguousarray(-call["source_amplitudes"].numpy()[:1].swapaxes(1, 2)),
        call["source_locations"].numpy()[:1] * call["grid_spacing"],
        call["receiver_locations"].numpy()[:1] * call["grid_spacing"],
        dt=call["dt"], f0=call["pml_freq"], space_order=4, nbl=20,
    )
    info = tape.info
    print(f"wavefield memory a shot: Deepwave (every step) {deepwave_bytes / 1e6:.1f} MB, "
          f"gpurevolve {info['checkpoint_bytes_on_device'] / 1e6:.1f} MB of checkpoints "
          f"({info['checkpointing']}, {info['planned_forward_steps']} forward steps for "
          f"{nt - 1})")
    print(f"seconds (this machine; gpurevolve on {device.adapter}): Deepwave {d_s:.2f}, "
          f"gpurevolve {o_s:.2f}")


if __name__ == "__main__":
    main()
