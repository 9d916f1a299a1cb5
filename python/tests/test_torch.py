"""gpurevolve.torch: the checkpointed operator under PyTorch's autograd, called as Deepwave's.

The L2 backward gives Device.gradient's bits (through the chain rule to v); a Taylor test of a
misfit other than L2 shows slopes 1 and 2; the wavelet gradient matches central differences;
bad input raises, and so does a second backward without keep_checkpoints."""

import _thread
import threading
import time

import numpy as np
import pytest

import gpurevolve as gr
from conftest import under_ci

try:
    import torch
    import gpurevolve.torch as gt
    from gpurevolve import _operator
except ImportError as e:  # pragma: no cover - what CI must never do
    if under_ci():
        raise
    pytest.skip(f"!!!!! SKIPPING TORCH TESTS: {e}", allow_module_level=True)

H = 10.0


def setup(shape=(30, 24), shots=2, nt=120, seed=None):
    """A random smooth model, shots along the surface (cells), a receiver every other column,
    the Ricker wavelet in Deepwave's sign, and the matching Device keywords."""
    rng = np.random.default_rng(seed)
    x, z = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    phase = rng.uniform(0, np.pi, 2)
    vp = 2000.0 + 300.0 * np.sin(0.2 * x + phase[0]) * np.cos(0.15 * z + phase[1])
    vp += rng.uniform(-50, 50, shape)
    f0 = 15.0
    dt = gr.default_dt(vp * 1.2, H, space_order=4)
    src_cells = np.array([[[int(shape[0] * (i + 0.5) / shots), 2]] for i in range(shots)])
    rec = np.array([[i, 2] for i in range(0, shape[0], 2)])
    rec_cells = np.repeat(rec[None], shots, axis=0)
    wavelet = gr.ricker(f0, nt, dt)
    amplitudes = -np.repeat(wavelet[None, None, :], shots, axis=0)  # Deepwave's sign
    return rng, vp, f0, dt, src_cells, rec_cells, amplitudes


def scalar(device, v, amplitudes, src_cells, rec_cells, dt, f0, **kw):
    return gt.scalar(v, H, dt, source_amplitudes=amplitudes, source_locations=src_cells,
                     receiver_locations=rec_cells, accuracy=4, pml_width=8, pml_freq=f0,
                     max_vel=kw.pop("max_vel", None), device=device, **kw)[-1]


def test_the_l2_backward_gives_the_gradients_bits(device):
    rng, true, f0, dt, src, rec, amplitudes = setup()
    start = gr.smoothed(true, 3)
    nt = amplitudes.shape[-1]
    common = dict(spacing=H, sources=src[:, 0, :] * H, receivers=rec[0] * H, f0=f0, dt=dt,
                  space_order=4, nbl=8, boundary_velocity=true.max())
    observed = device.forward(true, nt=nt, **common)  # (shots, nt, receivers), our sign
    misfit, g_m, _ = device.gradient(start, observed, snaps=6, **common)

    v = torch.tensor(start, requires_grad=True)
    q = torch.tensor(amplitudes, dtype=torch.float32)
    out = scalar(device, v, q, src, rec, dt, f0, snaps=6, max_vel=true.max())
    assert out.shape == (2, rec.shape[1], nt) and out.dtype == torch.float32
    # Deepwave's sign with the negated wavelet: this package's traces, to the bit.
    predicted = device.forward(start, nt=nt, **common)
    assert np.array_equal(out.detach().numpy(), np.swapaxes(predicted, 1, 2).astype(np.float32))
    obs = torch.tensor(np.swapaxes(observed, 1, 2), dtype=torch.float32)
    loss = 0.5 * ((out - obs) ** 2).sum()
    loss.backward()
    want = _operator.velocity_gradient(g_m, start)
    assert np.any(want != 0)
    assert v.grad.dtype == torch.float64
    np.testing.assert_array_equal(v.grad.numpy(), want)
    assert abs(loss.item() - misfit) <= 1e-5 * misfit


def correlation_misfit(out, obs):
    """A misfit other than L2: 1 − the normalised cross-correlation of each trace, summed."""
    num = (out * obs).sum(-1)
    den = torch.sqrt((out * out).sum(-1) * (obs * obs).sum(-1)) + 1e-30
    return (1 - num / den).sum()


def test_taylor_slopes_of_a_correlation_misfit(device):
    """J(v + h dv) − J(v) falls like h, and less the first-order term like h², through
    PyTorch's autograd with a misfit other than L2. dv is 0.25 % of v, 30 % a smooth field of
    random phase and 70 % down the gradient (the first-order term dominates at h = 1); h runs from 1 to 1/8, where the remainder stays
    above the float32 traces' rounding of J (1/16 sometimes does not)."""
    rng, true, f0, dt, src, rec, amplitudes = setup(shape=(36, 30), nt=160)
    start = gr.smoothed(true, 4)
    q = torch.tensor(amplitudes)
    vt = torch.tensor(true)
    with torch.no_grad():
        obs = scalar(device, vt, q, src, rec, dt, f0, max_vel=true.max() * 1.2)
    v = torch.tensor(start, requires_grad=True)
    loss = correlation_misfit(scalar(device, v, q, src, rec, dt, f0, max_vel=true.max() * 1.2),
                              obs)
    loss.backward()
    g = v.grad.numpy()
    x, z = np.meshgrid(np.arange(36), np.arange(30), indexing="ij")
    phase = rng.uniform(0, np.pi, 2)
    smooth = np.sin(0.21 * x + phase[0]) * np.cos(0.17 * z + phase[1])
    dv = 0.0025 * start * (0.3 * smooth - 0.7 * g / np.abs(g).max())

    def misfit_at(model):
        with torch.no_grad():
            out = scalar(device, torch.tensor(model), q, src, rec, dt, f0,
                         max_vel=true.max() * 1.2)
            return correlation_misfit(out, obs).item()

    hs = 0.5 ** np.arange(4)
    g_dv = np.sum(g * dv)
    first, second = [], []
    for h in hs:
        j = misfit_at(start + h * dv)
        first.append(abs(j - loss.item()))
        second.append(abs(j - loss.item() - h * g_dv))
    s1 = np.polyfit(np.log(hs), np.log(first), 1)[0]
    s2 = np.polyfit(np.log(hs), np.log(second), 1)[0]
    assert abs(s1 - 1) <= 0.1, (phase, s1, first)
    assert abs(s2 - 2) <= 0.1, (phase, s2, second)


def test_the_wavelet_gradient_matches_central_differences(device):
    """⟨∂L/∂q, dq⟩ against (L(q + h dq) − L(q − h dq)) / 2h for a smooth random dq and a
    misfit other than L2 (traces to the fourth power against shifted data)."""
    rng, vp, f0, dt, src, rec, amplitudes = setup(seed=None)
    q = torch.tensor(amplitudes, requires_grad=True)
    v = torch.tensor(vp)
    with torch.no_grad():
        obs = 0.7 * scalar(device, v, q, src, rec, dt, f0).roll(3, dims=-1)

    def misfit(out):
        return ((out - obs) ** 4).sum() * 1e3

    loss = misfit(scalar(device, v, q, src, rec, dt, f0))
    loss.backward()
    nt = amplitudes.shape[-1]
    t = np.arange(nt) / nt
    dq = np.stack([np.sin(2 * np.pi * (3 + k) * t + rng.uniform(0, 6)) for k in range(2)])
    dq = (dq * np.abs(amplitudes).max())[:, None, :]
    # The traces are linear in q, so L(q + h dq) is a quartic in h and the central difference
    # is the derivative plus a3·h²: Richardson's (4 D(h) − D(2h)) / 3 removes that term
    # exactly (with h alone it reached 1.5 % on one random draw in 20).
    def central(h):
        with torch.no_grad():
            plus = misfit(scalar(device, v, q + h * torch.tensor(dq), src, rec, dt, f0)).item()
            minus = misfit(scalar(device, v, q - h * torch.tensor(dq), src, rec, dt, f0)).item()
        return (plus - minus) / (2 * h)

    h = 1e-2
    fd = (4 * central(h) - central(2 * h)) / 3
    analytic = float((q.grad.numpy() * dq).sum())
    assert analytic != 0
    assert abs(fd - analytic) <= 1e-2 * abs(analytic), (fd, analytic)


def test_a_second_backward_needs_keep_checkpoints(device):
    rng, vp, f0, dt, src, rec, amplitudes = setup(nt=60)
    v = torch.tensor(vp, requires_grad=True)
    q = torch.tensor(amplitudes)
    out = scalar(device, v, q, src, rec, dt, f0)
    loss = (out ** 2).sum()
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="keep_checkpoints"):
        loss.backward()
    v.grad = None
    out = scalar(device, v, q, src, rec, dt, f0, keep_checkpoints=True)
    loss = (out ** 2).sum()
    loss.backward(retain_graph=True)
    first = v.grad.clone()
    v.grad = None
    loss.backward()
    assert torch.equal(first, v.grad) and torch.any(first != 0)


def test_bad_input_raises_clearly(device):
    rng, vp, f0, dt, src, rec, amplitudes = setup(nt=40)
    v = torch.tensor(vp)
    q = torch.tensor(amplitudes)

    def call(**change):
        args = dict(v=v, grid_spacing=H, dt=dt, source_amplitudes=q, source_locations=src,
                    receiver_locations=rec, accuracy=4, pml_width=8, pml_freq=f0,
                    device=device)
        args.update(change)
        return gt.scalar(**args)

    with pytest.raises(TypeError, match="float32 or float64"):
        call(v=v.to(torch.int64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        call(v=vp)
    with pytest.raises(ValueError, match="source_locations"):
        call(source_locations=src[:, :, :1])
    with pytest.raises(ValueError, match="receiver_locations"):
        call(receiver_locations=rec[:1])
    with pytest.raises(ValueError, match="grid_spacing"):
        call(grid_spacing=[10.0, 12.0])
    with pytest.raises(ValueError, match="pml_width"):
        call(pml_width=[8, 8, 0, 8])
    with pytest.raises(ValueError, match="dt"):
        call(dt=dt * 10)
    with pytest.raises(ValueError, match="amplitudes"):
        call(source_amplitudes=q[:, :, :1])
    with pytest.raises(ValueError):
        call(source_locations=src + 1000)  # outside the grid
    with pytest.raises(TypeError, match="storage_mode"):
        call(storage_mode="device")
    with pytest.raises(ValueError, match="dt must be a positive"):
        call(dt=0.0, pml_freq=None)
    with pytest.raises(TypeError, match="gpurevolve.Device"):
        call(device="cuda")
    bad = q.clone()
    bad[0, 0, 3] = float("nan")
    with pytest.raises(ValueError, match="amplitudes"):
        call(source_amplitudes=bad)


def test_a_forward_without_gradient_plans_no_checkpoint_memory(device):
    """Under torch.no_grad nothing is kept for a backward: no budget can refuse the run, and
    the traces are the bits of a run that keeps its checkpoints."""
    rng, vp, f0, dt, src, rec, amplitudes = setup(nt=60)
    v, q = torch.tensor(vp), torch.tensor(amplitudes)
    with torch.no_grad():
        plain = scalar(device, v, q, src, rec, dt, f0, device_memory=0, host_memory=0)
    kept = scalar(device, v.clone().requires_grad_(), q, src, rec, dt, f0)
    assert torch.equal(plain, kept.detach()) and torch.any(plain != 0)


def test_the_native_tape_checks_its_adjoint_and_frees_on_close(device):
    rng, vp, f0, dt, src, rec, amplitudes = setup(nt=40)
    fired = np.ascontiguousarray(-np.swapaxes(amplitudes, 1, 2))
    tape = device.record(vp, H, fired, src * H, rec * H, dt=dt, f0=f0, space_order=4, nbl=8)
    traces = tape.traces
    assert traces.shape == (2, 40, rec.shape[1]) and tape.live
    assert tape.info["batch"] == 2
    with pytest.raises(ValueError, match="shape"):
        tape.backward(traces[:, :-1])
    with pytest.raises(TypeError):
        tape.backward(traces.astype(np.int32))
    g_m, g_q = tape.backward(rng.standard_normal(traces.shape))
    assert g_m.shape == vp.shape and g_q.shape == fired.shape and not tape.live
    with pytest.raises(ValueError, match="spent"):
        tape.backward(traces)
    tape.close()
    with pytest.raises(ValueError, match="closed"):
        tape.backward(traces)


def test_ctrl_c_stops_a_tapes_recording_and_backward(device, sigint):
    """Ctrl-C while a tape records or reverses raises KeyboardInterrupt (checked every 0.1 s,
    the run stopping at its next step): the recording returns long before its end, the stopped
    backward spends the checkpoints, and the device records again. Long runs on a small grid
    and an early timer: each run outlasts the timer on a fast GPU too."""
    rng, vp, f0, dt, src, rec, amplitudes = setup(shape=(16, 16), shots=1, nt=200000)
    fired = np.ascontiguousarray(-np.swapaxes(amplitudes, 1, 2))
    record = lambda nt: device.record(vp, H, fired[:, :nt], src * H, rec * H, dt=dt, f0=f0,
                                      space_order=4, nbl=8)
    short = record(2000)
    clock = time.perf_counter()
    short.backward(rng.standard_normal(short.traces.shape))
    # A whole recording of 200000 steps takes about 25 times the backward of 2000 (at most 3
    # forward steps a step, and the adjoint's): stopped, it takes a fraction of that.
    whole = 25 * (time.perf_counter() - clock)
    timer = threading.Timer(0.02, _thread.interrupt_main)
    timer.start()
    clock = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            record(200000)
    finally:
        timer.cancel()
    stopped = time.perf_counter() - clock
    assert stopped < whole / 4, (stopped, whole)
    tape = record(12000)
    adjoint = rng.standard_normal(tape.traces.shape)
    timer = threading.Timer(0.02, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            tape.backward(adjoint, keep=True)
    finally:
        timer.cancel()
    assert not tape.live
    with pytest.raises(ValueError, match="spent"):
        tape.backward(adjoint)
    assert record(100).traces.shape == (1, 100, rec.shape[1])
