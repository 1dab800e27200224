//! `request_summary.csv`, `batch_summary.csv` and `service_summary.csv`.

use std::path::Path;

use super::csv::Csv;
use crate::parse::build::Model;
use crate::parse::model::stats::summary;

/// Statistic columns.
pub const STAT_COLUMNS: [&str; 7] = ["Metric", "Average", "Max", "Min", "P50", "P90", "P99"];

fn stat_row(name: &str, s: [f64; 6]) -> Vec<String> {
    let mut r = vec![name.to_string()];
    r.extend(s.iter().map(|x| format!("{:.4}", (x * 1e4).round() / 1e4)));
    r
}

/// The request-summary rows (metric name, statistics). Each metric's samples are gathered and
/// reduced before the next one's (the TPOT samples alone are one per generated token).
pub fn request_rows(m: &Model) -> Vec<(&'static str, [f64; 6])> {
    let valid: Vec<_> = m.requests.iter().filter(|r| r.valid()).collect();
    let ms = |ns: i64| ns as f64 / 1e6;
    let mut rows = Vec::with_capacity(7);
    rows.push(("first_token_latency (ms)", summary(valid.iter().filter_map(|r| r.acc.ttft_ns()).map(ms).collect())));
    rows.push(("subsequent_token_latency (ms)", summary(valid.iter().flat_map(|r| r.acc.tpot_samples()).map(ms).collect())));
    rows.push(("total_time (ms)", summary(valid.iter().filter_map(|r| Some(ms(r.acc.http_res_end().or(r.acc.end())? - r.acc.http_req()?))).collect())));
    let exec: Vec<f64> = valid.iter().map(|r| ms(r.acc.exec_ns())).collect();
    if exec.iter().any(|&x| x != 0.0) {
        rows.push(("exec_time (ms)", summary(exec)));
    }
    rows.push(("waiting_time (ms)", summary(valid.iter().map(|r| ms(r.acc.queue_wait_ns().unwrap_or(0))).collect())));
    rows.push(("input_token_num", summary(valid.iter().map(|r| r.acc.recv_tokens().map(|f| f.v).unwrap_or(0.0)).collect())));
    rows.push(("generated_token_num", summary(valid.iter().map(|r| r.acc.reply().unwrap_or(0.0)).collect())));
    rows
}

/// The batch-summary rows (metric name, statistics).
pub fn batch_rows(m: &Model) -> Vec<(&'static str, [f64; 6])> {
    let sched = m.batches.iter().filter(|b| b.name == m.sched_name);
    let prefill: Vec<f64> = sched.clone().filter(|b| b.pd_size.0 > 0).map(|b| b.pd_size.0 as f64).collect();
    let decode: Vec<f64> = sched.filter(|b| b.pd_size.1 > 0).map(|b| b.pd_size.1 as f64).collect();
    let exec = |ty: &str| -> Vec<f64> { m.batches.iter().filter(|b| b.name == "modelExec" && b.batch_type() == ty).map(|b| b.dur() as f64 / 1e6).collect() };
    let (pe, de) = (exec("Prefill"), exec("Decode"));
    let mut rows = vec![("prefill_batch_num", summary(prefill)), ("decode_batch_num", summary(decode))];
    if pe.iter().chain(de.iter()).any(|&x| x != 0.0) {
        rows.push(("prefill_exec_time (ms)", summary(pe)));
        rows.push(("decode_exec_time (ms)", summary(de)));
    }
    rows
}

/// The service-summary rows (metric, value text).
pub fn service_rows(m: &Model) -> Vec<(&'static str, String)> {
    let valid: Vec<_> = m.requests.iter().filter(|r| r.valid()).collect();
    let input: f64 = valid.iter().map(|r| r.acc.recv_tokens().map(|f| f.v).unwrap_or(0.0)).sum();
    let gen: f64 = valid.iter().map(|r| r.acc.reply().unwrap_or(0.0)).sum();
    let first = valid.iter().filter_map(|r| r.acc.http_req()).min();
    let last = valid.iter().filter_map(|r| r.acc.http_res_end()).max();
    let secs = match (first, last) {
        (Some(a), Some(b)) if b > a => (b - a) as f64 / 1e9,
        _ => 0.0,
    };
    let speed = |x: f64| if secs > 0.0 { format!("{:.8}", x / secs) } else { format!("{:.8}", 0.0) };
    vec![
        ("total_input_token_num", super::csv::num(input)),
        ("total_generated_token_num", super::csv::num(gen)),
        ("generate_token_speed (token/s)", speed(gen)),
        ("generate_all_token_speed (token/s)", speed(input + gen)),
    ]
}

/// Write the three summaries. Returns the names written.
pub fn write(m: &Model, dir: &Path) -> std::io::Result<Vec<&'static str>> {
    let mut out = Vec::new();
    if m.requests.iter().any(|r| r.valid()) {
        let mut c = Csv::create(&dir.join("request_summary.csv"), &STAT_COLUMNS)?;
        for (n, v) in request_rows(m) {
            c.row(&stat_row(n, v))?;
        }
        c.finish()?;
        out.push("request_summary.csv");
        let mut c = Csv::create(&dir.join("service_summary.csv"), &["Metric", "Value"])?;
        for (n, v) in service_rows(m) {
            c.row(&[n.to_string(), v])?;
        }
        c.finish()?;
        out.push("service_summary.csv");
    }
    if m.batches.iter().any(|b| b.name == m.sched_name) {
        let mut c = Csv::create(&dir.join("batch_summary.csv"), &STAT_COLUMNS)?;
        for (n, v) in batch_rows(m) {
            c.row(&stat_row(n, v))?;
        }
        c.finish()?;
        out.push("batch_summary.csv");
    }
    Ok(out)
}
