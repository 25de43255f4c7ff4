//! Progress for pulls and unpacks, drawn with `indicatif` on stderr when it is a terminal and
//! `--quiet` is not given; nothing at all otherwise (a pipe or a file gets no progress lines).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use oci_image::registry::Progress;

/// Whether progress is drawn: stderr is a terminal and the user did not ask for quiet.
pub fn enabled(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

fn bytes_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix:<20} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

/// A pull's progress: one bar per blob being transferred, with its bytes.
pub struct PullProgress {
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl PullProgress {
    /// A reporter on stderr, drawing only when [`enabled`].
    pub fn new(quiet: bool) -> Self {
        Self {
            multi: enabled(quiet)
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            bars: Mutex::new(HashMap::new()),
        }
    }

    /// Feeds one event from the registry client.
    pub fn event(&self, p: &Progress) {
        let Some(multi) = &self.multi else { return };
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        let short = |d: &oci_image::spec::image::Digest| {
            let s = d.to_string();
            let hex = s.split_once(':').map_or(s.as_str(), |x| x.1);
            hex[..hex.len().min(12)].to_string()
        };
        match p {
            Progress::BlobStarted {
                digest,
                size,
                offset,
            } => {
                let bar = multi.add(ProgressBar::new(*size));
                bar.set_style(bytes_style());
                bar.set_prefix(format!("blob {}", short(digest)));
                bar.set_position(*offset);
                bars.insert(digest.to_string(), bar);
            }
            Progress::BlobBytes { digest, bytes } => {
                if let Some(bar) = bars.get(&digest.to_string()) {
                    bar.inc(*bytes);
                }
            }
            Progress::BlobDone { digest, .. } => {
                if let Some(bar) = bars.remove(&digest.to_string()) {
                    bar.finish_with_message("done");
                }
            }
            Progress::BlobSkipped { digest, size } => {
                let bar = multi.add(ProgressBar::new(*size));
                bar.set_style(bytes_style());
                bar.set_prefix(format!("blob {}", short(digest)));
                bar.set_position(*size);
                bar.finish_with_message("already present");
            }
            _ => {}
        }
    }

    /// Ends the drawing (bars of failed transfers are abandoned where they stopped).
    pub fn finish(&self) {
        if let Ok(mut bars) = self.bars.lock() {
            for (_, bar) in bars.drain() {
                bar.abandon();
            }
        }
    }
}

/// An unpack's progress: the layer bytes read (compressed, as stored) out of their total, and
/// the entries applied.
pub struct UnpackProgress {
    bar: Option<ProgressBar>,
}

impl UnpackProgress {
    /// A bar for `total` bytes of layers, drawn only when [`enabled`].
    pub fn new(quiet: bool, total: u64) -> Self {
        let bar = enabled(quiet).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(bytes_style());
            bar.set_prefix("unpacking");
            bar
        });
        Self { bar }
    }

    /// The callback for [`oci_unpack::Unpacker::on_progress`], when drawing.
    pub fn callback(&self) -> Option<impl Fn(oci_unpack::Progress) + Send + Sync + 'static> {
        let bar = self.bar.clone()?;
        Some(move |p: oci_unpack::Progress| {
            bar.set_position(p.bytes_read);
            bar.set_message(format!("{} entries", p.entries));
        })
    }

    /// Ends the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_with_message("done");
        }
    }
}
