"""Checkpointed FWI gradients on the GPU, from numpy.

gpurevolve runs the forward and adjoint acoustic wave equations in WGSL kernels on any
Vulkan, Metal or DX12 GPU (or Mesa's software adapter), and reverses each shot with
checkpoints kept in GPU memory, spilling to host memory when the GPU is full. The gradient
is the same to the bit whatever the schedule, the memory budgets or the spilling.

Units are SI: velocities in m/s, positions and spacing in metres, times in seconds, the peak
frequency in Hz. Models are shaped ``(nx, nz)`` or ``(nx, ny, nz)`` (depth last); positions
``(count, dims)``, x first and depth last, measured from the first grid point. Inputs may be
float32 or float64 in any memory layout; outputs are new arrays of the dtype of ``vp``.

Example::

    import numpy as np
    import gpurevolve as gr

    dev = gr.Device()                                   # opens the GPU once
    true = gr.marmousi_like((120, 60), 10.0)
    start = gr.smoothed(true, 8)
    sources = np.array([[300.0, 20.0], [900.0, 20.0]])  # one shot per row
    receivers = np.stack([np.arange(120) * 10.0, np.full(120, 20.0)], axis=1)
    common = dict(spacing=10.0, sources=sources, receivers=receivers,
                  dt=gr.default_dt(true, 10.0), boundary_velocity=true.max())
    observed = dev.forward(true, tmax=1.0, **common)    # (shots, nt, receivers)
    misfit, grad, info = dev.gradient(start, observed, **common)
    print(misfit, info["forward_steps"], info["recompute_factor"])

Errors are exceptions: ``ValueError`` (``TypeError`` for an argument of the wrong type, such
as an array of another dtype or a scalar where an array is wanted) for bad input, negative
integers and physics the grid cannot carry included, with a message that says what to change;
``MemoryError`` when the checkpoints, a buffer or an input's copy cannot fit (checked before
anything is allocated); ``OSError`` when a file cannot be read or written, or a checkpoint
kept outside the GPU was damaged (its checksum differs); ``KeyboardInterrupt`` when Ctrl-C
(or a progress callback's exception) stops a run; ``gpurevolve.GpuError`` when the GPU or its
driver fails, the device is lost, or a wait passes its deadline. No NaN or infinity is ever
returned: a non-finite misfit, gradient or record is a ``ValueError`` naming the shot.
SIGTERM and SIGHUP during a call stop the run and remove its disk files, then end the process
by that signal (``gpurevolve._signals``).
"""

import os as _os
import tempfile as _tempfile

import numpy as _np


def _set_runtime_dir():
    """Mesa's Vulkan loader prints two ``XDG_RUNTIME_DIR`` error lines on every device opened
    without that variable (servers, containers). A compute-only package opens no window: when
    it is missing, it is pointed at a private directory (mode 0700), as the command-line
    examples do, here at import, through ``os.environ`` so that Python sees it too. When it
    is set, nothing changes."""
    if "XDG_RUNTIME_DIR" in _os.environ or not _os.name == "posix":
        return
    path = _os.path.join(_tempfile.gettempdir(), "gpurevolve-runtime")
    try:
        _os.makedirs(path, mode=0o700, exist_ok=True)
        _os.chmod(path, 0o700)
    except OSError:
        return  # another user's directory: the messages stay
    _os.environ["XDG_RUNTIME_DIR"] = path


_set_runtime_dir()

from ._native import (  # noqa: E402 (after the environment is set)
    Action,
    Device,
    GpuError,
    Revolve,
    Tape,
    __version__,
    default_dt,
    marmousi_like,
    plan,
    ricker,
    smoothed,
)

__all__ = [
    "Action",
    "Device",
    "GpuError",
    "Revolve",
    "Tape",
    "__version__",
    "default_dt",
    "marmousi_like",
    "plan",
    "ricker",
    "smoothed",
    "velocity_gradient",
]


def velocity_gradient(gradient_m, vp):
    """``∂J/∂v`` from ``∂J/∂m`` (``m = 1/v²``): ``−2 ∂J/∂m / v³``, cell by cell.

    ``Device.gradient`` returns ``∂J/∂m``, the gradient in squared slowness; an optimiser of
    velocities needs this one.
    """
    vp = _np.asarray(vp)
    gradient_m = _np.asarray(gradient_m)
    if vp.shape != gradient_m.shape:
        raise ValueError(
            f"the gradient has shape {gradient_m.shape} and the model {vp.shape}; give both "
            "on the same grid"
        )
    return -2.0 * gradient_m / vp**3
