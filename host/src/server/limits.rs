//! Connection limits, in total and per client address, and the budget of request
//! bodies held in memory.
//!
//! A permit is taken when a connection is accepted and travels with it (into the
//! WebSocket task too, after an upgrade); dropping the last copy frees the slot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// How many connections the server keeps open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections in all (HTTP and WebSocket).
    pub max_total: usize,
    /// Open connections from one client address.
    pub max_per_client: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            // Each connection costs a file descriptor and a few KiB; 10,000 fits the
            // default descriptor limits of most hosts after Wisp raises its own.
            max_total: 10_000,
            // Generous for browsers behind one NAT, small enough that one client
            // cannot take every slot.
            max_per_client: 1_000,
        }
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the server is at its limit of {0} connections")]
    Total(usize),
    #[error("this client is at its limit of {0} connections")]
    PerClient(usize),
}

/// Counts open connections against [`ConnectionLimits`].
pub struct ConnectionGate {
    limits: ConnectionLimits,
    total: AtomicUsize,
    per_client: Mutex<HashMap<IpAddr, usize>>,
}

impl ConnectionGate {
    pub fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            total: AtomicUsize::new(0),
            per_client: Mutex::new(HashMap::new()),
        })
    }

    /// Admits one connection from `client`, or says which limit it hit.
    pub fn admit(self: &Arc<Self>, client: IpAddr) -> Result<Permit, Refused> {
        let mut per_client = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
        if self.total.load(Ordering::Relaxed) >= self.limits.max_total {
            return Err(Refused::Total(self.limits.max_total));
        }
        let count = per_client.entry(client).or_insert(0);
        if *count >= self.limits.max_per_client {
            return Err(Refused::PerClient(self.limits.max_per_client));
        }
        *count += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        Ok(Permit {
            gate: self.clone(),
            client,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

/// One admitted connection; dropping it frees the slot.
pub struct Permit {
    gate: Arc<ConnectionGate>,
    client: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut per_client = self
            .gate
            .per_client
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(count) = per_client.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                per_client.remove(&self.client);
            }
        }
        self.gate.total.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_total_and_per_client_and_frees_on_drop() {
        let gate = ConnectionGate::new(ConnectionLimits {
            max_total: 3,
            max_per_client: 2,
        });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = gate.admit(a).unwrap();
        let _a2 = gate.admit(a).unwrap();
        assert_eq!(gate.admit(a).err(), Some(Refused::PerClient(2)));
        let _b1 = gate.admit(b).unwrap();
        assert_eq!(gate.admit(b).err(), Some(Refused::Total(3)));
        drop(a1);
        assert_eq!(gate.open(), 2);
        assert!(gate.admit(b).is_ok());
    }
}

/// Request-body bytes held in memory across all connections, up to a bound.
#[derive(Debug)]
pub struct BodyBudget {
    held: AtomicU64,
    max: u64,
}

impl BodyBudget {
    pub fn new(max: u64) -> Arc<Self> {
        Arc::new(Self {
            held: AtomicU64::new(0),
            max,
        })
    }

    /// A hold of nothing yet, to grow as a body arrives.
    pub fn hold(self: &Arc<Self>) -> BodyHold {
        BodyHold {
            budget: self.clone(),
            bytes: 0,
        }
    }

    /// Bytes held now.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }
}

/// One body's share of the [`BodyBudget`], given back when dropped.
#[derive(Debug)]
pub struct BodyHold {
    budget: Arc<BodyBudget>,
    bytes: u64,
}

impl BodyHold {
    /// Takes `more` bytes, or refuses if the budget has not that much left.
    pub fn grow(&mut self, more: u64) -> Result<(), BudgetSpent> {
        let budget = &self.budget;
        budget
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(more).filter(|total| *total <= budget.max)
            })
            .map_err(|_| BudgetSpent(budget.max))?;
        self.bytes += more;
        Ok(())
    }
}

impl Drop for BodyHold {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// The body budget is spent: every byte of it is held by bodies being read or run.
#[derive(Debug, thiserror::Error)]
#[error("request bodies in memory are at their limit of {0} bytes")]
pub struct BudgetSpent(pub u64);

#[cfg(test)]
mod body_tests {
    use super::*;

    #[test]
    fn a_body_budget_refuses_past_its_bound_and_gets_bytes_back_on_drop() {
        let budget = BodyBudget::new(100);
        let mut a = budget.hold();
        a.grow(60).unwrap();
        let mut b = budget.hold();
        assert!(b.grow(50).is_err(), "60 + 50 is over 100");
        b.grow(40).unwrap();
        assert_eq!(budget.held(), 100);
        drop(a);
        assert_eq!(budget.held(), 40);
        drop(b);
        assert_eq!(budget.held(), 0);
    }
}
