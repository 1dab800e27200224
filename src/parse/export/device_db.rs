//! Device tables of profiler.db, written only when the capture holds device data:
//! `Api`, `Kernel`, `Communication`, `Mstx` (epoch ns; columns after CANN_ABI §3.9, plus the
//! trace `pid`), `host_usage` / `npu_usage` with their curve views, and the device-time columns
//! added to `forward` and `batch` (same rows, same order as forward.csv / batch.csv).

use super::bulk::{bulk_row, Bulk};
use rusqlite::{params, Connection};

use crate::parse::build::Model;
use crate::parse::model::device::{ActKind, DevTime};
use crate::parse::time;

const TABLES: &str = "
CREATE TABLE Api(name TEXT, start INTEGER, \"end\" INTEGER, processId INTEGER, threadId INTEGER, correlationId INTEGER, pid TEXT);
CREATE TABLE Kernel(type TEXT, name TEXT, start INTEGER, \"end\" INTEGER, deviceId INTEGER, streamId INTEGER, correlationId INTEGER, pid TEXT, api_name TEXT);
CREATE TABLE Communication(name TEXT, start INTEGER, \"end\" INTEGER, deviceId INTEGER, streamId INTEGER, dataCount INTEGER, dataType TEXT, commGroupName TEXT, algType TEXT, correlationId INTEGER, pid TEXT);
CREATE TABLE Mstx(pid TEXT, deviceId INTEGER, streamId INTEGER, type TEXT, start INTEGER, \"end\" INTEGER, message TEXT);
CREATE TABLE host_usage(timestamp INTEGER, datetime TEXT, pid TEXT, hostname TEXT, name TEXT, value REAL);
CREATE TABLE npu_usage(timestamp INTEGER, datetime TEXT, pid TEXT, hostname TEXT, device_id INTEGER, name TEXT, value REAL);
CREATE VIEW Host_Cpu_Usage_curve AS SELECT datetime AS time, hostname, value AS cpu_percent FROM host_usage WHERE name = 'cpu_percent';
CREATE VIEW Host_Memory_Usage_curve AS SELECT datetime AS time, hostname, value AS mem_percent FROM host_usage WHERE name = 'mem_percent';
CREATE VIEW Npu_Memory_Usage_curve AS SELECT datetime AS time, hostname, device_id, value AS mem_percent FROM npu_usage WHERE name = 'mem_percent';
";

/// Column names in SQL (the CSV names without the unit suffix).
const SQL_COLUMNS: [&str; 4] = ["device_kernels", "kernel_time", "communication_time", "device_busy_time"];

fn set_times(c: &Connection, table: &str, rows: &[Option<DevTime>]) -> rusqlite::Result<()> {
    for (n, ty) in SQL_COLUMNS.iter().zip(["INTEGER", "REAL", "REAL", "REAL"]) {
        c.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {n} {ty}"))?;
    }
    let mut up =
        c.prepare(&format!("UPDATE {table} SET {}=?1, {}=?2, {}=?3, {}=?4 WHERE rowid = ?5", SQL_COLUMNS[0], SQL_COLUMNS[1], SQL_COLUMNS[2], SQL_COLUMNS[3]))?;
    for (i, t) in rows.iter().enumerate() {
        if let Some(t) = t {
            up.execute(params![t.kernels as i64, t.kernel_ns as f64 / 1e6, t.comm_ns as f64 / 1e6, t.busy_ns as f64 / 1e6, i as i64 + 1])?;
        }
    }
    Ok(())
}

/// Write the device tables (nothing when the capture has no device data).
pub fn write(c: &Connection, m: &Model) -> rusqlite::Result<()> {
    let d = &m.device;
    if d.acts.is_empty() && d.apis.is_empty() && d.usage.is_empty() {
        return Ok(());
    }
    c.execute_batch(TABLES)?;
    let pid = |p: usize| m.procs[p].trace_pid.to_string();
    {
        let mut api = Bulk::values(c, "Api", 7)?;
        for a in &d.apis {
            api.row(bulk_row![a.name, a.start, a.end, a.pid.unwrap_or(m.procs[a.proc].pid as i64), a.tid, a.corr, pid(a.proc)])?;
        }
        api.finish()?;
        let mut k = Bulk::values(c, "Kernel", 9)?;
        let mut cm = Bulk::values(c, "Communication", 11)?;
        let mut mx = Bulk::values(c, "Mstx", 7)?;
        for (a, api) in d.acts.iter().zip(&d.api_of) {
            match a.kind {
                ActKind::Kernel => {
                    let api_name = api.map(|i| d.apis[i].name.as_str());
                    k.row(bulk_row![a.ty, a.name, a.start, a.end, a.device, a.stream, a.corr, pid(a.proc), api_name])?;
                }
                ActKind::Communication => {
                    let ci = a.comm.clone().unwrap_or_default();
                    cm.row(bulk_row![a.name, a.start, a.end, a.device, a.stream, ci.count, ci.data_type, ci.comm_name, ci.alg_type, a.corr, pid(a.proc)])?;
                }
                ActKind::Marker => {
                    mx.row(bulk_row![pid(a.proc), a.device, a.stream, a.ty, a.start, a.end, a.name])?;
                }
            }
        }
        k.finish()?;
        cm.finish()?;
        mx.finish()?;
        let mut hu = c.prepare("INSERT INTO host_usage VALUES (?1,?2,?3,?4,?5,?6)")?;
        let mut nu = c.prepare("INSERT INTO npu_usage VALUES (?1,?2,?3,?4,?5,?6,?7)")?;
        for u in &d.usage {
            let p = &m.procs[u.proc];
            let dt = time::datetime(u.ts, p.offset_s);
            if u.npu {
                nu.execute(params![u.ts, dt, pid(u.proc), p.hostname, u.device, u.name, u.value])?;
            } else {
                hu.execute(params![u.ts, dt, pid(u.proc), p.hostname, u.name, u.value])?;
            }
        }
    }
    for (name, view, en) in [
        ("Kernel", "Kernel", "Device kernels (epoch ns)"),
        ("Api", "Api", "Host API calls (epoch ns)"),
        ("Communication", "Communication", "Collective communication ops (epoch ns)"),
    ] {
        c.execute("INSERT INTO data_table(name, view_name) VALUES (?1, ?2)", params![name, view])?;
        c.execute("INSERT OR REPLACE INTO translate VALUES (?1, ?2, ?2)", params![view, en])?;
    }
    if d.has_activity() {
        set_times(c, "forward", &d.forward)?;
        set_times(c, "batch", &d.batch)?;
    }
    Ok(())
}
