"""What the Python binding costs around the engine: one gradient of fwi.py's survey through
Device.gradient, its wall time against the engine's own sweep seconds (info["timings"]),
checkpointed (the default) and store-all. Prints the rows of BENCHMARKS.md's table:

    python python/examples/binding_cost.py
"""

import time

import numpy as np

import gpurevolve as gr

shape, h, vmax = (80, 40), 20.0, 4800.0
true = gr.marmousi_like(shape, h, seed=1)
start = gr.smoothed(true, max(min(shape) // 7, 2))
ex = (shape[0] - 1) * h
sources = np.array([[ex * (i + 0.5) / 6, 2 * h] for i in range(6)])
receivers = np.stack([np.arange(shape[0]) * h, np.full(shape[0], 2 * h)], axis=1)
common = dict(spacing=h, sources=sources, receivers=receivers, f0=6.0, space_order=4, nbl=10,
              dt=gr.default_dt(np.full(shape, vmax), h, 4), boundary_velocity=vmax)
device = gr.Device()
print(f"GPU: {device.adapter}{' (software)' if device.is_software else ''}")
observed = device.forward(true, tmax=1.2, **common)
print("| snaps | schedule, memory | forward steps / n | call wall | outside the sweeps |")
for snaps in [None, "all"]:
    clock = time.perf_counter()
    _, _, info = device.gradient(start, observed, snaps=snaps, **common)
    wall = time.perf_counter() - clock
    sweeps = info["timings"]["forward sweeps"] + info["timings"]["reverse sweeps"]
    print(f"| {snaps!r} | {info['schedule']}, {info['snaps']} snapshots, "
          f"{info['checkpoint_bytes'] / 1e6:.1f} MB | {info['recompute_factor']:.2f} | "
          f"{wall:.2f} s | {wall - sweeps:.3f} s ({100 * (wall - sweeps) / wall:.1f} %) |")
