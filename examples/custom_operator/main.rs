//! Your own GPU time stepper behind `Operator`: the way in for codes that are not acoustic.
//!
//! A two-dimensional diffusion `u⁺ = u + α ∇·(κ∇u)` with its own WGSL (`diffusion.wgsl`, next to
//! this file), written only against gpurevolve's public API. The misfit is `J = ⟨u_n, y⟩`; the
//! adjoint gives `∂J/∂u₀` (checked by a dot-product test) and `∂J/∂κ` (checked by central
//! differences), reversed by the `Revolver` under Revolve with only a few states' worth of GPU
//! memory, the other checkpoints spilled to host memory; the checkpointed gradient must equal
//! the store-all one bit for bit.
//!
//! ```text
//! cargo run --release --example custom_operator
//! ```

#[path = "../common/runtime_dir.rs"]
mod runtime_dir;

use std::process::ExitCode;

use bytemuck::{Pod, Zeroable};
use gpurevolve::engine::{Operator, Revolver, RevolverOptions, RunStats};
use gpurevolve::gpu::{BindGroupCache, Dispatch1d, Gpu, STATE_USAGE, dispatch_1d};
use gpurevolve::schedule::{Revolve, Schedule, StoreAll, Tier};

const SHADER: &str = include_str!("diffusion.wgsl");
/// Invocations per workgroup: the shader's `WORKGROUP_SIZE`, and the dispatch counts.
const WORKGROUP: u32 = 256;
const NX: usize = 96;
const NZ: usize = 64;
const STEPS: u64 = 300;
const SNAPS: u64 = 12;
/// The explicit step is stable for α·κ·4 < ½: κ ≤ 1.5 here.
const ALPHA: f32 = 0.06;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    nx: u32,
    nz: u32,
    alpha: f32,
    row: u32,
}

/// What a bind group binds: the step kernel's input and output, or the gradient's state and
/// adjoint.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Bound {
    Step(wgpu::Buffer, wgpu::Buffer),
    Gradient(wgpu::Buffer, wgpu::Buffer),
}

/// The stepper: one time level a state; the adjoint `λ` and `∂J/∂κ` live inside.
struct Diffusion<'g> {
    gpu: &'g Gpu,
    initial: Vec<f32>,
    step: wgpu::ComputePipeline,
    gradient: wgpu::ComputePipeline,
    params: wgpu::Buffer,
    kappa: wgpu::Buffer,
    /// `λ_{k+1}` in `lambda[0]` before the adjoint of step `k`; it starts as `y`.
    lambda: [wgpu::Buffer; 2],
    grad: wgpu::Buffer,
    dispatch: Dispatch1d,
    bind_groups: BindGroupCache<Bound>,
}

impl<'g> Diffusion<'g> {
    fn new(
        gpu: &'g Gpu,
        kappa: &[f32],
        initial: &[f32],
        target: &[f32],
    ) -> gpurevolve::Result<Self> {
        let cells = (NX * NZ) as u64;
        let limits = gpu.limits();
        let dispatch = dispatch_1d(
            cells,
            WORKGROUP,
            limits.max_compute_workgroups_per_dimension,
        )?;
        let constants = [("WORKGROUP_SIZE", f64::from(WORKGROUP))];
        let params = Params {
            nx: NX as u32,
            nz: NZ as u32,
            alpha: ALPHA,
            row: dispatch.row,
        };
        // STORAGE to bind them; `upload` adds COPY_DST to fill them and COPY_SRC to read back.
        let storage = wgpu::BufferUsages::STORAGE;
        Ok(Self {
            gpu,
            initial: initial.to_vec(),
            step: gpu.compute_pipeline("diffusion step", SHADER, "step", &constants)?,
            gradient: gpu.compute_pipeline("diffusion gradient", SHADER, "gradient", &constants)?,
            params: gpu.upload("params", &[params], wgpu::BufferUsages::UNIFORM)?,
            kappa: gpu.upload("kappa", kappa, storage)?,
            lambda: [
                gpu.upload("lambda", target, storage)?,
                gpu.upload("lambda", target, storage)?,
            ],
            grad: gpu.upload("dJ/dkappa", &vec![0f32; NX * NZ], storage)?,
            dispatch,
            bind_groups: BindGroupCache::new(64),
        })
    }

    /// `dst ← src + α A(κ) src`: a forward step, or (A being symmetric) an adjoint one.
    fn encode_step(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        dst: &wgpu::Buffer,
    ) {
        let group = self
            .bind_groups
            .get_or_create(Bound::Step(src.clone(), dst.clone()), || {
                let layout = self.step.get_bind_group_layout(0);
                let entries = [
                    (0, self.params.as_entire_binding()),
                    (1, self.kappa.as_entire_binding()),
                    (2, src.as_entire_binding()),
                    (3, dst.as_entire_binding()),
                ];
                self.gpu.bind_group("diffusion step", &layout, &entries)
            });
        self.dispatch(encoder, &self.step, &group);
    }

    fn dispatch(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        group: &wgpu::BindGroup,
    ) {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, group, &[]);
        let [x, y, z] = self.dispatch.groups;
        pass.dispatch_workgroups(x, y, z);
    }
}

impl Operator for Diffusion<'_> {
    fn levels(&self) -> usize {
        1
    }

    fn level_bytes(&self) -> u64 {
        (NX * NZ * 4) as u64
    }

    fn steps(&self) -> u64 {
        STEPS
    }

    /// The adjoint reads state `k` alone: a reverse recomputes nothing (Revolve's `p + 1`
    /// forward steps instead of `n + p`).
    fn adjoint_needs_next(&self) -> bool {
        false
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
        self.encode_step(encoder, state[0], next);
        Ok(())
    }

    /// With `λ_{k+1}` in `lambda[0]`: `∂J/∂κ += α ∂(λ_{k+1}ᵀ A u_k)/∂κ`, then
    /// `λ_k = λ_{k+1} + α A λ_{k+1}`. Only state `k` is read; `next` is not needed here.
    fn encode_adjoint(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        _k: u64,
        state: &[&wgpu::Buffer],
        _next: Option<&wgpu::Buffer>,
    ) -> gpurevolve::Result<()> {
        let (u, lambda) = (state[0], &self.lambda[0]);
        let group =
            self.bind_groups
                .get_or_create(Bound::Gradient(u.clone(), lambda.clone()), || {
                    let layout = self.gradient.get_bind_group_layout(0);
                    let entries = [
                        (0, self.params.as_entire_binding()),
                        (4, u.as_entire_binding()),
                        (5, lambda.as_entire_binding()),
                        (6, self.grad.as_entire_binding()),
                    ];
                    self.gpu.bind_group("diffusion gradient", &layout, &entries)
                });
        self.dispatch(encoder, &self.gradient, &group);
        self.encode_step(encoder, &self.lambda[0], &self.lambda[1]);
        self.lambda.swap(0, 1);
        Ok(())
    }
}

/// Deterministic values in `[lo, hi)`.
fn random(n: usize, lo: f32, hi: f32, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            lo + (hi - lo) * (s >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum()
}

/// `u_n` from `initial` under `kappa`, stepping the operator directly (no schedule).
fn forward(
    gpu: &Gpu,
    kappa: &[f32],
    initial: &[f32],
    target: &[f32],
) -> gpurevolve::Result<Vec<f32>> {
    let mut op = Diffusion::new(gpu, kappa, initial, target)?;
    let bytes = op.level_bytes();
    let mut u = [
        gpu.create_buffer("u", bytes, STATE_USAGE)?,
        gpu.create_buffer("u", bytes, STATE_USAGE)?,
    ];
    op.initialize(gpu, &[&u[0]])?;
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    for k in 0..STEPS {
        op.encode_forward(&mut encoder, k, &[&u[0]], &u[1], true)?;
        u.swap(0, 1);
    }
    gpu.submit([encoder.finish()]);
    gpu.read_back(&u[0])
}

/// `∂J/∂u₀`, `∂J/∂κ` and the run's statistics under `schedule`, with GPU memory for
/// `device_states` checkpoints.
fn gradients(
    gpu: &Gpu,
    kappa: &[f32],
    initial: &[f32],
    target: &[f32],
    schedule: impl Schedule,
    device_states: u64,
) -> gpurevolve::Result<(Vec<f32>, Vec<f32>, RunStats)> {
    let op = Diffusion::new(gpu, kappa, initial, target)?;
    let options = RevolverOptions {
        device_budget: Some(device_states * op.level_bytes()),
        ..RevolverOptions::default()
    };
    let mut revolver = Revolver::new(gpu, op, schedule, options)?;
    revolver.apply_forward()?;
    let stats = revolver.apply_reverse()?;
    let op = revolver.into_operator();
    Ok((
        gpu.read_back(&op.lambda[0])?,
        gpu.read_back(&op.grad)?,
        stats,
    ))
}

fn run() -> Result<(), String> {
    let err = |e: gpurevolve::Error| e.to_string();
    let gpu = Gpu::new().map_err(err)?;
    let n = NX * NZ;
    let kappa = random(n, 0.5, 1.5, 1);
    let x = random(n, -1.0, 1.0, 2);
    let y = random(n, -1.0, 1.0, 3);

    let (d_x, d_kappa, stats) = gradients(
        &gpu,
        &kappa,
        &x,
        &y,
        Revolve::new(STEPS, SNAPS).map_err(err)?,
        4,
    )
    .map_err(err)?;
    let (all_x, all_kappa, _) = gradients(
        &gpu,
        &kappa,
        &x,
        &y,
        StoreAll::new(STEPS).map_err(err)?,
        STEPS,
    )
    .map_err(err)?;
    let same = d_x
        .iter()
        .chain(&d_kappa)
        .map(|v| v.to_bits())
        .eq(all_x.iter().chain(&all_kappa).map(|v| v.to_bits()));

    // Dot-product test: J is linear in u₀, so ⟨u_n(x), y⟩ = ⟨x, ∂J/∂u₀⟩.
    let u_n = forward(&gpu, &kappa, &x, &y).map_err(err)?;
    let (lhs, rhs) = (dot(&u_n, &y), dot(&x, &d_x));
    let dot_error = (lhs - rhs).abs() / lhs.abs().max(rhs.abs());

    // ∂J/∂κ against central differences along a random direction.
    let direction = random(n, -0.1, 0.1, 4);
    let h = 0.05f32;
    let shifted = |s: f32| -> gpurevolve::Result<f64> {
        let k: Vec<f32> = kappa
            .iter()
            .zip(&direction)
            .map(|(k, d)| k + s * h * d)
            .collect();
        Ok(dot(&forward(&gpu, &k, &x, &y)?, &y))
    };
    let fd = (shifted(1.0).map_err(err)? - shifted(-1.0).map_err(err)?) / (2.0 * f64::from(h));
    let adjoint = dot(&d_kappa, &direction);
    let fd_error = (fd - adjoint).abs() / fd.abs().max(adjoint.abs());

    println!(
        "custom operator: 2D diffusion {NX} × {NZ}, {STEPS} steps, Revolve with {SNAPS} snapshots, 4 on the GPU"
    );
    println!("adapter                      {}", gpu.adapter_info().name);
    println!(
        "forward steps                {} (state-only adjoint: advances {} + 1; Revolve's model {})",
        stats.forward_steps,
        stats.advances,
        STEPS + stats.advances
    );
    println!(
        "checkpoints to host / back   {} / {} ({} prefetched)",
        stats.tier(Tier::HOST).saves,
        stats.tier(Tier::HOST).restores,
        stats.tier(Tier::HOST).reads_ahead
    );
    println!("bytes copied between tiers   {}", stats.bytes_copied);
    println!("dot-product test             {dot_error:.2e}  (⟨u_n, y⟩ = {lhs:.6e})");
    println!("dJ/dκ vs central differences {fd_error:.2e}  ({adjoint:.6e} vs {fd:.6e})");
    println!(
        "equal to store-all           {}",
        if same { "bit for bit" } else { "NO" }
    );
    if !same {
        return Err("the checkpointed gradients differ from the store-all ones".into());
    }
    // float32 kernels, float64 sums: the dot test holds to 1e-5; the differences of a
    // float32 misfit with h = 0.05 to about 1e-3.
    if dot_error > 1e-5 || fd_error > 1e-2 {
        return Err(format!(
            "the adjoint is wrong: dot test {dot_error:.2e}, gradient {fd_error:.2e}"
        ));
    }
    Ok(())
}

fn main() -> ExitCode {
    runtime_dir::set_if_missing();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}
