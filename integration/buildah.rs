//! The builder lane: buildah (Debian's), as root with private storage, runs a Containerfile's
//! RUN steps through berth (`buildah bud --runtime`, through an argv-capturing wrapper). The
//! steps write files that end up in the image, use their own network namespace (its
//! loopback), and fail on purpose, with the step's exit code in buildah's report.
//! Networking is always `--network none`: buildah's default would set up a bridge and
//! firewall rules on the host.
mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;

#[test]
fn buildah_runs_build_steps_on_berth() {
    let work = TempDir::new("cri-buildah");
    let d = work.path();
    let tar = oci_image(d, "latest", &["sh"]);
    let argv = ArgvCapture::new("buildah", d);
    let buildah = |args: &[&str]| -> Output {
        Command::new("buildah")
            .arg(format!("--root={}", d.join("storage").display()))
            .arg(format!("--runroot={}", d.join("run").display()))
            .args(["--storage-driver", "vfs"])
            .args(args)
            .env("TMPDIR", d)
            .stdin(Stdio::null())
            .output()
            .expect("buildah is needed: apt-get install -y buildah")
    };
    let _cleanup = OnDrop(|| {
        let _ = buildah(&["rm", "--all"]);
        let _ = buildah(&["rmi", "--all", "--force"]);
    });
    let ctx = d.join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    let bud = |file: &str, content: &str, tag: &str| -> Output {
        std::fs::write(ctx.join(file), content).unwrap();
        buildah(&[
            "bud",
            "--runtime",
            argv.path.to_str().unwrap(),
            "--isolation",
            "oci",
            "--network",
            "none",
            "-f",
            ctx.join(file).to_str().unwrap(),
            "-t",
            tag,
            ctx.to_str().unwrap(),
        ])
    };

    // RUN steps that write files, and one that talks to itself over its network namespace's
    // loopback (a TCP listener and a client), then reads back what the earlier ones wrote.
    let from = format!("FROM oci-archive:{}\n", tar.display());
    let steps = "\
RUN echo built-by-run > /built.txt && id -u >> /built.txt
RUN ls /sys/class/net > /netdevs && nc -l -p 7071 -e echo over-lo & \
    for i in $(seq 100); do nc 127.0.0.1 7071 </dev/null > /lo.txt 2>/dev/null; \
    [ -s /lo.txt ] && break; sleep 0.05; done; cat /lo.txt
RUN cat /built.txt /netdevs /lo.txt > /summary.txt
";
    let out = bud(
        "Containerfile",
        &format!("{from}{steps}"),
        "localhost/cri-built",
    );
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(
        output_text(&out).contains("over-lo\n"),
        "{}",
        output_text(&out)
    );

    // The files are in the committed image: read them through a working container's mount.
    let ctr = buildah(&["from", "localhost/cri-built"]);
    let ctr = must("buildah from", ctr, "").trim().to_string();
    let mnt = must("buildah mount", buildah(&["mount", &ctr]), "");
    let summary = std::fs::read_to_string(Path::new(mnt.trim()).join("summary.txt")).unwrap();
    must("buildah umount", buildah(&["umount", &ctr]), "");
    must("buildah rm", buildah(&["rm", &ctr]), "");
    // Written by root; its own network namespace holds only lo (no host interface).
    assert_eq!(summary, "built-by-run\n0\nlo\nover-lo\n");

    // A step that fails on purpose: the build stops there and reports its exit code.
    let out = bud(
        "Failing",
        &format!("{from}RUN echo before-failure\nRUN exit 5\nRUN echo never-here\n"),
        "localhost/cri-failed",
    );
    assert!(!out.status.success(), "{}", output_text(&out));
    let t = output_text(&out);
    assert!(
        t.contains("before-failure") && !t.contains("never-here"),
        "{t}"
    );
    assert!(t.contains("exit status 5"), "{t}");

    // Every runtime container is gone: no state under the root buildah gave berth (it
    // gives none: berth's default) for any id it created.
    let calls = argv.calls();
    for c in calls.iter().filter(|c| c.iter().any(|a| a == "create")) {
        let id = c.last().unwrap();
        let root = c
            .iter()
            .position(|a| a == "--root")
            .and_then(|i| c.get(i + 1))
            .map_or("/run/berth", |r| r.as_str());
        let dir = Path::new(root).join(id);
        assert!(!dir.exists(), "berth state left: {}", dir.display());
    }
    let summary = argv.report();
    assert!(!calls.is_empty(), "{summary}");
}

/// berth brings up the loopback of every network namespace it creates, as runc does;
/// buildah's `--network none` steps, among others, rely on it.
#[test]
fn new_network_namespace_has_loopback_up() {
    let root = Root::new();
    let b = Bundle::with(&["cat", "/sys/class/net/lo/flags"], |s| {
        let ns = s["linux"]["namespaces"].as_array_mut().unwrap();
        if !ns.iter().any(|n| n["type"] == "network") {
            ns.push(serde_json::json!({"type": "network"}));
        }
    });
    let (code, out, err) = root.run_bundle(&b, &unique("cri-lo"));
    assert_eq!(code, 0, "{err}");
    let flags = u32::from_str_radix(out.trim().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "IFF_UP in {out}");
}
