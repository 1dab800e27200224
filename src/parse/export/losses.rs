//! Loss accounting per process: every record lost — dropped because the ring was full or its
//! files could not be created, overwritten, oversize, torn by a kill, in corrupt chunks — and every
//! hook or attribute-expression failure the shim counted, one row per process. Shown in the parse
//! summary and written as the `losses` table of `profiler.db`.

use std::path::Path;

use rusqlite::{params, Connection};

use crate::reader::{Process, Report};

/// One process's losses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Row {
    /// pid.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// File-set stem.
    pub stem: String,
    /// Records recovered.
    pub records: u64,
    /// Records the recorder counted as committed (published every 50 ms and at shutdown, so a
    /// killed process may have committed a few more than this).
    pub committed: u64,
    /// Dropped by the recorder: ring full, or its files could not be created or grown.
    pub dropped: u64,
    /// Overwritten (overwrite policy).
    pub overwritten: u64,
    /// Refused as larger than a chunk.
    pub oversize: u64,
    /// Errors inside Python hooks (the record of that call is lost).
    pub hook_errors: u64,
    /// Attribute expressions that failed (the attribute is missing from its record).
    pub expr_errors: u64,
    /// Device activity records lost before the ring (MSPTI buffers full, or the hand-off queue).
    pub device_dropped: u64,
    /// Torn (uncommitted) records skipped.
    pub torn_records: u64,
    /// Corrupt chunks skipped.
    pub corrupt_chunks: u64,
    /// Bytes in them.
    pub corrupt_bytes: u64,
    /// Shut down cleanly.
    pub clean: bool,
    /// errno of a failed file creation or write (capture stopped keeping records), if any.
    pub write_error: Option<u32>,
}

impl Row {
    /// Records lost by this process (not counting expression errors, which lose one attribute).
    pub fn lost(&self) -> u64 {
        // Saturating: the counters come from files and may be damaged.
        [self.overwritten, self.oversize, self.hook_errors, self.torn_records, self.device_dropped].iter().fold(self.dropped, |a, &b| a.saturating_add(b))
    }

    /// Whether anything at all was lost or went wrong.
    pub fn any(&self) -> bool {
        self.lost() > 0 || self.expr_errors > 0 || self.corrupt_chunks > 0 || !self.clean || self.write_error.is_some()
    }
}

/// One row per process, from its meta file and its (merged) read report.
pub fn rows(procs: &[Process], reports: &[Report]) -> Vec<Row> {
    procs
        .iter()
        .zip(reports)
        .map(|(p, r)| Row {
            pid: p.meta.pid,
            host: p.meta.hostname.clone(),
            stem: p.files.stem.clone(),
            records: r.records,
            committed: p.meta.counter(crate::files::meta::Counter::Written),
            dropped: r.dropped,
            overwritten: r.overwritten,
            oversize: r.oversize,
            hook_errors: r.hook_errors,
            expr_errors: r.expr_errors,
            device_dropped: r.device_dropped,
            torn_records: r.torn_records,
            corrupt_chunks: r.corrupt_chunks,
            corrupt_bytes: r.corrupt_bytes,
            clean: p.meta.clean,
            write_error: p.meta.write_error,
        })
        .collect()
}

fn errno_text(e: u32) -> String {
    std::io::Error::from_raw_os_error(e as i32).to_string()
}

/// Summary lines for the processes that lost something (all of them, one line each).
pub fn summary_lines(rows: &[Row]) -> String {
    let mut t = String::new();
    let hook = rows.iter().fold(0u64, |a, r| a.saturating_add(r.hook_errors));
    let expr = rows.iter().fold(0u64, |a, r| a.saturating_add(r.expr_errors));
    t += &format!("shim errors: {hook} hook error(s) (records lost), {expr} attribute expression error(s) (attributes lost)\n");
    for r in rows.iter().filter(|r| r.any()) {
        t += &format!(
            "  pid {} on {} ({}): {} recovered / {} committed; lost: {} dropped, {} overwritten, {} oversize, {} hook error(s), {} torn, {} device; {} expression error(s); {} corrupt chunk(s){}{}\n",
            r.pid,
            r.host,
            r.stem,
            r.records,
            r.committed,
            r.dropped,
            r.overwritten,
            r.oversize,
            r.hook_errors,
            r.torn_records,
            r.device_dropped,
            r.expr_errors,
            r.corrupt_chunks,
            if r.clean { "" } else { "; not shut down cleanly" },
            r.write_error.map(|e| format!("; capture files could not be written ({}): later records dropped", errno_text(e))).unwrap_or_default(),
        );
    }
    t
}

/// Add the `losses` table to an existing `profiler.db`.
pub fn write_db(path: &Path, rows: &[Row]) -> rusqlite::Result<()> {
    let mut conn = Connection::open(path)?;
    let tx = conn.transaction()?;
    tx.execute_batch(
        "DROP TABLE IF EXISTS losses;
         CREATE TABLE losses(pid TEXT, hostname TEXT, file_set TEXT, records INTEGER, committed INTEGER, dropped INTEGER, overwritten INTEGER,
             oversize INTEGER, hook_errors INTEGER, expr_errors INTEGER, device_dropped INTEGER, torn_records INTEGER, corrupt_chunks INTEGER, corrupt_bytes INTEGER,
             clean INTEGER, write_error TEXT);",
    )?;
    {
        let mut ins = tx.prepare("INSERT INTO losses VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)")?;
        for r in rows {
            ins.execute(params![
                r.pid.to_string(),
                r.host,
                r.stem,
                r.records as i64,
                r.committed as i64,
                r.dropped as i64,
                r.overwritten as i64,
                r.oversize as i64,
                r.hook_errors as i64,
                r.expr_errors as i64,
                r.device_dropped as i64,
                r.torn_records as i64,
                r.corrupt_chunks as i64,
                r.corrupt_bytes as i64,
                r.clean as i64,
                r.write_error.map(errno_text),
            ])?;
        }
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_lines() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("profiler.db");
        let a = Row {
            pid: 7,
            host: "h".into(),
            stem: "s".into(),
            records: 10,
            committed: 12,
            dropped: 2,
            hook_errors: 1,
            expr_errors: 3,
            clean: true,
            ..Row::default()
        };
        let b = Row { pid: 8, clean: false, write_error: Some(libc::ENOSPC as u32), ..Row::default() };
        let c = Row { pid: 9, clean: true, ..Row::default() };
        write_db(&db, &[a.clone(), b.clone(), c.clone()]).unwrap();
        let conn = Connection::open(&db).unwrap();
        let got: (String, i64, i64, i64) = conn
            .query_row("SELECT pid, dropped, hook_errors, expr_errors FROM losses WHERE pid = '7'", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap();
        assert_eq!(got, ("7".into(), 2, 1, 3));
        let we: String = conn.query_row("SELECT write_error FROM losses WHERE pid = '8'", [], |r| r.get(0)).unwrap();
        assert!(we.contains("No space left"), "{we}");
        let t = summary_lines(&[a, b, c]);
        assert!(t.contains("1 hook error(s) (records lost), 3 attribute expression error(s)"), "{t}");
        assert!(t.contains("pid 7 on h (s): 10 recovered / 12 committed; lost: 2 dropped"), "{t}");
        assert!(t.contains("pid 8") && t.contains("not shut down cleanly") && t.contains("No space left"), "{t}");
        assert!(!t.contains("pid 9"), "a process without losses gets no line: {t}");
    }
}
