//! `oci-sandbox`: see the workspace README; this crate is not written yet.
