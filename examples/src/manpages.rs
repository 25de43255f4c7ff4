//! Man pages generated from the binaries' clap definitions.

use std::path::{Path, PathBuf};

/// Writes `NAME.1` and one `NAME-SUBCOMMAND.1` per subcommand of `cmd` into `dir` (created if
/// needed); returns the files written.
pub fn write(cmd: clap::Command, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let name = cmd.get_name().to_string();
    clap_mangen::generate_to(cmd, dir)?;
    let mut pages: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.ends_with(".1")
                    && (n == format!("{name}.1") || n.starts_with(&format!("{name}-")))
            })
        })
        .collect();
    pages.sort();
    Ok(pages)
}
