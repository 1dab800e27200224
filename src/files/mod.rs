//! On-disk files: safe creation, the run directory, the per-process meta file.

pub mod fs;
pub mod meta;
pub mod rundir;
