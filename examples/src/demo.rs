//! The demo image the README's main job runs: a tiny, reproducible two-layer image written into
//! an OCI image layout.
//!
//! Its programs come from the host: a static busybox (Debian's busybox-static) when there is
//! one, else the host's `/bin/sh` with the ELF interpreter and shared libraries it needs (read
//! from its program headers), so that the image runs either way. When neither can be had,
//! [`write_demo_image`] fails with [`DemoError::NoPayload`], which says what to install: it never
//! writes an image whose command cannot run.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use oci_image::spec::image::{
    Arch, ConfigBuilder, Descriptor, HistoryBuilder, ImageConfigurationBuilder,
    ImageManifestBuilder, MediaType, Os, RootFsBuilder,
};
use oci_image::{sha256_digest, Layout, PlatformSpec};

/// Where busybox-static installs its binary on Debian.
pub const BUSYBOX: &str = "/bin/busybox";

/// The shell packed (with its libraries) when there is no static busybox.
pub const SHELL: &str = "/bin/sh";

/// The demo's command: shell builtins only (`read`, `echo`), so that it runs on either payload.
const SCRIPT: &str = "while IFS= read -r l; do echo \"$l\"; done </etc/motd; \
read -r h </proc/sys/kernel/hostname; echo \"hostname: $h\"; echo \"pid: $$\"; echo mounts:; \
while IFS= read -r l; do echo \"$l\"; done </proc/self/mounts";

/// Where the demo image's programs come from.
#[derive(Debug, Clone)]
pub struct DemoSource {
    /// A static busybox, used when it is one (default [`BUSYBOX`]).
    pub busybox: PathBuf,
    /// The shell packed with its libraries otherwise (default [`SHELL`]).
    pub shell: PathBuf,
}

impl Default for DemoSource {
    fn default() -> Self {
        Self {
            busybox: BUSYBOX.into(),
            shell: SHELL.into(),
        }
    }
}

/// What the demo image was built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// A static busybox and its applets.
    Busybox(PathBuf),
    /// The host's shell with its interpreter and libraries: `files` are the image paths.
    HostShell {
        /// The shell on the host.
        shell: PathBuf,
        /// The files packed, as absolute paths in the image.
        files: Vec<String>,
    },
}

/// Why the demo image cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Neither a static busybox nor a shell whose libraries could be found.
    #[error(
        "no program for the demo image: {busybox}: {busybox_why}; {shell}: {shell_why}. \
         Install busybox-static (apt-get install busybox-static) and run again"
    )]
    NoPayload {
        /// The busybox looked for.
        busybox: PathBuf,
        /// Why it cannot be used.
        busybox_why: String,
        /// The shell looked for.
        shell: PathBuf,
        /// Why it cannot be packed.
        shell_why: String,
    },
}

/// The ELF facts the payload needs: the interpreter and the libraries a program loads.
#[derive(Debug, Default)]
struct Elf {
    machine: u16,
    interp: Option<String>,
    needed: Vec<String>,
    runpath: Vec<String>,
}

/// Reads a 64-bit little-endian ELF file's machine, `PT_INTERP` and `DT_NEEDED`/`DT_RUNPATH`
/// (System V gABI, "Program Header" and "Dynamic Section").
fn parse_elf(b: &[u8]) -> std::result::Result<Elf, String> {
    let at = |o: usize, n: usize| -> std::result::Result<&[u8], String> {
        o.checked_add(n)
            .and_then(|end| b.get(o..end))
            .ok_or_else(|| "truncated ELF file".to_string())
    };
    let u16_at = |o: usize| at(o, 2).map(|x| u16::from_le_bytes([x[0], x[1]]));
    let u32_at = |o: usize| at(o, 4).map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]));
    let u64_at = |o: usize| at(o, 8).map(|x| u64::from_le_bytes(x.try_into().unwrap_or_default()));
    let cstr = |o: usize| -> std::result::Result<String, String> {
        let rest = b.get(o..).ok_or("string outside the file")?;
        let end = rest
            .iter()
            .position(|c| *c == 0)
            .ok_or("unterminated string")?;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    };
    if b.get(..4) != Some(b"\x7fELF") {
        return Err("not an ELF executable".into());
    }
    if b.get(4) != Some(&2) || b.get(5) != Some(&1) {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let mut elf = Elf {
        machine: u16_at(0x12)?,
        ..Elf::default()
    };
    let phoff = usize::try_from(u64_at(0x20)?).map_err(|e| e.to_string())?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    // (type, offset, vaddr, filesz) of each program header.
    let mut phdrs = Vec::with_capacity(phnum);
    for i in 0..phnum {
        let o = i
            .checked_mul(phentsize)
            .and_then(|x| x.checked_add(phoff))
            .ok_or("program headers outside the file")?;
        phdrs.push((u32_at(o)?, u64_at(o + 8)?, u64_at(o + 16)?, u64_at(o + 32)?));
    }
    const PT_LOAD: u32 = 1;
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    let to_usize = |v: u64| usize::try_from(v).map_err(|e| e.to_string());
    if let Some(&(_, off, _, _)) = phdrs.iter().find(|p| p.0 == PT_INTERP) {
        elf.interp = Some(cstr(to_usize(off)?)?);
    }
    let Some(&(_, dyn_off, _, dyn_size)) = phdrs.iter().find(|p| p.0 == PT_DYNAMIC) else {
        return Ok(elf);
    };
    let (mut strtab, mut needed, mut runpath) = (None, Vec::new(), Vec::new());
    for i in 0..to_usize(dyn_size)? / 16 {
        let o = to_usize(dyn_off)?
            .checked_add(i * 16)
            .ok_or("dynamic section outside the file")?;
        let (tag, val) = (u64_at(o)?, u64_at(o + 8)?);
        match tag {
            0 => break,                   // DT_NULL
            1 => needed.push(val),        // DT_NEEDED
            5 => strtab = Some(val),      // DT_STRTAB (an address)
            15 | 29 => runpath.push(val), // DT_RPATH, DT_RUNPATH
            _ => {}
        }
    }
    if needed.is_empty() && runpath.is_empty() {
        return Ok(elf);
    }
    let strtab = strtab.ok_or("a dynamic section without DT_STRTAB")?;
    // The string table's file offset, from the PT_LOAD segment that maps its address.
    let strtab = phdrs
        .iter()
        .find(|p| p.0 == PT_LOAD && p.2 <= strtab && strtab - p.2 < p.3)
        .and_then(|p| (strtab - p.2).checked_add(p.1))
        .ok_or("DT_STRTAB outside every PT_LOAD segment")?;
    for n in needed {
        elf.needed.push(cstr(to_usize(strtab.saturating_add(n))?)?);
    }
    for r in runpath {
        elf.runpath.extend(
            cstr(to_usize(strtab.saturating_add(r))?)?
                .split(':')
                .map(str::to_string),
        );
    }
    Ok(elf)
}

/// A static busybox's bytes, or why `path` is not one.
fn static_busybox(path: &Path) -> std::result::Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let elf = parse_elf(&bytes)?;
    if let Some(interp) = elf.interp {
        return Err(format!(
            "dynamically linked (interpreter {interp}), not busybox-static"
        ));
    }
    Ok(bytes)
}

/// The directories the dynamic loader searches by default: ld.so.conf's (and the files it
/// includes), then the built-in ones.
fn library_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut confs = vec![PathBuf::from("/etc/ld.so.conf")];
    if let Ok(rd) = std::fs::read_dir("/etc/ld.so.conf.d") {
        let mut more: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        more.sort();
        confs.extend(
            more.into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "conf")),
        );
    }
    for c in confs {
        let text = std::fs::read_to_string(c).unwrap_or_default();
        dirs.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| l.starts_with('/'))
                .map(PathBuf::from),
        );
    }
    dirs.extend(["/lib64", "/usr/lib64", "/lib", "/usr/lib"].map(PathBuf::from));
    dirs
}

/// Files for the image: (path in the image, without the leading `/`, bytes).
type Files = Vec<(String, Vec<u8>)>;

/// The host's shell and everything it loads: (path in the image, bytes) for the shell at
/// `bin/sh`, its ELF interpreter and its libraries (recursively), and the directories holding
/// the libraries (for `LD_LIBRARY_PATH`).
fn host_shell(shell: &Path) -> std::result::Result<(Files, Vec<String>), String> {
    let bytes = std::fs::read(shell).map_err(|e| e.to_string())?;
    let elf = parse_elf(&bytes)?;
    let mut files = vec![("bin/sh".to_string(), bytes)];
    let mut lib_dirs = BTreeSet::new();
    if let Some(interp) = &elf.interp {
        let b = std::fs::read(interp).map_err(|e| format!("its interpreter {interp}: {e}"))?;
        files.push((interp.trim_start_matches('/').to_string(), b));
    }
    let search = library_dirs();
    let mut seen = BTreeSet::new();
    let mut todo: Vec<(String, Vec<String>)> = elf
        .needed
        .iter()
        .map(|n| (n.clone(), elf.runpath.clone()))
        .collect();
    // The interpreter is loaded already, whatever name a library gives it.
    let interp_name = elf
        .interp
        .as_deref()
        .and_then(|i| Path::new(i).file_name())
        .map(|n| n.to_string_lossy().into_owned());
    while let Some((name, runpath)) = todo.pop() {
        if Some(&name) == interp_name.as_ref() || !seen.insert(name.clone()) {
            continue;
        }
        let found = runpath
            .iter()
            .map(PathBuf::from)
            .chain(search.iter().cloned())
            .find_map(|d| {
                let p = d.join(&name);
                let b = std::fs::read(&p).ok()?;
                let lib = parse_elf(&b).ok()?;
                (lib.machine == elf.machine).then_some((d, p, b, lib))
            });
        let Some((dir, path, b, lib)) = found else {
            return Err(format!("its library {name} is in none of {search:?}"));
        };
        lib_dirs.insert(dir.display().to_string());
        todo.extend(lib.needed.iter().map(|n| (n.clone(), lib.runpath.clone())));
        let image_path = path
            .display()
            .to_string()
            .trim_start_matches('/')
            .to_string();
        if !files.iter().any(|(p, _)| *p == image_path) {
            files.push((image_path, b));
        }
    }
    Ok((files, lib_dirs.into_iter().collect()))
}

/// Fixed timestamps keep the demo image byte-for-byte reproducible.
const MTIME: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const CREATED: &str = "2026-01-01T00:00:00Z";

/// The applets the demo links to busybox.
const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "hostname", "id", "mount", "ps", "uname", "sleep", "true", "false",
];

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

struct TarBuilder(tar::Builder<Vec<u8>>);

impl TarBuilder {
    fn new() -> Self {
        let mut b = tar::Builder::new(Vec::new());
        b.mode(tar::HeaderMode::Deterministic);
        Self(b)
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        h.set_size(size);
        h
    }

    fn dir(&mut self, path: &str, mode: u32) -> Result<()> {
        let mut h = Self::header(tar::EntryType::Directory, mode, 0);
        self.0.append_data(&mut h, path, std::io::empty())?;
        Ok(())
    }

    fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> Result<()> {
        let mut h = Self::header(tar::EntryType::Regular, mode, data.len() as u64);
        self.0.append_data(&mut h, path, data)?;
        Ok(())
    }

    fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0);
        self.0.append_link(&mut h, path, target)?;
        Ok(())
    }

    /// Finishes the tar and returns (gzip bytes, diff_id).
    fn finish(self) -> Result<(Vec<u8>, String)> {
        let tar = self.0.into_inner()?;
        let diff_id = sha256_digest(&tar).to_string();
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar)?;
        Ok((gz.finish()?, diff_id))
    }
}

/// Writes the demo image into the layout at `dir` (created if needed), tags it `demo`, and
/// returns the manifest's descriptor and what the image's programs came from.
///
/// Fails with [`DemoError::NoPayload`] before writing anything when `source` has neither a
/// static busybox nor a shell whose libraries can be found.
pub fn write_demo_image(dir: &Path, source: &DemoSource) -> Result<(Descriptor, Payload)> {
    let mut env = vec!["PATH=/bin".to_string()];
    let mut base = TarBuilder::new();
    let mut made = BTreeSet::new();
    for (d, mode) in [
        ("bin", 0o755),
        ("dev", 0o755),
        ("etc", 0o755),
        ("proc", 0o555),
        ("root", 0o700),
        ("sys", 0o555),
        ("tmp", 0o1777),
    ] {
        base.dir(d, mode)?;
        made.insert(d.to_string());
    }
    let payload = match static_busybox(&source.busybox) {
        Ok(busybox) => {
            base.file("bin/busybox", 0o755, &busybox)?;
            for applet in APPLETS {
                base.symlink(&format!("bin/{applet}"), "busybox")?;
            }
            Payload::Busybox(source.busybox.clone())
        }
        Err(busybox_why) => {
            let (files, lib_dirs) =
                host_shell(&source.shell).map_err(|shell_why| DemoError::NoPayload {
                    busybox: source.busybox.clone(),
                    busybox_why,
                    shell: source.shell.clone(),
                    shell_why,
                })?;
            for (path, bytes) in &files {
                // Parent directories first, each once.
                let mut parent = String::new();
                for part in path
                    .split('/')
                    .collect::<Vec<_>>()
                    .split_last()
                    .map_or(&[][..], |x| x.1)
                {
                    parent = if parent.is_empty() {
                        part.to_string()
                    } else {
                        format!("{parent}/{part}")
                    };
                    if made.insert(parent.clone()) {
                        base.dir(&parent, 0o755)?;
                    }
                }
                base.file(path, 0o755, bytes)?;
            }
            if !lib_dirs.is_empty() {
                env.push(format!("LD_LIBRARY_PATH={}", lib_dirs.join(":")));
            }
            Payload::HostShell {
                shell: source.shell.clone(),
                files: files.into_iter().map(|(p, _)| format!("/{p}")).collect(),
            }
        }
    };
    base.file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )?;
    base.file("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n")?;
    let (base_gz, base_diff) = base.finish()?;

    let mut top = TarBuilder::new();
    top.dir("etc", 0o755)?;
    top.file("etc/motd", 0o644, b"Hello from the ocibox demo image.\n")?;
    top.file("etc/hostname", 0o644, b"ocibox-demo\n")?;
    let (top_gz, top_diff) = top.finish()?;

    let layout = Layout::create(dir)?;
    let layers = vec![
        layout.put_blob(MediaType::ImageLayerGzip, &base_gz)?,
        layout.put_blob(MediaType::ImageLayerGzip, &top_gz)?,
    ];
    let host = PlatformSpec::host();
    let mut config = ImageConfigurationBuilder::default()
        .created(CREATED)
        .architecture(Arch::from(host.architecture.as_str()))
        .os(Os::from(host.os.as_str()))
        .config(
            ConfigBuilder::default()
                .env(env)
                .cmd(vec![
                    "/bin/sh".to_string(),
                    "-c".to_string(),
                    SCRIPT.to_string(),
                ])
                .working_dir("/")
                .build()?,
        )
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![base_diff, top_diff])
                .build()?,
        )
        .history(vec![
            HistoryBuilder::default()
                .created(CREATED)
                .created_by(match &payload {
                    Payload::Busybox(_) => "ocibox demo: busybox-static and /etc",
                    Payload::HostShell { .. } => {
                        "ocibox demo: the host's /bin/sh, its libraries and /etc"
                    }
                })
                .build()?,
            HistoryBuilder::default()
                .created(CREATED)
                .created_by("ocibox demo: motd and hostname")
                .build()?,
        ])
        .build()?;
    if !host.variant.is_empty() {
        config.set_variant(Some(host.variant.clone()));
    }
    let config = layout.put_json(MediaType::ImageConfig, &config)?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(layers)
        .build()?;
    let desc = layout.put_manifest(&manifest)?;
    layout.tag("demo", &desc)?;
    Ok((desc, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_shell_and_what_it_loads() {
        let (files, dirs) = host_shell(Path::new(SHELL)).unwrap();
        assert_eq!(files[0].0, "bin/sh");
        let sh = parse_elf(&files[0].1).unwrap();
        // Every library the shell names is packed, under a directory LD_LIBRARY_PATH lists.
        for n in &sh.needed {
            assert!(
                files.iter().any(|(p, _)| p.ends_with(&format!("/{n}"))
                    && dirs
                        .iter()
                        .any(|d| p.starts_with(d.trim_start_matches('/')))),
                "{n} in {:?}",
                files.iter().map(|f| &f.0).collect::<Vec<_>>()
            );
        }
        if let Some(i) = &sh.interp {
            assert!(files.iter().any(|(p, _)| format!("/{p}") == *i), "{i}");
        }
    }

    #[test]
    fn a_dynamic_busybox_is_not_taken_for_a_static_one() {
        let why = static_busybox(Path::new(SHELL)).unwrap_err();
        assert!(why.contains("dynamically linked"), "{why}");
        let why = static_busybox(Path::new("/nonexistent/busybox")).unwrap_err();
        assert!(why.contains("No such file"), "{why}");
    }

    #[test]
    fn without_any_payload_nothing_is_written_and_the_error_says_what_to_install() {
        let tmp = tempfile::tempdir().unwrap();
        let not_elf = tmp.path().join("sh");
        std::fs::write(&not_elf, "#!/bin/false\n").unwrap();
        let dir = tmp.path().join("layout");
        let err = write_demo_image(
            &dir,
            &DemoSource {
                busybox: tmp.path().join("busybox"),
                shell: not_elf,
            },
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("apt-get install busybox-static"), "{msg}");
        assert!(msg.contains("not an ELF executable"), "{msg}");
        assert!(!dir.exists(), "no layout is written");
    }

    #[test]
    fn elf_parsing_never_panics_on_truncated_input() {
        let sh = std::fs::read(SHELL).unwrap();
        for n in [0, 4, 6, 0x20, 0x40, 100, 1000] {
            let _ = parse_elf(&sh[..n.min(sh.len())]);
        }
        let mut bad = sh.clone();
        bad[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(parse_elf(&bad).is_err());
    }
}
