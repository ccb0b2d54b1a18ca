//! CPU time per request, read from /proc.

/// Whose CPU time a measurement counts, read from /proc (user + system, in clock ticks).
pub(crate) enum Cpu {
    /// A process and its children (nginx's master and workers; sfgate).
    ProcessTree(u32),
    /// Two process trees together.
    Both(u32, u32),
    /// The driver's own threads whose names start with this (the floors).
    OwnThreads(&'static str),
    /// A process tree and the driver's own threads (nginx asking a floor in the driver).
    TreeAndThreads(u32, &'static str),
}

impl Cpu {
    pub(crate) fn ticks(&self) -> Option<u64> {
        match self {
            Self::ProcessTree(pid) => tree_ticks(*pid),
            Self::Both(a, b) => Some(tree_ticks(*a)? + tree_ticks(*b)?),
            Self::TreeAndThreads(pid, prefix) => {
                Some(tree_ticks(*pid)? + Self::OwnThreads(prefix).ticks()?)
            }
            Self::OwnThreads(prefix) => {
                let mut sum = 0;
                for task in std::fs::read_dir("/proc/self/task").ok()? {
                    let path = task.ok()?.path();
                    let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
                    if comm.starts_with(prefix) {
                        sum += stat_ticks(&std::fs::read_to_string(path.join("stat")).ok()?)?.0;
                    }
                }
                Some(sum)
            }
        }
    }
}

/// `utime + stime` of this process's children that have exited and been waited for (the load
/// generator's runs), from `/proc/self/stat`'s `cutime` and `cstime`.
pub(crate) fn waited_children_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3: cutime is field 16, cstime 17.
    let cutime: u64 = fields.get(13)?.parse().ok()?;
    let cstime: u64 = fields.get(14)?.parse().ok()?;
    Some(cutime + cstime)
}

/// `utime + stime` of `pid` and of its direct children (nginx's workers).
pub(crate) fn tree_ticks(pid: u32) -> Option<u64> {
    let (own, _) = stat_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
    let mut sum = own;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((ticks, parent)) = stat_ticks(&stat) {
            if parent == pid {
                sum += ticks;
            }
        }
    }
    Some(sum)
}

/// `(utime + stime, ppid)` from a /proc `stat` line (fields after the parenthesised name).
pub(crate) fn stat_ticks(stat: &str) -> Option<(u64, u32)> {
    let (utime, stime, ppid) = stat_times(stat)?;
    Some((utime + stime, ppid))
}

/// `(utime, stime, ppid)` from a /proc `stat` line (fields after the parenthesised name).
fn stat_times(stat: &str) -> Option<(u64, u64, u32)> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime, stime, ppid))
}

/// A `schedstat` file's first field: the thread's time on a CPU, ns.
fn schedstat_ns(schedstat: &str) -> Option<u64> {
    schedstat.split_whitespace().next()?.parse().ok()
}

/// CPU µs per request from tick counts before and after a run (Linux's USER_HZ is 100).
pub(crate) fn cpu_per_request(
    before: Option<u64>,
    after: Option<u64>,
    requests: u64,
) -> Option<f64> {
    const TICK_US: f64 = 10_000.0;
    let ticks = after?.checked_sub(before?)?;
    (requests > 0).then(|| ticks as f64 * TICK_US / requests as f64)
}

/// CPU time of every live thread of `pid` in nanoseconds, from `/proc/<pid>/task/*/schedstat`
/// (its first field: time on a CPU, ns). For short measurements where clock ticks (10 ms) are
/// too coarse; a thread that exits between two readings takes its time with it, so this suits
/// processes whose threads live on (sfgate's serving threads and its main thread).
pub(crate) fn process_cpu_ns(pid: u32) -> Option<u64> {
    let mut sum = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        sum += schedstat_ns(&stat)?;
    }
    Some(sum)
}

/// Where a set of threads spent their time: on a CPU in all (ns, from `schedstat`), the user
/// and system parts of it (clock ticks, from `stat`), and how often the scheduler took the CPU
/// from them while they could still run (`nonvoluntary_ctxt_switches`, from `status`).
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Usage {
    pub(crate) run_ns: u64,
    pub(crate) user_ticks: u64,
    pub(crate) system_ticks: u64,
    pub(crate) preempted: u64,
}

impl Usage {
    /// Every live thread of process `pid`.
    pub(crate) fn of_process(pid: u32) -> Option<Self> {
        Self::of_tasks(&format!("/proc/{pid}/task"), "")
    }

    /// The driver's own threads whose names start with `prefix` (a floor's).
    pub(crate) fn of_own_threads(prefix: &str) -> Option<Self> {
        Self::of_tasks("/proc/self/task", prefix)
    }

    fn of_tasks(dir: &str, prefix: &str) -> Option<Self> {
        let mut sum = Self::default();
        for task in std::fs::read_dir(dir).ok()?.flatten() {
            let path = task.path();
            let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            if !comm.starts_with(prefix) {
                continue;
            }
            // A thread that ended between listing and reading is skipped.
            let (Ok(schedstat), Ok(stat), Ok(status)) = (
                std::fs::read_to_string(path.join("schedstat")),
                std::fs::read_to_string(path.join("stat")),
                std::fs::read_to_string(path.join("status")),
            ) else {
                continue;
            };
            sum.run_ns += schedstat_ns(&schedstat)?;
            let (utime, stime, _) = stat_times(&stat)?;
            sum.user_ticks += utime;
            sum.system_ticks += stime;
            sum.preempted += status
                .lines()
                .find_map(|l| l.strip_prefix("nonvoluntary_ctxt_switches:"))?
                .trim()
                .parse::<u64>()
                .ok()?;
        }
        Some(sum)
    }

    /// What was spent between `before` and this reading.
    pub(crate) fn since(&self, before: &Self) -> Self {
        Self {
            run_ns: self.run_ns.saturating_sub(before.run_ns),
            user_ticks: self.user_ticks.saturating_sub(before.user_ticks),
            system_ticks: self.system_ticks.saturating_sub(before.system_ticks),
            preempted: self.preempted.saturating_sub(before.preempted),
        }
    }

    pub(crate) fn add(&mut self, other: &Self) {
        self.run_ns += other.run_ns;
        self.user_ticks += other.user_ticks;
        self.system_ticks += other.system_ticks;
        self.preempted += other.preempted;
    }
}
