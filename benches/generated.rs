//! Hook for workloads on generated code (`*_generated`): register them here with
//! `w.add(name, items_per_iteration, flops_per_iteration, closure)`.

use super::Workloads;

/// Adds the generated-code workloads (none yet).
pub fn register(w: &mut Workloads) {
    let _ = w;
}
