"""The checkpointed wave operator as a differentiable JAX function, called as Deepwave's.

``scalar(v, grid_spacing, dt, source_amplitudes=..., source_locations=..., receiver_locations=...)``
takes and returns JAX arrays (the traces ``[shot, receiver, time]`` as the last item of a
``ScalarOutput``) and composes with ``jax.grad``, ``jax.value_and_grad``, ``jax.vjp`` and
``jax.jit``: it is a ``jax.custom_vjp`` whose forward and backward call the GPU through host
callbacks (``jax.pure_callback`` for a primal evaluation, ``jax.experimental.io_callback``
for the forward that keeps its checkpoints and for the backward that spends them). Arguments
and conventions are ``gpurevolve.torch.scalar``'s (see its docs: Deepwave's sign, cells,
what differs); the configuration keywords (grid spacing, ``dt``, locations, ours) are static.

Between a forward and its backward the checkpoints are held by this module under a token the
residuals carry. A forward whose backward never runs (``jax.vjp`` whose function is dropped)
keeps them until ``release()``; ``held()`` counts them. ``vmap`` is not supported (batch the
shots instead: they are a dimension of the arrays).

Data crosses through host memory, as for PyTorch.
"""

import itertools as _itertools
import threading as _threading
import typing as _typing

import jax as _jax
import jax.numpy as _jnp
import numpy as _np
from jax.experimental import io_callback as _io_callback

from . import _operator

__all__ = ["scalar", "ScalarOutput", "held", "release"]

_TAPES = {}
_TOKENS = _itertools.count(1)
_LOCK = _threading.Lock()


class ScalarOutput(_typing.NamedTuple):
    """Deepwave's output tuple (``deepwave.PropagatorOutput``, 0.1): the traces last."""

    wavefield_0: None
    wavefield_m1: None
    auxiliary_state: None
    receiver_amplitudes: _typing.Any


def held():
    """Forwards whose checkpoints are held for a backward that has not run."""
    with _LOCK:
        return len(_TAPES)


def release():
    """Frees every held forward's checkpoints (a later backward of one of them raises)."""
    with _LOCK:
        tapes = list(_TAPES.values())
        _TAPES.clear()
    for tape in tapes:
        tape.close()


def _record(call, v, q, gradient=True):
    return _operator.record(
        call["device"], _np.asarray(v), call["spacing"], call["dt"], _np.asarray(q),
        call["sources"], call["receivers"], call["accuracy"], call["pml_width"],
        call["pml_freq"], call["max_vel"], call["options"], gradient=gradient,
    )


def _traces(tape, dtype):
    return _np.ascontiguousarray(_np.swapaxes(tape.traces, 1, 2), dtype=dtype)


def _operator_of(call, traces_shape, v_dtype, q_dtype):
    """The custom-VJP function of ``(v, amplitudes)`` for one static configuration."""
    traces_type = _jax.ShapeDtypeStruct(traces_shape, q_dtype)
    token_type = _jax.ShapeDtypeStruct((), _jnp.int64 if _jax.config.jax_enable_x64 else _jnp.int32)

    def primal(v, q):
        tape = _record(call, v, q, gradient=False)
        try:
            return _traces(tape, q_dtype)
        finally:
            tape.close()

    def forward_keeping(v, q):
        tape = _record(call, v, q)
        token = next(_TOKENS)
        with _LOCK:
            _TAPES[token] = tape
        return _traces(tape, q_dtype), _np.asarray(token, dtype=token_type.dtype)

    def backward(token, v, g):
        with _LOCK:
            tape = _TAPES.pop(int(token), None)
        if tape is None:
            raise RuntimeError(
                "gpurevolve.jax.scalar: this forward's checkpoints are gone (released, or "
                "spent by an earlier backward)"
            )
        try:
            adjoint = _np.ascontiguousarray(_np.swapaxes(_np.asarray(g), 1, 2))
            grad_m, grad_q = tape.backward(adjoint)
        finally:
            tape.close()
        grad_v = _operator.velocity_gradient(grad_m, _np.asarray(v)).astype(v_dtype)
        grad_q = _np.ascontiguousarray(-_np.swapaxes(grad_q, 1, 2), dtype=q_dtype)
        return grad_v, grad_q

    @_jax.custom_vjp
    def f(v, q):
        return _jax.pure_callback(primal, traces_type, v, q)

    def f_fwd(v, q):
        traces, token = _io_callback(forward_keeping, (traces_type, token_type), v, q)
        return traces, (token, v)

    def f_bwd(residuals, g):
        token, v = residuals
        v_type = _jax.ShapeDtypeStruct(v.shape, v_dtype)
        q_type = _jax.ShapeDtypeStruct(q_shape, q_dtype)
        return _io_callback(backward, (v_type, q_type), token, v, g)

    q_shape = (traces_shape[0], call["sources"].shape[1], traces_shape[2])
    f.defvjp(f_fwd, f_bwd)
    return f


def scalar(v, grid_spacing, dt, source_amplitudes=None, source_locations=None,
           receiver_locations=None, accuracy=4, pml_width=20, pml_freq=None, max_vel=None, *,
           device=None, **ours):
    """Deepwave's ``scalar`` for JAX: the traces ``[shot, receiver, time]`` as the last item
    of a ``ScalarOutput``, differentiable to ``v`` and ``source_amplitudes``."""
    unknown = sorted(set(ours) - set(_operator.OURS))
    if unknown:
        raise TypeError(
            f"scalar() got unexpected keyword arguments {unknown}; ours are {list(_operator.OURS)}"
        )
    if source_amplitudes is None or source_locations is None or receiver_locations is None:
        raise ValueError(
            "source_amplitudes, source_locations and receiver_locations are required "
            "(gpurevolve records traces of the sources it fires)"
        )
    v = _jnp.asarray(v)
    q = _jnp.asarray(source_amplitudes)
    for name, a in (("v", v), ("source_amplitudes", q)):
        if a.dtype not in (_jnp.float32, _jnp.float64):
            raise TypeError(f"{name} must be float32 or float64, got {a.dtype}")
    if v.ndim not in (2, 3):
        raise ValueError(f"v must be a 2D or 3D model, got shape {list(v.shape)}")
    if q.ndim != 3:
        raise ValueError("source_amplitudes must have shape [shot, source, time]")
    spacing = _operator.spacing_of(grid_spacing, v.ndim)
    shots = q.shape[0]
    sources = _operator.locations_of(source_locations, "source_locations", shots, v.ndim,
                                     spacing)
    receivers = _operator.locations_of(receiver_locations, "receiver_locations", shots,
                                       v.ndim, spacing)
    if sources.shape[1] != q.shape[1]:
        raise ValueError(
            f"source_amplitudes has {q.shape[1]} sources a shot and source_locations "
            f"{sources.shape[1]}"
        )
    if pml_freq is None:
        # Static, as the layer it tunes: from the amplitudes' values when they are concrete.
        try:
            pml_freq = _operator.peak_frequency(_np.asarray(q), dt)
        except _jax.errors.TracerArrayConversionError as e:
            raise ValueError(
                "under jax.jit the amplitudes are traced: give pml_freq (the wavelet's peak "
                "frequency, Hz), which tunes the absorbing layer"
            ) from e
    call = {
        "device": device if device is not None else _operator.default_device(),
        "spacing": spacing,
        "dt": float(dt),
        "sources": sources,
        "receivers": receivers,
        "accuracy": accuracy,
        "pml_width": _operator.width_of(pml_width),
        "pml_freq": pml_freq,
        "max_vel": max_vel,
        "options": ours,
    }
    traces_shape = (shots, receivers.shape[1], q.shape[2])
    f = _operator_of(call, traces_shape, v.dtype, q.dtype)
    return ScalarOutput(None, None, None, f(v, q))
