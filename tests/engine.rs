//! The Revolver: checkpointed adjoints equal the store-all reference bit for bit, cost exactly
//! n + p(n, s) forward steps, hold at most s checkpoints and copy nothing; and a user's own
//! operator (not acoustic) is reversed correctly.

mod common;

use common::Scripted;
use gpurevolve::Error;
use gpurevolve::acoustic::BoundaryKind::{Cpml, Sponge};
use gpurevolve::acoustic::{
    AcousticOperator, Boundary, BoundaryKind, Geometry, GpuAcoustic, Model, Problem, TimeAxis,
};
use gpurevolve::engine::{Operator, Revolver, RevolverOptions, calibrate};
use gpurevolve::gpu::Gpu;
use gpurevolve::schedule::{
    Action, AnySchedule, LevelOptimal, Revolve, Schedule, StoreAll, Tier, min_advances,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn shot(
    shape: &[usize],
    order: usize,
    nt: usize,
    seed: u64,
    kind: BoundaryKind,
) -> (Problem, Vec<f64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let truth = Model::from_fn(shape, 10.0, 4, |_, _, z| {
        1800.0 + z + rng.random_range(0.0..300.0)
    })
    .unwrap();
    let start = truth.smoothed(3);
    let extent = truth.extent();
    let mut point = |frac: f64| -> Vec<f64> {
        let mut p: Vec<f64> = extent.iter().map(|e| rng.random_range(0.0..*e)).collect();
        *p.last_mut().unwrap() = extent[extent.len() - 1] * frac;
        p
    };
    let sources = vec![point(0.2)];
    let receivers: Vec<Vec<f64>> = (0..5).map(|_| point(0.8)).collect();
    let time = TimeAxis::new(&truth, order, nt, None).unwrap();
    let g = |m: &Model| Geometry::new(m, sources.clone(), receivers.clone(), 25.0).unwrap();
    let boundary = Boundary::for_models(kind, &[&truth, &start]).unwrap();
    let gpu_free_observed = {
        // Observed data from the truth, on the CPU twin (any data will do).
        let p = Problem::with_boundary(truth.clone(), g(&truth), time, order, boundary).unwrap();
        gpurevolve::acoustic::CpuTwin::new(&p)
            .forward(&p.source_series(), false)
            .unwrap()
            .traces
    };
    (
        Problem::with_boundary(start.clone(), g(&start), time, order, boundary).unwrap(),
        gpu_free_observed,
    )
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Runs the checkpointed gradient and checks it against the store-all reference.
fn check(gpu: &Gpu, problem: &Problem, observed: &[f64], schedule: AnySchedule) {
    let n = (problem.time().nt - 1) as u64;
    let reference = GpuAcoustic::new(gpu, problem)
        .unwrap()
        .gradient_store_all(observed)
        .unwrap();
    let operator = AcousticOperator::new(gpu, problem, observed).unwrap();
    let planned = Revolver::new(
        gpu,
        AcousticOperator::new(gpu, problem, observed).unwrap(),
        schedule.clone(),
        RevolverOptions::default(),
    )
    .unwrap()
    .planned_forward_steps()
    .expect("the crate's schedules plan themselves");
    let mut revolver =
        Revolver::new(gpu, operator, schedule.clone(), RevolverOptions::default()).unwrap();
    revolver.apply_forward().unwrap();
    let stats = revolver.apply_reverse().unwrap();
    let info = revolver.operator().finish().unwrap();
    let label = format!(
        "{schedule:?}, order {}, {}D",
        problem.space_order(),
        problem.model().dim()
    );
    assert!(
        reference.gradient.iter().any(|g| *g != 0.0),
        "{label}: zero gradient"
    );
    assert_eq!(
        bits(&info.gradient),
        bits(&reference.gradient),
        "{label}: gradient bits"
    );
    assert_eq!(
        info.misfit.to_bits(),
        reference.misfit.to_bits(),
        "{label}: misfit bits"
    );
    assert_eq!(
        bits(&info.traces),
        bits(&reference.traces),
        "{label}: trace bits"
    );
    assert_eq!(stats.forward_steps, planned, "{label}");
    assert_eq!(stats.reverse_steps, n);
    if schedule.level_budget().is_some_and(|b| b.joins) {
        assert!(stats.joins > 0, "{label}: no state joined");
    }
    if let AnySchedule::Revolve(r) = &schedule {
        let s = r.snaps();
        assert_eq!(
            stats.forward_steps,
            min_advances(n, s).unwrap() + 1,
            "{label}: the acoustic adjoint needs only its state, so p + 1, not n + p"
        );
        assert!(
            stats.peak_slots as u64 <= s,
            "{label}: {} slots held",
            stats.peak_slots
        );
    }
    assert_eq!(stats.bytes_copied, 0);
    // Levels: 2 per checkpoint at most, sharing allowed; never more than the pool bound.
    let level = problem.level_bytes();
    if let Some(budget) = schedule.level_budget() {
        // The store keeps level buffers, so consecutive checkpoints share one: the bytes held
        // are the level schedule's budget at most.
        assert!(
            stats.peak_checkpoint_bytes <= budget.levels * level,
            "{label}: {} bytes held, {} levels of {level} allowed",
            stats.peak_checkpoint_bytes,
            budget.levels
        );
    }
    assert!(stats.peak_checkpoint_bytes <= 2 * stats.peak_slots as u64 * level);
    assert!(
        stats.device_bytes <= (2 * (stats.peak_slots as u64 + 1) + 1) * level,
        "{label}: {stats:?}"
    );
}

#[test]
fn checkpointed_gradient_is_the_store_all_gradient_2d() {
    let Some(gpu) = common::gpu() else { return };
    let cases = [(2, Sponge), (4, Cpml), (8, Sponge), (8, Cpml)];
    for (i, (order, kind)) in cases.into_iter().enumerate() {
        let (problem, observed) = shot(&[36, 30], order, 61, i as u64, kind);
        let n = 60;
        for s in [1, 2, 5, n - 1, n] {
            check(
                &gpu,
                &problem,
                &observed,
                AnySchedule::Revolve(Revolve::new(n, s).unwrap()),
            );
        }
        check(
            &gpu,
            &problem,
            &observed,
            AnySchedule::StoreAll(StoreAll::new(n).unwrap()),
        );
        for levels in [2, 3, 5, 8, 20, 61] {
            check(
                &gpu,
                &problem,
                &observed,
                AnySchedule::Levels(LevelOptimal::new(n, levels, 2).unwrap()),
            );
        }
        // State 0 rebuilt, not held: all the levels go to the other states.
        for levels in [0, 1, 2, 7] {
            check(
                &gpu,
                &problem,
                &observed,
                AnySchedule::Levels(LevelOptimal::from_rest(n, levels, 2).unwrap()),
            );
        }
        // Joins: states made of the reversed state's levels and one held level, never run.
        for (levels, from_rest) in [(2, false), (5, false), (8, false), (1, true), (6, true)] {
            let plan = if from_rest {
                LevelOptimal::from_rest(n, levels, 2)
            } else {
                LevelOptimal::new(n, levels, 2)
            };
            let joined = plan.unwrap().with_joins();
            assert!(joined.joins());
            check(&gpu, &problem, &observed, AnySchedule::Levels(joined));
        }
    }
}

#[test]
fn checkpointed_gradient_is_the_store_all_gradient_3d() {
    let Some(gpu) = common::gpu() else { return };
    for (i, (order, kind)) in [(2, Sponge), (4, Cpml), (8, Sponge)]
        .into_iter()
        .enumerate()
    {
        let (problem, observed) = shot(&[12, 10, 11], order, 31, 10 + i as u64, kind);
        for s in [1, 3, 30] {
            check(
                &gpu,
                &problem,
                &observed,
                AnySchedule::Revolve(Revolve::new(30, s).unwrap()),
            );
        }
        check(
            &gpu,
            &problem,
            &observed,
            AnySchedule::Levels(LevelOptimal::new(30, 7, 2).unwrap()),
        );
        check(
            &gpu,
            &problem,
            &observed,
            AnySchedule::Levels(LevelOptimal::new(30, 7, 2).unwrap().with_joins()),
        );
    }
}

#[test]
fn wrong_schedules_are_refused_before_the_wrong_action_runs() {
    let Some(gpu) = common::gpu() else { return };
    let (problem, observed) = shot(&[20, 20], 2, 11, 3, Sponge);
    let op = || AcousticOperator::new(&gpu, &problem, &observed).unwrap();
    let err = Revolver::new(
        &gpu,
        op(),
        Revolve::new(7, 2).unwrap(),
        RevolverOptions::default(),
    )
    .err()
    .unwrap();
    assert!(
        matches!(
            err,
            Error::InvalidArgument {
                name: "schedule",
                ..
            }
        ),
        "{err}"
    );
    // Joins planned for three levels a state, on an operator of two: refused before it runs
    // (a join would take the wrong level).
    let three = LevelOptimal::new(10, 9, 3).unwrap().with_joins();
    assert!(three.joins());
    let err = Revolver::new(&gpu, op(), three, RevolverOptions::default())
        .err()
        .unwrap();
    assert!(
        matches!(&err, Error::InvalidArgument { name: "schedule", reason } if reason.contains("levels a state")),
        "{err}"
    );
    // Revolve with one action dropped (the save of state 7): the schedule is read once, so
    // the checker refuses it at the first action that needs the missing one, before that
    // action runs: the restore of state 7 from the slot never filled.
    let mut actions: Vec<Action> = Revolve::new(10, 3).unwrap().collect();
    assert_eq!(actions.remove(4), Action::Save { step: 7, slot: 2 });
    let bad = Scripted(actions.into_iter(), 10, 3);
    let mut revolver = Revolver::new(&gpu, op(), bad, RevolverOptions::default()).unwrap();
    let err = revolver.apply_reverse().unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidSchedule {
                index: 6,
                action: Some(Action::Restore { step: 7, slot: 2 }),
                ..
            }
        ),
        "{err}"
    );
    // Nothing past the wrong action ran: one reverse (step 9), no restore.
    let stats = revolver.stats();
    assert_eq!((stats.reverse_steps, stats.restores), (1, 0));
}

// ---- a user's own operator: nonlinear 1D heat, its WGSL in tests/shaders ----

const HEAT: &str = include_str!("shaders/heat1d.wgsl");
const N: usize = 200;
const ALPHA: f64 = 0.3;
const BETA: f64 = 0.5;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct HeatParams {
    alpha: f32,
    beta: f32,
    n: u32,
    _pad: u32,
}

struct Heat<'g> {
    gpu: &'g Gpu,
    steps: u64,
    initial: Vec<f32>,
    forward: wgpu::ComputePipeline,
    seed: wgpu::ComputePipeline,
    adjoint: wgpu::ComputePipeline,
    params: wgpu::Buffer,
    target: wgpu::Buffer,
    /// λ_{k+1} before the adjoint of step k; `lam[1]` is written.
    lam: [wgpu::Buffer; 2],
    /// Test of the error path: bind `lam_in` to `forward`, whose derived layout lacks it.
    broken: bool,
}

impl<'g> Heat<'g> {
    fn new(gpu: &'g Gpu, steps: u64, initial: Vec<f32>, target: &[f32]) -> Self {
        let pipeline = |entry| gpu.compute_pipeline("heat", HEAT, entry, &[]).unwrap();
        let usage = wgpu::BufferUsages::STORAGE;
        let params = HeatParams {
            alpha: ALPHA as f32,
            beta: BETA as f32,
            n: N as u32,
            _pad: 0,
        };
        Heat {
            gpu,
            steps,
            initial,
            forward: pipeline("forward"),
            seed: pipeline("seed"),
            adjoint: pipeline("adjoint"),
            params: gpu
                .upload("params", &[params], wgpu::BufferUsages::UNIFORM)
                .unwrap(),
            target: gpu.upload("target", target, usage).unwrap(),
            lam: [
                gpu.upload("lam", &[0f32; N], usage).unwrap(),
                gpu.upload("lam", &[0f32; N], usage).unwrap(),
            ],
            broken: false,
        }
    }

    /// One kernel over the grid; `lam_in` is `None` for `forward`, whose layout (derived from
    /// the shader) has no binding 2.
    fn dispatch(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        u: &wgpu::Buffer,
        lam_in: Option<&wgpu::Buffer>,
        out: &wgpu::Buffer,
    ) {
        let mut entries = vec![
            wgpu::BindGroupEntry {
                binding: 0,
                resource: self.params.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: u.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 3,
                resource: out.as_entire_binding(),
            },
        ];
        if let Some(lam_in) = lam_in {
            entries.push(wgpu::BindGroupEntry {
                binding: 2,
                resource: lam_in.as_entire_binding(),
            });
        }
        let bg = self
            .gpu
            .device()
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &pipeline.get_bind_group_layout(0),
                entries: &entries,
            });
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bg, &[]);
        pass.dispatch_workgroups((N as u32).div_ceil(64), 1, 1);
    }
}

impl Operator for Heat<'_> {
    fn levels(&self) -> usize {
        1
    }
    fn level_bytes(&self) -> u64 {
        (N * 4) as u64
    }
    fn steps(&self) -> u64 {
        self.steps
    }
    fn initialize(&mut self, gpu: &Gpu, state: &[&wgpu::Buffer]) -> gpurevolve::Result<()> {
        gpu.write(state[0], &self.initial)
    }
    fn encode_forward(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        _k: u64,
        state: &[&wgpu::Buffer],
        next: &wgpu::Buffer,
        _record: bool,
    ) -> gpurevolve::Result<()> {
        let lam_in = self.broken.then_some(&self.target);
        self.dispatch(encoder, &self.forward, state[0], lam_in, next);
        Ok(())
    }
    fn encode_adjoint(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        k: u64,
        state: &[&wgpu::Buffer],
        next: Option<&wgpu::Buffer>,
    ) -> gpurevolve::Result<()> {
        // This adjoint needs u_{k+1} (the trait's default): the engine always recomputes it.
        let next = next.expect("the engine passes u_(k+1) to an adjoint that needs it");
        if k + 1 == self.steps {
            // λ_n = u_n − target, from the step's output.
            self.dispatch(encoder, &self.seed, next, Some(&self.target), &self.lam[0]);
        }
        self.dispatch(
            encoder,
            &self.adjoint,
            state[0],
            Some(&self.lam[0]),
            &self.lam[1],
        );
        self.lam.swap(0, 1);
        Ok(())
    }
}

/// The gradient of J = ½|u_n − target|² with respect to u_0, in float64 on the CPU.
fn heat_gradient_cpu(initial: &[f32], target: &[f32], steps: usize) -> Vec<f64> {
    let step = |u: &[f64]| -> Vec<f64> {
        (0..N)
            .map(|i| {
                if i == 0 || i + 1 == N {
                    0.0
                } else {
                    u[i] + ALPHA * (u[i - 1] - 2.0 * u[i] + u[i + 1]) - BETA * u[i].powi(3)
                }
            })
            .collect()
    };
    let mut states = vec![initial.iter().map(|&x| x as f64).collect::<Vec<_>>()];
    for k in 0..steps {
        let next = step(&states[k]);
        states.push(next);
    }
    let mut lam: Vec<f64> = (0..N)
        .map(|i| {
            if i == 0 || i + 1 == N {
                0.0
            } else {
                states[steps][i] - target[i] as f64
            }
        })
        .collect();
    for k in (0..steps).rev() {
        let u = &states[k];
        lam = (0..N)
            .map(|i| {
                if i == 0 || i + 1 == N {
                    0.0
                } else {
                    lam[i] + ALPHA * (lam[i - 1] - 2.0 * lam[i] + lam[i + 1])
                        - 3.0 * BETA * u[i] * u[i] * lam[i]
                }
            })
            .collect();
    }
    lam
}

#[test]
fn a_users_own_operator_is_reversed_correctly() {
    let Some(gpu) = common::gpu() else { return };
    let mut rng = StdRng::seed_from_u64(21);
    let initial: Vec<f32> = (0..N)
        .map(|i| {
            if i == 0 || i + 1 == N {
                0.0
            } else {
                rng.random_range(-1.0..1.0)
            }
        })
        .collect();
    let target: Vec<f32> = (0..N).map(|_| rng.random_range(-0.2..0.2)).collect();
    let steps = 80u64;
    let want = heat_gradient_cpu(&initial, &target, steps as usize);
    let mut results = Vec::new();
    for schedule in [
        AnySchedule::Revolve(Revolve::new(steps, 3).unwrap()),
        AnySchedule::StoreAll(StoreAll::new(steps).unwrap()),
    ] {
        let heat = Heat::new(&gpu, steps, initial.clone(), &target);
        let mut revolver = Revolver::new(
            &gpu,
            heat,
            schedule,
            RevolverOptions {
                steps_per_submit: 7,
                ..RevolverOptions::default()
            },
        )
        .unwrap();
        let stats = revolver.apply_reverse().unwrap();
        assert_eq!(stats.reverse_steps, steps);
        let heat = revolver.into_operator();
        let got: Vec<f32> = gpu.read_back(&heat.lam[0]).unwrap();
        results.push(got.clone());
        let got: Vec<f64> = got.iter().map(|&x| x as f64).collect();
        let err: f64 = got
            .iter()
            .zip(&want)
            .map(|(g, w)| (g - w).powi(2))
            .sum::<f64>()
            .sqrt();
        let norm: f64 = want.iter().map(|w| w * w).sum::<f64>().sqrt();
        assert!(
            norm > 0.0 && err / norm <= 1e-5,
            "relative error {}",
            err / norm
        );
    }
    assert_eq!(
        results[0], results[1],
        "Revolve and store-all must agree bit for bit"
    );
}

#[test]
fn an_operators_encoding_error_is_typed_not_silent() {
    let Some(gpu) = common::gpu() else { return };
    let mut heat = Heat::new(&gpu, 10, vec![0.5; N], &[0.0; N]);
    heat.broken = true;
    let mut revolver = Revolver::new(
        &gpu,
        heat,
        Revolve::new(10, 2).unwrap(),
        RevolverOptions::default(),
    )
    .unwrap();
    let err = revolver.apply_reverse().unwrap_err();
    assert!(matches!(err, Error::Gpu { .. }), "{err}");
    // The error names the steps of the batch it came from; checked, one step a batch.
    assert!(err.to_string().contains("of step 0"), "{err}");
    let mut heat = Heat::new(&gpu, 10, vec![0.5; N], &[0.0; N]);
    heat.broken = true;
    let checked = RevolverOptions {
        check_state_contract: true,
        ..RevolverOptions::default()
    };
    let mut revolver = Revolver::new(&gpu, heat, Revolve::new(10, 2).unwrap(), checked).unwrap();
    let err = revolver.apply_reverse().unwrap_err();
    match &err {
        Error::Gpu { context, .. } => assert_eq!(context, "the forward of step 0", "{err}"),
        other => panic!("{other}"),
    }
}

/// The acoustic operator, plus one write into its state at step `at`: in the forward step
/// (a copy of `next` over the older level) or in the adjoint (the older level over the newer).
struct Overwriting<'g> {
    inner: AcousticOperator<'g>,
    at: u64,
    in_adjoint: bool,
}

impl Operator for Overwriting<'_> {
    fn levels(&self) -> usize {
        self.inner.levels()
    }
    fn level_bytes(&self) -> u64 {
        self.inner.level_bytes()
    }
    fn steps(&self) -> u64 {
        self.inner.steps()
    }
    fn starts_at_rest(&self) -> bool {
        self.inner.starts_at_rest()
    }
    fn adjoint_needs_next(&self) -> bool {
        self.inner.adjoint_needs_next()
    }
    fn encode_forward(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        k: u64,
        state: &[&wgpu::Buffer],
        next: &wgpu::Buffer,
        record: bool,
    ) -> gpurevolve::Result<()> {
        self.inner.encode_forward(encoder, k, state, next, record)?;
        if !self.in_adjoint && k == self.at {
            encoder.copy_buffer_to_buffer(next, 0, state[1], 0, self.level_bytes());
        }
        Ok(())
    }
    fn encode_adjoint(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        k: u64,
        state: &[&wgpu::Buffer],
        next: Option<&wgpu::Buffer>,
    ) -> gpurevolve::Result<()> {
        self.inner.encode_adjoint(encoder, k, state, next)?;
        if self.in_adjoint && k == self.at {
            encoder.copy_buffer_to_buffer(state[1], 0, state[0], 0, self.level_bytes());
        }
        Ok(())
    }
}

#[test]
fn an_operator_that_writes_its_state_is_caught_naming_the_step_and_level() {
    let Some(gpu) = common::gpu() else { return };
    let (problem, observed) = shot(&[30, 24], 4, 41, 5, Sponge);
    let checked = RevolverOptions {
        check_state_contract: true,
        ..RevolverOptions::default()
    };
    let run = |in_adjoint: bool, options: RevolverOptions| {
        let op = Overwriting {
            inner: AcousticOperator::new(&gpu, &problem, &observed).unwrap(),
            at: 25,
            in_adjoint,
        };
        let mut revolver = Revolver::new(&gpu, op, Revolve::new(40, 4).unwrap(), options).unwrap();
        revolver.apply_forward()?;
        revolver.apply_reverse()
    };
    match run(false, checked.clone()) {
        Err(Error::StateContract {
            phase: "forward",
            step: 25,
            level: 1,
        }) => {}
        other => panic!("{other:?}"),
    }
    match run(true, checked.clone()) {
        Err(
            e @ Error::StateContract {
                phase: "adjoint",
                step: 25,
                level: 0,
            },
        ) => {
            let message = e.to_string();
            assert!(message.contains("step 25") && message.contains("write only `next`"));
        }
        other => panic!("{other:?}"),
    }
    // Unchecked (the release default), the same operator runs to the end, silently wrong:
    // what the check is for.
    let unchecked = RevolverOptions {
        check_state_contract: false,
        ..RevolverOptions::default()
    };
    assert!(run(true, unchecked).is_ok());
    // And a well-behaved operator passes the check with the store-all bits.
    let reference = GpuAcoustic::new(&gpu, &problem)
        .unwrap()
        .gradient_store_all(&observed)
        .unwrap();
    let op = AcousticOperator::new(&gpu, &problem, &observed).unwrap();
    let mut revolver = Revolver::new(&gpu, op, Revolve::new(40, 4).unwrap(), checked).unwrap();
    revolver.apply_reverse().unwrap();
    let info = revolver.operator().finish().unwrap();
    assert_eq!(bits(&info.gradient), bits(&reference.gradient));
}

#[test]
fn calibration_stays_inside_the_time_loop_and_types_its_errors() {
    let Some(gpu) = common::gpu() else { return };
    // 10 steps, 50 samples asked: the steps past the source table must not run.
    let (problem, observed) = shot(&[20, 20], 2, 11, 4, Sponge);
    let mut op = AcousticOperator::new(&gpu, &problem, &observed).unwrap();
    let scope = gpu.device().push_error_scope(wgpu::ErrorFilter::Validation);
    let costs = calibrate(&gpu, &mut op, 50).unwrap();
    let leaked = pollster::block_on(scope.pop());
    assert!(
        leaked.is_none(),
        "calibration encoded an invalid step: {leaked:?}"
    );
    for c in [
        costs.forward,
        costs.tier(Tier::HOST).write,
        costs.tier(Tier::HOST).read,
    ] {
        assert!(c.is_finite() && c > 0.0, "{costs:?}");
    }
    // An operator whose commands are invalid: a typed error, not a logged one.
    let mut heat = Heat::new(&gpu, 10, vec![0.5; N], &[0.0; N]);
    heat.broken = true;
    let err = calibrate(&gpu, &mut heat, 3).unwrap_err();
    assert!(matches!(err, Error::Gpu { .. }), "{err}");
}
