//! Shared code of the example binaries (`ocibox`).

pub mod container;
pub mod demo;
pub mod progress;
pub mod signals;
pub mod terminal;
