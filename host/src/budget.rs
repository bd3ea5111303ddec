//! The global memory budget: what all guests together may hold, and the
//! overload actions that keep the host under it.
//!
//! Counted: linear memory an instance grew beyond its initial size (charged
//! when the guest grows it, released when the instance is dropped; a grown
//! memory never shrinks while the instance lives), plus the bytes the host
//! holds for a connection while a write waits for a slow reader. Not
//! counted: each instance's initial memory and the host's own fixed
//! overhead, which [`Limits::max_connections`](crate::Limits::max_connections)
//! bounds.
//!
//! Thresholds, as fractions of the budget:
//!
//! | usage | action |
//! |---|---|
//! | above [`ADMIT_PERCENT`] | new connections get `503` with `Retry-After` before an instance is made |
//! | above [`SHED_PERCENT`] | the connections holding the most are closed with `1013` until usage is back under [`ADMIT_PERCENT`] |
//! | the whole budget | a `memory.grow` that would pass it is refused: the guest traps (`memory-budget`, `1013`) |

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Above this share of the budget, new connections are refused.
pub const ADMIT_PERCENT: usize = 80;

/// Above this share of the budget, the largest connections are shed.
pub const SHED_PERCENT: usize = 90;

/// The shedder looks at most this often.
const SHED_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

/// What one instance holds, and the signal that sheds its connection.
#[derive(Debug, Default)]
pub(crate) struct Usage {
    /// Linear memory grown beyond the initial size.
    guest: AtomicUsize,
    /// Host-side bytes held for the connection (a write in progress).
    host: AtomicUsize,
    /// Whether the instance serves a connection now (an idle instance of
    /// the reuse pool cannot be shed).
    active: AtomicBool,
    /// Set when the shedder picked this connection.
    shed: AtomicBool,
    /// Wakes the connection's pump when it is shed.
    notify: Notify,
}

impl Usage {
    fn total(&self) -> usize {
        self.guest
            .load(Ordering::Relaxed)
            .saturating_add(self.host.load(Ordering::Relaxed))
    }

    /// Waits until the shedder picks this connection.
    async fn shed(&self) {
        loop {
            let notified = self.notify.notified();
            if self.shed.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

/// The budget shared by every instance of a server.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    admit_below: usize,
    shed_above: usize,
    used: AtomicUsize,
    instances: Mutex<HashMap<u64, Arc<Usage>>>,
    next_id: AtomicU64,
    /// Wakes the shedder task.
    pressure: Notify,
    /// The last admission decision was a refusal.
    refusing: AtomicBool,
    /// When the shedder last logged.
    last_shed_log: Mutex<Option<std::time::Instant>>,
    pub(crate) refused: Arc<AtomicU64>,
    pub(crate) shed: Arc<AtomicU64>,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Budget {
            limit,
            admit_below: limit / 100 * ADMIT_PERCENT,
            shed_above: limit / 100 * SHED_PERCENT,
            used: AtomicUsize::new(0),
            instances: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            pressure: Notify::new(),
            refusing: AtomicBool::new(false),
            last_shed_log: Mutex::new(None),
            refused: Arc::default(),
            shed: Arc::default(),
        }
    }

    /// Bytes counted now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Whether a new connection may be admitted.
    pub(crate) fn admits(&self) -> bool {
        self.used() <= self.admit_below
    }

    /// Decides on a new connection: admits it, or counts a refusal. The
    /// first refusal after a period of admitting, and the first admission
    /// after refusing, are logged (single refusals are `debug` lines).
    pub(crate) fn admit(&self) -> bool {
        let admits = self.admits();
        if !admits {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        // Written only when the decision changes: every handshake reads it.
        if self.refusing.load(Ordering::Relaxed) == admits
            && self.refusing.swap(!admits, Ordering::Relaxed) == admits
        {
            if admits {
                tracing::warn!(
                    used_mib = self.used() >> 20,
                    refused = self.refused.load(Ordering::Relaxed),
                    "memory budget: admitting new connections again"
                );
            } else {
                tracing::warn!(
                    used_mib = self.used() >> 20,
                    limit_mib = self.limit >> 20,
                    "memory budget: above {ADMIT_PERCENT} %, refusing new connections with 503"
                );
            }
        }
        admits
    }

    /// Registers a new instance; the lease releases what it held when
    /// dropped.
    pub(crate) fn lease(self: &Arc<Self>) -> Lease {
        let usage = Arc::new(Usage::default());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, usage.clone());
        Lease {
            account: Account {
                budget: self.clone(),
                usage,
            },
            id,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Usage>>> {
        self.instances.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Charges `n` bytes unless that would pass the whole budget.
    fn try_charge(&self, n: usize) -> bool {
        let mut used = self.used();
        loop {
            let Some(next) = used.checked_add(n).filter(|&next| next <= self.limit) else {
                return false;
            };
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    if next > self.shed_above {
                        self.pressure.notify_one();
                    }
                    return true;
                }
                Err(now) => used = now,
            }
        }
    }

    fn charge(&self, n: usize) {
        let next = self.used.fetch_add(n, Ordering::Relaxed) + n;
        if next > self.shed_above {
            self.pressure.notify_one();
        }
    }

    fn release(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }

    /// Sheds connections while usage is above the shed threshold, largest
    /// first. Runs for the life of the server.
    pub(crate) async fn shedder(self: Arc<Self>) {
        loop {
            self.pressure.notified().await;
            if self.shed_once() > 0 {
                // Give the picked connections time to let go before looking
                // again (each look walks every instance).
                tokio::time::sleep(SHED_INTERVAL).await;
            }
        }
    }

    /// Picks the largest active connections until what they hold would
    /// bring usage down to the admission threshold (so that it does not
    /// climb straight back), and signals each. Returns how many were picked.
    pub(crate) fn shed_once(&self) -> usize {
        let used = self.used();
        if used <= self.shed_above {
            return 0;
        }
        let mut candidates: Vec<(usize, Arc<Usage>)> = self
            .lock()
            .values()
            .filter(|u| u.active.load(Ordering::Relaxed) && !u.shed.load(Ordering::Relaxed))
            .map(|u| (u.total(), u.clone()))
            .collect();
        candidates.sort_unstable_by_key(|c| std::cmp::Reverse(c.0));
        let mut projected = used;
        let mut picked = 0;
        for (bytes, usage) in candidates {
            if projected <= self.admit_below || bytes == 0 {
                break;
            }
            usage.shed.store(true, Ordering::Release);
            usage.notify.notify_one();
            projected = projected.saturating_sub(bytes);
            picked += 1;
        }
        if picked > 0 {
            let total = self.shed.fetch_add(picked as u64, Ordering::Relaxed) + picked as u64;
            // One line a second at most, however often the shedder runs.
            let mut last = self.last_shed_log.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_none_or(|at| at.elapsed() >= std::time::Duration::from_secs(1)) {
                *last = Some(std::time::Instant::now());
                tracing::warn!(
                    used_mib = used >> 20,
                    limit_mib = self.limit >> 20,
                    shed = picked,
                    shed_total = total,
                    "memory budget: above {SHED_PERCENT} %, closing the largest connections with 1013"
                );
            }
        }
        picked
    }
}

/// One instance's registration with the budget; dropping it releases what
/// the instance held.
#[derive(Debug)]
pub(crate) struct Lease {
    account: Account,
    id: u64,
}

/// An instance's account with the budget, for its connection's pump.
#[derive(Clone, Debug)]
pub(crate) struct Account {
    budget: Arc<Budget>,
    usage: Arc<Usage>,
}

impl Lease {
    /// Charges a `memory.grow` of `n` bytes; `false` if it would pass the
    /// budget (the grow is then refused).
    pub(crate) fn grow(&self, n: usize) -> bool {
        if !self.account.budget.try_charge(n) {
            return false;
        }
        self.account.usage.guest.fetch_add(n, Ordering::Relaxed);
        true
    }

    /// Gives back a charge whose grow failed after all.
    pub(crate) fn ungrow(&self, n: usize) {
        self.account.usage.guest.fetch_sub(n, Ordering::Relaxed);
        self.account.budget.release(n);
    }

    /// The account, for the connection's pump.
    pub(crate) fn account(&self) -> Account {
        self.account.clone()
    }

    /// Marks the instance as serving a connection (or idle), and clears an
    /// earlier shed mark.
    pub(crate) fn set_active(&self, active: bool) {
        let usage = &self.account.usage;
        usage.shed.store(false, Ordering::Relaxed);
        usage.active.store(active, Ordering::Relaxed);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let budget = &self.account.budget;
        budget.lock().remove(&self.id);
        budget.release(self.account.usage.guest.load(Ordering::Relaxed));
    }
}

impl Account {
    /// Host-side bytes held for the connection until the guard drops.
    pub(crate) fn hold(&self, n: usize) -> Held {
        self.budget.charge(n);
        self.usage.host.fetch_add(n, Ordering::Relaxed);
        Held {
            account: self.clone(),
            n,
        }
    }

    /// Waits until the shedder picks this connection.
    pub(crate) async fn shed(&self) {
        self.usage.shed().await;
    }

    /// Whether the shedder picked this connection (one atomic load, for a
    /// pump that is too busy to wait).
    pub(crate) fn is_shed(&self) -> bool {
        self.usage.shed.load(Ordering::Relaxed)
    }
}

/// Host bytes counted against the budget while alive.
pub(crate) struct Held {
    account: Account,
    n: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.account.usage.host.fetch_sub(self.n, Ordering::Relaxed);
        self.account.budget.release(self.n);
    }
}

/// The default budget: half of the machine's memory, or of the cgroup's
/// limit when that is lower. Falls back to 1 GiB when neither can be read.
pub fn default_budget() -> usize {
    let physical = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
            .map(|kib| kib.saturating_mul(1024))
    });
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok());
    match (physical, cgroup) {
        (Some(p), Some(c)) => p.min(c) / 2,
        (Some(m), None) | (None, Some(m)) => m / 2,
        (None, None) => 1 << 30,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_are_refused_past_the_budget_and_released_with_the_lease() {
        let budget = Arc::new(Budget::new(100 << 20));
        let a = budget.lease();
        assert!(a.grow(60 << 20));
        let b = budget.lease();
        assert!(!b.grow(50 << 20), "would pass the whole budget");
        assert!(b.grow(40 << 20));
        assert_eq!(budget.used(), 100 << 20);
        drop(a);
        assert_eq!(budget.used(), 40 << 20);
        b.ungrow(40 << 20);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn admission_stops_above_its_threshold() {
        let budget = Arc::new(Budget::new(100 << 20));
        let a = budget.lease();
        assert!(a.grow(80 << 20));
        assert!(budget.admits(), "at the threshold");
        let held = a.account().hold(1 << 20);
        assert!(!budget.admit());
        assert!(!budget.admit());
        assert_eq!(budget.refused.load(Ordering::Relaxed), 2);
        drop(held);
        assert!(budget.admit());
        assert_eq!(budget.refused.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn the_largest_active_connections_are_shed_first() {
        let budget = Arc::new(Budget::new(100 << 20));
        let leases: Vec<Lease> = [10, 30, 20, 25, 10]
            .iter()
            .map(|_| budget.lease())
            .collect();
        for (lease, mib) in leases.iter().zip([10, 30, 20, 25, 10]) {
            lease.set_active(true);
            assert!(lease.grow(mib << 20));
        }
        // An idle instance is never picked, however large.
        let idle = budget.lease();
        assert!(!idle.grow(6 << 20), "95 + 6 passes the budget");
        assert!(idle.grow(5 << 20));
        assert_eq!(budget.used(), 100 << 20);
        // 100 MiB used, threshold 90: shedding the 30 MiB one is enough.
        assert_eq!(budget.shed_once(), 1);
        let shed: Vec<bool> = leases
            .iter()
            .map(|l| l.account.usage.shed.load(Ordering::Relaxed))
            .collect();
        assert_eq!(shed, [false, true, false, false, false]);
        assert_eq!(budget.shed.load(Ordering::Relaxed), 1);
        // Until it is dropped it is not picked again; the next largest is.
        assert_eq!(budget.shed_once(), 1);
        assert!(leases[3].account.usage.shed.load(Ordering::Relaxed));
        assert!(!idle.account.usage.shed.load(Ordering::Relaxed));
    }

    #[tokio::test]
    async fn a_shed_connection_is_woken() {
        let budget = Arc::new(Budget::new(10 << 20));
        let lease = budget.lease();
        lease.set_active(true);
        assert!(lease.grow(10 << 20));
        let account = lease.account();
        let waiter = tokio::spawn(async move { account.shed().await });
        tokio::task::yield_now().await;
        budget.shed_once();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("no panic");
    }

    #[test]
    fn the_default_budget_is_a_share_of_the_machine() {
        let b = default_budget();
        assert!(b >= 64 << 20, "{b}");
    }
}
