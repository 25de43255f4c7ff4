//! Shared code of the example binaries (`ocibox`).

pub mod container;
pub mod demo;
pub mod manpages;
pub mod progress;
pub mod report;
pub mod signals;
pub mod terminal;
