//! v2 `rdma` controller: rdma.max, the same syntax as on v1.
pub use crate::cgroups::v1::rdma::set;
