"""Full-waveform inversion in PyTorch: model and wavelet together, a misfit other than L2.

The traces come from `gpurevolve.torch.scalar` (Deepwave's call), differentiable to the
velocity model and to the source wavelet, with the schedule's checkpoints held on the GPU
between each forward and its backward. The misfit is a Huber loss (robust: L1 for large
residuals) on traces muted before the first arrivals. The wavelet starts wrong (a Ricker of
another peak frequency, delayed and scaled) and is estimated with the model by `torch.optim.Adam`;
the water layer is known and held fixed. Figures (models, wavelets, misfit curve) go to `--out`:

    python python/examples/torch_fwi.py --out torch-fwi-out

On the 2-core development machine's software adapter the defaults take about four minutes.
"""

import argparse
import pathlib
import sys
import time

import numpy as np
import torch

import gpurevolve as gr
import gpurevolve.torch as deepwave  # the Deepwave call, checkpointed on the GPU


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nx", type=int, default=64, help="cells across [64]")
    p.add_argument("--nz", type=int, default=32, help="cells in depth [32]")
    p.add_argument("--spacing", type=float, default=20.0, help="grid spacing, m [20]")
    p.add_argument("--shots", type=int, default=6, help="shots along the surface [6]")
    p.add_argument("--f0", type=float, default=6.0, help="true wavelet's peak frequency, Hz [6]")
    p.add_argument("--tmax", type=float, default=1.2, help="recording time, s [1.2]")
    p.add_argument("--wavelet-iterations", type=int, default=15,
                   help="first iterations, of the wavelet alone [15]")
    p.add_argument("--iterations", type=int, default=45,
                   help="then iterations of model and wavelet together [45]")
    p.add_argument("--lr", type=float, default=15.0, help="Adam's step for velocities, m/s [15]")
    p.add_argument("--seed", type=int, default=1, help="the true model's structure [1]")
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("torch-fwi-out"))
    return p.parse_args()


def water_depth(true):
    """Rows from the top in which every cell has the water velocity (the lowest)."""
    rows = 0
    while rows < true.shape[1] and np.all(true[:, rows] == true.min()):
        rows += 1
    return rows


def mute(traces, src_x, rec_x, h, dt, v_water, f0):
    """Zero before the direct wave's arrival at each receiver (offset / water velocity, less
    one wavelet period): a time window, differentiable as a fixed mask."""
    offsets = (rec_x[None, :] - src_x[:, None]).abs() * h
    first = (offsets / v_water - 1.0 / f0) / dt
    t = torch.arange(traces.shape[-1], dtype=traces.dtype)
    return traces * (t[None, None, :] >= first[:, :, None]).to(traces.dtype)


def main():
    args = parse()
    h = args.spacing
    shape = (args.nx, args.nz)
    true = gr.marmousi_like(shape, h, seed=args.seed)
    water = water_depth(true)
    start = gr.smoothed(true, max(min(shape) // 6, 2))
    start[:, :water] = true[:, :water]
    vmax = float(true.max())
    dt = gr.default_dt(true, h, space_order=4)
    nt = int(round(args.tmax / dt)) + 1

    # Deepwave's layout: locations in cells [shot, point, 2], amplitudes [shot, source, time].
    src_x = torch.linspace(2, args.nx - 3, args.shots).round().long()
    sources = torch.stack([src_x, torch.full_like(src_x, 1)], 1)[:, None, :]
    rec_x = torch.arange(0, args.nx)
    receivers = torch.stack([rec_x, torch.full_like(rec_x, 1)], 1).repeat(args.shots, 1, 1)
    true_wavelet = torch.tensor(gr.ricker(args.f0, nt, dt))
    wrong = 0.6 * torch.tensor(gr.ricker(0.75 * args.f0, nt, dt, t0=1.4 / args.f0))

    def model(v, wavelet):
        return deepwave.scalar(
            v, h, dt, source_amplitudes=wavelet.expand(args.shots, 1, nt),
            source_locations=sources, receiver_locations=receivers, accuracy=4,
            pml_width=20, pml_freq=args.f0, max_vel=vmax * 1.1,
        )[-1]

    def misfit(out, observed):
        muted = mute(out, src_x, rec_x, h, dt, float(true.min()), args.f0)
        scale = observed.abs().max()
        return torch.nn.functional.huber_loss(muted / scale, observed / scale,
                                              delta=0.05, reduction="sum")

    with torch.no_grad():
        observed = mute(model(torch.tensor(true), true_wavelet), src_x, rec_x, h, dt,
                        float(true.min()), args.f0)

    v = torch.tensor(start, requires_grad=True)
    wavelet = wrong.clone().requires_grad_()
    # The wavelet first, in the starting model: a wrong wavelet's delay would otherwise be
    # explained by slower velocities. Then both, the wavelet more slowly.
    peak = float(true_wavelet.abs().max())
    wavelet_alone = torch.optim.Adam([wavelet], lr=0.05 * peak)
    together = torch.optim.Adam([
        {"params": [v], "lr": args.lr},
        {"params": [wavelet], "lr": 0.01 * peak},
    ])
    frozen = torch.zeros(shape, dtype=torch.bool)
    frozen[:, :water] = True

    def model_error(v):
        return float(np.sqrt(np.mean((v.detach().numpy() - true) ** 2)))

    def wavelet_error(w):
        return float(torch.linalg.norm(w.detach() - true_wavelet) / torch.linalg.norm(true_wavelet))

    history = []
    clock = time.perf_counter()
    first = dict(model=model_error(v), wavelet=wavelet_error(wavelet))
    for i in range(args.wavelet_iterations + args.iterations):
        optimiser = wavelet_alone if i < args.wavelet_iterations else together
        optimiser.zero_grad()
        v.grad = None
        loss = misfit(model(v, wavelet), observed)
        loss.backward()
        v.grad[frozen] = 0.0
        optimiser.step()
        with torch.no_grad():
            v.clamp_(float(true.min()), vmax)
            v[frozen] = torch.tensor(true)[frozen]
        history.append(loss.item())
        print(f"iteration {i:3d}: misfit {loss.item():.4e}, model error "
              f"{model_error(v):7.1f} m/s, wavelet error {wavelet_error(wavelet):.3f}",
              flush=True)
    with torch.no_grad():
        final_misfit = misfit(model(v, wavelet), observed).item()
    seconds = time.perf_counter() - clock
    last = dict(model=model_error(v), wavelet=wavelet_error(wavelet))
    print(f"misfit {history[0]:.4e} -> {final_misfit:.4e} ({history[0] / final_misfit:.1f}x lower); "
          f"model error {first['model']:.1f} -> {last['model']:.1f} m/s; wavelet error "
          f"{first['wavelet']:.3f} -> {last['wavelet']:.3f}; {seconds:.0f} s")
    figures(args.out, true, start, v.detach().numpy(), true_wavelet.numpy(), wrong.numpy(),
            wavelet.detach().numpy(), history + [final_misfit], dt)
    converged = (history[0] >= 5 * final_misfit and last["model"] < first["model"]
                 and last["wavelet"] < first["wavelet"])
    print("converged: misfit 5x lower, model and wavelet errors lower" if converged
          else "not converged yet (more --iterations)")
    return 0


def figures(out, true, start, final, w_true, w_start, w_final, history, dt):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.2), constrained_layout=True)
    for ax, model, title in zip(axes, (true, start, final), ("true", "start", "inverted")):
        im = ax.imshow(model.T, cmap="viridis", vmin=true.min(), vmax=true.max(), aspect="auto")
        ax.set_title(f"{title} model (m/s)")
    fig.colorbar(im, ax=axes)
    fig.savefig(out / "models.png", dpi=110)
    fig, ax = plt.subplots(figsize=(6, 3.2), constrained_layout=True)
    t = np.arange(len(w_true)) * dt
    for w, label in ((w_true, "true"), (w_start, "start"), (w_final, "estimated")):
        ax.plot(t, w, label=label)
    ax.set_xlim(0, min(t[-1], 0.6))
    ax.set_xlabel("t (s)")
    ax.legend()
    ax.set_title("wavelets")
    fig.savefig(out / "wavelets.png", dpi=110)
    fig, ax = plt.subplots(figsize=(6, 3.2), constrained_layout=True)
    ax.semilogy(history)
    ax.set_xlabel("iteration")
    ax.set_ylabel("Huber misfit")
    fig.savefig(out / "misfit.png", dpi=110)
    print(f"figures in {out}/: models.png, wavelets.png, misfit.png")


if __name__ == "__main__":
    sys.exit(main())
