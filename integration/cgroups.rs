//! Root tests of the cgroup manager. `v1_*`/`hybrid_*` tests run on a cgroup v1 (or hybrid)
//! host; `v2_*` tests run on a cgroup v2 host (the VM lane, integration/vm/run.sh, runs this
//! binary with the `v2_` filter). A test for the other version prints `skipped: REASON`,
//! which the test command counts (scripts/skips.sh).
//! Each test works under its own `/berth-test-<pid>-<name>` in every hierarchy, spawns its own
//! `sleep`/`sh` children, and a Drop guard kills them and removes the directories even when
//! an assertion fails. The cgroups of the test process itself are never touched.
mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use berth::cgroups::{
    self, detect, load_manager, new_manager, paths, CgroupConfig, CgroupState, LinuxResources,
    Manager, Version, Ways,
};
use nix::sys::signal::Signal;
use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder,
    LinuxDeviceType, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
};

/// Kills the children and removes `/<name>` from every cgroup hierarchy on drop.
struct Guard {
    name: String,
    children: Vec<Child>,
}

impl Guard {
    fn new(test: &str) -> Guard {
        Guard {
            name: format!("berth-test-{}-{test}", std::process::id()),
            children: Vec::new(),
        }
    }

    fn config(&self, leaf: &str) -> CgroupConfig {
        CgroupConfig {
            cgroups_path: Some(PathBuf::from(format!("/{}/{leaf}", self.name))),
            id: leaf.to_string(),
            ..Default::default()
        }
    }

    /// Every hierarchy's copy of the test root.
    fn roots(&self) -> Vec<PathBuf> {
        let m = paths::host_cgroup_mounts().unwrap();
        m.v1.iter()
            .map(|h| h.mountpoint.join(&self.name))
            .chain(m.unified.iter().map(|(mp, _)| mp.join(&self.name)))
            .collect()
    }

    fn spawn(&mut self, cmd: &mut Command) -> i32 {
        let c = cmd.spawn().expect("spawning a test child");
        let pid = c.id() as i32;
        self.children.push(c);
        pid
    }

    fn sleep(&mut self) -> i32 {
        self.spawn(Command::new("sleep").arg("1000"))
    }
}

/// Thaws every cgroup under `dir` (v1 freezer or v2 cgroup.freeze), so killed tasks can exit.
fn thaw_tree(dir: &Path) {
    let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
    let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            thaw_tree(&e.path());
        }
    }
}

/// Waits for a child, failing the test (instead of hanging) after 10 s.
fn wait_killed(c: &mut Child) -> std::process::ExitStatus {
    for _ in 0..1000 {
        if let Some(st) = c.try_wait().unwrap() {
            return st;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("child {} did not exit within 10 s", c.id());
}

impl Drop for Guard {
    fn drop(&mut self) {
        for r in self.roots() {
            thaw_tree(&r);
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for r in self.roots() {
            if let Err(e) = cgroups::fs::remove_cgroup_tree(&r) {
                eprintln!("cleanup: {e:#}");
            }
        }
    }
}

fn v1_only() -> bool {
    if detect().unwrap() != Version::V1 {
        common::record_skip("this test is for cgroup v1 hosts (the v2 lane runs in the VM)");
        return false;
    }
    true
}

fn v2_only() -> bool {
    if detect().unwrap() != Version::V2 {
        common::record_skip("this test needs a cgroup v2 host (run integration/vm/run.sh)");
        return false;
    }
    true
}

fn v1_paths(m: &dyn Manager) -> (std::collections::BTreeMap<String, PathBuf>, Option<PathBuf>) {
    match m.state() {
        CgroupState::V1 { paths, unified, .. } => (paths, unified),
        other => panic!("expected a v1 manager, got {other:?}"),
    }
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("reading {}/{file}: {e}", dir.display()))
        .trim()
        .to_string()
}

fn deny_all() -> LinuxDeviceCgroup {
    LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .unwrap()
}

fn allow_kmsg_read() -> LinuxDeviceCgroup {
    LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .typ(LinuxDeviceType::C)
        .major(1)
        .minor(11)
        .access("r")
        .build()
        .unwrap()
}

/// The v1 blkio weight file of this host's kernel, if it has one (not every I/O scheduler
/// gives one: a kernel without BFQ or CFQ has neither).
fn v1_blkio_weight_file() -> Option<&'static str> {
    ["blkio.weight", "blkio.bfq.weight"]
        .into_iter()
        .find(|f| Path::new("/sys/fs/cgroup/blkio").join(f).exists())
}

/// Every limit the v1 test sets; the blkio weight where the kernel has one.
fn limits() -> LinuxResources {
    let mut r = limits_with_blkio_weight();
    if v1_blkio_weight_file().is_none() {
        r.set_block_io(None);
    }
    r
}

fn limits_with_blkio_weight() -> LinuxResources {
    LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(64i64 << 20)
                .swap(128i64 << 20)
                .reservation(32i64 << 20)
                .swappiness(10u64)
                .build()
                .unwrap(),
        )
        .cpu(
            LinuxCpuBuilder::default()
                .shares(512u64)
                .quota(50_000i64)
                .period(100_000u64)
                .cpus("0")
                .mems("0")
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(20).build().unwrap())
        .block_io(
            LinuxBlockIoBuilder::default()
                .weight(500u16)
                .build()
                .unwrap(),
        )
        .devices(vec![deny_all()])
        .build()
        .unwrap()
}

#[test]
fn v1_full_lifecycle() {
    if !v1_only() {
        return;
    }
    let mut g = Guard::new("life");
    let m = new_manager(&g.config("c1")).unwrap();
    let (paths, unified) = v1_paths(m.as_ref());
    assert!(
        !paths["memory"].exists(),
        "new_manager must have no side effect"
    );

    m.create().unwrap();
    m.create().unwrap(); // idempotent
    for d in paths.values().chain(unified.iter()) {
        assert!(d.is_dir(), "{} not created", d.display());
    }
    // cpuset got the parent's cpus/mems so a task can join.
    assert!(!read(&paths["cpuset"], "cpuset.mems").is_empty());

    // A process about to be forked joins each v1 hierarchy itself (a tasks file each, named
    // by its controllers), the cgroup2 tree of a hybrid host by CLONE_INTO_CGROUP; nothing
    // is left to the parent. Where the caller can use neither, all goes by pid.
    let hierarchies: std::collections::BTreeSet<&PathBuf> = paths.values().collect();
    let e = m.entry(Ways::default());
    assert_eq!(e.tasks().len(), hierarchies.len());
    assert!(e.tasks().iter().any(|t| t.hierarchy == "memory"));
    assert_eq!(e.into_fd().is_some(), unified.is_some());
    assert!(!e.parent_moves());
    let why = Some("test");
    let e = m.entry(Ways {
        no_clone_into: why,
        no_self_join: why,
    });
    assert!(e.tasks().is_empty() && e.into_fd().is_none() && e.parent_moves());

    let pid = g.sleep();
    m.apply(pid).unwrap();
    m.set(&limits()).unwrap();

    let proc_cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        proc_cgroup.contains(&format!("memory:/{}/c1", g.name)),
        "{proc_cgroup}"
    );
    if unified.is_some() {
        assert!(
            proc_cgroup.contains(&format!("0::/{}/c1", g.name)),
            "{proc_cgroup}"
        );
    }
    assert_eq!(m.pids().unwrap(), vec![pid]);

    let mem = &paths["memory"];
    assert_eq!(
        read(mem, "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    assert_eq!(
        read(mem, "memory.memsw.limit_in_bytes"),
        (128u64 << 20).to_string()
    );
    assert_eq!(
        read(mem, "memory.soft_limit_in_bytes"),
        (32u64 << 20).to_string()
    );
    assert_eq!(read(mem, "memory.swappiness"), "10");
    assert_eq!(read(&paths["pids"], "pids.max"), "20");
    assert_eq!(read(&paths["cpu"], "cpu.shares"), "512");
    assert_eq!(read(&paths["cpu"], "cpu.cfs_quota_us"), "50000");
    assert_eq!(read(&paths["cpuset"], "cpuset.cpus"), "0");
    let blkio = &paths["blkio"];
    if let Some(weight) = v1_blkio_weight_file() {
        assert!(
            read(blkio, weight).contains("500"),
            "{weight}: {}",
            read(blkio, weight)
        );
    } else {
        // As runc: a weight the kernel cannot take fails, naming the field.
        let err = m.set(&limits_with_blkio_weight()).unwrap_err();
        assert!(
            format!("{err:#}").contains("linux.resources.blockIO.weight"),
            "{err:#}"
        );
    }
    let devices = read(&paths["devices"], "devices.list");
    assert!(devices.contains("c 1:3 rwm"), "{devices}");
    assert!(devices.contains("c 136:* rwm"), "{devices}");
    assert!(devices.contains("b *:* m"), "{devices}");
    assert!(!devices.contains("a *:* rwm"), "{devices}");

    // Lowering the memory limit below memsw, then raising both, works in either order.
    let lower = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(16i64 << 20)
                .swap(16i64 << 20)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    m.set(&lower).unwrap();
    assert_eq!(
        read(mem, "memory.memsw.limit_in_bytes"),
        (16u64 << 20).to_string()
    );
    m.set(&limits()).unwrap();
    assert_eq!(
        read(mem, "memory.memsw.limit_in_bytes"),
        (128u64 << 20).to_string()
    );

    m.freeze().unwrap();
    assert_eq!(read(&paths["freezer"], "freezer.state"), "FROZEN");
    assert!(m.is_frozen().unwrap());
    m.thaw().unwrap();
    assert_eq!(read(&paths["freezer"], "freezer.state"), "THAWED");
    assert!(!m.is_frozen().unwrap());

    let stats = m.stats().unwrap();
    assert_eq!(stats.memory.usage.limit, 64 << 20);
    assert_eq!(stats.pids.current, 1);
    assert_eq!(stats.pids.limit, 20);
    let json = serde_json::to_value(&stats).unwrap();
    assert!(json["cpu"]["usage"].get("kernel").is_some(), "{json}");

    // A later command rebuilds the manager from state.json.
    let saved = serde_json::to_string(&m.state()).unwrap();
    let m2 = load_manager(&serde_json::from_str(&saved).unwrap()).unwrap();
    assert_eq!(m2.pids().unwrap(), vec![pid]);
    m2.kill_all(Signal::SIGKILL).unwrap();
    let status = wait_killed(g.children.last_mut().unwrap());
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));

    m2.destroy().unwrap();
    for d in paths.values().chain(unified.iter()) {
        assert!(!d.exists(), "{} still exists", d.display());
    }
    for r in g.roots() {
        assert!(!r.exists(), "created parent {} still exists", r.display());
    }
}

/// Starts `sh` waiting for a line on stdin, moves it into the cgroup, then lets it try
/// `script`; returns the script's stdout+stderr and success.
fn run_in_cgroup(m: &dyn Manager, script: &str) -> (bool, String) {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("read go; {script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    m.apply(child.id() as i32).unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn v1_device_rules_are_enforced() {
    if !v1_only() {
        return;
    }
    let g = Guard::new("dev");
    let m = new_manager(&g.config("c3")).unwrap();
    m.create().unwrap();
    let deny = LinuxResourcesBuilder::default()
        .devices(vec![deny_all()])
        .build()
        .unwrap();
    m.set(&deny).unwrap();
    // /dev/kmsg (c 1:11) is not in the default allowlist: opening it is refused.
    let (ok, out) = run_in_cgroup(m.as_ref(), "exec 3</dev/kmsg && echo opened");
    assert!(!ok && out.contains("not permitted"), "{out}");
    // The defaults still allow /dev/null and /dev/full.
    let (ok, out) = run_in_cgroup(m.as_ref(), "head -c1 /dev/full >/dev/null && echo ok");
    assert!(ok, "{out}");

    // An update adding a read rule: only the difference is written.
    let allow = LinuxResourcesBuilder::default()
        .devices(vec![deny_all(), allow_kmsg_read()])
        .build()
        .unwrap();
    m.set(&allow).unwrap();
    let (paths, _) = v1_paths(m.as_ref());
    assert!(read(&paths["devices"], "devices.list").contains("c 1:11 r"));
    let (ok, out) = run_in_cgroup(m.as_ref(), "exec 3</dev/kmsg && echo opened");
    assert!(ok && out.contains("opened"), "{out}");
    // Read only: opening for writing stays refused.
    let (ok, out) = run_in_cgroup(m.as_ref(), "exec 3>/dev/kmsg && echo opened");
    assert!(!ok && out.contains("not permitted"), "{out}");
    m.destroy().unwrap();
}

#[test]
fn v1_rejects_what_it_cannot_do() {
    if !v1_only() {
        return;
    }
    let g = Guard::new("rej");
    let m = new_manager(&g.config("c4")).unwrap();
    m.create().unwrap();
    let unified = LinuxResourcesBuilder::default()
        .unified(
            [("memory.max".to_string(), "1M".to_string())]
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        )
        .build()
        .unwrap();
    let e = format!("{:#}", m.set(&unified).unwrap_err());
    assert!(e.contains("linux.resources.unified"), "{e}");
    let bad_swap = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(64i64 << 20)
                .swap(32i64 << 20)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let e = format!("{:#}", m.set(&bad_swap).unwrap_err());
    assert!(e.contains("memory.swap"), "{e}");
    // A shares value the kernel would clamp is reported, not silently changed.
    let shares = LinuxResourcesBuilder::default()
        .cpu(LinuxCpuBuilder::default().shares(1u64).build().unwrap())
        .build()
        .unwrap();
    let e = format!("{:#}", m.set(&shares).unwrap_err());
    assert!(e.contains("cpu.shares"), "{e}");
    // Errors keep the errno at the root of the chain.
    let bad_cpus = LinuxResourcesBuilder::default()
        .cpu(LinuxCpuBuilder::default().cpus("999").build().unwrap())
        .build()
        .unwrap();
    let err = m.set(&bad_cpus).unwrap_err();
    let io = err
        .root_cause()
        .downcast_ref::<std::io::Error>()
        .expect("io::Error root");
    assert!(io.raw_os_error().is_some(), "{err:#}");
    assert!(format!("{err:#}").contains("cpuset.cpus"), "{err:#}");
    m.destroy().unwrap();
}

#[test]
fn v1_destroy_retries_until_tasks_are_gone_and_keeps_shared_parents() {
    if !v1_only() {
        return;
    }
    let mut g = Guard::new("share");
    let a = new_manager(&g.config("a")).unwrap();
    let b = new_manager(&g.config("b")).unwrap();
    a.create().unwrap();
    b.create().unwrap();
    let pid = g.sleep();
    a.apply(pid).unwrap();
    a.kill_all(Signal::SIGKILL).unwrap();
    // The task may still be exiting: destroy retries EBUSY.
    a.destroy().unwrap();
    let (pa, _) = v1_paths(a.as_ref());
    let (pb, _) = v1_paths(b.as_ref());
    assert!(!pa["memory"].exists());
    // The parent a made is still used by b, so it stays.
    assert!(pb["memory"].exists());
    b.destroy().unwrap();
    assert!(!pb["memory"].exists());
    // b did not make the parent, so it leaves it (the guard removes it).
    assert!(pb["memory"].parent().unwrap().exists());
}

/// Destroys the managers on drop (the shared default parent `/berth` stays, as it does for
/// containers; the test command removes it at the end).
struct DestroyOnDrop(Vec<Box<dyn Manager>>);

impl Drop for DestroyOnDrop {
    fn drop(&mut self) {
        for m in &self.0 {
            if let Err(e) = m.destroy() {
                eprintln!("cleanup: {e:#}");
            }
        }
    }
}

#[test]
fn v1_default_parent_hands_cpus_and_mems_down() {
    if !v1_only() {
        return;
    }
    let made = DestroyOnDrop(
        (0..2)
            .map(|_| {
                let m = new_manager(&CgroupConfig {
                    id: common::unique("pf-cpuset"),
                    ..Default::default()
                })
                .unwrap();
                m.create().unwrap();
                m
            })
            .collect(),
    );
    let (first, _) = v1_paths(made.0[0].as_ref());
    let (second, _) = v1_paths(made.0[1].as_ref());
    let parent = second["cpuset"].parent().unwrap();
    // After one create the default parent gives its cpus and mems at mkdir, so the next
    // container's cpuset is ready without a write of its own...
    assert_eq!(read(parent, "cgroup.clone_children"), "1");
    for leaf in [&first["cpuset"], &second["cpuset"]] {
        for file in ["cpuset.cpus", "cpuset.mems"] {
            assert_eq!(read(leaf, file), read(parent, file), "{}", leaf.display());
        }
        // ...but what a container makes in its own cgroup starts empty, as under runc.
        assert_eq!(
            read(leaf, "cgroup.clone_children"),
            "0",
            "{}",
            leaf.display()
        );
    }
}

/// Restores the cgroup2 root's `cgroup.subtree_control` hugetlb bit on drop.
struct SubtreeRestore(PathBuf, bool);

impl Drop for SubtreeRestore {
    fn drop(&mut self) {
        if !self.1 {
            if let Err(e) = cgroups::fs::write(&self.0, "cgroup.subtree_control", "-hugetlb") {
                eprintln!("cleanup: {e:#}");
            }
        }
    }
}

#[test]
fn hybrid_hugetlb_limits_go_to_the_cgroup2_tree() {
    if !v1_only() {
        return;
    }
    let mounts = paths::host_cgroup_mounts().unwrap();
    let Some((uroot, _)) = mounts.unified.clone() else {
        skip!("no cgroup2 tree beside v1");
    };
    let has_v1_hugetlb = mounts
        .v1
        .iter()
        .any(|h| h.controllers.iter().any(|c| c == "hugetlb"));
    let offered = read(&uroot, "cgroup.controllers");
    if has_v1_hugetlb || !offered.split_whitespace().any(|c| c == "hugetlb") {
        skip!("hugetlb is not (only) in the cgroup2 tree here");
    }
    let was_on = read(&uroot, "cgroup.subtree_control")
        .split_whitespace()
        .any(|c| c == "hugetlb");
    let _restore = SubtreeRestore(uroot.clone(), was_on);
    let g = Guard::new("huge");
    let m = new_manager(&g.config("c5")).unwrap();
    m.create().unwrap();
    let r = LinuxResourcesBuilder::default()
        .hugepage_limits(vec![oci_spec::runtime::LinuxHugepageLimitBuilder::default(
        )
        .page_size("2MB")
        .limit(4i64 << 20)
        .build()
        .unwrap()])
        .build()
        .unwrap();
    m.set(&r).unwrap();
    let (_, unified) = v1_paths(m.as_ref());
    let u = unified.unwrap();
    assert_eq!(read(&u, "hugetlb.2MB.max"), (4u64 << 20).to_string());
    // As runc reads cgroup2: usage and failures, no peak.
    let stats = m.stats().unwrap();
    assert_eq!(stats.hugetlb["2MB"].max, 0);
    assert_eq!(stats.hugetlb["2MB"].failcnt, 0);
    // A page size the kernel does not have is an error naming it.
    let bad = LinuxResourcesBuilder::default()
        .hugepage_limits(vec![oci_spec::runtime::LinuxHugepageLimitBuilder::default(
        )
        .page_size("3MB")
        .limit(1)
        .build()
        .unwrap()])
        .build()
        .unwrap();
    let e = format!("{:#}", m.set(&bad).unwrap_err());
    assert!(e.contains("3MB"), "{e}");
    m.destroy().unwrap();
    assert!(!u.exists());
}

fn v2_dir(m: &dyn Manager) -> PathBuf {
    match m.state() {
        CgroupState::V2 { path, .. } => path,
        other => panic!("expected a v2 manager, got {other:?}"),
    }
}

#[test]
fn v2_full_lifecycle() {
    if !v2_only() {
        return;
    }
    let mut g = Guard::new("life2");
    let m = new_manager(&g.config("c1")).unwrap();
    let dir = v2_dir(m.as_ref());
    assert!(!dir.exists(), "new_manager must have no side effect");
    m.create().unwrap();
    m.create().unwrap();
    let controllers = read(&dir, "cgroup.controllers");
    for c in ["memory", "pids", "cpu"] {
        assert!(
            controllers.split_whitespace().any(|x| x == c),
            "{c} not enabled: {controllers}"
        );
    }
    let e = m.entry(Ways::default());
    assert!(e.into_fd().is_some() && e.tasks().is_empty() && !e.parent_moves());

    let pid = g.sleep();
    m.apply(pid).unwrap();
    let unified: std::collections::HashMap<String, String> =
        [("memory.high".to_string(), "100000000".to_string())]
            .into_iter()
            .collect();
    let r = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(64i64 << 20)
                .swap(96i64 << 20)
                .reservation(16i64 << 20)
                .build()
                .unwrap(),
        )
        .cpu(
            LinuxCpuBuilder::default()
                .shares(1024u64)
                .quota(50_000i64)
                .period(100_000u64)
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(20).build().unwrap())
        .block_io(
            LinuxBlockIoBuilder::default()
                .weight(500u16)
                .build()
                .unwrap(),
        )
        .hugepage_limits(vec![oci_spec::runtime::LinuxHugepageLimitBuilder::default(
        )
        .page_size("2MB")
        .limit(4i64 << 20)
        .build()
        .unwrap()])
        .devices(vec![deny_all()])
        .unified(unified)
        .build()
        .unwrap();
    m.set(&r).unwrap();
    assert_eq!(read(&dir, "memory.max"), (64u64 << 20).to_string());
    if dir.join("memory.swap.max").exists() {
        assert_eq!(read(&dir, "memory.swap.max"), (32u64 << 20).to_string());
    }
    assert_eq!(read(&dir, "memory.low"), (16u64 << 20).to_string());
    assert_eq!(read(&dir, "memory.high"), "99999744"); // rounded down to pages by the kernel
    assert_eq!(read(&dir, "pids.max"), "20");
    assert_eq!(read(&dir, "cpu.weight"), "100");
    assert_eq!(read(&dir, "cpu.max"), "50000 100000");
    // blkio weight 500 is io.weight 4950 (or 500 on io.bfq.weight with BFQ).
    if dir.join("io.bfq.weight").exists() {
        assert!(read(&dir, "io.bfq.weight").contains("500"));
    } else {
        assert_eq!(read(&dir, "io.weight"), "default 4950");
    }
    assert_eq!(read(&dir, "hugetlb.2MB.max"), (4u64 << 20).to_string());
    // Only the cpu part of an update is written: a cpuset change leaves the rest alone.
    let cpus = LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .cpus("0")
                .mems("0")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    m.set(&cpus).unwrap();
    assert_eq!(read(&dir, "cpuset.cpus"), "0");
    assert_eq!(read(&dir, "cpu.max"), "50000 100000");
    assert_eq!(m.pids().unwrap(), vec![pid]);

    m.freeze().unwrap();
    assert!(read(&dir, "cgroup.events").contains("frozen 1"));
    assert!(m.is_frozen().unwrap());
    m.thaw().unwrap();
    assert!(read(&dir, "cgroup.events").contains("frozen 0"));

    let stats = m.stats().unwrap();
    assert_eq!(stats.memory.usage.limit, 64 << 20);
    assert_eq!(stats.pids.current, 1);
    assert_eq!(stats.pids.limit, 20);
    // As runc reads cgroup2 hugetlb: usage and failures, no peak (max stays 0, omitted).
    assert_eq!(stats.hugetlb["2MB"].max, 0);
    assert_eq!(stats.hugetlb["2MB"].failcnt, 0);
    assert!(stats.cpu.usage.total > 0);

    let saved = serde_json::to_string(&m.state()).unwrap();
    let m2 = load_manager(&serde_json::from_str(&saved).unwrap()).unwrap();
    m2.kill_all(Signal::SIGKILL).unwrap();
    use std::os::unix::process::ExitStatusExt;
    let status = wait_killed(g.children.last_mut().unwrap());
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    m2.destroy().unwrap();
    assert!(!dir.exists());
    for r in g.roots() {
        assert!(!r.exists(), "created parent {} still exists", r.display());
    }
}

#[test]
fn v2_device_filter_is_enforced() {
    if !v2_only() {
        return;
    }
    let g = Guard::new("dev2");
    let m = new_manager(&g.config("c3")).unwrap();
    m.create().unwrap();
    let dir = v2_dir(m.as_ref());
    let deny = LinuxResourcesBuilder::default()
        .devices(vec![deny_all()])
        .build()
        .unwrap();
    m.set(&deny).unwrap();
    let (ok, out) = run_in_cgroup(m.as_ref(), "exec 3</dev/kmsg && echo opened");
    assert!(
        !ok && out.contains("not permitted"),
        "kmsg must be denied: {out}"
    );
    let (ok, out) = run_in_cgroup(m.as_ref(), "head -c1 /dev/full >/dev/null && echo ok");
    assert!(ok && out.contains("ok"), "default allowlist: {out}");

    // Default allow with one read deny: the program is replaced, not stacked.
    let allow_all = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .access("rwm")
        .build()
        .unwrap();
    let deny_kmsg_read = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .typ(LinuxDeviceType::C)
        .major(1)
        .minor(11)
        .access("r")
        .build()
        .unwrap();
    let r = LinuxResourcesBuilder::default()
        .devices(vec![allow_all, deny_kmsg_read])
        .build()
        .unwrap();
    m.set(&r).unwrap();
    let cg = std::fs::File::open(&dir).unwrap();
    use std::os::fd::AsFd;
    let progs = berth::sys::cgroups::query_device_programs(cg.as_fd()).unwrap();
    assert_eq!(progs.len(), 1, "old filter not detached: {progs:?}");
    let (ok, out) = run_in_cgroup(m.as_ref(), "exec 3</dev/kmsg && echo opened");
    assert!(
        !ok && out.contains("not permitted"),
        "kmsg read must be denied: {out}"
    );
    let (ok, out) = run_in_cgroup(m.as_ref(), "exec 3>/dev/kmsg && echo opened");
    assert!(ok && out.contains("opened"), "kmsg write is allowed: {out}");
    m.kill_all(Signal::SIGKILL).unwrap();
    m.destroy().unwrap();
}

#[test]
fn v2_rejects_what_it_cannot_do() {
    if !v2_only() {
        return;
    }
    let g = Guard::new("rej2");
    let m = new_manager(&g.config("c4")).unwrap();
    m.create().unwrap();
    let net = LinuxResourcesBuilder::default()
        .network(
            oci_spec::runtime::LinuxNetworkBuilder::default()
                .class_id(5u32)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let e = format!("{:#}", m.set(&net).unwrap_err());
    assert!(e.contains("network"), "{e}");
    let rt = LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .realtime_runtime(1000i64)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let e = format!("{:#}", m.set(&rt).unwrap_err());
    assert!(e.contains("realtime"), "{e}");
    let bad: std::collections::HashMap<String, String> =
        [("../memory.max".to_string(), "1".to_string())]
            .into_iter()
            .collect();
    let r = LinuxResourcesBuilder::default()
        .unified(bad)
        .build()
        .unwrap();
    assert!(m.set(&r).is_err());
    m.destroy().unwrap();
}

/// kill_all with a catchable signal reaches every process and leaves the cgroup thawed.
fn kill_all_catchable(tag: &str) {
    let mut g = Guard::new(tag);
    let m = new_manager(&g.config("c2")).unwrap();
    m.create().unwrap();
    let a = g.sleep();
    let b = g.sleep();
    m.apply(a).unwrap();
    m.apply(b).unwrap();
    assert_eq!(m.pids().unwrap().len(), 2);
    m.kill_all(Signal::SIGTERM).unwrap();
    use std::os::unix::process::ExitStatusExt;
    for c in &mut g.children {
        assert_eq!(wait_killed(c).signal(), Some(libc::SIGTERM));
    }
    g.children.clear();
    // The cgroup was thawed again after signalling.
    assert!(!m.is_frozen().unwrap());
    m.destroy().unwrap();
}

/// SIGKILL through kill_all reaches a frozen process.
fn kill_all_sigkill_paused(tag: &str) {
    let mut g = Guard::new(tag);
    let m = new_manager(&g.config("c6")).unwrap();
    m.create().unwrap();
    let pid = g.sleep();
    m.apply(pid).unwrap();
    m.freeze().unwrap();
    m.kill_all(Signal::SIGKILL).unwrap();
    use std::os::unix::process::ExitStatusExt;
    let status = wait_killed(g.children.last_mut().unwrap());
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    m.thaw().unwrap();
    m.destroy().unwrap();
}

#[test]
fn v1_kill_all_with_a_catchable_signal_reaches_every_process() {
    if v1_only() {
        kill_all_catchable("term");
    }
}

#[test]
fn v2_kill_all_with_a_catchable_signal() {
    if v2_only() {
        kill_all_catchable("term2");
    }
}

#[test]
fn v1_kill_all_sigkill_reaches_a_paused_container() {
    if v1_only() {
        kill_all_sigkill_paused("paused");
    }
}

#[test]
fn v2_kill_all_sigkill_reaches_a_paused_container() {
    if v2_only() {
        kill_all_sigkill_paused("paused2");
    }
}

/// Rootless on v2: a delegated subtree (a cgroup whose directory and control files belong to
/// an ordinary user) lets berth, run by that user, create the container's cgroup inside it
/// and apply its limits there. The launching shell moves itself into the subtree as root,
/// then becomes uid 1000 (setpriv) and execs berth, as a delegating service manager would.
#[test]
fn v2_rootless_delegated_subtree() {
    if !v2_only() {
        return;
    }
    use std::os::unix::fs::chown;
    let uid = 1000;
    let name = common::unique("cri-deleg");
    let base = Path::new("/sys/fs/cgroup").join(&name);
    std::fs::create_dir(&base).unwrap();
    struct Rm(PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            for d in ["c1", "launch", ""] {
                let _ = std::fs::remove_dir(self.0.join(d));
            }
        }
    }
    let _rm = Rm(base.clone());
    std::fs::write(base.join("cgroup.subtree_control"), "+memory +pids").unwrap();
    std::fs::create_dir(base.join("launch")).unwrap();
    for p in [
        base.clone(),
        base.join("cgroup.procs"),
        base.join("cgroup.threads"),
        base.join("cgroup.subtree_control"),
        base.join("launch"),
        base.join("launch/cgroup.procs"),
    ] {
        chown(&p, Some(uid), Some(uid)).unwrap();
    }

    // A rootless bundle mapping uid 1000 to root, owned by that user.
    let dir = common::TempDir::new("cri-deleg");
    let bundle = dir.path().join("b");
    common::busybox_rootfs(&bundle.join("rootfs"));
    let mut spec = common::template_with(&["--rootless"]);
    let map = serde_json::json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    spec["linux"]["uidMappings"] = map.clone();
    spec["linux"]["gidMappings"] = map;
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(["sleep", "100"]);
    spec["linux"]["cgroupsPath"] = format!("/{name}/c1").into();
    spec["linux"]["resources"] =
        serde_json::json!({"memory": {"limit": 33554432}, "pids": {"limit": 20}});
    std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let chown_r = Command::new("chown")
        .args(["-R", &format!("{uid}:{uid}")])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(chown_r.success());

    // As a delegating service manager would: the child moves itself into the subtree as
    // root (writing "0" to cgroup.procs moves the writer), then becomes uid 1000, then execs.
    let procs = std::ffi::CString::new(
        base.join("launch/cgroup.procs")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .unwrap();
    let as_user = |args: &str| {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(common::BERTH);
        cmd.arg("--root").arg(&state).args(args.split(' '));
        cmd.stdin(Stdio::null());
        let procs = procs.clone();
        // SAFETY: between fork and exec the closure makes only async-signal-safe calls
        // (open, write, close, setgroups, setgid, setuid) on data prepared before the fork.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let n = libc::write(fd, b"0".as_ptr().cast(), 1);
                libc::close(fd);
                if n != 1
                    || libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(uid) != 0
                    || libc::setuid(uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        };
        // Files, not pipes: the created init inherits them and would hold a pipe open.
        let err = dir.path().join("stderr");
        cmd.stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap());
        let status = cmd.status().unwrap();
        std::process::Output {
            status,
            stdout: vec![],
            stderr: std::fs::read(&err).unwrap(),
        }
    };
    let id = common::unique("cri-deleg");
    let out = as_user(&format!("create -b {} {id}", bundle.display()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c1 = base.join("c1");
    let limits = (read(&c1, "memory.max"), read(&c1, "pids.max"));
    let procs = read(&c1, "cgroup.procs");
    let out = as_user(&format!("delete --force {id}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(limits, ("33554432".to_string(), "20".to_string()));
    assert!(!procs.is_empty(), "the init is in the delegated cgroup");
    assert!(!c1.exists(), "delete removed the container's cgroup");
}
