//! The mountinfo and /proc parsers: mountinfo (and the cgroup mounts picked from it),
//! /proc/PID/cgroup, /proc/PID/stat, and the cgroup stat files, on any text.
#![no_main]
use berth::cgroups::{devices, fs, paths, stats};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mounts = berth::mountinfo::parse(&text);
    let _ = berth::mountinfo::visible(&mounts);
    let _ = paths::cgroup_mounts(&mounts);
    let _ = berth::mountinfo::mount_of(&mounts, std::path::Path::new("/sys/fs/cgroup/x"));
    let _ = paths::parse_proc_cgroup(&text);
    let _ = berth::container::state::parse_start_time(&text);
    let _ = stats::parse_blkio_v1(&text);
    let _ = stats::parse_io_stat_v2(&text);
    let _ = fs::parse_flat_keyed(&text);
    let _ = fs::parse_u64(&text);
    let _ = devices::DeviceState::parse_v1_list(&text);
});
