//! The toolkit embedded, as a new user's program would do it from the crate docs: open the
//! demo image layout, unpack it flat and into the layer store, turn its config into a bundle,
//! run a container capturing its output, then one with a memory limit and a seccomp rule,
//! and clean up. Run as root: `cargo run -p examples --example embed`.
use oci_image::Layout;
use oci_runtime::oci_sandbox::seccomp::deny_syscall;
use oci_runtime::oci_spec::runtime::{LinuxMemoryBuilder, Spec};
use oci_runtime::{
    default_spec, spec_from_image, Bundle, CreateOptions, Overrides, Runtime, Stdio,
};
use oci_unpack::{LayerStore, Unpacker};
use std::path::Path;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let work = tempfile::tempdir()?;
    let dir = work.path();
    // The demo image (busybox-static from the host, else its /bin/sh and libraries) in a
    // layout, resolved for this host.
    examples::demo::write_demo_image(&dir.join("layout"), &Default::default())?;
    let layout = Layout::open(dir.join("layout"))?;
    let image = layout.resolve("demo", None)?;
    // Flat: every layer into one directory, the bundle's rootfs. Then the layer store: each
    // layer once, by chain id, stacked with overlayfs for one container.
    let unpacker = Unpacker::new();
    std::fs::create_dir_all(dir.join("flat"))?;
    unpacker.unpack(&layout, &image, dir.join("flat/rootfs"))?;
    let store = LayerStore::open(dir.join("layers"))?;
    let chain = store.prepare(&unpacker, &layout, &image, "embed")?;
    let overlay = store.mount(&chain, dir.join("overlay"))?;
    let rt = Runtime::new(dir.join("state"))?;
    let mut overrides = Overrides::default();
    overrides.cmd = Some(vec![
        "sh".into(),
        "-c".into(),
        "echo hello from $(hostname)".into(),
    ]);
    let spec = spec_from_image(
        &image.config,
        &dir.join("flat/rootfs"),
        &overrides,
        default_spec()?,
    )?;
    let (out, code) = run(&rt, "embed-flat", &dir.join("flat"), &spec)?;
    assert_eq!((out.as_str(), code), ("hello from ocibox\n", 0));
    // On the overlay, with 64 MiB of memory and uname(2) denied with EACCES. Docker's
    // profile denies by default: deny_syscall also takes uname out of its allow rule.
    overrides.cmd = Some(vec![
        "sh".into(),
        "-c".into(),
        "[ \"$(uname -s)\" = Linux ] || echo uname denied".into(),
    ]);
    let mut spec = spec_from_image(&image.config, overlay.merged(), &overrides, default_spec()?)?;
    let mut linux = spec.linux().clone().unwrap_or_default();
    let memory = LinuxMemoryBuilder::default().limit(64i64 << 20).build()?;
    let mut resources = linux.resources().clone().unwrap_or_default();
    resources.set_memory(Some(memory));
    linux.set_resources(Some(resources));
    let mut seccomp = linux.seccomp().clone().unwrap_or_default();
    deny_syscall(&mut seccomp, "uname", libc::EACCES as u32);
    linux.set_seccomp(Some(seccomp));
    spec.set_linux(Some(linux));
    spec.root_mut()
        .as_mut()
        .unwrap()
        .set_path(overlay.merged().into()); // outside the bundle
    let (out, _) = run(&rt, "embed-limited", &dir.join("limited"), &spec)?;
    assert_eq!(out, "uname denied\n");

    // Clean up: the overlay (its upper and work directories), the store's references.
    overlay.unmount()?;
    store.release("embed")?;
    Ok(())
}

/// Writes `spec` as the bundle in `bundle`, runs it with its stdout (and stderr) captured
/// through a pipe, and deletes it. Returns the output and the exit code.
fn run(rt: &Runtime, id: &str, bundle: &Path, spec: &Spec) -> Result<(String, i32)> {
    Bundle::write(bundle, spec)?;
    let opts = CreateOptions::new(bundle)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut running = rt.run(id, &opts)?;
    let (stdout, stderr) = (
        running.take_stdout().unwrap(),
        running.take_stderr().unwrap(),
    );
    let err = std::thread::spawn(move || std::io::read_to_string(stderr));
    let mut out = std::io::read_to_string(stdout)?;
    out += &err.join().map_err(|_| "stderr reader panicked")??;
    let code = running.wait()?;
    println!("{id}: exit {code}, output {out:?}");
    if let Ok(stats) = rt.stats(id) {
        println!("{id}: memory limit {} bytes", stats.memory.usage.limit);
    }
    rt.delete(id, false)?;
    Ok((out, code))
}
