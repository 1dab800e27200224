//! The parse model: normalised events, requests, batches, KV cache, forward passes, processes,
//! and the statistics over them. Built from per-process partial results merged in any order.

pub mod attrs;
pub mod batch;
pub mod batch_name;
pub mod device;
pub mod event;
pub mod fast_attrs;
pub mod flows;
pub mod forward;
pub mod iter_ends;
pub mod kv;
pub mod names;
pub mod ns;
pub mod opt_f64;
pub mod partial;
pub mod process;
pub mod request;
pub mod rid;
pub mod spill;
pub mod stats;
