//! The control plane: the config file, its watcher, and the per-process control thread.

pub mod config;
pub mod watch;
