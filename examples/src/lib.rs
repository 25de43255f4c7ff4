//! Shared code of the example binaries (`ocibox`).

pub mod demo;
