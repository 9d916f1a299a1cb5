"""What ``gpurevolve.torch`` and ``gpurevolve.jax`` share: Deepwave's call checked and turned
into ``Device.record``'s, and the gradient's chain rule from ``m = 1/v²`` to ``v``.

Conventions (Deepwave's, which both frameworks' ``scalar`` take): the model ``v`` in
m/s, ``grid_spacing`` in metres (one value, or one per dimension, all equal), ``dt`` in
seconds, ``source_amplitudes`` ``[shot, source, time]``, ``source_locations`` and
``receiver_locations`` ``[shot, point, dims]`` in cells along ``v``'s dimensions, traces
``[shot, receiver, time]``. Deepwave puts the source on the other side of the wave equation
from Devito and from the rest of this package: for the same wavelet, its traces are the
negative of ``Device.forward``'s. ``scalar`` follows Deepwave, by firing ``−amplitudes``.
"""

import numpy as _np

_DEVICE = None

# The keywords of ours that scalar() passes to Device.record.
OURS = ("snaps", "schedule", "placement", "device_memory", "host_memory", "disk",
        "disk_memory", "batch", "checkpoint_format")


def default_device():
    """The ``gpurevolve.Device`` the frameworks use when none is given: opened once."""
    global _DEVICE
    if _DEVICE is None:
        from . import Device

        _DEVICE = Device()
    return _DEVICE


def spacing_of(grid_spacing, dims):
    """One grid spacing, from a number or one per dimension (which must agree)."""
    values = _np.atleast_1d(_np.asarray(grid_spacing, dtype=_np.float64))
    if values.ndim != 1 or values.size not in (1, dims):
        raise ValueError(
            f"grid_spacing must be a number or {dims} numbers (one per dimension), "
            f"got {grid_spacing!r}"
        )
    if not _np.all(values == values[0]):
        raise ValueError(
            f"grid_spacing {values.tolist()}: gpurevolve's grids are square (cubic); "
            "resample the model to one spacing"
        )
    spacing = float(values[0])
    if not (_np.isfinite(spacing) and spacing > 0):
        raise ValueError(f"grid_spacing must be positive and finite, got {spacing}")
    return spacing


def width_of(pml_width):
    """The absorbing layer's width in cells: a number, or Deepwave's per-side list if equal."""
    widths = _np.atleast_1d(_np.asarray(pml_width))
    if widths.size == 0 or not _np.all(widths == widths.flat[0]):
        raise ValueError(
            f"pml_width {widths.tolist()}: gpurevolve's layer has one width on every side "
            "(no free surface); give one number"
        )
    width = widths.flat[0]
    if not float(width).is_integer() or width < 0:
        raise ValueError(f"pml_width must be a non-negative integer, got {width!r}")
    return int(width)


def locations_of(locations, name, shots, dims, spacing):
    """``[shot, point, dims]`` cell indices as positions in metres, ``(shots, points, dims)``."""
    cells = _np.asarray(locations)
    if cells.ndim != 3 or cells.shape[0] != shots or cells.shape[2] != dims or cells.shape[1] < 1:
        raise ValueError(
            f"{name} must have shape [shot, point, {dims}] with {shots} shots, "
            f"got {list(cells.shape)}"
        )
    if not _np.issubdtype(cells.dtype, _np.number) or _np.issubdtype(cells.dtype, _np.complexfloating):
        raise TypeError(f"{name} must hold cell indices (numbers), got dtype {cells.dtype}")
    return _np.ascontiguousarray(cells, dtype=_np.float64) * spacing


def peak_frequency(amplitudes, dt):
    """The frequency (Hz) of the largest amplitude of the wavelets' summed spectrum: what the
    grid's points-per-wavelength check uses when ``pml_freq`` is not given."""
    if not (_np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive time step in seconds, got {dt}")
    series = _np.asarray(amplitudes, dtype=_np.float64).reshape(-1, amplitudes.shape[-1])
    spectrum = _np.abs(_np.fft.rfft(series, axis=-1)).sum(axis=0)
    frequencies = _np.fft.rfftfreq(series.shape[-1], dt)
    if spectrum.size < 2 or not _np.any(spectrum[1:] > 0):
        return float(frequencies[1]) if frequencies.size > 1 else 1.0 / dt
    return float(frequencies[1 + _np.argmax(spectrum[1:])])


def record(device, v, spacing, dt, amplitudes, sources, receivers, accuracy, pml_width, pml_freq,
           max_vel, options, gradient=True):
    """``Device.record`` of Deepwave's arguments as numpy arrays: ``v`` the model,
    ``amplitudes`` ``[shot, source, time]`` in Deepwave's sign, positions in metres. Without
    ``gradient`` the run keeps one checkpoint a batch on the GPU (a forward only: no schedule's
    memory to plan or fit; the caller closes the tape)."""
    if not gradient:
        # One snapshot a shot: a batch of every shot shares the memory of one of its states.
        options = dict(options, snaps=int(min(amplitudes.shape[0], amplitudes.shape[-1] - 1)),
                       device_memory=None, host_memory=None, disk=None,
                       disk_memory=None, placement="multistage")
    if not hasattr(device, "record"):
        raise TypeError(
            f"device must be a gpurevolve.Device (the GPU gpurevolve opens through wgpu), got "
            f"{device!r}; the inputs' own device (CPU or CUDA) needs no keyword"
        )
    if not (_np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive time step in seconds, got {dt}")
    if amplitudes.ndim != 3 or amplitudes.shape[-1] < 2:
        raise ValueError(
            f"source_amplitudes must have shape [shot, source, time] with at least 2 time "
            f"samples, got {list(amplitudes.shape)}"
        )
    f0 = float(pml_freq) if pml_freq is not None else peak_frequency(amplitudes, dt)
    # This package's sign and layout: −amplitudes, (shots, nt, sources).
    fired = _np.ascontiguousarray(-_np.swapaxes(amplitudes, 1, 2))
    return device.record(
        v,
        spacing,
        fired,
        sources,
        receivers,
        dt=float(dt),
        f0=f0,
        space_order=accuracy,
        nbl=pml_width,
        boundary_velocity=None if max_vel is None else float(max_vel),
        **options,
    )


def velocity_gradient(grad_m, v):
    """``∂L/∂v`` from ``∂L/∂m`` (``m = 1/v²``): the package's ``velocity_gradient``."""
    from . import velocity_gradient

    return velocity_gradient(grad_m, v)
