"""Full-waveform inversion with scipy's L-BFGS-B and checkpointed GPU gradients.

The true model is the main job's Marmousi-like model; the start is that model smoothed, with
the water layer known (and held fixed). Observed data come from the true model; every
gradient is checkpointed (Revolve's memory counted in time levels) and summed over the shots
on the GPU. Velocities are bounded. The run ends after a fixed number of iterations and
writes figures with matplotlib:

    python python/examples/fwi.py --out fwi-out

On the 2-core development machine's software adapter the defaults take about five minutes.
"""

import argparse
import pathlib
import sys
import time

import numpy as np
from scipy.optimize import minimize

import gpurevolve as gr


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nx", type=int, default=80, help="cells across [80]")
    p.add_argument("--nz", type=int, default=40, help="cells in depth [40]")
    p.add_argument("--spacing", type=float, default=20.0, help="grid spacing, m [20]")
    p.add_argument("--shots", type=int, default=6, help="shots along the surface [6]")
    p.add_argument("--f0", type=float, default=6.0, help="Ricker peak frequency, Hz [6]")
    p.add_argument("--tmax", type=float, default=1.2, help="recording time, s [1.2]")
    p.add_argument("--iterations", type=int, default=15, help="L-BFGS-B iterations [15]")
    p.add_argument("--snaps", type=int, default=None,
                   help="checkpoint memory in two-level snapshots [the fewest for 3x cost]")
    p.add_argument("--checkpoint-format", default="f32", choices=["f32", "bf16", "int8"],
                   help="how checkpoints store their levels: f32 (exact), bf16 or int8 [f32]")
    p.add_argument("--vmin", type=float, default=1400.0, help="lower velocity bound, m/s")
    p.add_argument("--vmax", type=float, default=4800.0, help="upper velocity bound, m/s")
    p.add_argument("--seed", type=int, default=1, help="the true model's structure [1]")
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("fwi-out"))
    return p.parse_args()


def water_depth(true):
    """Rows from the top in which every cell has the water velocity (the lowest)."""
    rows = 0
    while rows < true.shape[1] and np.all(true[:, rows] == true.min()):
        rows += 1
    return rows


def main():
    args = parse()
    h = args.spacing
    shape = (args.nx, args.nz)
    true = gr.marmousi_like(shape, h, seed=args.seed)
    water = water_depth(true)
    start = gr.smoothed(true, max(min(shape) // 7, 2))
    start[:, :water] = true[:, :water]  # the water layer is known, and stays
    free = np.zeros(shape, dtype=bool)
    free[:, water:] = True

    ex = (args.nx - 1) * h
    sources = np.array([[ex * (i + 0.5) / args.shots, 2 * h] for i in range(args.shots)])
    receivers = np.stack([np.arange(args.nx) * h, np.full(args.nx, 2 * h)], axis=1)
    # One time step and one absorbing layer for every model the bounds allow, so observed and
    # predicted data share a time axis and the gradient is that of the misfit.
    fastest = np.full(shape, args.vmax)
    common = dict(spacing=h, sources=sources, receivers=receivers, f0=args.f0, space_order=4,
                  nbl=10, dt=gr.default_dt(fastest, h, 4), boundary_velocity=args.vmax)

    device = gr.Device()
    print(f"GPU: {device.adapter}{' (software: correct, not fast)' if device.is_software else ''}")
    clock = time.time()
    observed = device.forward(true, tmax=args.tmax, **common)
    print(f"observed data: {observed.shape[0]} shots x {observed.shape[1]} samples x "
          f"{observed.shape[2]} receivers")

    evaluations = []  # (misfit, seconds)
    first_gradient = {}
    last = {}  # the latest point and its result: L-BFGS-B may ask for the same point twice

    def misfit_and_gradient(x):
        if last and np.array_equal(last["x"], x):
            return last["result"]
        v = start.copy()
        v[free] = x * 1000.0  # the optimiser works in km/s: gradients of order one
        misfit, g, info = device.gradient(v, observed, snaps=args.snaps,
                                          checkpoint_format=args.checkpoint_format, **common)
        gv = gr.velocity_gradient(g, v)
        if not first_gradient:
            first_gradient.update(gradient=g, info=info)
        evaluations.append((misfit, time.time() - clock))
        print(f"  evaluation {len(evaluations):2d}: misfit {misfit:.4e} "
              f"({info['recompute_factor']:.2f}x forward steps, "
              f"{info['timings']['total']:.1f} s)", flush=True)
        result = (misfit / scale, gv[free] * 1000.0 / scale)
        last.update(x=x.copy(), result=result)
        return result

    # The objective is J / J0: it starts at 1, whatever the data's amplitude.
    x0 = start[free] / 1000.0
    scale = 1.0
    scale = misfit_and_gradient(x0)[0]
    last["result"] = (1.0, last["result"][1] / scale)
    iterations = [scale]
    result = minimize(
        misfit_and_gradient,
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=[(args.vmin / 1000.0, args.vmax / 1000.0)] * int(free.sum()),
        callback=lambda x: iterations.append(evaluations[-1][0]),
        options=dict(maxiter=args.iterations, maxfun=3 * args.iterations),
    )
    inverted = start.copy()
    inverted[free] = result.x * 1000.0
    final = result.fun * scale
    iterations[-1] = final

    reduction = iterations[0] / final
    error0 = np.linalg.norm(start - true)
    error1 = np.linalg.norm(inverted - true)
    args.out.mkdir(parents=True, exist_ok=True)
    np.save(args.out / "inverted.npy", inverted)
    figures(args, true, start, inverted, first_gradient["gradient"], iterations)
    print(f"{len(iterations) - 1} iterations, {len(evaluations)} gradients, "
          f"{time.time() - clock:.0f} s; figures in {args.out}/")
    print(f"misfit reduced {reduction:.1f}x: {iterations[0]:.4e} -> {final:.4e}")
    print(f"model error |v - v_true|: {error0:.4e} -> {error1:.4e} m/s "
          f"({100 * (1 - error1 / error0):.0f}% lower)")
    return 0 if reduction > 1 and error1 < error0 else 1


def figures(args, true, start, inverted, gradient, iterations):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h_km = args.spacing / 1000.0
    extent = [0, (args.nx - 1) * h_km, (args.nz - 1) * h_km, 0]
    fig, axes = plt.subplots(2, 2, figsize=(11, 6), constrained_layout=True)
    for ax, (title, v) in zip(axes.flat, [("True model", true), ("Initial model", start),
                                         ("Inverted model", inverted)]):
        im = ax.imshow(v.T, extent=extent, cmap="viridis", vmin=true.min(), vmax=true.max(),
                       aspect="auto")
        ax.set(title=title, xlabel="x (km)", ylabel="depth (km)")
        fig.colorbar(im, ax=ax, label="velocity (m/s)")
    clip = np.percentile(np.abs(gradient), 99)
    im = axes[1, 1].imshow(gradient.T, extent=extent, cmap="seismic", vmin=-clip, vmax=clip,
                           aspect="auto")
    axes[1, 1].set(title="First gradient ∂J/∂m", xlabel="x (km)", ylabel="depth (km)")
    fig.colorbar(im, ax=axes[1, 1], label="∂J/∂m (misfit per s²/m²)")
    fig.savefig(args.out / "models.png", dpi=120)

    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    ax.semilogy(range(len(iterations)), iterations, "o-")
    ax.set(title="Misfit against iteration (L-BFGS-B)", xlabel="iteration",
           ylabel="misfit ½Σ(d − d_obs)²")
    ax.grid(True, which="both", alpha=0.3)
    fig.savefig(args.out / "misfit.png", dpi=120)


if __name__ == "__main__":
    sys.exit(main())
