//! What the v1 and v2 managers share, so that neither imports the other: the controller
//! writers whose files are the same on both (pids, rdma, cpuset), and the cgroup2 pieces a
//! v1 manager also drives on a hybrid host (the tree, the freezer, hugetlb).
pub mod cgroup2;
pub mod cpuset;
pub mod freeze;
pub mod hugetlb;
pub mod pids;
pub mod rdma;
