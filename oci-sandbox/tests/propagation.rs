//! Mount propagation (config-linux.md "Rootfs Mount Propagation", and the propagation
//! options of config.md "Mounts"), observed with real mount events: a shared host mount is
//! bound into the container three times (rslave, rprivate, rshared); the host then mounts
//! under it, and the container mounts under its rshared bind.
mod common;

use common::Fixture;
use oci_sandbox::{ExitStatus, Options};
use serde_json::json;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A tmpfs on the host made shared, unmounted (recursively, lazily) on drop.
struct SharedMount(PathBuf);

fn mount(source: &str, target: &Path, fstype: Option<&str>, flags: libc::c_ulong) {
    let s = CString::new(source).unwrap();
    let t = CString::new(target.to_str().unwrap()).unwrap();
    let f = fstype.map(|f| CString::new(f).unwrap());
    // SAFETY: NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::mount(
            s.as_ptr(),
            t.as_ptr(),
            f.as_ref().map_or(std::ptr::null(), |f| f.as_ptr()),
            flags,
            std::ptr::null(),
        )
    };
    assert_eq!(
        r,
        0,
        "mount {target:?}: {}",
        std::io::Error::last_os_error()
    );
}

impl SharedMount {
    fn new(at: PathBuf) -> SharedMount {
        std::fs::create_dir(&at).unwrap();
        mount("ocisb-prop", &at, Some("tmpfs"), 0);
        let m = SharedMount(at);
        mount("", &m.0, None, libc::MS_SHARED);
        for d in ["sub", "back"] {
            std::fs::create_dir(m.0.join(d)).unwrap();
        }
        m
    }
}

impl Drop for SharedMount {
    fn drop(&mut self) {
        let t = CString::new(self.0.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path; MNT_DETACH takes the submounts too.
        unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) };
    }
}

fn wait_for(p: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !p.exists() {
        assert!(Instant::now() < deadline, "{p:?} never appeared");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs the scenario with `rootfs_propagation`; returns what the container listed under each
/// bind, and whether its mount under the rshared bind reached the host.
fn scenario(name: &str, rootfs_propagation: &str) -> (String, String, String, bool) {
    let f = Fixture::new(name);
    let shared = SharedMount::new(f.dir.path().join("shared"));
    let src = shared.0.to_str().unwrap();
    let mut v = f.spec_json(
        "echo > /out/ready; i=0; \
         while [ ! -e /slave/sub/m ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; \
         ls /slave/sub > /out/slave; ls /private/sub > /out/private; \
         ls /shared/sub > /out/shared; \
         mount -t tmpfs ocisb-back /shared/back && touch /shared/back/from-container; \
         echo > /out/done; sleep 1000",
    );
    v["linux"]["rootfsPropagation"] = json!(rootfs_propagation);
    let mounts = v["mounts"].as_array_mut().unwrap();
    for (dest, prop) in [
        ("/slave", "rslave"),
        ("/private", "rprivate"),
        ("/shared", "rshared"),
    ] {
        mounts.push(json!({"destination": dest, "type": "bind", "source": src,
            "options": ["rbind", prop]}));
    }
    let mut c = f.create(&v, Options::new()).unwrap();
    c.start().unwrap();
    wait_for(&f.out.join("ready"));
    // A host mount event under the shared mount.
    mount("ocisb-sub", &shared.0.join("sub"), Some("tmpfs"), 0);
    std::fs::write(shared.0.join("sub/m"), "").unwrap();
    wait_for(&f.out.join("done"));
    let back = shared.0.join("back/from-container").exists();
    c.kill(libc::SIGKILL).unwrap();
    assert_eq!(c.wait().unwrap(), ExitStatus::Signaled(libc::SIGKILL));
    c.delete().unwrap();
    (f.out("slave"), f.out("private"), f.out("shared"), back)
}

#[test]
fn bind_propagation_options_with_the_default_rootfs_propagation() {
    // rslave root (runc's default): host events reach the rslave and rshared binds, never the
    // rprivate one; nothing the container mounts reaches the host.
    let (slave, private, shared, back) = scenario("prop-slave", "rslave");
    assert_eq!(slave.trim(), "m");
    assert_eq!(private.trim(), "");
    assert_eq!(shared.trim(), "m");
    assert!(
        !back,
        "a container mount reached the host under an rslave root"
    );
}

#[test]
fn rshared_rootfs_propagation_sends_container_mounts_to_the_host() {
    // Kubernetes' Bidirectional propagation: an rshared root and an rshared bind.
    let (slave, private, shared, back) = scenario("prop-shared", "rshared");
    assert_eq!(slave.trim(), "m");
    assert_eq!(private.trim(), "");
    assert_eq!(shared.trim(), "m");
    assert!(
        back,
        "the container's mount under its rshared bind reached the host"
    );
}
