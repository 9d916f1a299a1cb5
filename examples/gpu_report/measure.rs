//! The measurements of the GPU report, each returning rows of the table.

use std::time::Instant;

use gpurevolve::Error;
use gpurevolve::acoustic::{
    AcousticOperator, AdjointInput, Boundary, BoundaryKind, CpuTwin, Geometry, GpuAcoustic, Model,
    Problem, TimeAxis,
};
use gpurevolve::engine::{Revolver, RevolverOptions, RunStats};
use gpurevolve::gpu::{CpmlDispatch, Gpu, GpuOptions, KernelOptions};
use gpurevolve::schedule::{LevelOptimal, Revolve, Schedule, StoreAll, Tier};

use super::Row;

/// A constant-velocity problem on `shape` (10 m cells, 8 absorbing) at `order`, one source and
/// one receiver at the centre, `nt` samples, with the sponge: the plain kernels, whose bytes a
/// point the bandwidth figures count.
pub fn problem(shape: &[usize], order: usize, nt: usize) -> Result<Problem, Error> {
    problem_with(shape, order, nt, BoundaryKind::Sponge)
}

/// As [`problem`], with the absorbing layer of `kind`.
fn problem_with(
    shape: &[usize],
    order: usize,
    nt: usize,
    kind: BoundaryKind,
) -> Result<Problem, Error> {
    let model = Model::constant(shape, 10.0, 8, 2000.0)?;
    let centre: Vec<f64> = model.extent().iter().map(|e| e / 2.0).collect();
    let geometry = Geometry::new(&model, vec![centre.clone()], vec![centre], 10.0)?;
    let time = TimeAxis::new(&model, order, nt, None)?;
    let boundary = Boundary::new(kind, 2000.0)?;
    Problem::with_boundary(model, geometry, time, order, boundary)
}

/// Whether an error means "too large for this device" (then the case is shrunk).
fn too_large(e: &Error) -> bool {
    matches!(e, Error::OutOfMemory { .. } | Error::BufferTooLarge { .. })
}

/// Median wall seconds of `reps` runs of `f`, after one run to warm up.
pub fn median(reps: usize, mut f: impl FnMut() -> Result<(), Error>) -> Result<f64, Error> {
    f()?;
    let mut t = Vec::with_capacity(reps);
    for _ in 0..reps {
        let start = Instant::now();
        f()?;
        t.push(start.elapsed().as_secs_f64());
    }
    t.sort_by(f64::total_cmp);
    Ok(t[reps / 2])
}

/// Seconds a forward step of `acoustic` takes on three rotating fields, `reps` a submission.
fn forward_step_seconds(gpu: &Gpu, acoustic: &GpuAcoustic<'_>, reps: usize) -> Result<f64, Error> {
    let field = || acoustic.level("u");
    let mut u = [field()?, field()?, field()?];
    let t = median(3, || {
        let mut encoder = gpu.device().create_command_encoder(&Default::default());
        for k in 0..reps {
            let [prev, cur, next] = &u;
            acoustic.encode_forward_step(&mut encoder, k, [prev, cur, next], false);
            u.rotate_left(1);
        }
        gpu.submit([encoder.finish()]);
        gpu.wait()
    })?;
    Ok(t / reps as f64)
}

/// Relative L2 distance.
fn rel_l2(a: &[f64], b: &[f64]) -> f64 {
    let d: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    let n: f64 = b.iter().map(|y| y * y).sum();
    (d / n.max(f64::MIN_POSITIVE)).sqrt()
}

/// GPU against the float64 twin on a random-velocity problem: traces and store-all gradient.
pub fn correctness(gpu: &Gpu) -> Result<Vec<Row>, Error> {
    let mut rows = Vec::new();
    for (shape, order) in [(vec![64usize, 48], 8usize), (vec![24, 20, 18], 4)] {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let truth = Model::from_fn(&shape, 10.0, 6, |_, _, z| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            1800.0 + z + (seed >> 40) as f64 / (1u64 << 24) as f64 * 300.0
        })?;
        let extent = truth.extent();
        let at = |fx: f64, fz: f64| -> Vec<f64> {
            let mut p: Vec<f64> = extent.iter().map(|e| e * fx).collect();
            *p.last_mut().unwrap_or(&mut 0.0) = extent[extent.len() - 1] * fz;
            p
        };
        let geometry = Geometry::new(
            &truth,
            vec![at(0.4, 0.2)],
            vec![at(0.3, 0.7), at(0.7, 0.6)],
            25.0,
        )?;
        let time = TimeAxis::new(&truth, order, 120, None)?;
        let p = Problem::new(truth, geometry, time, order)?;
        let twin = CpuTwin::new(&p);
        let forward = twin.forward(&p.source_series(), true)?;
        let observed: Vec<f64> = forward.traces.iter().map(|t| 0.5 * t).collect();
        let residual: Vec<f64> = forward
            .traces
            .iter()
            .zip(&observed)
            .map(|(t, o)| t - o)
            .collect();
        let fields = forward.fields.unwrap_or_default();
        let cpu_gradient = twin.adjoint(&fields, &residual)?.gradient;
        let gpu_result = GpuAcoustic::new(gpu, &p)?.gradient_store_all(&observed)?;
        let case = format!("{}D order {order}", shape.len());
        rows.push(Row::new(
            "correctness",
            &case,
            "traces vs float64 twin",
            rel_l2(&gpu_result.traces, &forward.traces),
            "rel L2",
        ));
        rows.push(Row::new(
            "correctness",
            &case,
            "gradient vs float64 twin",
            rel_l2(&gpu_result.gradient, &cpu_gradient),
            "rel L2",
        ));
    }
    Ok(rows)
}

/// A device-to-device copy of one field of `bytes`: bytes moved (read + write) per second.
fn copy_bandwidth(
    gpu: &Gpu,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    reps: usize,
) -> Result<f64, Error> {
    let bytes = a.size();
    let t = median(5, || {
        let mut encoder = gpu.device().create_command_encoder(&Default::default());
        for _ in 0..reps {
            encoder.copy_buffer_to_buffer(a, 0, b, 0, bytes);
        }
        gpu.submit([encoder.finish()]);
        gpu.wait()
    })?;
    Ok(2.0 * bytes as f64 * reps as f64 / t)
}

/// Forward and adjoint step throughput on `shape` at `order`, against a copy of one field; the
/// grid halves until it fits.
pub fn kernels(gpu: &Gpu, shape: &[usize], order: usize, reps: usize) -> Result<Vec<Row>, Error> {
    let mut shape = shape.to_vec();
    loop {
        match kernels_at(gpu, &shape, order, reps) {
            Err(e) if too_large(&e) && shape.iter().all(|&n| n >= 64) => {
                let smaller: Vec<usize> = shape.iter().map(|n| n / 2).collect();
                eprintln!("{shape:?} does not fit on this device ({e}); shrinking to {smaller:?}");
                shape = smaller;
            }
            other => return other,
        }
    }
}

fn kernels_at(gpu: &Gpu, shape: &[usize], order: usize, reps: usize) -> Result<Vec<Row>, Error> {
    let p = problem(shape, order, reps + 2)?;
    let acoustic = GpuAcoustic::new(gpu, &p)?;
    let points = p.layout().extended_len() as f64;
    let field = || acoustic.level("u");
    let u = [field()?, field()?, field()?];
    let copy = copy_bandwidth(gpu, &u[0], &u[1], reps)?;
    let kernel_copy = super::transfers::kernel_copy_bandwidth(gpu, u[0].size(), reps)?;
    let forward = forward_step_seconds(gpu, &acoustic, reps)?;
    let mut psi = [field()?, field()?, field()?];
    let grad = field()?;
    let given = acoustic.receiver_buffer("given")?;
    let adjoint = median(3, || {
        let mut encoder = gpu.device().create_command_encoder(&Default::default());
        for k in (0..reps).rev() {
            let [far, near, out] = &psi;
            let [a, b, _] = &u;
            acoustic.encode_adjoint_step(
                &mut encoder,
                k,
                [a, b],
                [far, near, out],
                AdjointInput::Given(&given),
                &grad,
                None,
            );
            psi.rotate_left(1);
        }
        gpu.submit([encoder.finish()]);
        gpu.wait()
    })? / reps as f64;
    // The same grid with an 8-cell CPML instead: its extra kernels' cost, as a ratio.
    let cpml = problem_with(shape, order, reps + 2, BoundaryKind::Cpml)?;
    let cpml_forward = forward_step_seconds(gpu, &GpuAcoustic::new(gpu, &cpml)?, reps)?;
    let case = format!("{shape:?} order {order}");
    // Bytes a point that a step must move: forward reads u, u⁻, a, b and writes u⁺ (20 B);
    // the adjoint does the same for ψ and adds the gradient's reads of u, u⁻, a, b, ψ and its
    // read-modify-write (28 B): it forms u⁺ − 2u + u⁻ from the state, never reading u⁺.
    let (fwd_bw, adj_bw) = (20.0 * points / forward, 48.0 * points / adjoint);
    Ok(vec![
        Row::new("kernels", &case, "copy bandwidth", copy / 1e9, "GB/s"),
        Row::new(
            "kernels",
            &case,
            "copy kernel bandwidth (vec4 compute copy)",
            kernel_copy / 1e9,
            "GB/s",
        ),
        Row::new(
            "kernels",
            &case,
            "forward step / copy kernel",
            fwd_bw / kernel_copy,
            "ratio",
        ),
        Row::new(
            "kernels",
            &case,
            "adjoint step / copy kernel",
            adj_bw / kernel_copy,
            "ratio",
        ),
        Row::new(
            "kernels",
            &case,
            "forward step",
            points / forward / 1e9,
            "Gpoints/s",
        ),
        Row::new(
            "kernels",
            &case,
            "forward step bandwidth",
            fwd_bw / 1e9,
            "GB/s",
        ),
        Row::new(
            "kernels",
            &case,
            "forward step / copy",
            fwd_bw / copy,
            "ratio",
        ),
        Row::new(
            "kernels",
            &case,
            "forward step, 8-cell CPML / sponge",
            cpml_forward / forward,
            "ratio",
        ),
        Row::new(
            "kernels",
            &case,
            "adjoint step (with gradient)",
            points / adjoint / 1e9,
            "Gpoints/s",
        ),
        Row::new(
            "kernels",
            &case,
            "adjoint step bandwidth",
            adj_bw / 1e9,
            "GB/s",
        ),
        Row::new(
            "kernels",
            &case,
            "adjoint step / copy",
            adj_bw / copy,
            "ratio",
        ),
    ])
}

/// One shot's observed data: a faster circular inclusion, `n` steps on an `edge²` grid, order 4.
fn shot(gpu: &Gpu, edge: usize, nt: usize) -> Result<(Problem, Vec<f64>), Error> {
    let shape = [edge, edge];
    let extent = (edge - 1) as f64 * 10.0;
    let truth = Model::circle(&shape, 10.0, 8, 2000.0, 2300.0, 0.15 * extent)?;
    let start = Model::constant(&shape, 10.0, 8, 2000.0)?;
    let geometry = |m: &Model| {
        let receivers = (0..edge).map(|i| vec![i as f64 * 10.0, 20.0]).collect();
        Geometry::new(m, vec![vec![extent / 2.0, 20.0]], receivers, 15.0)
    };
    let time = TimeAxis::new(&truth, 4, nt, None)?;
    let observed = GpuAcoustic::new(
        gpu,
        &Problem::new(truth.clone(), geometry(&truth)?, time, 4)?,
    )?
    .forward(false)?
    .traces;
    Ok((
        Problem::new(start.clone(), geometry(&start)?, time, 4)?,
        observed,
    ))
}

fn run(
    gpu: &Gpu,
    problem: &Problem,
    observed: &[f64],
    schedule: impl Schedule,
    options: &RevolverOptions,
) -> Result<(f64, RunStats), Error> {
    let operator = AcousticOperator::new(gpu, problem, observed)?;
    let mut revolver = Revolver::new(gpu, operator, schedule, options.clone())?;
    let start = Instant::now();
    let stats = revolver.apply_reverse()?;
    Ok((start.elapsed().as_secs_f64(), stats))
}

/// Checkpointed / store-all wall time for one shot at several memories of `s` two-level
/// snapshots, against the ratio of step evaluations: Revolve with the state-only acoustic
/// adjoint (the checkpointed rows), Revolve as Revolve counts (every reverse recomputing its
/// step: `recompute_in_reverse`), and the level-optimal schedule in `2s` levels with state 0
/// rebuilt; and the level schedule's reverse sweeps against classic Revolve's.
pub fn checkpointing(gpu: &Gpu, edge: usize, n: u64) -> Result<Vec<Row>, Error> {
    let (problem, observed) = shot(gpu, edge, n as usize + 1)?;
    let options = RevolverOptions::default();
    let classic = RevolverOptions {
        recompute_in_reverse: true,
        ..options.clone()
    };
    let (store_all, base) = run(gpu, &problem, &observed, StoreAll::new(n)?, &options)?;
    let case = format!("{edge}² order 4, n = {n}");
    let mut rows = vec![Row::new(
        "checkpointing",
        &case,
        "store-all wall",
        store_all,
        "s",
    )];
    let evaluations = |r: &RunStats| (r.forward_steps + r.reverse_steps) as f64;
    for s in [5u64, 10, 20, 50] {
        let (t, stats) = run(gpu, &problem, &observed, Revolve::new(n, s)?, &options)?;
        let (t_classic, classic_stats) =
            run(gpu, &problem, &observed, Revolve::new(n, s)?, &classic)?;
        let levels = LevelOptimal::from_rest(n, 2 * s, 2)?;
        let (t_levels, level_stats) = run(gpu, &problem, &observed, levels, &options)?;
        let ratio = |what: &str, value: f64| {
            Row::new(
                "checkpointing",
                &case,
                &format!("s = {s}: {what}"),
                value,
                "ratio",
            )
        };
        rows.extend([
            ratio("checkpointed / store-all", t / store_all),
            ratio(
                "evaluations ratio",
                evaluations(&stats) / evaluations(&base),
            ),
            ratio("classic Revolve / store-all", t_classic / store_all),
            ratio("levels (2s) / store-all", t_levels / store_all),
            ratio(
                "levels / classic reverse sweeps",
                level_stats.reverse_seconds / classic_stats.reverse_seconds,
            ),
        ]);
    }
    Ok(rows)
}

/// All on the GPU, half the checkpoints spilled with transfers overlapped, and blocking.
pub fn spilling(gpu: &Gpu, edge: usize, n: u64) -> Result<Vec<Row>, Error> {
    const SNAPS: u64 = 20;
    let (problem, observed) = shot(gpu, edge, n as usize + 1)?;
    let state = 2 * problem.level_bytes();
    let half = |host_buffers, overlap_transfers| RevolverOptions {
        device_budget: Some(SNAPS / 2 * state),
        host_buffers,
        overlap_transfers,
        ..RevolverOptions::default()
    };
    let configs = [
        RevolverOptions::default(),
        half(true, true),
        half(false, true),
        half(false, false),
    ];
    // Interleaved, medians of 3, so drift hits every configuration alike.
    let mut times = [vec![], vec![], vec![], vec![]];
    let mut spilled = RunStats::default();
    for _ in 0..3 {
        for (i, (t, options)) in times.iter_mut().zip(&configs).enumerate() {
            let (seconds, stats) = run(gpu, &problem, &observed, Revolve::new(n, SNAPS)?, options)?;
            t.push(seconds);
            if i == 2 {
                spilled = stats;
            }
        }
    }
    let [all, host_buffers, overlapped, blocking] = times.map(|mut t| {
        t.sort_by(f64::total_cmp);
        t[1]
    });
    let case = format!("{edge}² order 4, n = {n}, s = {SNAPS}, 10 on the GPU");
    let mut rows = vec![
        Row::new("spilling", &case, "all on GPU wall", all, "s"),
        Row::new(
            "spilling",
            &case,
            if gpu.has_host_buffers() {
                "half spilled, host buffers / all on GPU"
            } else {
                "half spilled, host buffers (none: staging) / all on GPU"
            },
            host_buffers / all,
            "ratio",
        ),
        Row::new(
            "spilling",
            &case,
            "half spilled, staging overlapped / all on GPU",
            overlapped / all,
            "ratio",
        ),
        Row::new(
            "spilling",
            &case,
            "half spilled, staging blocking / all on GPU",
            blocking / all,
            "ratio",
        ),
        Row::new(
            "spilling",
            &case,
            "host saves + restores",
            (spilled.tier(Tier::HOST).saves + spilled.tier(Tier::HOST).restores) as f64,
            "count",
        ),
        Row::new(
            "spilling",
            &case,
            "host bytes moved (one run)",
            (spilled.total(|t| t.bytes_out) + spilled.total(|t| t.bytes_in)) as f64,
            "B",
        ),
        Row::new(
            "spilling",
            &case,
            "restores prefetched (staging)",
            spilled.tier(Tier::HOST).reads_ahead as f64,
            "count",
        ),
    ];
    // What overlapping hid of the blocking cost; only meaningful when blocking costs something.
    if blocking > 1.02 * all {
        rows.push(Row::new(
            "spilling",
            &case,
            "hidden fraction (staging)",
            (blocking - overlapped) / (blocking - all),
            "ratio",
        ));
    }
    Ok(rows)
}

/// The launch-bound floor: host time to encode and submit a step at a grid so small the GPU is
/// idle, dispatches, submissions, bind groups and buffers a step, against a trivial dispatch
/// (an empty kernel, no bindings) encoded and submitted the same way.
pub fn host_cost(gpu: &Gpu, reps: usize) -> Result<Vec<Row>, Error> {
    let p = problem(&[16, 16], 8, reps + 2)?;
    let acoustic = GpuAcoustic::new(gpu, &p)?;
    let field = || acoustic.level("u");
    let mut u = [field()?, field()?, field()?];
    let per_submit = gpurevolve::engine::DEFAULT_STEPS_PER_SUBMIT;
    let encoder = || gpu.device().create_command_encoder(&Default::default());
    // Times encoding and submission of `reps` entries, apart from the GPU's work.
    let timed = |encode_one: &mut dyn FnMut(&mut wgpu::CommandEncoder, usize)| -> Result<(f64, f64), Error> {
        let (mut encode, mut submit) = (0.0, 0.0);
        let mut current = encoder();
        for k in 0..reps {
            let start = Instant::now();
            encode_one(&mut current, k);
            encode += start.elapsed().as_secs_f64();
            if (k + 1) % per_submit == 0 || k + 1 == reps {
                let start = Instant::now();
                gpu.submit([std::mem::replace(&mut current, encoder()).finish()]);
                submit += start.elapsed().as_secs_f64();
            }
        }
        gpu.wait()?;
        Ok((encode, submit))
    };
    let mut step = |enc: &mut wgpu::CommandEncoder, k: usize| {
        let [prev, cur, next] = &u;
        acoustic.encode_forward_step(enc, k, [prev, cur, next], true);
        u.rotate_left(1);
    };
    timed(&mut step)?; // warm: bind groups for every rotation
    let (before, dispatches) = (gpu.counters(), acoustic.dispatches());
    let (encode, submit) = timed(&mut step)?;
    let counted = gpu.counters().since(&before);
    let dispatched = acoustic.dispatches() - dispatches;
    let noop = gpu.compute_pipeline(
        "noop",
        "@compute @workgroup_size(1) fn noop() {}",
        "noop",
        &[],
    )?;
    let mut trivial_entry = |enc: &mut wgpu::CommandEncoder, _k: usize| {
        let mut pass = enc.begin_compute_pass(&Default::default());
        pass.set_pipeline(&noop);
        pass.dispatch_workgroups(1, 1, 1);
    };
    timed(&mut trivial_entry)?;
    let (trivial_encode, trivial_submit) = timed(&mut trivial_entry)?;
    let steps = reps as f64;
    let case = format!("{:?} order 8, traces recorded", p.layout().extended);
    Ok(vec![
        Row::new(
            "host cost",
            &case,
            "encode per step",
            1e6 * encode / steps,
            "µs",
        ),
        Row::new(
            "host cost",
            &case,
            "submit per step",
            1e6 * submit / steps,
            "µs",
        ),
        Row::new(
            "host cost",
            &case,
            "encode + submit / trivial dispatch",
            (encode + submit) / (trivial_encode + trivial_submit),
            "ratio",
        ),
        Row::new(
            "host cost",
            &case,
            "dispatches per step",
            dispatched as f64 / steps,
            "count",
        ),
        Row::new(
            "host cost",
            &case,
            "submissions per step",
            counted.submissions as f64 / steps,
            "count",
        ),
        Row::new(
            "host cost",
            &case,
            "bind groups made per step",
            counted.bind_groups as f64 / steps,
            "count",
        ),
        Row::new(
            "host cost",
            &case,
            "buffers made per step",
            counted.buffers as f64 / steps,
            "count",
        ),
    ])
}

/// Forward-step throughput for each workgroup shape of the step kernel (a device opened per
/// shape, since the shape is a `GpuOptions` knob), and the best.
pub fn workgroup_sweep(
    shape: &[usize],
    candidates: &[[u32; 3]],
    reps: usize,
) -> Result<Vec<Row>, Error> {
    let p = problem(shape, 8, reps + 2)?;
    let points = p.layout().extended_len() as f64;
    let case = format!("{shape:?} order 8, forward step");
    let mut rows = Vec::new();
    let mut best: Option<([u32; 3], f64)> = None;
    for &wg in candidates {
        let mut options = gpurevolve::gpu::GpuOptions::default();
        if shape.len() == 3 {
            options.kernels.step_workgroup_3d = wg;
        } else {
            options.kernels.step_workgroup_2d = wg;
        }
        let gpu = match Gpu::with_options(&options) {
            Ok(gpu) => gpu,
            // A shape this device cannot run is reported and skipped.
            Err(Error::InvalidArgument { reason, .. }) => {
                eprintln!("workgroup {wg:?}: {reason}");
                continue;
            }
            Err(e) => return Err(e),
        };
        let acoustic = GpuAcoustic::new(&gpu, &p)?;
        let rate = points / forward_step_seconds(&gpu, &acoustic, reps)? / 1e9;
        rows.push(Row::new(
            "tuning",
            &case,
            &format!("workgroup {wg:?}"),
            rate,
            "Gpoints/s",
        ));
        if best.is_none_or(|(_, r)| rate > r) {
            best = Some((wg, rate));
        }
    }
    if let Some((wg, rate)) = best {
        let default = if shape.len() == 3 {
            gpurevolve::gpu::GpuOptions::default()
                .kernels
                .step_workgroup_3d
        } else {
            gpurevolve::gpu::GpuOptions::default()
                .kernels
                .step_workgroup_2d
        };
        rows.push(Row::new(
            "tuning",
            &case,
            &format!("best: workgroup {wg:?} (default {default:?})"),
            rate,
            "Gpoints/s",
        ));
    }
    Ok(rows)
}

/// The CPML's forward step against the sponge's, for each way of dispatching the CPML's kernels
/// (`KernelOptions::cpml_dispatch`, a device opened per way): on the main job's grid (200 × 70
/// cells of 15 m, a 20-cell layer; the cost target's case) and on `shapes` with an 8-cell layer.
pub fn cpml_sweep(shapes: &[&[usize]], reps: usize) -> Result<Vec<Row>, Error> {
    let main_grid = |kind| -> Result<Problem, Error> {
        let model = Model::constant(&[200, 70], 15.0, 20, 2000.0)?;
        let e = model.extent();
        let geometry = Geometry::new(
            &model,
            vec![vec![e[0] / 2.0, 30.0]],
            vec![vec![e[0] / 3.0, 30.0]],
            10.0,
        )?;
        let time = TimeAxis::new(&model, 8, reps + 2, None)?;
        Problem::with_boundary(model, geometry, time, 8, Boundary::new(kind, 2000.0)?)
    };
    let mut cases = vec![(
        "main job grid [200, 70] order 8".to_owned(),
        [
            main_grid(BoundaryKind::Sponge)?,
            main_grid(BoundaryKind::Cpml)?,
        ],
    )];
    for shape in shapes {
        cases.push((
            format!("{shape:?} order 8, 8-cell layer"),
            [
                problem_with(shape, 8, reps + 2, BoundaryKind::Sponge)?,
                problem_with(shape, 8, reps + 2, BoundaryKind::Cpml)?,
            ],
        ));
    }
    let mut rows = Vec::new();
    for dispatch in [CpmlDispatch::ByRegion, CpmlDispatch::OneKernel] {
        let options = GpuOptions {
            kernels: KernelOptions {
                cpml_dispatch: dispatch,
                ..KernelOptions::default()
            },
            ..GpuOptions::default()
        };
        let gpu = Gpu::with_options(&options)?;
        for (case, [sponge, cpml]) in &cases {
            let time = |p: &Problem| forward_step_seconds(&gpu, &GpuAcoustic::new(&gpu, p)?, reps);
            let (plain, layered) = match (time(sponge), time(cpml)) {
                (Ok(plain), Ok(layered)) => (plain, layered),
                (Err(e), _) | (_, Err(e)) if too_large(&e) => {
                    eprintln!("{case}: does not fit on this device ({e}); skipped");
                    continue;
                }
                (Err(e), _) | (_, Err(e)) => return Err(e),
            };
            rows.push(Row::new(
                "tuning",
                case,
                &format!("forward step, CPML / sponge, {dispatch:?}"),
                layered / plain,
                "ratio",
            ));
        }
    }
    Ok(rows)
}

/// Wall time of one checkpointed shot for each `steps_per_submit`, and the best.
pub fn submit_sweep(
    gpu: &Gpu,
    edge: usize,
    n: u64,
    candidates: &[usize],
) -> Result<Vec<Row>, Error> {
    let (problem, observed) = shot(gpu, edge, n as usize + 1)?;
    let case = format!("{edge}² order 4, n = {n}, Revolve s = 20");
    let mut rows = Vec::new();
    let mut best: Option<(usize, f64)> = None;
    for &per_submit in candidates {
        let options = RevolverOptions {
            steps_per_submit: per_submit,
            ..RevolverOptions::default()
        };
        let mut t = Vec::new();
        for _ in 0..3 {
            t.push(run(gpu, &problem, &observed, Revolve::new(n, 20)?, &options)?.0);
        }
        t.sort_by(f64::total_cmp);
        rows.push(Row::new(
            "tuning",
            &case,
            &format!("steps_per_submit = {per_submit}: wall"),
            t[1],
            "s",
        ));
        if best.is_none_or(|(_, b)| t[1] < b) {
            best = Some((per_submit, t[1]));
        }
    }
    if let Some((per_submit, wall)) = best {
        let default = gpurevolve::engine::DEFAULT_STEPS_PER_SUBMIT;
        rows.push(Row::new(
            "tuning",
            &case,
            &format!("best: steps_per_submit = {per_submit} (default {default})"),
            wall,
            "s",
        ));
    }
    Ok(rows)
}
