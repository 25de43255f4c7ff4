//! runc's hardening after CVE-2019-19921 (issue 17, item 6): a rootfs that is a symlink, and
//! a proc mount whose destination in the rootfs is a symlink, are refused.

mod common;

use common::Fixture;
use oci_sandbox::{Error, Options, Sandbox};

#[test]
fn a_rootfs_that_is_a_symlink_is_refused() {
    let f = Fixture::new("rootlink");
    let link = f.dir.path().join("rootfs-link");
    std::os::unix::fs::symlink(&f.rootfs, &link).unwrap();
    let v = f.spec_json("true");
    let e = Sandbox::create(&f.spec(&v), &link, Options::new()).unwrap_err();
    assert!(
        matches!(
            &e,
            Error::InvalidConfig {
                field: "root.path",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("symlink"), "{e}");
    // A symlink higher up in the path counts too.
    let dirlink = f.dir.path().join("dir-link");
    std::os::unix::fs::symlink(f.dir.path(), &dirlink).unwrap();
    let e = Sandbox::create(&f.spec(&v), &dirlink.join("rootfs"), Options::new()).unwrap_err();
    assert!(e.to_string().contains("dir-link"), "{e}");
    // The real path is accepted.
    assert_eq!(f.run(&v), oci_sandbox::ExitStatus::Exited(0));
}

#[test]
fn a_proc_mount_onto_a_symlink_in_the_rootfs_is_refused() {
    let f = Fixture::new("proclink");
    std::fs::remove_dir(f.rootfs.join("proc")).unwrap();
    std::fs::create_dir(f.rootfs.join("fakeproc")).unwrap();
    std::os::unix::fs::symlink("/fakeproc", f.rootfs.join("proc")).unwrap();
    let v = f.spec_json("true");
    let e = f.create(&v, Options::new()).unwrap_err();
    assert!(
        matches!(
            &e,
            Error::InvalidConfig {
                field: "mounts[].destination",
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("/proc") && e.to_string().contains("symlink"),
        "{e}"
    );
    // Nothing was mounted over the image's directory.
    assert_eq!(
        std::fs::read_dir(f.rootfs.join("fakeproc"))
            .unwrap()
            .count(),
        0
    );
}
