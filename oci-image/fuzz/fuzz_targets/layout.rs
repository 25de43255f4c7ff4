//! Whole layouts: the input is NUL-separated chunks; chunk 0 is index.json and every chunk is
//! also stored as a blob under its sha256. `$N` in a chunk becomes the digest of chunk N and
//! `#N` its size (N > the chunk's own index), so the fuzzer can build linked documents.
//! Resolution and validation must never panic, loop, or read outside the layout.
#![no_main]

use libfuzzer_sys::fuzz_target;

fn substitute(chunk: &[u8], done: &[(String, usize)], offset: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(chunk.len());
    let mut i = 0;
    while i < chunk.len() {
        let c = chunk[i];
        if (c == b'$' || c == b'#') && i + 1 < chunk.len() && chunk[i + 1].is_ascii_digit() {
            let n = (chunk[i + 1] - b'0') as usize;
            if n >= offset && n - offset < done.len() {
                let (digest, size) = &done[n - offset];
                if c == b'$' {
                    out.extend_from_slice(digest.as_bytes());
                } else {
                    out.extend_from_slice(size.to_string().as_bytes());
                }
                i += 2;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let chunks: Vec<&[u8]> = data.split(|&b| b == 0).take(10).collect();
    let dir = tempfile::Builder::new().tempdir_in("/dev/shm").unwrap();
    let layout = oci_image::Layout::create(dir.path()).unwrap();
    // Process from the last chunk to the first so references point "down".
    let mut done: Vec<(String, usize)> = Vec::new();
    let mut contents: Vec<Vec<u8>> = Vec::new();
    for (i, chunk) in chunks.iter().enumerate().rev() {
        let bytes = substitute(chunk, &done, i + 1);
        let d = oci_image::sha256_digest(&bytes);
        std::fs::write(layout.blob_path(&d).unwrap(), &bytes).unwrap();
        done.insert(0, (d.to_string(), bytes.len()));
        contents.insert(0, bytes);
    }
    if let Some(index) = contents.first() {
        std::fs::write(dir.path().join("index.json"), index).unwrap();
    }
    let _ = layout.tags();
    for reference in ["", "latest", "t"] {
        let _ = layout.resolve(reference, None);
        let _ = layout.resolve(reference, Some(&"linux/arm64".parse().unwrap()));
    }
    let _ = layout.validate();
    if let Some((d, _)) = done.get(1) {
        if let Ok(d) = oci_image::parse_digest(d) {
            let _ = layout.referrers(&d, None);
        }
    }
    let _ = layout.reachable();
});
