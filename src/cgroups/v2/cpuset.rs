//! v2 `cpuset` controller: the same cpuset.cpus and cpuset.mems files as v1. v2 inherits the
//! parent's values when they are empty, so, unlike v1, nothing needs initialising.
pub use crate::cgroups::v1::cpuset::{requested, set};
