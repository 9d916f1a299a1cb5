"""gpurevolve.jax: the same operator as a jax.custom_vjp through host callbacks. Its gradients
are gpurevolve.torch's to the bit; a Taylor test of a misfit other than L2 under jax.jit and
jax.grad shows slopes 1 and 2; held forwards are counted and released; bad input raises."""

import numpy as np
import pytest

import gpurevolve as gr
from conftest import under_ci

try:
    import jax
    import jax.numpy as jnp
    import torch
    import gpurevolve.jax as gj
    import gpurevolve.torch as gt
except ImportError as e:  # pragma: no cover - what CI must never do
    if under_ci():
        raise
    pytest.skip(f"!!!!! SKIPPING JAX TESTS: {e}", allow_module_level=True)

from test_torch import H, setup

jax.config.update("jax_enable_x64", True)


def correlation_misfit(out, obs):
    """test_torch's misfit in jax.numpy: 1 − each trace's normalised cross-correlation."""
    num = (out * obs).sum(-1)
    den = jnp.sqrt((out * out).sum(-1) * (obs * obs).sum(-1)) + 1e-30
    return (1 - num / den).sum()


def call(module, device, v, q, src, rec, dt, f0, **kw):
    return module.scalar(v, H, dt, source_amplitudes=q, source_locations=src,
                         receiver_locations=rec, accuracy=4, pml_width=8, pml_freq=f0,
                         device=device, **kw)[-1]


def test_gradients_are_the_torch_ones_bit_for_bit(device):
    rng, vp, f0, dt, src, rec, amplitudes = setup(nt=80)
    obs = rng.standard_normal((2, rec.shape[1], 80)) * 1e-3

    def loss_jax(v, q):
        out = call(gj, device, v, q, src, rec, dt, f0)
        return jnp.sum(jnp.abs(out - obs) ** 3)

    gv, gq = jax.grad(loss_jax, argnums=(0, 1))(jnp.asarray(vp), jnp.asarray(amplitudes))
    v = torch.tensor(vp, requires_grad=True)
    q = torch.tensor(amplitudes, requires_grad=True)
    (call(gt, device, v, q, src, rec, dt, f0) - torch.tensor(obs)).abs().pow(3).sum().backward()
    assert np.any(np.asarray(gv) != 0) and np.any(np.asarray(gq) != 0)
    np.testing.assert_array_equal(np.asarray(gv), v.grad.numpy())
    np.testing.assert_array_equal(np.asarray(gq), q.grad.numpy())
    assert gj.held() == 0


def test_taylor_slopes_under_jit(device):
    """As the PyTorch Taylor test, through jax.jit(jax.value_and_grad(...))."""
    rng, true, f0, dt, src, rec, amplitudes = setup(shape=(36, 30), nt=160)
    start = gr.smoothed(true, 4)
    q = jnp.asarray(amplitudes)
    vmax = true.max() * 1.2
    obs = call(gj, device, jnp.asarray(true), q, src, rec, dt, f0, max_vel=vmax)

    def misfit(v):
        out = call(gj, device, v, q, src, rec, dt, f0, max_vel=vmax)
        return correlation_misfit(out, obs)

    j0, g = jax.jit(jax.value_and_grad(misfit))(jnp.asarray(start))
    g = np.asarray(g)
    x, z = np.meshgrid(np.arange(36), np.arange(30), indexing="ij")
    phase = rng.uniform(0, np.pi, 2)
    smooth = np.sin(0.21 * x + phase[0]) * np.cos(0.17 * z + phase[1])
    dv = 0.0025 * start * (0.3 * smooth - 0.7 * g / np.abs(g).max())
    hs = 0.5 ** np.arange(4)
    first, second = [], []
    for h in hs:
        j = float(misfit(jnp.asarray(start + h * dv)))
        first.append(abs(j - float(j0)))
        second.append(abs(j - float(j0) - h * np.sum(g * dv)))
    s1 = np.polyfit(np.log(hs), np.log(first), 1)[0]
    s2 = np.polyfit(np.log(hs), np.log(second), 1)[0]
    assert abs(s1 - 1) <= 0.1, (phase, s1, first)
    assert abs(s2 - 2) <= 0.1, (phase, s2, second)


def test_held_forwards_are_counted_and_released(device):
    rng, vp, f0, dt, src, rec, amplitudes = setup(nt=40)
    out, pullback = jax.vjp(lambda v: call(gj, device, v, jnp.asarray(amplitudes), src, rec,
                                           dt, f0), jnp.asarray(vp))
    assert gj.held() == 1
    gj.release()
    assert gj.held() == 0
    with pytest.raises(Exception, match="checkpoints are gone"):
        jax.block_until_ready(pullback(jnp.ones_like(out)))


def test_bad_input_raises(device):
    rng, vp, f0, dt, src, rec, amplitudes = setup(nt=40)
    v, q = jnp.asarray(vp), jnp.asarray(amplitudes)
    with pytest.raises(TypeError, match="float32 or float64"):
        call(gj, device, v.astype(jnp.int32), q, src, rec, dt, f0)
    with pytest.raises(ValueError, match="source_locations"):
        call(gj, device, v, q, src[:, :, :1], rec, dt, f0)
    with pytest.raises(TypeError, match="storage_mode"):
        call(gj, device, v, q, src, rec, dt, f0, storage_mode="device")

    @jax.jit
    def traced(q):
        return gj.scalar(v, H, dt, source_amplitudes=q, source_locations=src,
                         receiver_locations=rec, accuracy=4, pml_width=8, device=device)[-1]

    with pytest.raises(ValueError, match="pml_freq"):
        traced(q)
