//! Compute pipelines, compiled once per device: a cache keyed by the shader's text, its entry
//! point, its override constants and its bind-group layout, so a second shot (or a second
//! kernel family using the same shader) compiles nothing.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::error::{Error, Result};

/// What makes two pipelines the same. The shader's text itself is part of the key (not its
/// address), so a caller's temporary string can never alias another shader.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PipelineKey {
    source: String,
    entry_point: String,
    /// Constant names with their values' bits.
    constants: Vec<(String, u64)>,
    /// The explicit bind-group layout; `None` when it is derived from the shader.
    layout: Option<Vec<wgpu::BindGroupLayoutEntry>>,
}

/// The compiled pipelines of one device.
#[derive(Debug, Default)]
pub(super) struct PipelineCache {
    pipelines: Mutex<HashMap<PipelineKey, wgpu::ComputePipeline>>,
}

impl PipelineCache {
    /// The pipeline of `entry_point` in `source` with these constants and layout, compiled on
    /// `device` the first time, and whether this call compiled it (for the device's counters).
    pub(super) fn get(
        &self,
        device: &wgpu::Device,
        label: &str,
        source: &str,
        entry_point: &str,
        constants: &[(&str, f64)],
        entries: Option<&[wgpu::BindGroupLayoutEntry]>,
    ) -> Result<(wgpu::ComputePipeline, bool)> {
        let key = PipelineKey {
            source: source.to_owned(),
            entry_point: entry_point.to_owned(),
            constants: constants
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.to_bits()))
                .collect(),
            layout: entries.map(<[_]>::to_vec),
        };
        let mut cache = self.pipelines.lock().map_err(|_| Error::Gpu {
            context: format!("compiling `{label}` ({entry_point})"),
            detail: "the pipeline cache was poisoned by a panic on another thread".into(),
        })?;
        if let Some(pipeline) = cache.get(&key) {
            return Ok((pipeline.clone(), false));
        }
        let pipeline = compile(device, label, source, entry_point, constants, entries)?;
        cache.insert(key, pipeline.clone());
        Ok((pipeline, true))
    }
}

/// Compiles one pipeline on `device`, its validation errors caught in an error scope.
fn compile(
    device: &wgpu::Device,
    label: &str,
    source: &str,
    entry_point: &str,
    constants: &[(&str, f64)],
    entries: Option<&[wgpu::BindGroupLayoutEntry]>,
) -> Result<wgpu::ComputePipeline> {
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let layout = entries.map(|entries| {
        let bind_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(label),
            entries,
        });
        device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(label),
            bind_group_layouts: &[Some(&bind_layout)],
            immediate_size: 0,
        })
    });
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(label),
        layout: layout.as_ref(),
        module: &module,
        entry_point: Some(entry_point),
        compilation_options: wgpu::PipelineCompilationOptions {
            constants,
            ..Default::default()
        },
        cache: None,
    });
    match pollster::block_on(scope.pop()) {
        None => Ok(pipeline),
        Some(e) => Err(Error::Gpu {
            context: format!("compiling `{label}` ({entry_point})"),
            detail: e.to_string(),
        }),
    }
}
