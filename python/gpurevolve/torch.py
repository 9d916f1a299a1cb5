"""The checkpointed wave operator as a differentiable PyTorch function, called as Deepwave's.

``scalar(v, grid_spacing, dt, source_amplitudes=..., source_locations=..., receiver_locations=...)``
returns Deepwave's output tuple, whose last item is the traces ``[shot, receiver, time]``
(``scalar(...)[-1]`` or ``.receiver_amplitudes``). Its backward takes any ``∂L/∂traces``
PyTorch hands it, and returns the gradients to ``v`` and to ``source_amplitudes``. Between the
two, the schedule's checkpoints stay on the GPU (spilling to host memory, or disk, as the
memory keywords allow), instead of every time step: a Deepwave run that stores every step
holds ``nt`` wavefields; this one holds the schedule's few (by default as many as keep
Revolve within 3 forward steps per step), and recomputes the rest.

A Deepwave script is ported by changing its import::

    import gpurevolve.torch as deepwave   # was: import deepwave
    out = deepwave.scalar(v, dx, dt, source_amplitudes=amplitudes,
                          source_locations=sources, receiver_locations=receivers,
                          accuracy=4, pml_width=20, pml_freq=freq)
    loss = my_misfit(out[-1], observed)
    loss.backward()                       # v.grad, amplitudes.grad

What differs from Deepwave:

- The items of the tuple before the traces (``wavefield_0``, ``wavefield_m1``,
  ``auxiliary_state``) are ``None``: the final wavefields are not returned.
- ``dt`` must keep the scheme stable (Deepwave resamples the time axis internally instead);
  the error says the largest ``dt`` that does. ``gpurevolve.default_dt`` gives one.
- One ``grid_spacing`` for every dimension, one ``pml_width`` on every side (no free
  surface). As Deepwave's, ``pml_freq`` tunes the absorbing layer (our CPML's α) and
  defaults to the peak of the source amplitudes' spectrum; it is also checked against the
  grid (at least 2 points per wavelength). Set it when you invert for the wavelet: then the
  layer does not change with the amplitudes from one call to the next.
- ``max_vel`` is the velocity the absorbing layer is tuned for (default the largest of
  ``v``); the time step is not chosen from it.
- Inputs may be CPU or CUDA tensors, float32 or float64; the GPU work runs through wgpu on
  the ``gpurevolve.Device``, and data crosses through host memory both ways: per call the
  model, the amplitudes and the traces (``4·(cells + shots·nt·(sources + receivers))`` bytes
  each way), a few milliseconds against a forward's seconds. Results return to the inputs'
  device and dtype; the GPU computes in float32.
- 2D and 3D models alike; shots are stepped together in batches (``batch``, default every
  shot the GPU holds at once).

Keywords of ours, after Deepwave's: ``device`` (a ``gpurevolve.Device``; default one opened
once), ``snaps``, ``schedule``, ``placement``, ``device_memory``, ``host_memory``, ``disk``,
``disk_memory``, ``batch``, ``checkpoint_format`` (``Device.gradient``'s), and
``keep_checkpoints``: PyTorch's ``retain_graph`` needs it (a second backward of the same
forward recomputes the forward once more); without it a second backward raises.
"""

import typing as _typing

import numpy as _np
import torch as _torch

from . import _operator

__all__ = ["scalar", "Scalar", "ScalarOutput"]



def _numpy(tensor, name):
    if not isinstance(tensor, _torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dtype not in (_torch.float32, _torch.float64):
        raise TypeError(f"{name} must be float32 or float64, got {tensor.dtype}")
    return tensor.detach().cpu().numpy()


class ScalarOutput(_typing.NamedTuple):
    """Deepwave's output tuple (``deepwave.PropagatorOutput``, 0.1): the traces last."""

    wavefield_0: None
    wavefield_m1: None
    auxiliary_state: None
    receiver_amplitudes: "_torch.Tensor"


class _ScalarFunction(_torch.autograd.Function):
    """Traces of ``(v, amplitudes)``; the tape rides on ``ctx`` between forward and backward."""

    @staticmethod
    def forward(ctx, v, amplitudes, call):
        v_np = _numpy(v, "v")
        q_np = _numpy(amplitudes, "source_amplitudes")
        tape = _operator.record(
            call["device"], v_np, call["spacing"], call["dt"], q_np, call["sources"],
            call["receivers"], call["accuracy"], call["pml_width"], call["pml_freq"],
            call["max_vel"], call["options"], gradient=any(ctx.needs_input_grad[:2]),
        )
        traces = _np.swapaxes(tape.traces, 1, 2)  # [shot, receiver, time]
        if any(ctx.needs_input_grad[:2]):
            ctx.tape = tape
        else:
            tape.close()  # no gradient wanted (torch.no_grad, or nothing requires one)
            ctx.tape = None
        ctx.keep = call["keep"]
        ctx.save_for_backward(v)  # version-checked: an in-place change of v is an error
        ctx.amplitude_dtype = amplitudes.dtype
        return _torch.from_numpy(_np.ascontiguousarray(traces)).to(
            device=amplitudes.device, dtype=amplitudes.dtype
        )

    @staticmethod
    @_torch.autograd.function.once_differentiable
    def backward(ctx, grad_traces):
        tape = ctx.tape
        if tape is None or not tape.live:
            raise RuntimeError(
                "gpurevolve.torch.scalar: this forward's checkpoints are gone (spent by an "
                "earlier backward, or that backward failed); pass keep_checkpoints=True to "
                "scalar() to backward through it again (as retain_graph=True)"
            )
        adjoint = _np.ascontiguousarray(_np.swapaxes(grad_traces.detach().cpu().numpy(), 1, 2))
        grad_m, grad_q = tape.backward(adjoint, keep=ctx.keep)
        if not ctx.keep:
            tape.close()
            ctx.tape = None
        grad_v = grad_amplitudes = None
        if ctx.needs_input_grad[0]:
            (v,) = ctx.saved_tensors
            v_np = v.detach().cpu().numpy()
            grad_v = _torch.from_numpy(_operator.velocity_gradient(grad_m, v_np)).to(
                device=v.device, dtype=v.dtype
            )
        if ctx.needs_input_grad[1]:
            # The amplitudes were fired negated (Deepwave's sign).
            grad_amplitudes = _torch.from_numpy(
                _np.ascontiguousarray(-_np.swapaxes(grad_q, 1, 2))
            ).to(device=grad_traces.device, dtype=ctx.amplitude_dtype)
        return grad_v, grad_amplitudes, None


def scalar(v, grid_spacing, dt, source_amplitudes=None, source_locations=None,
           receiver_locations=None, accuracy=4, pml_width=20, pml_freq=None, max_vel=None, *,
           device=None, keep_checkpoints=False, **ours):
    """Deepwave's ``scalar``: the traces ``[shot, receiver, time]`` as the last item of a
    ``ScalarOutput`` tuple, differentiable to ``v`` and ``source_amplitudes``. See the
    module's docs for what differs from Deepwave and for the keywords of ours."""
    unknown = sorted(set(ours) - set(_operator.OURS))
    if unknown:
        raise TypeError(
            f"scalar() got unexpected keyword arguments {unknown}; Deepwave's options that "
            f"gpurevolve does not take have no equivalent here; ours are {list(_operator.OURS)}"
        )
    if source_amplitudes is None or source_locations is None or receiver_locations is None:
        raise ValueError(
            "source_amplitudes, source_locations and receiver_locations are required "
            "(gpurevolve records traces of the sources it fires)"
        )
    if not isinstance(v, _torch.Tensor):
        raise TypeError(f"v must be a torch.Tensor, got {type(v).__name__}")
    if v.ndim not in (2, 3):
        raise ValueError(f"v must be a 2D or 3D model, got shape {list(v.shape)}")
    if not isinstance(source_amplitudes, _torch.Tensor) or source_amplitudes.ndim != 3:
        raise ValueError("source_amplitudes must be a tensor of shape [shot, source, time]")
    if source_amplitudes.device != v.device:
        raise ValueError(
            f"v is on {v.device} and source_amplitudes on {source_amplitudes.device}: "
            "put them on one device"
        )
    spacing = _operator.spacing_of(grid_spacing, v.ndim)
    shots = source_amplitudes.shape[0]

    def cells(t):
        return t.detach().cpu().numpy() if isinstance(t, _torch.Tensor) else _np.asarray(t)

    if cells(source_locations).ndim == 3 and cells(source_locations).shape[1] != source_amplitudes.shape[1]:
        raise ValueError(
            f"source_amplitudes has {source_amplitudes.shape[1]} sources a shot "
            f"([shot, source, time] = {list(source_amplitudes.shape)}) and source_locations "
            f"{cells(source_locations).shape[1]} ([shot, source, dims])"
        )

    call = {
        "device": device if device is not None else _operator.default_device(),
        "spacing": spacing,
        "dt": float(dt),
        "sources": _operator.locations_of(
            cells(source_locations), "source_locations", shots, v.ndim, spacing,
        ),
        "receivers": _operator.locations_of(
            cells(receiver_locations), "receiver_locations", shots, v.ndim, spacing,
        ),
        "accuracy": accuracy,
        "pml_width": _operator.width_of(pml_width),
        "pml_freq": pml_freq,
        "max_vel": max_vel,
        "options": ours,
        "keep": bool(keep_checkpoints),
    }
    traces = _ScalarFunction.apply(v, source_amplitudes, call)
    return ScalarOutput(None, None, None, traces)


class Scalar(_torch.nn.Module):
    """Deepwave's module form: the model held as a parameter, ``forward`` taking the rest of
    ``scalar``'s arguments. ``v_requires_grad`` makes ``v`` trainable."""

    def __init__(self, v, grid_spacing, v_requires_grad=False):
        super().__init__()
        self.v = _torch.nn.Parameter(v, requires_grad=v_requires_grad)
        self.grid_spacing = grid_spacing

    def forward(self, dt, source_amplitudes=None, source_locations=None, receiver_locations=None,
                accuracy=4, pml_width=20, pml_freq=None, max_vel=None, **kwargs):
        return scalar(self.v, self.grid_spacing, dt, source_amplitudes, source_locations,
                      receiver_locations, accuracy, pml_width, pml_freq, max_vel, **kwargs)
