//! v2 `pids` controller: the files are the same as on v1 (pids.max, pids.current).
pub use crate::cgroups::v1::pids::{limit_value, set, stats};
