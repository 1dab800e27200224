//! The per-process mmap ring: segment files of fixed-size chunks, written lock-free.

pub mod segment;
pub mod writer;

pub use writer::{Geometry, Ring};
