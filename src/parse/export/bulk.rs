//! Multi-row `INSERT` for profiler.db: rows are buffered and bound [`ROWS`] at a time into one
//! prepared statement, so SQLite runs one statement (one `AUTOINCREMENT` update, one reset) per
//! [`ROWS`] rows instead of one per row. Rows go in in the order they are given, so every
//! `AUTOINCREMENT` id is the same as with one `INSERT` per row.

use rusqlite::types::{ToSqlOutput, Value};
use rusqlite::{Connection, Statement, ToSql};

/// Rows per statement (SQLite allows 32,766 parameters; the widest table here has 24 columns).
pub const ROWS: usize = 128;

/// `x` as an owned SQLite value (what binding it would pass).
pub fn val<T: ToSql + ?Sized>(x: &T) -> rusqlite::Result<Value> {
    Ok(match x.to_sql()? {
        ToSqlOutput::Borrowed(r) => r.into(),
        ToSqlOutput::Owned(v) => v,
        // Zero-blobs and arrays are never bound here.
        _ => Value::Null,
    })
}

/// One row for [`Bulk::row`] from any bindable values, like `rusqlite::params!`; use in a
/// function returning `rusqlite::Result`.
macro_rules! bulk_row {
    ($($x:expr),+ $(,)?) => {
        [$($crate::parse::export::bulk::val(&$x)?),+]
    };
}
pub(crate) use bulk_row;

/// A table's buffered multi-row `INSERT`; call [`Bulk::finish`] to insert the last rows.
pub struct Bulk<'c> {
    conn: &'c Connection,
    head: String,
    tuple: String,
    width: usize,
    full: Statement<'c>,
    buf: Vec<Value>,
}

/// `tuple` with each parameter `?k` replaced by `?f(k)`.
fn map_params(tuple: &str, mut f: impl FnMut(usize) -> usize) -> String {
    let mut out = String::with_capacity(tuple.len() + 8);
    let mut chars = tuple.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '?' {
            continue;
        }
        let mut k = 0usize;
        while let Some(v) = chars.peek().and_then(|d| d.to_digit(10)) {
            k = k * 10 + v as usize;
            chars.next();
        }
        out.push_str(&f(k).to_string());
    }
    out
}

/// `head` followed by `rows` copies of `tuple`, the parameters of row `r` renumbered to follow
/// those of row `r - 1`.
fn sql(head: &str, tuple: &str, width: usize, rows: usize) -> String {
    let mut s = String::from(head);
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push_str(&map_params(tuple, |k| r * width + k));
    }
    s
}

impl<'c> Bulk<'c> {
    /// `head` is `INSERT INTO table(columns) VALUES `; `tuple` is one row's values, with its
    /// parameters written `?1` … `?width` (a parameter may appear more than once).
    pub fn new(conn: &'c Connection, head: &str, tuple: &str) -> rusqlite::Result<Bulk<'c>> {
        let mut width = 0;
        map_params(tuple, |k| {
            width = width.max(k);
            k
        });
        let full = conn.prepare(&sql(head, tuple, width, ROWS))?;
        Ok(Bulk { conn, head: head.to_string(), tuple: tuple.to_string(), width, full, buf: Vec::with_capacity(width * ROWS) })
    }

    /// Rows of every column of `table`, which has `width` columns.
    pub fn values(conn: &'c Connection, table: &str, width: usize) -> rusqlite::Result<Bulk<'c>> {
        let tuple: Vec<String> = (1..=width).map(|k| format!("?{k}")).collect();
        Bulk::new(conn, &format!("INSERT INTO {table} VALUES "), &format!("({})", tuple.join(",")))
    }

    /// Add one row of exactly `width` values; inserts a full statement's worth when it fills.
    pub fn row<const N: usize>(&mut self, values: [Value; N]) -> rusqlite::Result<()> {
        debug_assert_eq!(N, self.width);
        self.buf.extend(values);
        if self.buf.len() == self.width * ROWS {
            execute(&mut self.full, &mut self.buf)?;
        }
        Ok(())
    }

    /// Insert the rows still buffered.
    pub fn finish(mut self) -> rusqlite::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut last = self.conn.prepare(&sql(&self.head, &self.tuple, self.width, self.buf.len() / self.width))?;
        execute(&mut last, &mut self.buf)
    }
}

/// Bind `buf` (emptied) to `stmt`'s parameters in order and run it.
fn execute(stmt: &mut Statement<'_>, buf: &mut Vec<Value>) -> rusqlite::Result<()> {
    for (i, v) in buf.drain(..).enumerate() {
        stmt.raw_bind_parameter(i + 1, v)?;
    }
    stmt.raw_execute().map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renumbers_each_row_and_repeated_parameters() {
        assert_eq!(
            sql("INSERT INTO t VALUES ", "(?1, 'f_' || ?1, ?2, 0)", 2, 3),
            "INSERT INTO t VALUES (?1, 'f_' || ?1, ?2, 0),(?3, 'f_' || ?3, ?4, 0),(?5, 'f_' || ?5, ?6, 0)"
        );
    }

    #[test]
    fn keeps_row_order_and_autoincrement_ids_across_statements() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY AUTOINCREMENT, a INTEGER, b TEXT, c TEXT)").unwrap();
        let n = ROWS * 2 + 5;
        let mut b = Bulk::new(&c, "INSERT INTO t(a, b, c) VALUES ", "(?1, ?2, 'x' || ?2)").unwrap();
        for i in 0..n {
            b.row([Value::Integer(i as i64 * 10), Value::Text(format!("r{i}"))]).unwrap();
        }
        b.finish().unwrap();
        let rows: Vec<(i64, i64, String, String)> = c
            .prepare("SELECT id, a, b, c FROM t ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows.len(), n);
        for (i, (id, a, b, c)) in rows.into_iter().enumerate() {
            assert_eq!((id, a, b, c), (i as i64 + 1, i as i64 * 10, format!("r{i}"), format!("xr{i}")));
        }
        let seq: i64 = c.query_row("SELECT seq FROM sqlite_sequence WHERE name = 't'", [], |r| r.get(0)).unwrap();
        assert_eq!(seq, n as i64);
    }
}
