//! Progress for pulls and unpacks: a single line redrawn in place on a terminal, plain lines
//! (one per finished blob) otherwise, always on stderr so stdout stays the program's output.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use oci_image::registry::Progress;

/// Totals of a pull, redrawn at most every 100 ms on a terminal.
pub struct PullProgress {
    tty: bool,
    state: Mutex<PullState>,
}

#[derive(Default)]
struct PullState {
    total: u64,
    done: u64,
    blobs: usize,
    finished: usize,
    last: Option<Instant>,
}

impl Default for PullProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl PullProgress {
    /// A reporter for stderr.
    pub fn new() -> Self {
        Self {
            tty: std::io::stderr().is_terminal(),
            state: Mutex::new(PullState::default()),
        }
    }

    /// Feeds one event from the registry client.
    pub fn event(&self, p: &Progress) {
        let Ok(mut s) = self.state.lock() else { return };
        match p {
            Progress::BlobStarted { size, offset, .. } => {
                s.total += size;
                s.done += offset;
                s.blobs += 1;
            }
            Progress::BlobBytes { bytes, .. } => s.done += bytes,
            Progress::BlobDone { digest, size } => {
                s.finished += 1;
                if !self.tty {
                    eprintln!("pulled {digest} ({size} bytes)");
                }
            }
            Progress::BlobSkipped { digest, .. } if !self.tty => eprintln!("present {digest}"),
            _ => {}
        }
        if self.tty {
            let due = s
                .last
                .is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
            if due || s.finished == s.blobs {
                s.last = Some(Instant::now());
                let mut e = std::io::stderr();
                let _ = write!(
                    e,
                    "\r\x1b[Kpulling: {:.1}/{:.1} MiB, {}/{} blobs",
                    s.done as f64 / 1048576.0,
                    s.total as f64 / 1048576.0,
                    s.finished,
                    s.blobs
                );
                let _ = e.flush();
            }
        }
    }

    /// Ends the line on a terminal.
    pub fn finish(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

/// An unpack progress callback for [`oci_unpack::Unpacker::on_progress`]: a redrawn line on a
/// terminal, nothing otherwise.
pub fn unpack_reporter() -> Option<impl Fn(oci_unpack::Progress) + Send + Sync + 'static> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let last = Mutex::new(None::<Instant>);
    Some(move |p: oci_unpack::Progress| {
        let Ok(mut l) = last.lock() else { return };
        if l.is_none_or(|t: Instant| t.elapsed() >= Duration::from_millis(100)) {
            *l = Some(Instant::now());
            eprint!(
                "\r\x1b[Kunpacking: {:.1} MiB, {} entries",
                p.bytes_read as f64 / 1048576.0,
                p.entries
            );
        }
    })
}
