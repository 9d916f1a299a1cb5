//! [`BindGroupCache`]: bind groups kept by what they bind, for kernels that rotate a few
//! buffers through the same bindings step after step.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::Hash;

use super::Gpu;

/// Bind groups kept by a key that names the kernel and the buffers bound to it.
///
/// A time stepper binds the same handful of buffers in rotation (`prev`, `cur`, `next`), so
/// each bind group is made once and reused; a run that binds a new buffer every step (store-all)
/// would make the cache grow without end, so it is cleared when it reaches its capacity.
/// A foreign [`Operator`](crate::engine::Operator) can use it the same way.
///
/// ```no_run
/// use gpurevolve::gpu::{BindGroupCache, Gpu};
/// # fn demo(gpu: &Gpu, layout: &wgpu::BindGroupLayout, u: &wgpu::Buffer) {
/// let cache = BindGroupCache::new(64);
/// let bind = |buffer: &wgpu::Buffer| {
///     cache.get_or_create(("my kernel", buffer.clone()), || {
///         gpu.bind_group("my kernel", layout, &[(0, buffer.as_entire_binding())])
///     })
/// };
/// let first = bind(u);
/// let again = bind(u); // the same bind group, made once
/// # }
/// ```
#[derive(Debug)]
pub struct BindGroupCache<K> {
    groups: RefCell<HashMap<K, wgpu::BindGroup>>,
    capacity: usize,
}

impl<K: Eq + Hash> BindGroupCache<K> {
    /// A cache of at most `capacity` bind groups (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            groups: RefCell::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// The bind group for `key`, made by `create` the first time.
    pub fn get_or_create(
        &self,
        key: K,
        create: impl FnOnce() -> wgpu::BindGroup,
    ) -> wgpu::BindGroup {
        if let Some(group) = self.groups.borrow().get(&key) {
            return group.clone();
        }
        let group = create();
        let mut groups = self.groups.borrow_mut();
        if groups.len() >= self.capacity {
            groups.clear();
        }
        groups.insert(key, group.clone());
        group
    }

    /// Bind groups held now.
    pub fn len(&self) -> usize {
        self.groups.borrow().len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Gpu {
    /// A bind group of `layout` binding each `(binding, resource)`, counted in
    /// [`GpuCounters::bind_groups`](super::GpuCounters::bind_groups).
    pub fn bind_group(
        &self,
        label: &str,
        layout: &wgpu::BindGroupLayout,
        entries: &[(u32, wgpu::BindingResource<'_>)],
    ) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry<'_>> = entries
            .iter()
            .map(|(binding, resource)| wgpu::BindGroupEntry {
                binding: *binding,
                resource: resource.clone(),
            })
            .collect();
        self.counters.bind_group();
        self.device().create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout,
            entries: &entries,
        })
    }
}
