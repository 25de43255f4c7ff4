//! `oci-runtime`: see the workspace README; this crate is not written yet.
