//! Host side of `shaders/compression.wgsl`: a time level encoded in a
//! [`CheckpointFormat`] at a save and decoded at a restore, in command order with the steps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytemuck::{Pod, Zeroable};

use super::{Gpu, dispatch_1d};
use crate::compression::{CheckpointFormat, INT8_BLOCK};
use crate::error::{Error, Result};

const SHADER: &str = include_str!("../../shaders/compression.wgsl");

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Pod, Zeroable)]
struct Params {
    len: u32,
    row: u32,
    segment: u32,
    _pad: u32,
}

/// The encoder and decoder kernels of one lossy [`CheckpointFormat`].
#[derive(Debug)]
pub struct Codec {
    format: CheckpointFormat,
    encode: wgpu::ComputePipeline,
    decode: wgpu::ComputePipeline,
    max_groups_per_dim: u32,
    /// The parameters' uniform buffers made so far: a run encodes levels of one size, so it
    /// makes one or two, not one a save.
    uniforms: Mutex<HashMap<Params, Arc<wgpu::Buffer>>>,
    /// Bound as the vector view of a buffer too short to have one.
    stand_in: wgpu::Buffer,
}

impl Codec {
    /// Invocations per workgroup of the kernels (the shader's `WORKGROUP_SIZE`).
    pub const WORKGROUP_SIZE: u32 = 256;

    /// Compiles `format`'s kernels; `None` for [`CheckpointFormat::F32`], which stores the
    /// levels themselves.
    ///
    /// # Errors
    /// [`Error::Gpu`] if the shader does not compile on this device.
    pub fn new(gpu: &Gpu, format: CheckpointFormat) -> Result<Option<Self>> {
        let (encode, decode) = match format {
            CheckpointFormat::Bf16 => ("encode_bf16", "decode_bf16"),
            CheckpointFormat::Int8 => ("encode_int8", "decode_int8"),
            _ => return Ok(None),
        };
        let size = [("WORKGROUP_SIZE", f64::from(Self::WORKGROUP_SIZE))];
        Ok(Some(Self {
            format,
            encode: gpu.compute_pipeline("checkpoint encode", SHADER, encode, &size)?,
            decode: gpu.compute_pipeline("checkpoint decode", SHADER, decode, &size)?,
            max_groups_per_dim: gpu.limits().max_compute_workgroups_per_dimension,
            uniforms: Mutex::new(HashMap::new()),
            // STORAGE: bound as the kernels' vector view; never read or written.
            stand_in: gpu.create_buffer("codec stand-in", 16, wgpu::BufferUsages::STORAGE)?,
        }))
    }

    /// The format.
    pub fn format(&self) -> CheckpointFormat {
        self.format
    }

    /// Caps the workgroups per dispatch dimension below the device's limit, so tests can
    /// exercise the two-dimensional dispatch on small levels.
    #[doc(hidden)]
    pub fn with_max_groups_per_dim(mut self, groups: u32) -> Self {
        self.max_groups_per_dim = groups.min(self.max_groups_per_dim);
        self
    }

    /// Records the encoding of the `len` words of `level`, made of `parts` equal independent
    /// parts (the shots of a batch), into `encoded`, which holds
    /// [`CheckpointFormat::encoded_words_in`] of them.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when a buffer is too short or `parts` does not divide `len`;
    /// [`Error::OutOfMemory`] if the uniform buffer cannot be made.
    pub fn encode(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        [level, encoded]: [&wgpu::Buffer; 2],
        len: u64,
        parts: usize,
    ) -> Result<()> {
        let segment = self.check(level, encoded, len, parts)?;
        // The bf16 encoder writes the four words that hold eight values; the int8 one a block
        // per invocation.
        let items = match self.format {
            CheckpointFormat::Int8 => len / segment * segment.div_ceil(INT8_BLOCK as u64),
            _ => len.div_ceil(8),
        };
        let bound = [level, encoded];
        self.dispatch(gpu, encoder, &self.encode, bound, [len, segment], items)
    }

    /// Records the decoding of `encoded` into the `len` words of `level`, made of `parts`
    /// parts as encoded.
    ///
    /// # Errors
    /// As [`encode`](Self::encode).
    pub fn decode(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        [encoded, level]: [&wgpu::Buffer; 2],
        len: u64,
        parts: usize,
    ) -> Result<()> {
        let segment = self.check(level, encoded, len, parts)?;
        // The bf16 decoder writes the eight words that four encoded words hold; the int8 one
        // the sixteen of an encoded vector.
        let items = match self.format {
            CheckpointFormat::Int8 => len / segment * segment.div_ceil(INT8_BLOCK as u64) * 4,
            _ => len.div_ceil(8),
        };
        let bound = [level, encoded];
        self.dispatch(gpu, encoder, &self.decode, bound, [len, segment], items)
    }

    /// The words of a part, once the buffers and the parts are checked.
    fn check(
        &self,
        level: &wgpu::Buffer,
        encoded: &wgpu::Buffer,
        len: u64,
        parts: usize,
    ) -> Result<u64> {
        let parts = parts.max(1) as u64;
        if !len.is_multiple_of(parts) {
            return Err(Error::InvalidArgument {
                name: "parts",
                reason: format!("{parts} equal parts cannot make a level of {len} words"),
            });
        }
        let words = usize::try_from(len).unwrap_or(usize::MAX);
        let want = self.format.encoded_words_in(words, parts as usize) as u64 * 4;
        if len == 0 || len > u64::from(u32::MAX) || level.size() < len * 4 || encoded.size() < want
        {
            return Err(Error::InvalidArgument {
                name: "len",
                reason: format!(
                    "{} of {len} words needs a level of {} bytes and {want} encoded bytes; the \
                     buffers hold {} and {}",
                    self.format,
                    len * 4,
                    level.size(),
                    encoded.size()
                ),
            });
        }
        Ok(len / parts)
    }

    /// The uniform buffer holding `params`, made on first use.
    fn uniforms(&self, gpu: &Gpu, params: Params) -> Result<Arc<wgpu::Buffer>> {
        let mut made = self.uniforms.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(buffer) = made.get(&params) {
            return Ok(Arc::clone(buffer));
        }
        // UNIFORM: bound as `var<uniform>`; COPY_DST (added by `upload`): filled by the queue.
        let usage = wgpu::BufferUsages::UNIFORM;
        let buffer = Arc::new(gpu.upload("checkpoint codec params", &[params], usage)?);
        made.insert(params, Arc::clone(&buffer));
        Ok(buffer)
    }

    /// One dispatch of `pipeline` over `items` invocations, in rows when one dimension is not
    /// enough.
    fn dispatch<'a>(
        &'a self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        [level, encoded]: [&'a wgpu::Buffer; 2],
        [len, segment]: [u64; 2],
        items: u64,
    ) -> Result<()> {
        let dispatch = dispatch_1d(items, Self::WORKGROUP_SIZE, self.max_groups_per_dim)?;
        let params = Params {
            len: len as u32,
            row: dispatch.row,
            segment: segment as u32,
            _pad: 0,
        };
        let uniforms = self.uniforms(gpu, params)?;
        // The kernels also see each buffer as 16-byte vectors (bindings 3 and 4), which a
        // buffer shorter than one vector cannot be bound as: it gets the stand-in, which the
        // kernels never touch (they move vectors only within `len` words).
        let as_vectors = |buffer: &'a wgpu::Buffer| {
            if buffer.size() >= 16 {
                buffer
            } else {
                &self.stand_in
            }
            .as_entire_binding()
        };
        let layout = pipeline.get_bind_group_layout(0);
        let entries = [
            (0, uniforms.as_entire_binding()),
            (1, level.as_entire_binding()),
            (2, encoded.as_entire_binding()),
            (3, as_vectors(level)),
            (4, as_vectors(encoded)),
        ];
        // Made each time, not kept in a BindGroupCache: a kept bind group holds its buffers,
        // and the engine gives unheld stored buffers back to the device when it runs out of
        // memory. Recording one costs about 3.5 µs, and keeping them measured no faster.
        let bind_group = gpu.bind_group("checkpoint codec", &layout, &entries);
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("checkpoint codec"),
            timestamp_writes: None,
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        let [gx, gy, gz] = dispatch.groups;
        pass.dispatch_workgroups(gx, gy, gz);
        Ok(())
    }
}
