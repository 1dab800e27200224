//! Collection config JSON (`SERVICE_PROF_CONFIG_PATH`): parsing, defaults, the default file text
//! and the `enable` write-back (CONTRACT §1).
//!
//! Parsing never fails on a bad value: every problem becomes a [`Warning`] naming the field, and a
//! documented fallback is used. Only text that is not a JSON object gives a [`ParseError`]. A key
//! that is absent always takes its default, so re-parsing an edited file never keeps stale values.

use serde_json::{json, Map, Value};
use std::fmt;
use std::path::{Path, PathBuf};

/// Full-ring behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullPolicy {
    /// Drop new records while the ring is full (and count them).
    Drop,
    /// Overwrite the oldest unread data.
    Overwrite,
}

/// Ring sizing (our own fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingConfig {
    /// Bytes per ring segment (`ring_size_mb`).
    pub segment_bytes: u64,
    /// Maximum bytes per process across all segments (`ring_total_mb`), ≥ `segment_bytes`.
    pub total_bytes: u64,
    /// Bytes per chunk (`ring_chunk_kb`), ≤ `segment_bytes`.
    pub chunk_bytes: u32,
    /// What to do when the ring is full (`ring_full_policy`).
    pub policy: FullPolicy,
}

/// ACL level parsed from `acl_prof_task_time_level` `"<L0|L1>[;<seconds>]"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclLevel {
    /// `ACL_PROF_TASK_TIME_L0`: timing without operator info.
    L0,
    /// `ACL_PROF_TASK_TIME | ACL_PROF_ACL_API`: timing with operator info and API data.
    L1,
}

/// The effective collection config (CONTRACT §1.2 plus our ring fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Master switch (`enable`).
    pub enable: bool,
    /// Prometheus metric callbacks (`metric_enable`), independent of `enable`.
    pub metric_enable: bool,
    /// Output root (`prof_dir`), `~` expanded, ending in `/`; may be relative (the caller resolves it).
    pub prof_dir: PathBuf,
    /// A record of level L is kept iff capture is on and `profiler_level >= L`.
    pub profiler_level: u32,
    /// Device collection mode (`acl_task_time`): 0 off, 1 ACL prof, 2 MSPTI, 3 torch_npu.
    pub acl_task_time: u32,
    /// Level part of `acl_prof_task_time_level`.
    pub acl_level: AclLevel,
    /// Duration part of `acl_prof_task_time_level` in seconds (1–999): stops ACL collection only.
    pub acl_duration_s: Option<u32>,
    /// Derived ACL data-type mask: `aclDataTypeConfig` | `ACL_PROF_MSPROFTX` | the level's bits.
    pub acl_data_type_mask: u64,
    /// `aclprofAicoreMetrics` enum value (1–6, or 0xFF for none).
    pub aicore_metrics: u32,
    /// Host CPU/memory sampling frequency in Hz (1–50); `None` = off.
    pub host_system_usage_freq: Option<u32>,
    /// NPU memory sampling frequency in Hz (1–50); `None` = off.
    pub npu_memory_usage_freq: Option<u32>,
    /// Auto-stop after this many seconds of capture (0 = unlimited, at most 7200).
    pub timelimit_s: u32,
    /// Domain allow-list, alias-expanded with both spellings kept; empty = no filter.
    pub domains: Vec<String>,
    /// MSPTI API-name substring filter; empty = all.
    pub api_filter: Vec<String>,
    /// MSPTI kernel-name substring filter; empty = all.
    pub kernel_filter: Vec<String>,
    /// torch_npu profiler `with_stack`.
    pub torch_prof_stack: bool,
    /// torch_npu profiler `with_modules`.
    pub torch_prof_modules: bool,
    /// torch_npu profiler schedule `active=N`; 0 = all steps.
    pub torch_prof_step_num: u32,
    /// Auto-stop after N framework steps: `None` = disabled (-1/absent); `Some(0)` = stop at next check.
    pub profiler_step_num: Option<i64>,
    /// Ring sizing.
    pub ring: RingConfig,
}

/// One problem found in a config file: which field, what was wrong, what was used instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The JSON key concerned.
    pub field: String,
    /// What was wrong and what was used instead.
    pub message: String,
}

/// The file is not valid JSON (or not an object): carries line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line of the error.
    pub line: usize,
    /// 1-based column of the error (0 when the text ends on that line before any character).
    pub column: usize,
    /// What the parser found wrong.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config field \"{}\": {}", self.field, self.message)
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid config JSON at line {} column {}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

const ACL_PROF_MSPROFTX: u64 = 0x80;
const ACL_PROF_TASK_TIME_L0: u64 = 0x800;
const ACL_PROF_L1_BITS: u64 = 0x2 | 0x1; // ACL_PROF_TASK_TIME | ACL_PROF_ACL_API

/// `aclDataTypeConfig` names (CANN_ABI §2.2).
const ACL_DATA_TYPES: [(&str, u64); 12] = [
    ("ACL_PROF_ACL_API", 0x1),
    ("ACL_PROF_TASK_TIME", 0x2),
    ("ACL_PROF_TASK_TIME_L0", 0x800),
    ("ACL_PROF_OP_ATTR", 0x4000),
    ("ACL_PROF_AICORE_METRICS", 0x4),
    ("ACL_PROF_TASK_MEMORY", 0x1000),
    ("ACL_PROF_AICPU", 0x8),
    ("ACL_PROF_L2CACHE", 0x10),
    ("ACL_PROF_HCCL_TRACE", 0x20),
    ("ACL_PROF_TRAINING_TRACE", 0x40),
    ("ACL_PROF_RUNTIME_API", 0x100),
    ("ACL_PROF_MSPROFTX", 0x80),
];

/// `aclprofAicoreMetrics` names without the `ACL_AICORE_` prefix (CANN_ABI §2.3).
const AICORE_METRICS: [(&str, u32); 7] =
    [("PIPE_UTILIZATION", 1), ("MEMORY_BANDWIDTH", 2), ("L0B_AND_WIDTH", 3), ("RESOURCE_CONFLICT_RATIO", 4), ("MEMORY_UB", 5), ("L2_CACHE", 6), ("NONE", 0xFF)];
const AICORE_DEFAULT: u32 = 1;
const AICORE_NONE: u32 = 0xFF;

/// `profiler_level` names (CONTRACT §1.2, §3.1); `LEVEL_OUTLIER_EVENT` also accepted.
const LEVEL_NAMES: [(&str, u32); 12] = [
    ("ERROR", 10),
    ("INFO", 20),
    ("DETAILED", 30),
    ("VERBOSE", 40),
    ("LEVEL_CORE_TRACE", 10),
    ("LEVEL_OUTLIER_ENENT", 10),
    ("LEVEL_OUTLIER_EVENT", 10),
    ("LEVEL_NORMAL_TRACE", 20),
    ("LEVEL_DETAILED_TRACE", 30),
    ("L0", 10),
    ("L1", 20),
    ("L2", 30),
];
const LEVEL_DEFAULT: u32 = 20;

/// Documented filter name → vLLM domain (CONTRACT §4.6).
const DOMAIN_ALIASES: [(&str, &str); 4] = [("Request", "Engine"), ("KVCache", "Schedule.KVCache"), ("BatchSchedule", "Schedule"), ("ModelExecute", "Execute")];

const TIMELIMIT_MAX: i64 = 7200;
const ACL_DURATION_MAX: i64 = 999;
const ACL_DATA_TYPE_TOKENS_MAX: usize = 12;
const FREQ_MAX: i64 = 50;
const MIB: u64 = 1 << 20;
const KIB: u64 = 1 << 10;
const RING_SIZE_MB_DEFAULT: i64 = 64;
const RING_SIZE_MB_MAX: i64 = 4096;
const RING_TOTAL_MB_DEFAULT: i64 = 1024;
const RING_TOTAL_MB_MAX: i64 = 1 << 20;
const RING_CHUNK_KB_DEFAULT: i64 = 64;
const RING_CHUNK_KB_MIN: i64 = 16;
const RING_CHUNK_KB_MAX: i64 = 4096;

/// Every key `parse` understands; anything else is reported as an unknown field.
const KNOWN_KEYS: &[&str] = &[
    "enable",
    "metric_enable",
    "prof_dir",
    "profiler_level",
    "acl_task_time",
    "acl_prof_task_time_level",
    "aclDataTypeConfig",
    "aclprofAicoreMetrics",
    "host_system_usage_freq",
    "npu_memory_usage_freq",
    "timelimit",
    "domain",
    "api_filter",
    "kernel_filter",
    "torch_prof_stack",
    "torch_prof_modules",
    "torch_prof_step_num",
    "profiler_step_num",
    "ring_size_mb",
    "ring_total_mb",
    "ring_chunk_kb",
    "ring_full_policy",
];

fn default_prof_dir(home: &Path) -> String {
    let home = home.to_string_lossy();
    format!("{}/.ms_server_profiler/", home.trim_end_matches('/'))
}

fn level_mask(level: AclLevel) -> u64 {
    ACL_PROF_MSPROFTX
        | match level {
            AclLevel::L0 => ACL_PROF_TASK_TIME_L0,
            AclLevel::L1 => ACL_PROF_L1_BITS,
        }
}

impl Config {
    /// The config used when the file has no keys at all.
    pub fn defaults(home: &Path) -> Config {
        Config {
            enable: false,
            metric_enable: false,
            prof_dir: PathBuf::from(default_prof_dir(home)),
            profiler_level: LEVEL_DEFAULT,
            acl_task_time: 0,
            acl_level: AclLevel::L0,
            acl_duration_s: None,
            acl_data_type_mask: level_mask(AclLevel::L0),
            aicore_metrics: AICORE_DEFAULT,
            host_system_usage_freq: None,
            npu_memory_usage_freq: None,
            timelimit_s: 0,
            domains: Vec::new(),
            api_filter: Vec::new(),
            kernel_filter: Vec::new(),
            torch_prof_stack: false,
            torch_prof_modules: false,
            torch_prof_step_num: 0,
            profiler_step_num: None,
            ring: RingConfig {
                segment_bytes: RING_SIZE_MB_DEFAULT as u64 * MIB,
                total_bytes: RING_TOTAL_MB_DEFAULT as u64 * MIB,
                chunk_bytes: (RING_CHUNK_KB_DEFAULT as u64 * KIB) as u32,
                policy: FullPolicy::Drop,
            },
        }
    }

    /// Whether records of domain `d` pass the `domain` filter (exact, case-sensitive; empty = all).
    pub fn domain_allowed(&self, d: &str) -> bool {
        self.domains.is_empty() || self.domains.iter().any(|x| x == d)
    }

    /// The effective config as compact JSON with every field (for the C ABI getter `msp_config_json`).
    pub fn to_json(&self) -> String {
        let acl_level = match self.acl_level {
            AclLevel::L0 => "L0",
            AclLevel::L1 => "L1",
        };
        let policy = match self.ring.policy {
            FullPolicy::Drop => "drop",
            FullPolicy::Overwrite => "overwrite",
        };
        json!({
            "enable": self.enable,
            "metric_enable": self.metric_enable,
            "prof_dir": self.prof_dir.to_string_lossy(),
            "profiler_level": self.profiler_level,
            "acl_task_time": self.acl_task_time,
            "acl_level": acl_level,
            "acl_duration_s": self.acl_duration_s,
            "acl_data_type_mask": self.acl_data_type_mask,
            "aicore_metrics": self.aicore_metrics,
            "host_system_usage_freq": self.host_system_usage_freq,
            "npu_memory_usage_freq": self.npu_memory_usage_freq,
            "timelimit_s": self.timelimit_s,
            "domains": self.domains,
            "api_filter": self.api_filter,
            "kernel_filter": self.kernel_filter,
            "torch_prof_stack": self.torch_prof_stack,
            "torch_prof_modules": self.torch_prof_modules,
            "torch_prof_step_num": self.torch_prof_step_num,
            "profiler_step_num": self.profiler_step_num,
            "ring": {
                "segment_bytes": self.ring.segment_bytes,
                "total_bytes": self.ring.total_bytes,
                "chunk_bytes": self.ring.chunk_bytes,
                "policy": policy,
            },
        })
        .to_string()
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a non-integer number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Integer view of a JSON value; `u64` values beyond `i64` saturate (every range here is far below).
fn as_int(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_u64().map(|_| i64::MAX))
}

/// Per-parse state: the object being read and the warnings collected so far.
struct Reader<'a> {
    obj: &'a Map<String, Value>,
    warnings: Vec<Warning>,
}

impl<'a> Reader<'a> {
    fn warn(&mut self, field: &str, message: String) {
        self.warnings.push(Warning { field: field.to_string(), message });
    }

    /// Warns that `field` has the wrong type and that `fallback` is used.
    fn type_error(&mut self, field: &str, expected: &str, got: &Value, fallback: &str) {
        let message = format!("expected {expected}, got {}; using {fallback}", type_name(got));
        self.warn(field, message);
    }

    /// An integer field: `Ok(n)`, `Err(())` after a type warning; `None` when absent.
    fn int(&mut self, field: &str, fallback: &str) -> Option<Result<i64, ()>> {
        let v = self.obj.get(field)?;
        Some(match as_int(v) {
            Some(n) => Ok(n),
            None => {
                self.type_error(field, "an integer", v, fallback);
                Err(())
            }
        })
    }

    /// A string field; `None` when absent or after a type warning.
    fn string(&mut self, field: &str, fallback: &str) -> Option<&'a str> {
        let v = self.obj.get(field)?;
        match v.as_str() {
            Some(s) => Some(s),
            None => {
                self.type_error(field, "a string", v, fallback);
                None
            }
        }
    }

    /// A 0/1 switch that also accepts `true`/`false`; other integers mean off.
    fn switch(&mut self, field: &str) -> bool {
        match self.obj.get(field) {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(v) => match as_int(v) {
                Some(1) => true,
                Some(0) => false,
                Some(n) => {
                    self.warn(field, format!("expected 0 or 1, got {n}; using 0 (off)"));
                    false
                }
                None => {
                    self.type_error(field, "0, 1, true or false", v, "0 (off)");
                    false
                }
            },
        }
    }

    /// A strict boolean field, false by default.
    fn boolean(&mut self, field: &str) -> bool {
        match self.obj.get(field) {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(v) => {
                self.type_error(field, "true or false", v, "false");
                false
            }
        }
    }

    /// An integer in `lo..=hi` (default `default`); values outside are clamped with a warning.
    fn clamped(&mut self, field: &str, lo: i64, hi: i64, default: i64) -> i64 {
        match self.int(field, &default.to_string()) {
            Some(Ok(n)) if n < lo || n > hi => {
                let c = n.clamp(lo, hi);
                self.warn(field, format!("{n} is outside {lo}..={hi}; using {c}"));
                c
            }
            Some(Ok(n)) => n,
            _ => default,
        }
    }

    /// A sampling frequency: 1–50 Hz; -1 (or absent) = off silently; anything else warns, off.
    fn freq(&mut self, field: &str) -> Option<u32> {
        match self.int(field, "off")? {
            Ok(n) if (1..=FREQ_MAX).contains(&n) => Some(n as u32),
            Ok(-1) | Err(()) => None,
            Ok(n) => {
                self.warn(field, format!("{n} is not 1..=50 Hz or -1; sampling is off"));
                None
            }
        }
    }

    /// A `;`-separated list, each token trimmed, empty tokens dropped.
    fn list(&mut self, field: &str) -> Vec<String> {
        match self.string(field, "no filter") {
            Some(s) => s.split(';').map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect(),
            None => Vec::new(),
        }
    }

    fn prof_dir(&mut self, home: &Path) -> PathBuf {
        let default = default_prof_dir(home);
        let s = match self.string("prof_dir", &default) {
            Some("") => {
                self.warn("prof_dir", format!("empty path; using {default}"));
                return PathBuf::from(default);
            }
            Some(s) => s,
            None => return PathBuf::from(default),
        };
        let home = home.to_string_lossy();
        let home = home.trim_end_matches('/');
        let mut dir = if s == "~" {
            home.to_string()
        } else if let Some(rest) = s.strip_prefix("~/") {
            format!("{home}/{rest}")
        } else {
            s.to_string()
        };
        if !dir.ends_with('/') {
            dir.push('/');
        }
        PathBuf::from(dir)
    }

    fn profiler_level(&mut self) -> u32 {
        let field = "profiler_level";
        let Some(v) = self.obj.get(field) else {
            return LEVEL_DEFAULT;
        };
        if let Some(s) = v.as_str() {
            let upper = s.trim().to_ascii_uppercase();
            if let Some((_, n)) = LEVEL_NAMES.iter().find(|(name, _)| *name == upper) {
                return *n;
            }
            self.warn(field, format!("unknown level {s:?}; using INFO (20)"));
            return LEVEL_DEFAULT;
        }
        match as_int(v) {
            Some(n) if n >= 0 => u32::try_from(n).unwrap_or(u32::MAX),
            Some(n) => {
                self.warn(field, format!("{n} is negative; using INFO (20)"));
                LEVEL_DEFAULT
            }
            None => {
                self.type_error(field, "a level name or an integer >= 0", v, "INFO (20)");
                LEVEL_DEFAULT
            }
        }
    }

    fn acl_task_time(&mut self) -> u32 {
        match self.int("acl_task_time", "0 (off)") {
            Some(Ok(n)) if (0..=3).contains(&n) => n as u32,
            Some(Ok(n)) => {
                self.warn("acl_task_time", format!("{n} is not 0, 1, 2 or 3; using 0 (off)"));
                0
            }
            _ => 0,
        }
    }

    fn acl_level(&mut self) -> (AclLevel, Option<u32>) {
        let field = "acl_prof_task_time_level";
        let Some(s) = self.string(field, "L0") else {
            return (AclLevel::L0, None);
        };
        let (level, duration) = match s.split_once(';') {
            Some((l, d)) => (l.trim(), Some(d.trim())),
            None => (s.trim(), None),
        };
        let level = match level.to_ascii_uppercase().as_str() {
            "" | "L0" => AclLevel::L0,
            "L1" => AclLevel::L1,
            _ => {
                self.warn(field, format!("unknown level {level:?}; using L0"));
                AclLevel::L0
            }
        };
        let duration = duration.and_then(|d| match d.parse::<i64>() {
            Ok(n) if (1..=ACL_DURATION_MAX).contains(&n) => Some(n as u32),
            Ok(n) => {
                let c = n.clamp(1, ACL_DURATION_MAX);
                self.warn(field, format!("duration {n} s is outside 1..=999; using {c} s"));
                Some(c as u32)
            }
            Err(_) => {
                self.warn(field, format!("duration {d:?} is not an integer; no ACL duration limit"));
                None
            }
        });
        (level, duration)
    }

    fn acl_data_types(&mut self) -> u64 {
        let field = "aclDataTypeConfig";
        let Some(s) = self.string(field, "no extra data types") else {
            return 0;
        };
        let tokens: Vec<&str> = s.split(',').map(str::trim).filter(|t| !t.is_empty()).collect();
        if tokens.len() > ACL_DATA_TYPE_TOKENS_MAX {
            self.warn(field, format!("{} names given, at most 12 expected; all known names are used", tokens.len()));
        }
        let mut mask = 0;
        for t in tokens {
            let upper = t.to_ascii_uppercase();
            match ACL_DATA_TYPES.iter().find(|(name, _)| *name == upper) {
                Some((_, bit)) => mask |= bit,
                None => self.warn(field, format!("unknown data type {t:?}; skipped")),
            }
        }
        mask
    }

    fn aicore_metrics(&mut self) -> u32 {
        let field = "aclprofAicoreMetrics";
        let Some(s) = self.string(field, "ACL_AICORE_PIPE_UTILIZATION") else {
            return AICORE_DEFAULT;
        };
        let upper = s.trim().to_ascii_uppercase();
        if upper.is_empty() {
            return AICORE_NONE;
        }
        let name = upper.strip_prefix("ACL_AICORE_").unwrap_or(&upper);
        match AICORE_METRICS.iter().find(|(n, _)| *n == name) {
            Some((_, v)) => *v,
            None => {
                self.warn(field, format!("unknown metric set {s:?}; using ACL_AICORE_NONE"));
                AICORE_NONE
            }
        }
    }

    fn timelimit(&mut self) -> u32 {
        match self.int("timelimit", "0 (unlimited)") {
            Some(Ok(n)) if n > TIMELIMIT_MAX => {
                self.warn("timelimit", format!("{n} s is above 7200; using 7200"));
                TIMELIMIT_MAX as u32
            }
            Some(Ok(n)) => n.max(0) as u32,
            _ => 0,
        }
    }

    fn domains(&mut self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for token in self.list("domain") {
            let other = DOMAIN_ALIASES.iter().find_map(|&(alias, name)| {
                if token == alias {
                    Some(name)
                } else if token == name {
                    Some(alias)
                } else {
                    None
                }
            });
            for d in std::iter::once(token.as_str()).chain(other) {
                if !out.iter().any(|x| x == d) {
                    out.push(d.to_string());
                }
            }
        }
        out
    }

    fn torch_prof_step_num(&mut self) -> u32 {
        match self.int("torch_prof_step_num", "0 (all steps)") {
            Some(Ok(n)) => n.clamp(0, u32::MAX as i64) as u32,
            _ => 0,
        }
    }

    fn profiler_step_num(&mut self) -> Option<i64> {
        let field = "profiler_step_num";
        match self.int(field, "-1 (disabled)")? {
            Ok(-1) | Err(()) => None,
            Ok(n) if n < 0 => {
                self.warn(field, format!("{n} is negative; using 0 (stop at the next check)"));
                Some(0)
            }
            Ok(n) => Some(n),
        }
    }

    fn ring(&mut self) -> RingConfig {
        let size_mb = self.clamped("ring_size_mb", 1, RING_SIZE_MB_MAX, RING_SIZE_MB_DEFAULT);
        let total_default = RING_TOTAL_MB_DEFAULT.max(size_mb);
        let total_mb = match self.int("ring_total_mb", &total_default.to_string()) {
            Some(Ok(n)) if n < size_mb || n > RING_TOTAL_MB_MAX => {
                let c = n.clamp(size_mb, RING_TOTAL_MB_MAX);
                self.warn("ring_total_mb", format!("{n} is outside {size_mb}..={RING_TOTAL_MB_MAX}; using {c}"));
                c
            }
            Some(Ok(n)) => n,
            _ => total_default,
        };
        let chunk_max = RING_CHUNK_KB_MAX.min(size_mb * 1024);
        let chunk_kb = self.clamped("ring_chunk_kb", RING_CHUNK_KB_MIN, chunk_max, RING_CHUNK_KB_DEFAULT);
        let policy = match self.string("ring_full_policy", "\"drop\"") {
            None => FullPolicy::Drop,
            Some(s) => match s.trim().to_ascii_lowercase().as_str() {
                "drop" => FullPolicy::Drop,
                "overwrite" => FullPolicy::Overwrite,
                _ => {
                    self.warn("ring_full_policy", format!("unknown policy {s:?}; using \"drop\""));
                    FullPolicy::Drop
                }
            },
        };
        RingConfig { segment_bytes: size_mb as u64 * MIB, total_bytes: total_mb as u64 * MIB, chunk_bytes: (chunk_kb as u64 * KIB) as u32, policy }
    }
}

/// 1-based line and column of byte offset `pos` in `text`.
fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let before = &text[..pos];
    let line = before.matches('\n').count() + 1;
    let column = pos - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// Parses config text. Bad values give warnings (in a fixed field order, then unknown keys in file
/// order) and documented fallbacks.
///
/// # Errors
/// A [`ParseError`] with line and column when `text` is not valid JSON or not a JSON object.
pub fn parse(text: &str, home: &Path) -> Result<(Config, Vec<Warning>), ParseError> {
    let value: Value = serde_json::from_str(text).map_err(|e| ParseError { line: e.line(), column: e.column(), message: e.to_string() })?;
    let Value::Object(obj) = value else {
        let (line, column) = line_col(text, text.len() - text.trim_start().len());
        return Err(ParseError { line, column, message: "the top level is not a JSON object".into() });
    };
    let mut r = Reader { obj: &obj, warnings: Vec::new() };
    let enable = r.switch("enable");
    let metric_enable = r.switch("metric_enable");
    let prof_dir = r.prof_dir(home);
    let profiler_level = r.profiler_level();
    let acl_task_time = r.acl_task_time();
    let (acl_level, acl_duration_s) = r.acl_level();
    let acl_data_type_mask = r.acl_data_types() | level_mask(acl_level);
    let aicore_metrics = r.aicore_metrics();
    let host_system_usage_freq = r.freq("host_system_usage_freq");
    let npu_memory_usage_freq = r.freq("npu_memory_usage_freq");
    let timelimit_s = r.timelimit();
    let domains = r.domains();
    let api_filter = r.list("api_filter");
    let kernel_filter = r.list("kernel_filter");
    let torch_prof_stack = r.boolean("torch_prof_stack");
    let torch_prof_modules = r.boolean("torch_prof_modules");
    let torch_prof_step_num = r.torch_prof_step_num();
    let profiler_step_num = r.profiler_step_num();
    let ring = r.ring();
    for key in obj.keys().filter(|k| !KNOWN_KEYS.contains(&k.as_str())) {
        r.warn(key, "unknown field; ignored".into());
    }
    let config = Config {
        enable,
        metric_enable,
        prof_dir,
        profiler_level,
        acl_task_time,
        acl_level,
        acl_duration_s,
        acl_data_type_mask,
        aicore_metrics,
        host_system_usage_freq,
        npu_memory_usage_freq,
        timelimit_s,
        domains,
        api_filter,
        kernel_filter,
        torch_prof_stack,
        torch_prof_modules,
        torch_prof_step_num,
        profiler_step_num,
        ring,
    };
    Ok((config, r.warnings))
}

/// Exact default file text of CONTRACT §1.4 (keys in that order, 4-space indent, `"enable": 0` on
/// its own line so the guide's `sed -i 's/"enable":\s*0/"enable": 1/'` works), plus a trailing newline.
pub fn default_file_text(home: &Path) -> String {
    let prof_dir = Value::String(default_prof_dir(home)).to_string();
    format!(
        "{{\n    \"enable\": 0,\n    \"prof_dir\": {prof_dir},\n    \"profiler_level\": \"INFO\",\n    \
         \"acl_task_time\": 0,\n    \"acl_prof_task_time_level\": \"L0\",\n    \"timelimit\": 0,\n    \
         \"domain\": \"\"\n}}\n"
    )
}

/// Minimal JSON scanner over text already known to be valid JSON.
struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn skip_ws(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.skip_ws();
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    /// Reads a string starting at its opening quote and returns its decoded text.
    fn string(&mut self) -> Option<String> {
        self.eat(b'"')?;
        let mut out = Vec::new();
        loop {
            let c = *self.b.get(self.i)?;
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let e = *self.b.get(self.i)?;
                    self.i += 1;
                    let ch = match e {
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hex = std::str::from_utf8(self.b.get(self.i..self.i + 4)?).ok()?;
                            self.i += 4;
                            char::from_u32(u32::from_str_radix(hex, 16).ok()?).unwrap_or('\u{fffd}')
                        }
                        other => other as char,
                    };
                    out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                }
                _ => out.push(c),
            }
        }
    }

    /// Skips one value of any kind.
    fn value(&mut self) -> Option<()> {
        self.skip_ws();
        match *self.b.get(self.i)? {
            b'"' => self.string().map(drop),
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                self.i += 1;
                if self.eat(close).is_some() {
                    return Some(());
                }
                loop {
                    if open == b'{' {
                        self.string()?;
                        self.eat(b':')?;
                    }
                    self.value()?;
                    if self.eat(b',').is_none() {
                        return self.eat(close);
                    }
                }
            }
            _ => {
                let start = self.i;
                while !matches!(self.b.get(self.i), None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')) {
                    self.i += 1;
                }
                (self.i > start).then_some(())
            }
        }
    }
}

/// Rewrite only the value token of the top-level `"enable"` key (to 0 or 1), keeping every other
/// byte; `None` if there is no top-level `enable` key or the text is not a JSON object. Every
/// top-level occurrence is rewritten when the key is duplicated.
pub fn set_enable_text(text: &str, on: bool) -> Option<String> {
    if !serde_json::from_str::<Value>(text).ok()?.is_object() {
        return None;
    }
    let mut s = Scanner { b: text.as_bytes(), i: 0 };
    let mut spans = Vec::new();
    s.eat(b'{')?;
    if s.eat(b'}').is_none() {
        loop {
            let key = s.string()?;
            s.eat(b':')?;
            s.skip_ws();
            let start = s.i;
            s.value()?;
            if key == "enable" {
                spans.push(start..s.i);
            }
            if s.eat(b',').is_none() {
                s.eat(b'}')?;
                break;
            }
        }
    }
    if spans.is_empty() {
        return None;
    }
    let new = if on { "1" } else { "0" };
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for span in spans {
        out.push_str(&text[last..span.start]);
        out.push_str(new);
        last = span.end;
    }
    out.push_str(&text[last..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home() -> &'static Path {
        Path::new("/home/u")
    }

    fn p(text: &str) -> (Config, Vec<Warning>) {
        parse(text, home()).expect("valid JSON")
    }

    /// Parses `{"<field>": <value>}` and returns the config and the fields warned about.
    fn one(field: &str, value: &str) -> (Config, Vec<String>) {
        let (c, w) = p(&format!("{{\"{field}\": {value}}}"));
        (c, w.into_iter().map(|w| w.field).collect())
    }

    fn ok(field: &str, value: &str) -> Config {
        let (c, w) = one(field, value);
        assert!(w.is_empty(), "{field}={value}: unexpected warnings {w:?}");
        c
    }

    fn warned(field: &str, value: &str) -> Config {
        let (c, w) = one(field, value);
        assert_eq!(w, vec![field.to_string()], "{field}={value}");
        c
    }

    /// `sed 's/"enable":\s*0/"enable": 1/'`: first match on each line.
    fn sed_enable(text: &str) -> String {
        let mut out = String::new();
        for line in text.split_inclusive('\n') {
            let mut replaced = None;
            let mut from = 0;
            while let Some(pos) = line[from..].find("\"enable\":").map(|p| p + from) {
                let after = &line[pos + 9..];
                let rest = after.trim_start_matches(|c: char| c.is_ascii_whitespace());
                if let Some(tail) = rest.strip_prefix('0') {
                    replaced = Some(format!("{}\"enable\": 1{}", &line[..pos], tail));
                    break;
                }
                from = pos + 1;
            }
            out.push_str(replaced.as_deref().unwrap_or(line));
        }
        out
    }

    #[test]
    fn defaults() {
        let c = Config::defaults(home());
        assert!(!c.enable && !c.metric_enable);
        assert_eq!(c.prof_dir, PathBuf::from("/home/u/.ms_server_profiler/"));
        assert_eq!(c.prof_dir.to_str(), Some("/home/u/.ms_server_profiler/"));
        assert_eq!(c.profiler_level, 20);
        assert_eq!((c.acl_task_time, c.acl_level, c.acl_duration_s), (0, AclLevel::L0, None));
        assert_eq!(c.acl_data_type_mask, 0x880);
        assert_eq!(c.aicore_metrics, 1);
        assert_eq!((c.host_system_usage_freq, c.npu_memory_usage_freq), (None, None));
        assert_eq!(c.timelimit_s, 0);
        assert!(c.domains.is_empty() && c.api_filter.is_empty() && c.kernel_filter.is_empty());
        assert!(!c.torch_prof_stack && !c.torch_prof_modules);
        assert_eq!((c.torch_prof_step_num, c.profiler_step_num), (0, None));
        assert_eq!(c.ring, RingConfig { segment_bytes: 64 << 20, total_bytes: 1 << 30, chunk_bytes: 64 << 10, policy: FullPolicy::Drop });
        assert_eq!(p("{}"), (c.clone(), vec![]));
        assert_eq!(p(" \n{ }\n"), (c, vec![]));
        let root = Config::defaults(Path::new("/root/"));
        assert_eq!(root.prof_dir.to_str(), Some("/root/.ms_server_profiler/"));
    }

    #[test]
    fn enable_values() {
        assert!(ok("enable", "1").enable);
        assert!(ok("enable", "true").enable);
        assert!(!ok("enable", "0").enable);
        assert!(!ok("enable", "false").enable);
        assert!(!warned("enable", "2").enable);
        assert!(!warned("enable", "-1").enable);
        assert!(!warned("enable", "\"1\"").enable);
        assert!(!warned("enable", "1.0").enable);
        assert!(!warned("enable", "null").enable);
        assert!(!warned("enable", "18446744073709551615").enable);
        assert!(ok("metric_enable", "1").metric_enable);
        assert!(ok("metric_enable", "true").metric_enable);
        assert!(!ok("metric_enable", "0").metric_enable);
        assert!(!warned("metric_enable", "5").metric_enable);
        assert!(!warned("metric_enable", "\"on\"").metric_enable);
    }

    #[test]
    fn prof_dir_values() {
        let d = |v: &str| ok("prof_dir", v).prof_dir.to_str().unwrap().to_string();
        assert_eq!(d("\"/data/prof\""), "/data/prof/");
        assert_eq!(d("\"/data/prof/\""), "/data/prof/");
        assert_eq!(d("\"./log\""), "./log/");
        assert_eq!(d("\"log\""), "log/");
        assert_eq!(d("\"~\""), "/home/u/");
        assert_eq!(d("\"~/prof\""), "/home/u/prof/");
        assert_eq!(d("\"~other/x\""), "~other/x/");
        assert_eq!(d("\"/a/~/b\""), "/a/~/b/");
        let default = Config::defaults(home()).prof_dir;
        assert_eq!(warned("prof_dir", "5").prof_dir, default);
        assert_eq!(warned("prof_dir", "\"\"").prof_dir, default);
        assert_eq!(warned("prof_dir", "[\"/x\"]").prof_dir, default);
    }

    #[test]
    fn profiler_level_values() {
        let lvl = |v: &str| ok("profiler_level", v).profiler_level;
        for (v, n) in [
            ("\"ERROR\"", 10),
            ("\"info\"", 20),
            ("\"Detailed\"", 30),
            ("\"VERBOSE\"", 40),
            ("\"LEVEL_CORE_TRACE\"", 10),
            ("\"LEVEL_OUTLIER_ENENT\"", 10),
            ("\"level_outlier_event\"", 10),
            ("\"LEVEL_NORMAL_TRACE\"", 20),
            ("\"LEVEL_DETAILED_TRACE\"", 30),
            ("\"L0\"", 10),
            ("\"l1\"", 20),
            ("\"L2\"", 30),
            ("0", 0),
            ("35", 35),
            ("99999999999", u32::MAX),
        ] {
            assert_eq!(lvl(v), n, "{v}");
        }
        for v in ["\"L3\"", "\"\"", "-1", "20.5", "true", "null"] {
            assert_eq!(warned("profiler_level", v).profiler_level, 20, "{v}");
        }
    }

    #[test]
    fn acl_task_time_values() {
        for n in 0..=3 {
            assert_eq!(ok("acl_task_time", &n.to_string()).acl_task_time, n);
        }
        for v in ["4", "-1", "\"1\"", "1.5"] {
            assert_eq!(warned("acl_task_time", v).acl_task_time, 0, "{v}");
        }
    }

    #[test]
    fn acl_level_values() {
        let f = "acl_prof_task_time_level";
        let lv = |c: Config| (c.acl_level, c.acl_duration_s);
        assert_eq!(lv(ok(f, "\"L0\"")), (AclLevel::L0, None));
        assert_eq!(lv(ok(f, "\"L1\"")), (AclLevel::L1, None));
        assert_eq!(lv(ok(f, "\"\"")), (AclLevel::L0, None));
        assert_eq!(lv(ok(f, "\"L1;5\"")), (AclLevel::L1, Some(5)));
        assert_eq!(lv(ok(f, "\" l0 ; 999 \"")), (AclLevel::L0, Some(999)));
        assert_eq!(lv(ok(f, "\";3\"")), (AclLevel::L0, Some(3)));
        assert_eq!(lv(warned(f, "\"L2\"")), (AclLevel::L0, None));
        assert_eq!(lv(warned(f, "\"L1;0\"")), (AclLevel::L1, Some(1)));
        assert_eq!(lv(warned(f, "\"L1;-7\"")), (AclLevel::L1, Some(1)));
        assert_eq!(lv(warned(f, "\"L1;1000\"")), (AclLevel::L1, Some(999)));
        assert_eq!(lv(warned(f, "\"L1;abc\"")), (AclLevel::L1, None));
        assert_eq!(lv(warned(f, "\"L1;\"")), (AclLevel::L1, None));
        assert_eq!(lv(warned(f, "1")), (AclLevel::L0, None));
        let (_, w) = one(f, "\"L9;0\"");
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn acl_mask_examples() {
        assert_eq!(ok("acl_prof_task_time_level", "\"L0\"").acl_data_type_mask, 0x880);
        assert_eq!(ok("acl_prof_task_time_level", "\"L1\"").acl_data_type_mask, 0x83);
        let types = "\"aclDataTypeConfig\": \"ACL_PROF_ACL_API, ACL_PROF_TASK_TIME,ACL_PROF_AICORE_METRICS\"";
        let (c, w) = p(&format!("{{\"acl_prof_task_time_level\": \"L0\", {types}}}"));
        assert!(w.is_empty());
        assert_eq!(c.acl_data_type_mask, 0x887);
        let (c, _) = p(&format!("{{\"acl_prof_task_time_level\": \"L1\", {types}}}"));
        assert_eq!(c.acl_data_type_mask, 0x87);
        let all = ACL_DATA_TYPES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(",");
        assert_eq!(ok("aclDataTypeConfig", &format!("\"{all}\"")).acl_data_type_mask, 0x59ff);
        assert_eq!(ok("aclDataTypeConfig", "\"\"").acl_data_type_mask, 0x880);
        assert_eq!(ok("aclDataTypeConfig", "\"acl_prof_aicpu,\"").acl_data_type_mask, 0x888);
        assert_eq!(warned("aclDataTypeConfig", "\"ACL_PROF_AICPU,BOGUS\"").acl_data_type_mask, 0x888);
        assert_eq!(warned("aclDataTypeConfig", "7").acl_data_type_mask, 0x880);
        let many = vec!["ACL_PROF_AICPU"; 13].join(",");
        assert_eq!(warned("aclDataTypeConfig", &format!("\"{many}\"")).acl_data_type_mask, 0x888);
    }

    #[test]
    fn aicore_metrics_values() {
        let f = "aclprofAicoreMetrics";
        assert_eq!(ok(f, "\"ACL_AICORE_PIPE_UTILIZATION\"").aicore_metrics, 1);
        assert_eq!(ok(f, "\"acl_aicore_memory_bandwidth\"").aicore_metrics, 2);
        assert_eq!(ok(f, "\"ACL_AICORE_L0B_AND_WIDTH\"").aicore_metrics, 3);
        assert_eq!(ok(f, "\"ACL_AICORE_RESOURCE_CONFLICT_RATIO\"").aicore_metrics, 4);
        assert_eq!(ok(f, "\"ACL_AICORE_MEMORY_UB\"").aicore_metrics, 5);
        assert_eq!(ok(f, "\"L2_CACHE\"").aicore_metrics, 6);
        assert_eq!(ok(f, "\"ACL_AICORE_NONE\"").aicore_metrics, 0xFF);
        assert_eq!(ok(f, "\"\"").aicore_metrics, 0xFF);
        assert_eq!(warned(f, "\"ACL_AICORE_ARITHMETIC_UTILIZATION\"").aicore_metrics, 0xFF);
        assert_eq!(warned(f, "\"bogus\"").aicore_metrics, 0xFF);
        assert_eq!(warned(f, "2").aicore_metrics, 1);
    }

    #[test]
    fn freq_values() {
        for f in ["host_system_usage_freq", "npu_memory_usage_freq"] {
            let get = |c: &Config| {
                if f.starts_with("host") {
                    c.host_system_usage_freq
                } else {
                    c.npu_memory_usage_freq
                }
            };
            assert_eq!(get(&ok(f, "1")), Some(1));
            assert_eq!(get(&ok(f, "50")), Some(50));
            assert_eq!(get(&ok(f, "-1")), None);
            for v in ["0", "51", "-2", "\"10\"", "10.5"] {
                assert_eq!(get(&warned(f, v)), None, "{f}={v}");
            }
        }
    }

    #[test]
    fn timelimit_values() {
        assert_eq!(ok("timelimit", "0").timelimit_s, 0);
        assert_eq!(ok("timelimit", "-5").timelimit_s, 0);
        assert_eq!(ok("timelimit", "120").timelimit_s, 120);
        assert_eq!(ok("timelimit", "7200").timelimit_s, 7200);
        assert_eq!(warned("timelimit", "7201").timelimit_s, 7200);
        assert_eq!(warned("timelimit", "\"60\"").timelimit_s, 0);
        assert_eq!(warned("timelimit", "60.0").timelimit_s, 0);
    }

    #[test]
    fn domains_and_aliases() {
        let d = |v: &str| ok("domain", v).domains;
        assert!(d("\"\"").is_empty());
        assert!(d("\" ; ;\"").is_empty());
        assert_eq!(d("\"Request\""), ["Request", "Engine"]);
        assert_eq!(d("\"Engine\""), ["Engine", "Request"]);
        assert_eq!(d("\" KVCache ;ModelExecute\""), ["KVCache", "Schedule.KVCache", "ModelExecute", "Execute"]);
        assert_eq!(d("\"BatchSchedule;Schedule;Server\""), ["BatchSchedule", "Schedule", "Server"]);
        let c = ok("domain", "\"Request;KVCache\"");
        for yes in ["Request", "Engine", "KVCache", "Schedule.KVCache"] {
            assert!(c.domain_allowed(yes), "{yes}");
        }
        for no in ["Schedule", "Execute", "engine", "Multimodal", ""] {
            assert!(!c.domain_allowed(no), "{no}");
        }
        let c = ok("domain", "\"Execute\"");
        assert!(c.domain_allowed("ModelExecute") && c.domain_allowed("Execute"));
        let c = warned("domain", "[\"Engine\"]");
        assert!(c.domains.is_empty() && c.domain_allowed("Anything"));
        assert!(Config::defaults(home()).domain_allowed("Anything"));
    }

    #[test]
    fn filter_values() {
        for f in ["api_filter", "kernel_filter"] {
            let get = |c: Config| {
                if f == "api_filter" {
                    c.api_filter
                } else {
                    c.kernel_filter
                }
            };
            assert_eq!(get(ok(f, "\"matmul; add ;\"")), ["matmul", "add"]);
            assert!(get(ok(f, "\"\"")).is_empty());
            assert!(get(warned(f, "1")).is_empty());
        }
    }

    #[test]
    fn torch_values() {
        assert!(ok("torch_prof_stack", "true").torch_prof_stack);
        assert!(!ok("torch_prof_stack", "false").torch_prof_stack);
        assert!(!warned("torch_prof_stack", "1").torch_prof_stack);
        assert!(ok("torch_prof_modules", "true").torch_prof_modules);
        assert!(!warned("torch_prof_modules", "\"true\"").torch_prof_modules);
        assert_eq!(ok("torch_prof_step_num", "5").torch_prof_step_num, 5);
        assert_eq!(ok("torch_prof_step_num", "0").torch_prof_step_num, 0);
        assert_eq!(ok("torch_prof_step_num", "-3").torch_prof_step_num, 0);
        assert_eq!(warned("torch_prof_step_num", "\"5\"").torch_prof_step_num, 0);
    }

    #[test]
    fn profiler_step_num_values() {
        let f = "profiler_step_num";
        assert_eq!(ok(f, "-1").profiler_step_num, None);
        assert_eq!(ok(f, "0").profiler_step_num, Some(0));
        assert_eq!(ok(f, "100").profiler_step_num, Some(100));
        assert_eq!(warned(f, "-2").profiler_step_num, Some(0));
        assert_eq!(warned(f, "\"10\"").profiler_step_num, None);
        assert_eq!(warned(f, "true").profiler_step_num, None);
    }

    #[test]
    fn ring_values() {
        let r = |v: &str| p(v);
        let (c, w) = r(r#"{"ring_size_mb": 8, "ring_total_mb": 64, "ring_chunk_kb": 16, "ring_full_policy": "Overwrite"}"#);
        assert!(w.is_empty());
        assert_eq!(c.ring, RingConfig { segment_bytes: 8 << 20, total_bytes: 64 << 20, chunk_bytes: 16 << 10, policy: FullPolicy::Overwrite });
        assert_eq!(warned("ring_size_mb", "0").ring.segment_bytes, 1 << 20);
        assert_eq!(warned("ring_size_mb", "5000").ring.segment_bytes, 4096 << 20);
        assert_eq!(warned("ring_size_mb", "\"8\"").ring.segment_bytes, 64 << 20);
        assert_eq!(ok("ring_size_mb", "4096").ring.total_bytes, 4096 << 20);
        assert_eq!(warned("ring_total_mb", "32").ring.total_bytes, 64 << 20);
        assert_eq!(warned("ring_total_mb", "99999999").ring.total_bytes, 1 << 40);
        assert_eq!(warned("ring_total_mb", "null").ring.total_bytes, 1 << 30);
        assert_eq!(warned("ring_chunk_kb", "8").ring.chunk_bytes, 16 << 10);
        assert_eq!(warned("ring_chunk_kb", "8192").ring.chunk_bytes, 4096 << 10);
        assert_eq!(ok("ring_chunk_kb", "4096").ring.chunk_bytes, 4096 << 10);
        let (c, w) = r(r#"{"ring_size_mb": 1, "ring_chunk_kb": 2048}"#);
        assert_eq!((c.ring.segment_bytes, c.ring.chunk_bytes), (1 << 20, 1 << 20));
        assert_eq!(w.iter().map(|w| w.field.as_str()).collect::<Vec<_>>(), ["ring_chunk_kb"]);
        assert_eq!(ok("ring_full_policy", "\"drop\"").ring.policy, FullPolicy::Drop);
        assert_eq!(warned("ring_full_policy", "\"block\"").ring.policy, FullPolicy::Drop);
        assert_eq!(warned("ring_full_policy", "1").ring.policy, FullPolicy::Drop);
    }

    #[test]
    fn unknown_keys_and_order() {
        let (c, w) = p(r#"{"zeta": 1, "enable": "x", "timelimit": 9999, "alpha": {}, "domain": 3}"#);
        assert_eq!(c, Config { timelimit_s: 7200, ..Config::defaults(home()) });
        let fields: Vec<_> = w.iter().map(|w| w.field.as_str()).collect();
        assert_eq!(fields, ["enable", "timelimit", "domain", "zeta", "alpha"]);
        assert!(w[3].message.contains("unknown field"));
        assert_eq!(w[0].to_string(), "config field \"enable\": expected 0, 1, true or false, got a string; using 0 (off)");
    }

    #[test]
    fn removed_keys_return_to_defaults() {
        let full = r#"{"enable": 1, "api_filter": "a", "kernel_filter": "k", "acl_prof_task_time_level": "L1;5",
            "torch_prof_stack": true, "torch_prof_modules": true, "acl_task_time": 2, "domain": "Engine"}"#;
        let (c, w) = p(full);
        assert!(w.is_empty() && c.enable && c.acl_level == AclLevel::L1);
        assert_eq!(p("{\"enable\": 1}").0, Config { enable: true, ..Config::defaults(home()) });
    }

    #[test]
    fn invalid_json() {
        let e = parse("{\n  \"enable\": 1,\n  \"timelimit\": ,\n}", home()).unwrap_err();
        assert_eq!((e.line, e.column), (3, 16));
        assert!(e.to_string().starts_with("invalid config JSON at line 3 column 16"));
        let e = parse("{\"enable\": 1", home()).unwrap_err();
        assert_eq!(e.line, 1);
        assert!(parse("", home()).is_err());
        assert!(parse("{\"a\":1} x", home()).is_err());
        let e = parse("\n  [1, 2]", home()).unwrap_err();
        assert_eq!((e.line, e.column), (2, 3));
        assert_eq!(parse("1", home()).unwrap_err().column, 1);
    }

    #[test]
    fn default_file_round_trip() {
        let text = default_file_text(home());
        assert_eq!(
            text,
            "{\n    \"enable\": 0,\n    \"prof_dir\": \"/home/u/.ms_server_profiler/\",\n    \"profiler_level\": \"INFO\",\n    \
             \"acl_task_time\": 0,\n    \"acl_prof_task_time_level\": \"L0\",\n    \"timelimit\": 0,\n    \"domain\": \"\"\n}\n"
        );
        assert!(text.lines().any(|l| l.trim() == "\"enable\": 0,"));
        let (c, w) = p(&text);
        assert!(w.is_empty());
        assert_eq!(c, Config::defaults(home()));
        let on = sed_enable(&text);
        assert_ne!(on, text);
        let (c, w) = p(&on);
        assert!(w.is_empty() && c.enable);
        assert_eq!(set_enable_text(&text, true).as_deref(), Some(on.as_str()));
        assert_eq!(set_enable_text(&on, false).as_deref(), Some(text.as_str()));
        let odd = default_file_text(Path::new("/home/a \"q\"\\"));
        assert_eq!(p(&odd).0.prof_dir.to_str(), Some("/home/a \"q\"\\/.ms_server_profiler/"));
    }

    #[test]
    fn set_enable_keeps_other_bytes() {
        let cases = [
            ("{\"enable\":1}", false, "{\"enable\":0}"),
            ("{\"enable\" : true}", false, "{\"enable\" : 0}"),
            ("{\"enable\":0}", true, "{\"enable\":1}"),
            ("{\"enable\":1}", true, "{\"enable\":1}"),
            (" {\t\"enable\"\r\n:\n\n  \"1\"  ,\"x\":2 } \n", false, " {\t\"enable\"\r\n:\n\n  0  ,\"x\":2 } \n"),
            (
                "{\"a\": {\"enable\": 1, \"b\": [{\"enable\": 1}]}, \"s\": \"\\\"enable\\\": 1\", \"enable\": 1, \"t\": [\"enable\", 1]}",
                false,
                "{\"a\": {\"enable\": 1, \"b\": [{\"enable\": 1}]}, \"s\": \"\\\"enable\\\": 1\", \"enable\": 0, \"t\": [\"enable\", 1]}",
            ),
            ("{\"enable\": {\"enable\": 1}, \"k\": -1.5e3}", true, "{\"enable\": 1, \"k\": -1.5e3}"),
            ("{\"en\\u0061ble\": 0}", true, "{\"en\\u0061ble\": 1}"),
            ("{\"enable\": 0, \"enable\": 0}", true, "{\"enable\": 1, \"enable\": 1}"),
            ("{\"ü\": \"é\\n\", \"enable\": null}", true, "{\"ü\": \"é\\n\", \"enable\": 1}"),
        ];
        for (input, on, want) in cases {
            assert_eq!(set_enable_text(input, on).as_deref(), Some(want), "{input}");
            assert_eq!(p(want).0.enable, on, "{want}");
        }
        for bad in
            ["{}", "{\"a\": {\"enable\": 1}}", "{\"s\": \"\\\"enable\\\": 1\"}", "[{\"enable\": 1}]", "\"enable\"", "{\"enable\": 1", "", "{\"enable\": 1} x"]
        {
            assert_eq!(set_enable_text(bad, true), None, "{bad}");
        }
    }

    #[test]
    fn to_json_has_every_field() {
        let (c, _) = p(r#"{"enable": 1, "domain": "Request", "acl_prof_task_time_level": "L1;5", "npu_memory_usage_freq": 10, "profiler_step_num": 3}"#);
        let v: Value = serde_json::from_str(&c.to_json()).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "enable",
                "metric_enable",
                "prof_dir",
                "profiler_level",
                "acl_task_time",
                "acl_level",
                "acl_duration_s",
                "acl_data_type_mask",
                "aicore_metrics",
                "host_system_usage_freq",
                "npu_memory_usage_freq",
                "timelimit_s",
                "domains",
                "api_filter",
                "kernel_filter",
                "torch_prof_stack",
                "torch_prof_modules",
                "torch_prof_step_num",
                "profiler_step_num",
                "ring"
            ]
        );
        assert_eq!(v["enable"], true);
        assert_eq!(v["prof_dir"], "/home/u/.ms_server_profiler/");
        assert_eq!(v["acl_level"], "L1");
        assert_eq!(v["acl_duration_s"], 5);
        assert_eq!(v["acl_data_type_mask"], 0x83);
        assert_eq!(v["host_system_usage_freq"], Value::Null);
        assert_eq!(v["npu_memory_usage_freq"], 10);
        assert_eq!(v["domains"], json!(["Request", "Engine"]));
        assert_eq!(v["profiler_step_num"], 3);
        assert_eq!(v["ring"], json!({"segment_bytes": 64 << 20, "total_bytes": 1u64 << 30, "chunk_bytes": 64 << 10, "policy": "drop"}));
        assert!(!c.to_json().contains('\n') && !c.to_json().contains(": "));
    }
}
