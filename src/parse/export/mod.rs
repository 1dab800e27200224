//! Exporters: one file per output (see docs/OUTPUTS.md).

pub mod batch_csv;
pub mod bulk;
pub mod chrome;
pub mod csv;
pub mod db;
pub mod db_part;
pub mod device_cols;
pub mod device_db;
pub mod forward_csv;
pub mod kvcache_csv;
pub mod losses;
pub mod perfetto;
pub mod request_csv;
pub mod request_status;
pub mod span_info;
pub mod spec_decode_csv;
pub mod summary;
pub mod trace;
