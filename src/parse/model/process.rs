//! Processes and hosts: identity, role, DP rank, output pid and ordering.

use crate::reader::ProcessMeta;

/// What a process does in a vLLM service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// The OpenAI API server (frontend): `Engine` domain (httpReq/httpRes).
    ApiServer,
    /// EngineCore: the scheduler (`Schedule` domain).
    EngineCore,
    /// A worker: model execution only (`Execute` domain).
    Worker,
    /// Anything else.
    Other,
}

impl Role {
    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Role::ApiServer => "APIServer",
            Role::EngineCore => "EngineCore",
            Role::Worker => "Worker",
            Role::Other => "Process",
        }
    }

    /// From a `processRole` meta value (case-insensitive, `_`/`-`/space ignored).
    pub fn from_meta(s: &str) -> Role {
        let k: String = s.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
        match k.as_str() {
            "apiserver" | "api" | "frontend" | "server" => Role::ApiServer,
            "enginecore" | "engine" | "scheduler" | "core" => Role::EngineCore,
            "worker" | "gpuworker" | "npuworker" | "modelrunner" => Role::Worker,
            _ => Role::Other,
        }
    }

    /// Inferred from the domains a process emitted (bit 0 Engine, 1 Schedule, 2 Execute).
    pub fn infer(domains: u8) -> Role {
        if domains & 2 != 0 {
            Role::EngineCore
        } else if domains & 1 != 0 {
            Role::ApiServer
        } else if domains & 4 != 0 {
            Role::Worker
        } else {
            Role::Other
        }
    }
}

/// One captured process.
#[derive(Clone, Debug)]
pub struct ProcInfo {
    /// Index in the parse (stable, by file-set path).
    pub index: usize,
    /// OS pid.
    pub pid: u32,
    /// Parent pid.
    pub ppid: u32,
    /// Host name.
    pub hostname: String,
    /// File-set stem: the `prof_id` column.
    pub prof_id: String,
    /// DP rank (`dpRankId` meta), when ≥ 0.
    pub dp_rank: Option<i64>,
    /// Role from `processRole` meta, if set.
    pub meta_role: Option<Role>,
    /// UTC offset to render datetimes with (capture host's, or `--timezone`).
    pub offset_s: i32,
    /// The pid used in the trace (the OS pid, made unique across hosts).
    pub trace_pid: u64,
    /// Index of the host (hosts ordered by name).
    pub host_index: usize,
}

impl ProcInfo {
    /// From a meta file.
    pub fn new(index: usize, m: &ProcessMeta, tz: Option<i32>) -> ProcInfo {
        let dp_rank = m.meta_value("dpRankId").and_then(|v| v.trim().parse::<i64>().ok()).filter(|&r| r >= 0);
        let hostname = m.meta_value("hostname").map(str::to_string).unwrap_or_else(|| m.hostname.clone());
        ProcInfo {
            index,
            pid: m.pid,
            ppid: m.ppid,
            hostname,
            prof_id: m.stem.clone(),
            dp_rank,
            meta_role: m.meta_value("processRole").map(Role::from_meta),
            offset_s: tz.unwrap_or(m.utc_offset_s),
            trace_pid: m.pid as u64,
            host_index: 0,
        }
    }

    /// The `dp_rank` cell: the rank, or `<NA>`.
    pub fn dp_cell(&self) -> String {
        self.dp_rank.map(|r| r.to_string()).unwrap_or_else(|| "<NA>".into())
    }
}

/// Number hosts by name and give every process a trace pid unique across hosts: the OS pid when
/// it is unique, else `pid + 10_000_000 × (host index + 1)`.
pub fn assign_ids(procs: &mut [ProcInfo]) {
    let mut hosts: Vec<String> = procs.iter().map(|p| p.hostname.clone()).collect();
    hosts.sort();
    hosts.dedup();
    let mut seen = std::collections::HashMap::<u32, usize>::new();
    for p in procs.iter() {
        *seen.entry(p.pid).or_default() += 1;
    }
    for p in procs.iter_mut() {
        p.host_index = hosts.binary_search(&p.hostname).unwrap_or(0);
        if seen[&p.pid] > 1 {
            p.trace_pid = p.pid as u64 + 10_000_000 * (p.host_index as u64 + 1);
        }
    }
    // Same pid on the same host twice (pid reuse across restarts): add the file index.
    let mut used = std::collections::HashSet::new();
    for p in procs.iter_mut() {
        while !used.insert(p.trace_pid) {
            p.trace_pid += 100_000_000;
        }
    }
}
