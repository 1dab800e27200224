//! `profiler.db` (SQLite, 0640): timeline tables (`process`, `thread`, `slice`, `counter`,
//! `flow`; ns) written by a dedicated thread while the processes are read, then the analysis
//! tables and the curve views for MindStudio Insight and Grafana's SQLite datasource.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use rusqlite::{params, Connection};

use super::bulk::{bulk_row, Bulk};

use super::trace::DbRows;
use crate::parse::build::Model;
use crate::parse::model::stats::percentile;
use crate::parse::time;

const SCHEMA: &str = "
PRAGMA page_size=65536;
PRAGMA journal_mode=OFF;
PRAGMA synchronous=OFF;
CREATE TABLE data_table(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, view_name TEXT);
CREATE TABLE translate(key TEXT PRIMARY KEY, value_en TEXT, value_zh TEXT);
CREATE TABLE process(pid TEXT PRIMARY KEY, process_name TEXT, label TEXT, process_sort_index INTEGER);
CREATE TABLE thread(track_id INTEGER PRIMARY KEY, tid TEXT, pid TEXT, thread_name TEXT, thread_sort_index INTEGER);
CREATE TABLE slice(id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp INTEGER, duration INTEGER, name TEXT, depth INTEGER, track_id INTEGER, cat TEXT, args TEXT, cname TEXT, end_time INTEGER, flag_id TEXT);
CREATE TABLE counter(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, pid TEXT, timestamp INTEGER, cat TEXT, args TEXT);
CREATE TABLE flow(id INTEGER PRIMARY KEY AUTOINCREMENT, flow_id TEXT, name TEXT, cat TEXT, track_id INTEGER, timestamp INTEGER, type TEXT);
";

/// The `slice` table's multi-row insert: (ts, dur, name, track, cat, args, end).
fn slices(c: &Connection) -> rusqlite::Result<Bulk<'_>> {
    Bulk::new(
        c,
        "INSERT INTO slice(timestamp, duration, name, depth, track_id, cat, args, cname, end_time, flag_id) VALUES ",
        "(?1, ?2, ?3, 0, ?4, ?5, ?6, NULL, ?7, NULL)",
    )
}

/// The `counter` table's multi-row insert: (name, pid, ts, cat, args).
fn counters(c: &Connection) -> rusqlite::Result<Bulk<'_>> {
    Bulk::new(c, "INSERT INTO counter(name, pid, timestamp, cat, args) VALUES ", "(?1, ?2, ?3, ?4, ?5)")
}

struct Tracks {
    /// Track id by pid, then by tid (or counter name).
    ids: HashMap<u64, HashMap<String, i64>>,
    rows: Vec<(i64, u64, String, String)>,
}

impl Tracks {
    fn id(&mut self, pid: u64, tid: &str, cat: &str) -> i64 {
        let by_tid = self.ids.entry(pid).or_default();
        if let Some(&i) = by_tid.get(tid) {
            return i;
        }
        let i = self.rows.len() as i64 + 1;
        by_tid.insert(tid.to_string(), i);
        self.rows.push((i, pid, tid.to_string(), cat.to_string()));
        i
    }
}

/// The profiler.db writer.
pub struct Db {
    tx: SyncSender<DbRows>,
    worker: JoinHandle<rusqlite::Result<(Connection, Tracks)>>,
    path: PathBuf,
}

fn receive(conn: Connection, rx: Receiver<DbRows>) -> rusqlite::Result<(Connection, Tracks)> {
    let mut tracks = Tracks { ids: HashMap::new(), rows: Vec::new() };
    conn.execute_batch("BEGIN")?;
    {
        let (mut slice, mut counter) = (slices(&conn)?, counters(&conn)?);
        for msg in rx {
            match msg {
                DbRows::Slices(v) => {
                    for s in v {
                        let t = tracks.id(s.pid, &s.tid, &s.cat);
                        slice.row([s.ts.into(), s.dur.into(), s.name.into(), t.into(), s.cat.into(), s.args.into(), (s.ts + s.dur).into()])?;
                    }
                }
                DbRows::Counters(v) => {
                    for c in v {
                        tracks.id(c.pid, &c.name, &c.cat);
                        counter.row([c.name.into(), c.pid.to_string().into(), c.ts.into(), c.cat.into(), c.args.into()])?;
                    }
                }
            }
        }
        slice.finish()?;
        counter.finish()?;
    }
    conn.execute_batch("COMMIT")?;
    Ok((conn, tracks))
}

impl Db {
    /// Create the database (replacing any old file) and start the timeline writer.
    pub fn start(path: &Path) -> rusqlite::Result<Db> {
        let _ = std::fs::remove_file(path);
        drop(crate::parse::output::create_file(path).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?);
        let conn = Connection::open(path)?;
        conn.execute_batch(SCHEMA)?;
        let (tx, rx) = sync_channel(16);
        let worker = std::thread::Builder::new()
            .name("profiler.db".into())
            .spawn(move || receive(conn, rx))
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Db { tx, worker, path: path.to_path_buf() })
    }

    /// A sender for a process's trace writer.
    pub fn sender(&self) -> SyncSender<DbRows> {
        self.tx.clone()
    }

    /// Wait for the rows sent, insert the parts' spill files in order (and remove them), then
    /// write process/thread/flow rows, the analysis tables and the views.
    pub fn finish(self, m: &Model, parts: &[PathBuf]) -> rusqlite::Result<()> {
        drop(self.tx);
        let (conn, mut tracks) = self.worker.join().map_err(|_| rusqlite::Error::InvalidQuery)??;
        conn.execute_batch("BEGIN")?;
        {
            let (mut slice, mut counter) = (slices(&conn)?, counters(&conn)?);
            for p in parts {
                let row = |r: &super::db_part::Row<'_>| -> rusqlite::Result<()> {
                    if r.slice {
                        let t = tracks.id(r.pid, r.tid, r.cat);
                        slice.row(bulk_row![r.ts, r.dur, r.name, t, r.cat, r.args, r.ts + r.dur])
                    } else {
                        tracks.id(r.pid, r.name, r.cat);
                        counter.row(bulk_row![r.name, r.pid.to_string(), r.ts, r.cat, r.args])
                    }
                };
                super::db_part::read(p, row, |e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
                let _ = std::fs::remove_file(p);
            }
            slice.finish()?;
            counter.finish()?;
        }
        crate::parse::stage("profiler.db: timeline slices in");
        timeline(&conn, m, &mut tracks)?;
        crate::parse::stage("profiler.db: flows in");
        analysis(&conn, m)?;
        crate::parse::stage("profiler.db: analysis tables in");
        super::device_db::write(&conn, m)?;
        conn.execute_batch("COMMIT")?;
        drop(conn);
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o640));
        Ok(())
    }
}

fn timeline(c: &Connection, m: &Model, tracks: &mut Tracks) -> rusqlite::Result<()> {
    for (rank, &i) in super::chrome::process_order(m).iter().enumerate() {
        c.execute(
            "INSERT INTO process VALUES (?1, ?2, ?3, ?4)",
            params![m.procs[i].trace_pid.to_string(), super::chrome::process_name(m, i), super::chrome::label(m, i), rank as i64],
        )?;
    }
    // Flow rows need the track of (pid, integer tid): looked up once per thread.
    let mut names: HashMap<(u64, u32), (&str, &str)> = HashMap::new();
    for (i, ts) in m.threads.iter().enumerate() {
        for t in ts {
            names.insert((m.procs[i].trace_pid, t.tid), (t.name.as_str(), t.domain.as_str()));
        }
    }
    let mut track_of: HashMap<(u64, u32), i64> = HashMap::new();
    {
        // flow_id, name and cat all come from the one bound id.
        let mut f = Bulk::new(c, "INSERT INTO flow(flow_id, name, cat, track_id, timestamp, type) VALUES ", "(?1, 'flow_' || ?1, ?1, ?2, ?3, ?4)")?;
        m.for_each_flow_point(
            |rid, p, ph| {
                let t = *track_of.entry((p.pid, p.tid)).or_insert_with(|| {
                    let (n, d) = names.get(&(p.pid, p.tid)).copied().unwrap_or_default();
                    tracks.id(p.pid, n, d)
                });
                f.row(bulk_row![rid, t, p.ts, ph])
            },
            |e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
        )?;
        f.finish()?;
    }
    let mut th = c.prepare("INSERT INTO thread VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for (id, pid, tid, cat) in &tracks.rows {
        th.execute(params![id, tid, pid.to_string(), tid, super::chrome::thread_sort_index(cat)])?;
    }
    Ok(())
}

fn register(c: &Connection, name: &str, view: &str, en: &str) -> rusqlite::Result<()> {
    c.execute("INSERT INTO data_table(name, view_name) VALUES (?1, ?2)", params![name, view])?;
    c.execute("INSERT OR REPLACE INTO translate VALUES (?1, ?2, ?2)", params![view, en])?;
    Ok(())
}

fn f(s: &str) -> Option<f64> {
    s.parse().ok()
}

fn analysis(c: &Connection, m: &Model) -> rusqlite::Result<()> {
    // request
    c.execute_batch(
        "CREATE TABLE request(http_rid TEXT, start_datetime TEXT, recv_token_size REAL, reply_token_size REAL, execution_time REAL, queue_wait_time REAL, first_token_latency REAL, cache_hit_rate REAL, \"start_time(ms)\" INTEGER);
         CREATE VIEW request_data AS SELECT http_rid, start_datetime, recv_token_size, reply_token_size, execution_time AS \"execution_time(ms)\", queue_wait_time AS \"queue_wait_time(ms)\", first_token_latency AS \"first_token_latency(ms)\", cache_hit_rate, \"start_time(ms)\" FROM request;",
    )?;
    {
        let mut ins = Bulk::values(c, "request", 9)?;
        for r in super::request_csv::rows(m) {
            ins.row(bulk_row![r[0], r[1], f(&r[2]), f(&r[3]), f(&r[4]), f(&r[5]), f(&r[6]), f(&r[7]), r[8].parse::<i64>().ok()])?;
        }
        ins.finish()?;
    }
    register(c, "request", "request_data", "Per-request latency and token counts")?;

    // batch, batch_exec, batch_req
    c.execute_batch(
        "CREATE TABLE batch(name TEXT, res_list TEXT, start_datetime TEXT, end_datetime TEXT, during_time REAL, batch_type TEXT, prof_id TEXT, batch_size REAL,
            total_blocks REAL, used_blocks REAL, free_blocks REAL, blocks_allocated REAL, blocks_freed REAL, kvcache_usage_rate REAL,
            prefill_batch_size INTEGER, decode_batch_size INTEGER, prefill_scheduled_tokens REAL, decode_scheduled_tokens REAL, total_scheduled_tokens REAL, dp_rank INTEGER,
            accepted_ratio REAL, accepted_ratio_per_pos TEXT, start_time REAL, end_time REAL);
         CREATE VIEW batch_info AS SELECT name, res_list, start_datetime, end_datetime, during_time AS \"during_time(ms)\", batch_type, prof_id, batch_size, total_blocks, used_blocks, free_blocks, blocks_allocated, blocks_freed, kvcache_usage_rate, prefill_batch_size, decode_batch_size, prefill_scheduled_tokens, decode_scheduled_tokens, total_scheduled_tokens, dp_rank, accepted_ratio, accepted_ratio_per_pos, start_time AS \"start_time(ms)\", end_time AS \"end_time(ms)\" FROM batch;
         CREATE TABLE batch_exec(batch_id INTEGER, event TEXT, pid TEXT, start REAL, \"end\" REAL);
         CREATE TABLE batch_req(batch_id INTEGER, req_id INTEGER, rid TEXT, iter INTEGER, block INTEGER);",
    )?;
    let sched = m.sched_name;
    c.execute_batch(&format!(
        "CREATE VIEW Batch_Size_curve AS SELECT ROW_NUMBER() OVER (ORDER BY start_time) - 1 AS batch_id, batch_size AS total_batch_size, prefill_batch_size, decode_batch_size FROM batch WHERE name = '{sched}';
         CREATE VIEW Batch_Token_curve AS SELECT ROW_NUMBER() OVER (ORDER BY start_time) - 1 AS batch_id, total_scheduled_tokens, prefill_scheduled_tokens, decode_scheduled_tokens FROM batch WHERE name = '{sched}';"
    ))?;
    {
        let mut ins = Bulk::values(c, "batch", 24)?;
        let mut ex = Bulk::values(c, "batch_exec", 5)?;
        let mut rq = Bulk::values(c, "batch_req", 5)?;
        let mut batch_id: i64 = -1;
        for b in &m.batches {
            let p = &m.procs[b.proc as usize];
            let k = if b.name == "specDecoding" { Default::default() } else { b.kv_cols(&m.kv).unwrap_or_default() };
            let (ratio, per) = if b.name == "specDecoding" { b.spec_ratios() } else { (None, None) };
            let entries = crate::parse::model::spill::entries_of(&m.spill, b);
            let mut res_list = String::with_capacity(16 + entries.len() * 48);
            crate::parse::model::rid::Rids::write_json(&mut res_list, &entries, b.dicts, &m.map);
            ins.row(bulk_row![
                b.name.as_str(),
                res_list,
                time::datetime(b.start, p.offset_s),
                time::datetime(b.end, p.offset_s),
                b.dur() as f64 / 1e6,
                b.batch_type(),
                p.prof_id,
                b.batch_size(),
                k.total,
                k.used,
                k.free,
                k.allocated,
                k.freed,
                k.rate,
                b.pd_size.0 as i64,
                b.pd_size.1 as i64,
                b.pd_tokens.0,
                b.pd_tokens.1,
                b.pd_tokens.0 + b.pd_tokens.1,
                p.dp_rank,
                ratio,
                per.map(|v| v.to_string()),
                b.start as f64 / 1e6,
                b.end as f64 / 1e6
            ])?;
            if b.name == sched {
                batch_id += 1;
                for (i, e) in entries.iter().enumerate() {
                    rq.row(bulk_row![batch_id, i as i64, m.map.resolve(&e.rid), e.iter, Option::<i64>::None])?;
                }
            }
            ex.row(bulk_row![batch_id.max(0), b.name.as_str(), p.trace_pid.to_string(), b.start as f64 / 1e3, b.end as f64 / 1e3])?;
        }
        ins.finish()?;
        ex.finish()?;
        rq.finish()?;
    }
    register(c, "batch", "batch_info", "Batches: composition, KV usage, timing")?;

    // forward
    c.execute_batch(
        "CREATE TABLE forward(name TEXT, relative_start_time REAL, start_datetime TEXT, end_datetime TEXT, during_time REAL, bubble_time REAL, batch_size REAL, batch_type TEXT, forward_iter INTEGER, dp_rank TEXT, prof_id TEXT, hostname TEXT, start_time REAL, end_time REAL);
         CREATE VIEW forward_info AS SELECT name, relative_start_time AS \"relative_start_time(ms)\", start_datetime, end_datetime, during_time AS \"during_time(ms)\", bubble_time AS \"bubble_time(ms)\", batch_size, batch_type, forward_iter, dp_rank, prof_id, hostname, start_time AS \"start_time(ms)\", end_time AS \"end_time(ms)\" FROM forward;
         CREATE TABLE data_link(source_name TEXT, target_table TEXT, target_name TEXT);
         INSERT INTO data_link VALUES ('rid', 'request', 'http_rid');",
    )?;
    {
        let mut ins = Bulk::values(c, "forward", 14)?;
        for fw in &m.forwards {
            let r = super::forward_csv::cells(m, fw);
            ins.row(bulk_row![r[0], f(&r[1]), r[2], r[3], f(&r[4]), f(&r[5]), f(&r[6]), r[7], fw.iter as i64, r[9], r[10], r[11], f(&r[12]), f(&r[13])])?;
        }
        ins.finish()?;
    }
    register(c, "forward", "forward_info", "Forward passes and bubbles")?;

    // kvcache
    c.execute_batch(
        "CREATE TABLE kvcache(name TEXT, start_time TEXT, total_blocks REAL, used_blocks REAL, free_blocks REAL, blocks_allocated REAL, blocks_freed REAL, kvcache_usage_rate REAL, pid TEXT, dp_rank INTEGER);
         CREATE VIEW kvcache_usage AS SELECT name, start_time, total_blocks, used_blocks, free_blocks, blocks_allocated, blocks_freed, kvcache_usage_rate FROM kvcache;
         CREATE VIEW Kvcache_Usage_Percent_curve AS SELECT substr(start_time, 1, 10) || ' ' || substr(start_time, 12, 8) || '.' || substr(start_time, 21, 6) AS datetime, kvcache_usage_rate * 100 AS kvcache_usage_percent FROM kvcache WHERE kvcache_usage_rate IS NOT NULL;",
    )?;
    {
        let mut ins = Bulk::values(c, "kvcache", 10)?;
        for k in &m.kv {
            let p = &m.procs[k.proc];
            ins.row(bulk_row![
                &*k.name,
                time::datetime(k.ts, p.offset_s),
                k.total.get(),
                k.used.get(),
                k.free.get(),
                k.allocated.get(),
                k.freed.get(),
                k.rate.get(),
                p.trace_pid.to_string(),
                p.dp_rank
            ])?;
        }
        ins.finish()?;
    }
    register(c, "kvcache", "kvcache_usage", "KV-cache usage over time")?;

    // request_status
    c.execute_batch(
        "CREATE TABLE request_status(hostuid TEXT, pid TEXT, start_datetime TEXT, relative_timestamp REAL, waiting REAL, running REAL, swapped REAL, timestamp REAL);
         CREATE VIEW Request_Status_curve AS SELECT substr(start_datetime, 1, 10) || ' ' || substr(start_datetime, 12, 8) || '.' || substr(start_datetime, 21, 6) AS time, waiting, swapped, running FROM request_status;",
    )?;
    {
        let rows = super::request_status::rows(m);
        let t0 = m.queue.first().map(|q| q.ts).unwrap_or(0);
        let mut ins = Bulk::values(c, "request_status", 8)?;
        for (p, ts, w, r, s) in rows {
            let pi = &m.procs[p];
            ins.row(bulk_row![pi.hostname, pi.pid.to_string(), time::datetime(ts, pi.offset_s), (ts - t0) as f64 / 1e6, w, r, s, ts as f64 / 1e6])?;
        }
        ins.finish()?;
    }

    crate::parse::stage("profiler.db: latency tables");
    latency_tables(c, m)?;
    Ok(())
}

/// `first_token_latency` (100 ms windows), `req_latency` (cumulative, ≤ 100 points) and the
/// prefill/decode generation-speed tables, with their curve views.
fn latency_tables(c: &Connection, m: &Model) -> rusqlite::Result<()> {
    let off = m.procs.first().map(|p| p.offset_s).unwrap_or(0);
    let dt = |ns: i64| {
        let s = time::datetime(ns, off);
        format!("{} {}.{}", &s[..10], &s[11..19], &s[20..26])
    };
    c.execute_batch(
        "CREATE TABLE first_token_latency(timestamp TEXT, p99 REAL, p90 REAL, p50 REAL, min_value REAL, p50_alltime REAL);
         CREATE VIEW First_Token_Latency_curve AS SELECT timestamp AS time, p99, p90, p50, min_value, p50_alltime FROM first_token_latency;
         CREATE TABLE req_latency(timestamp TEXT, avg REAL, p99 REAL, p90 REAL, p50 REAL, p50_alltime REAL);
         CREATE VIEW Request_Latency_curve AS SELECT timestamp AS time, avg, p99, p90, p50, p50_alltime FROM req_latency;
         CREATE TABLE prefill_gen_speed(timestamp TEXT, avg REAL, p99 REAL, p90 REAL, p50 REAL, p50_alltime REAL);
         CREATE VIEW Prefill_Generate_Speed_Latency_curve AS SELECT timestamp AS time, avg, p99, p90, p50, p50_alltime FROM prefill_gen_speed;
         CREATE TABLE decode_gen_speed(timestamp TEXT, avg REAL, p99 REAL, p90 REAL, p50 REAL, p50_alltime REAL);
         CREATE VIEW Decode_Generate_Speed_Latency_curve AS SELECT timestamp AS time, avg, p99, p90, p50, p50_alltime FROM decode_gen_speed;",
    )?;
    let sorted = |v: &mut Vec<f64>| v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    // TTFT in 100 ms windows of the request start.
    let mut ttft: Vec<(i64, f64)> = m.requests.iter().filter_map(|r| Some((r.acc.http_req()?, r.acc.ttft_ns()? as f64 / 1e6))).collect();
    ttft.sort_by(|a, b| a.0.cmp(&b.0));
    let mut all: Vec<f64> = ttft.iter().map(|x| x.1).collect();
    sorted(&mut all);
    let p50_all = percentile(&all, 0.5);
    {
        let mut ins = c.prepare("INSERT INTO first_token_latency VALUES (?1,?2,?3,?4,?5,?6)")?;
        let mut i = 0;
        while i < ttft.len() {
            let w = ttft[i].0.div_euclid(100_000_000);
            let mut v = Vec::new();
            while i < ttft.len() && ttft[i].0.div_euclid(100_000_000) == w {
                v.push(ttft[i].1);
                i += 1;
            }
            sorted(&mut v);
            ins.execute(params![dt(w * 100_000_000), percentile(&v, 0.99), percentile(&v, 0.9), percentile(&v, 0.5), v[0], p50_all])?;
        }
    }
    // Cumulative request latency by completion time, at most ~100 points.
    let lat: Vec<(i64, f64)> = m.requests.iter().filter_map(|r| Some((r.acc.end()?, r.acc.execution_ns()? as f64 / 1e6))).collect();
    cumulative(c, "req_latency", lat, &dt)?;
    // Generation speeds: prefill = prefill tokens / iter-0 time; decode = 1 token / inter-token gap.
    let mut pre: Vec<(i64, f64)> = Vec::new();
    // One decode point per generated token: reserved at once (an upper bound; pages never
    // written stay unmapped), as growing by doubling would copy ≈ 2/3 of it at the last step.
    let bound: usize = m.requests.iter().map(|r| r.acc.iter_ends().filter(|x| x.exec()).count().saturating_sub(1)).sum();
    let mut dec: Vec<(i64, f64)> = Vec::with_capacity(bound);
    for r in &m.requests {
        if let (Some(s), Some(e), Some(t)) = (r.acc.http_req().or(r.acc.iter0_start()), r.acc.iter0_end(), r.acc.recv_tokens()) {
            if e > s {
                pre.push((e, t.v / ((e - s) as f64 / 1e9)));
            }
        }
        let mut ends: Vec<i64> = r.acc.iter_ends().filter(|x| x.exec()).map(|x| x.end).collect();
        ends.sort();
        for w in ends.windows(2) {
            if w[1] > w[0] {
                dec.push((w[1], 1e9 / (w[1] - w[0]) as f64));
            }
        }
    }
    cumulative(c, "prefill_gen_speed", pre, &dt)?;
    cumulative(c, "decode_gen_speed", dec, &dt)?;
    Ok(())
}

fn cumulative(c: &Connection, table: &str, v: Vec<(i64, f64)>, dt: &dyn Fn(i64) -> String) -> rusqlite::Result<()> {
    let (rows, p50_all) = cumulative_rows(v);
    let mut ins = c.prepare(&format!("INSERT INTO {table} VALUES (?1,?2,?3,?4,?5,?6)"))?;
    for (ts, [avg, p99, p90, p50]) in rows {
        ins.execute(params![dt(ts), avg, p99, p90, p50, p50_all])?;
    }
    Ok(())
}

/// The rows of a cumulative table over the points `v` (time, value), in any order: at most
/// about 100 checkpoints spaced by count in time order, each `(time, [avg, p99, p90, p50])`
/// over every value up to and including its time (points at the same time are never split,
/// so the figures do not depend on the order of ties); and the median of all values.
///
/// The decode-speed points are one per generated token, so memory is kept to the points
/// themselves: sorted in place, their buffer reused for the values, whose prefix up to each
/// checkpoint is sorted in place in turn.
fn cumulative_rows(mut v: Vec<(i64, f64)>) -> (Vec<(i64, [f64; 4])>, f64) {
    if v.is_empty() {
        return (Vec::new(), 0.0);
    }
    v.sort_unstable_by_key(|x| x.0);
    let n = v.len();
    let step = n.div_ceil(100).max(1);
    let mut checkpoints: Vec<(usize, i64)> = Vec::new();
    for k in 1..=n.div_ceil(step) {
        let mut i = (k * step - 1).min(n - 1);
        while i + 1 < n && v[i + 1].0 == v[i].0 {
            i += 1;
        }
        if checkpoints.last().map_or(true, |l| l.0 < i) {
            checkpoints.push((i, v[i].0));
        }
    }
    // Collected in place (same buffer).
    let mut vals: Vec<f64> = v.into_iter().map(|x| x.1).collect();
    let cmp = |a: &f64, b: &f64| a.partial_cmp(b).unwrap();
    let mut rows = Vec::with_capacity(checkpoints.len());
    for (i, ts) in checkpoints {
        let seen = &mut vals[..=i];
        seen.sort_unstable_by(cmp);
        let avg = seen.iter().sum::<f64>() / seen.len() as f64;
        rows.push((ts, [avg, percentile(seen, 0.99), percentile(seen, 0.9), percentile(seen, 0.5)]));
    }
    // The last checkpoint is the last point: `vals` is sorted whole.
    (rows, percentile(&vals, 0.5))
}

#[cfg(test)]
mod tests {
    use super::cumulative_rows;

    /// Checkpoints every `n / 100` points in time order; a checkpoint covers every point up to
    /// and including its time, whatever the order of points at the same time.
    #[test]
    fn cumulative_checkpoints_cover_whole_times() {
        assert_eq!(cumulative_rows(Vec::new()), (Vec::new(), 0.0));
        // 300 points at 100 distinct times (3 each, values 3t, 3t+1, 3t+2, shuffled): step 3,
        // so every checkpoint falls at the end of a time.
        let mut v: Vec<(i64, f64)> = (0..300).map(|i| ((i / 3) as i64, i as f64)).collect();
        v.reverse();
        v.swap(0, 150);
        let (rows, p50) = cumulative_rows(v);
        assert_eq!(rows.len(), 100);
        assert_eq!(p50, 149.5);
        assert_eq!(rows[0], (0, [1.0, 1.98, 1.8, 1.0]));
        assert_eq!(rows[99].0, 99);
        assert_eq!(rows[99].1[0], 149.5);
        // Points at one time never split: 250 points at time 5 and 50 at time 7 (step 3): one
        // checkpoint takes all of time 5, one all of time 7.
        let v: Vec<(i64, f64)> = (0..300).map(|i| (if i < 250 { 5 } else { 7 }, i as f64)).collect();
        let (rows, _) = cumulative_rows(v.clone());
        assert_eq!(rows[0].0, 5);
        assert_eq!(rows[0].1[0], 124.5);
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[1].0, rows[1].1[0]), (7, 149.5));
        // The same figures for the points in another order.
        let mut w = v;
        w.reverse();
        assert_eq!(cumulative_rows(w).0, rows);
    }
}
