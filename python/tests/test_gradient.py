"""Gradients through the Python API: the Rust API's bits, Taylor slopes, checkpointing that
changes nothing, progress and Ctrl-C, and dtypes and layouts."""

import _thread
import inspect
import json
import os
import re
import pathlib
import shutil
import subprocess
import threading

import numpy as np
import pytest

import gpurevolve as gr
from conftest import surface_survey, under_ci

REPO = pathlib.Path(__file__).resolve().parents[2]


def small(shape=(40, 24), spacing=10.0, shots=2, nt=150, order=4, seed=3):
    """A small survey on the Marmousi-like model and its smoothed start, with the time step and
    boundary fixed for both models, as an inversion must."""
    true = gr.marmousi_like(shape, spacing, seed=seed)
    start = gr.smoothed(true, 3)
    sources, receivers = surface_survey(shape, spacing, shots)
    common = dict(
        spacing=spacing,
        sources=sources,
        receivers=receivers,
        f0=15.0,
        dt=gr.default_dt(true, spacing, order),
        space_order=order,
        nbl=10,
        boundary_velocity=float(max(true.max(), start.max())),
    )
    return true, start, nt, common


def test_the_python_gradient_is_the_main_jobs_bit_for_bit(device, tmp_path):
    """The main job (the Rust API) and the Python API, given the same inputs, write the same
    gradient bits (the main job writes float32) and the same misfit."""
    nx, nz, h, shots = 48, 24, 15.0, 2
    job_args = ["--nx", str(nx), "--nz", str(nz), "--tmax", "0.3", "--shots", str(shots),
                "--out", str(tmp_path)]
    # A prebuilt main job (a GPU machine without cargo: scripts/build-prebuilt.sh), else cargo.
    prebuilt = os.environ.get("GPUREVOLVE_MAIN_JOB")
    cargo = shutil.which("cargo") or os.path.expanduser("~/.cargo/bin/cargo")
    if prebuilt:
        command = [prebuilt, *job_args]
    elif (REPO / "Cargo.toml").exists() and os.path.exists(cargo):
        command = [cargo, "run", "-q", "--release", "--example", "acoustic_adjoint", "--",
                   *job_args]
    elif under_ci():
        pytest.fail("CI is set but the repository or cargo is missing")
    else:
        pytest.skip("needs the repository and cargo (or GPUREVOLVE_MAIN_JOB) to run the main job")
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    summary = json.loads((tmp_path / "summary.json").read_text())
    rust_gradient = np.load(tmp_path / "gradient.npy")
    # The main job's defaults: seed 1, f0 10 Hz, order 8, a 20-cell CPML at the larger top
    # velocity of the two models, dt from the true model.
    true = gr.marmousi_like((nx, nz), h, seed=1)
    start = gr.smoothed(true, 3)
    sources, receivers = surface_survey((nx, nz), h, shots)
    common = dict(spacing=h, sources=sources, receivers=receivers,
                  dt=gr.default_dt(true, h), boundary_velocity=float(max(true.max(), start.max())))
    assert common["dt"] == summary["dt"]
    observed = device.forward(true, nt=summary["nt"], **common)
    misfit, gradient, info = device.gradient(start, observed, **common)
    assert misfit == summary["misfit"]
    # One Summary type writes both: the same keys, nested ones included.
    assert set(info) == set(summary)
    assert set(info["tiers"]) == set(summary["tiers"])
    assert set(info["timings"]) <= set(summary["timings"])
    # The same run, so the same values, except where the two differ by nature: the seed of
    # the built-in model (the main job's alone) and the seconds.
    seconds = {"timings", "rank_seconds", "measured_seconds_per_shot", "modelled_seconds_per_shot"}
    for key in sorted(set(summary) - seconds - {"seed", "tiers"}):
        assert info[key] == summary[key], key
    assert summary["seed"] == 1 and info["seed"] is None
    assert gradient.dtype == np.float64 and gradient.shape == (nx, nz)
    assert gradient.astype(np.float32).tobytes() == rust_gradient.tobytes()


def test_taylor_slopes_one_and_two(device):
    """|J(m + h dm) − J(m)| falls like h, |J(m + h dm) − J(m) − h <g, dm>| like h², for a
    random perturbation over every cell (edges too: the gradient counts the absorbing layer's
    share). Half of dm is a smooth field of random phase, half points down the gradient, so
    the first-order term cannot vanish; h runs from 1 to 1/16, where the second-order
    remainder stays well above the float32 kernels' rounding of J."""
    rng = np.random.default_rng()
    true, start, nt, common = small(shape=(40, 40), nt=160)
    common["boundary_velocity"] *= 1.1  # room for the perturbed models
    observed = device.forward(true, nt=nt, **common)
    misfit, g, _ = device.gradient(start, observed, **common)
    m0 = 1.0 / start**2
    x, z = np.meshgrid(np.arange(40), np.arange(40), indexing="ij")
    phase = rng.uniform(0, np.pi, 2)
    smooth = np.sin(0.21 * x + phase[0]) * np.cos(0.17 * z + phase[1])
    dm = 0.03 * m0 * (0.5 * smooth - 0.5 * g / np.abs(g).max())

    def misfit_at(m):
        d = device.forward(1.0 / np.sqrt(m), nt=nt, **common)
        return 0.5 * np.sum((d - observed) ** 2)

    hs = 0.5 ** np.arange(5)
    g_dm = np.sum(g * dm)
    first, second = [], []
    for h in hs:
        j = misfit_at(m0 + h * dm)
        first.append(abs(j - misfit))
        second.append(abs(j - misfit - h * g_dm))
    s1 = np.polyfit(np.log(hs), np.log(first), 1)[0]
    s2 = np.polyfit(np.log(hs), np.log(second), 1)[0]
    assert abs(s1 - 1) <= 0.1, (phase, s1, first)
    assert abs(s2 - 2) <= 0.1, (phase, s2, second)


def test_checkpointing_spilling_and_schedules_give_the_store_all_bits(device):
    true, start, nt, common = small()
    observed = device.forward(true, nt=nt, **common)
    j_all, g_all, info_all = device.gradient(start, observed, snaps="all", **common)
    assert info_all["schedule"] == "store-all"
    level_bytes = info_all["peak_checkpoint_bytes"] // (nt - 1)
    runs = [
        dict(),
        dict(snaps=3),
        dict(snaps=4, schedule="revolve"),
        dict(snaps=4, schedule="classic"),
        # One level's room on the GPU: the other checkpoints spill to host memory.
        dict(snaps=6, device_memory=2 * level_bytes),
    ]
    for kwargs in runs:
        j, g, info = device.gradient(start, observed, **kwargs, **common)
        assert j == j_all, kwargs
        assert g.tobytes() == g_all.tobytes(), kwargs
        assert info["reverse_steps"] == info_all["reverse_steps"]
    assert min(info["tiers"]["host_saves"]) > 0 and info["spilled_bytes"] > 0
    assert sum(info["forward_steps"]) > sum(info_all["forward_steps"])


def test_batches_of_shots_give_the_one_at_a_time_bits(device):
    """Shots stepped together by each dispatch, in batches that divide the shot count or not,
    with spilling too, give the bits of one shot at a time; the summary says how."""
    true, start, nt, common = small(shots=5, nt=120)
    observed = device.forward(true, nt=nt, **common)
    j_one, g_one, info_one = device.gradient(start, observed, snaps=12, **common)
    assert info_one["batch"] == 1
    level_bytes = info_one["peak_checkpoint_bytes"] // 12
    runs = [dict(batch=2), dict(batch=3), dict(batch=5), dict(batch="auto"),
            dict(batch=2, device_memory=4 * level_bytes)]
    for kwargs in runs:
        j, g, info = device.gradient(start, observed, snaps=12, **kwargs, **common)
        assert j == j_one, kwargs
        assert g.tobytes() == g_one.tobytes(), kwargs
        if kwargs["batch"] != "auto":
            assert info["batch"] == kwargs["batch"], kwargs
            # One dispatch steps the whole batch: fewer dispatches per shot-step.
            assert info["dispatches_per_shot_step"] < info_one["dispatches_per_shot_step"]
        assert info["measured_seconds_per_shot"] > 0
    assert info["spilled_bytes"] > 0


def test_lossy_checkpoints_stay_close_and_repeat_their_bits(device):
    """bf16 and int8 checkpoints: more of them in the memory of the exact run (fewer forward
    steps), a gradient that correlates with the exact one, and the same bits on a second run
    and with batches."""
    true, start, nt, common = small(shots=2)
    observed = device.forward(true, nt=nt, **common)
    _, exact, info_exact = device.gradient(start, observed, snaps=4, **common)
    assert info_exact["checkpoint_format"] == "f32"
    for fmt, least in [("bf16", 0.999), ("int8", 0.995)]:
        _, g, info = device.gradient(start, observed, snaps=4, checkpoint_format=fmt, **common)
        assert info["checkpoint_format"] == fmt
        assert sum(info["forward_steps"]) < sum(info_exact["forward_steps"])
        assert np.corrcoef(g.ravel(), exact.ravel())[0, 1] >= least, fmt
        assert g.tobytes() != exact.tobytes()
        _, again, _ = device.gradient(start, observed, snaps=8, batch=2,
                                      checkpoint_format=fmt, **common)
        assert again.tobytes() == g.tobytes(), fmt


def test_measured_costs_drive_a_lossy_placement_by_cost(device, tmp_path):
    """measure_costs gives the costs in the form gradient's costs takes (3, 5 with a disk, 2
    more for a lossy format's kernels), and a lossy placement by cost runs on them, with the
    same bits twice and the levels encoded and decoded counted in info."""
    true, start, nt, common = small(shots=2)
    survey = dict(common)
    assert len(device.measure_costs(start, nt=nt, **survey)) == 3
    with_disk = device.measure_costs(start, nt=nt, disk=tmp_path, checkpoint_format="int8",
                                     **survey)
    assert len(with_disk) == 7 and all(c > 0 for c in with_disk)
    costs = device.measure_costs(start, nt=nt, checkpoint_format="bf16", **survey)
    assert len(costs) == 5 and all(np.isfinite(costs)) and all(c > 0 for c in costs)
    observed = device.forward(true, nt=nt, **common)
    _, _, info = device.gradient(start, observed, snaps=4, checkpoint_format="bf16", **common)
    level = info["checkpoint_bytes"] // info["checkpoint_levels"]
    lossy = dict(snaps=4, checkpoint_format="bf16", placement="optimal", costs=costs,
                 device_memory=2 * level, **common)
    _, g, info = device.gradient(start, observed, **lossy)
    assert info["spilled_bytes"] > 0
    assert info["levels_encoded"][0] > 0 and info["levels_decoded"][0] > 0
    _, again, _ = device.gradient(start, observed, **lossy)
    assert again.tobytes() == g.tobytes()
    with pytest.raises(ValueError, match="checkpoint_format"):
        device.measure_costs(start, nt=nt, checkpoint_format="f16", **survey)


def test_float32_in_float32_out_and_any_layout(device):
    true, start, nt, common = small(shots=1)
    observed = device.forward(true, nt=nt, **common)
    j64, g64, _ = device.gradient(start, observed, **common)
    # float32 inputs are read as the float32 values they hold: the same as float64 inputs of
    # those values.
    start32 = start.astype(np.float32)
    j32, g32, _ = device.gradient(start32, observed.astype(np.float32), **common)
    assert g32.dtype == np.float32 and g32.shape == start.shape
    obs32 = observed.astype(np.float32).astype(np.float64)
    j_ref, g_ref, _ = device.gradient(start32.astype(np.float64), obs32, **common)
    assert j32 == j_ref and g32.tobytes() == g_ref.astype(np.float32).tobytes()
    # A transposed (Fortran-ordered) copy holds the same values: the same result.
    fortran = np.asfortranarray(start)
    assert not fortran.flags.c_contiguous or start.ndim == 1
    j_f, g_f, _ = device.gradient(fortran, observed, **common)
    assert j_f == j64 and g_f.tobytes() == g64.tobytes()
    # So does a strided view.
    wide = np.zeros((start.shape[0], 2 * start.shape[1]))
    wide[:, ::2] = start
    j_s, g_s, _ = device.gradient(wide[:, ::2], observed, **common)
    assert j_s == j64 and g_s.tobytes() == g64.tobytes()


def test_velocity_gradient_is_the_chain_rule(device):
    true, start, nt, common = small(shots=1)
    observed = device.forward(true, nt=nt, **common)
    _, g, _ = device.gradient(start, observed, **common)
    gv = gr.velocity_gradient(g, start)
    np.testing.assert_array_equal(gv, -2.0 * g / start**3)
    with pytest.raises(ValueError, match="same grid"):
        gr.velocity_gradient(g, start[:-1])


def test_progress_reaches_the_total_and_can_stop_the_run(device):
    true, start, nt, common = small()
    observed = device.forward(true, nt=nt, **common)
    seen = []
    _, g, info = device.gradient(start, observed, progress=lambda d, t: seen.append((d, t)),
                                 **common)
    assert seen and seen[-1][0] == seen[-1][1]
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))
    assert seen[-1][1] == sum(info["forward_steps"]) + sum(info["reverse_steps"])

    class Stop(Exception):
        pass

    def stop(done, total):
        raise Stop(f"{done}/{total}")

    with pytest.raises(Stop):
        device.gradient(start, observed, progress=stop, **common)
    # The next call works and gives the same bits.
    _, again, _ = device.gradient(start, observed, **common)
    assert again.tobytes() == g.tobytes()


def test_ctrl_c_interrupts_a_gradient_cleanly(device, sigint):
    true, start, nt, common = small(nt=400)
    observed = device.forward(true, nt=nt, **common)
    # Ctrl-C from inside the run (its first progress report), so that the test does not race
    # a fast GPU: the gradient may end before a timer fires (seen on an H100).
    calls = []

    def interrupt(done, total):
        calls.append(done)
        if len(calls) == 1:
            _thread.interrupt_main()

    with pytest.raises(KeyboardInterrupt):
        device.gradient(start, observed, progress=interrupt, **common)
    misfit, _, _ = device.gradient(start, observed, **common)
    assert np.isfinite(misfit) and misfit > 0


def test_forward_reports_progress_and_ctrl_c_stops_it(device, sigint):
    true, _, _, common = small(shots=3)
    plain = device.forward(true, nt=300, **common)
    seen = []
    again = device.forward(true, nt=300, progress=lambda d, t: seen.append((d, t)), **common)
    assert again.tobytes() == plain.tobytes()
    assert seen[-1] == (3 * 299, 3 * 299)
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))
    timer = threading.Timer(0.2, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            device.forward(true, nt=3000, **common)
    finally:
        timer.cancel()
    assert device.forward(true, nt=300, **common).tobytes() == plain.tobytes()


def test_until_quiet_is_the_store_all_gradient_of_its_length(device):
    """A shot stopped once its wavefield is quiet: the misfit and gradient of a record cut at
    the steps it ran, kept in full (store-all), to the bit; a fraction outside (0, 1) is a
    ValueError naming it."""
    true, start, nt, common = small(shots=1, nt=1200)
    observed = device.forward(true, nt=nt, **common)
    misfit, g, info = device.gradient(start, observed, until_quiet=1e-3, snaps=8, **common)
    n = info["reverse_steps"][0]
    assert 0 < n < nt - 1, n
    assert info["until_quiet"] == 1e-3 and info["schedule"] == "online"
    cut = np.ascontiguousarray(observed[:, : n + 1, :])
    misfit_ref, g_ref, _ = device.gradient(start, cut, snaps="all", **common)
    assert misfit == misfit_ref
    assert g.tobytes() == g_ref.tobytes()
    for bad in (0.0, 1.0, float("nan")):
        with pytest.raises(ValueError, match="until_quiet"):
            device.gradient(start, observed, until_quiet=bad, **common)


def test_a_disk_tier_gives_the_same_gradient_and_leaves_nothing(device, tmp_path):
    """Checkpoints beyond the host memory in files under a given directory: the all-on-GPU
    bits, files written and read, and nothing left in the directory; a directory that does
    not exist is a ValueError naming it."""
    true, start, nt, common = small(shots=1, nt=120)
    observed = device.forward(true, nt=nt, **common)
    _, g_ref, _ = device.gradient(start, observed, snaps=10, **common)
    _, g, info = device.gradient(start, observed, snaps=10, device_memory=1, host_memory=1,
                                 disk=tmp_path, **common)
    assert g.tobytes() == g_ref.tobytes()
    assert info["tiers"]["disk_saves"][0] > 0 and info["tiers"]["bytes_from_disk"][0] > 0
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="not there"):
        device.gradient(start, observed, snaps=10, device_memory=1, host_memory=1,
                        disk=tmp_path / "not there", **common)


def main_job_options():
    """The main job's long options, from its --help (cargo or GPUREVOLVE_MAIN_JOB)."""
    prebuilt = os.environ.get("GPUREVOLVE_MAIN_JOB")
    cargo = shutil.which("cargo") or os.path.expanduser("~/.cargo/bin/cargo")
    if prebuilt:
        command = [prebuilt, "--help"]
    elif (REPO / "Cargo.toml").exists() and os.path.exists(cargo):
        command = [cargo, "run", "-q", "--release", "--example", "acoustic_adjoint", "--",
                   "--help"]
    elif under_ci():
        pytest.fail("CI is set but the repository or cargo is missing")
    else:
        pytest.skip("needs the repository and cargo (or GPUREVOLVE_MAIN_JOB)")
    text = subprocess.run(command, cwd=REPO, check=True, capture_output=True, text=True).stdout
    return {m.replace("-", "_") for m in re.findall(r"^\s+(?:-\w, )?--([a-z0-9-]+)", text, re.M)}


def test_every_main_job_option_has_its_python_keyword_and_back():
    """The command line and Python are two shells over one job: an option of either is a
    keyword of the other, under the same name. What only one of them has is listed here,
    with its reason."""
    # The main job makes its own survey and writes files; Python is given arrays.
    cli_only = {"nx", "ny", "nz", "model", "model_npy", "initial_npy", "seed", "shots",
                "src_depth", "rec_depth", "out", "resume", "help", "version",
                # A mode of the command line; in Python the method Device.measure_costs.
                "measure_costs"}
    python_only = {"self", "vp", "observed", "sources", "receivers", "progress"}
    keywords = set()
    for call in (gr.Device.__init__, gr.Device.forward, gr.Device.gradient,
                 gr.Device.measure_costs):
        keywords |= set(inspect.signature(call).parameters)
    # Device's __init__ is a slot wrapper; its keywords come from the class's signature.
    keywords |= set(inspect.signature(gr.Device).parameters)
    keywords -= {"args", "kwargs"}
    options = main_job_options()
    assert cli_only <= options, cli_only - options
    assert options - cli_only == keywords - python_only, (
        options - cli_only - keywords, keywords - python_only - options)
