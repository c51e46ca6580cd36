//! Caps on the requests that stay open — `?wait=` and event streams — per key and per
//! tenant, in each API process. Each one holds a connection for up to a minute (a stream for
//! up to an hour), and a process serves a bounded number of connections: without a cap one
//! tenant could hold them all and leave `/health`, and every other tenant, waiting. Beyond a
//! cap the request is answered 429 with `Retry-After` at once and its connection closed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::problem::Problem;
use crate::auth::Caller;

/// Default cap of open waits and streams per key (`WAIT_MAX_PER_KEY`).
pub const DEFAULT_PER_KEY: usize = 1_000;
/// Default cap of open waits and streams per tenant (`WAIT_MAX_PER_TENANT`).
pub const DEFAULT_PER_TENANT: usize = 2_000;

/// How many waits and streams are open, by key and by tenant.
#[derive(Debug, Default)]
struct Open {
    keys: HashMap<String, usize>,
    tenants: HashMap<String, usize>,
}

/// The caps, and what is open in this process.
#[derive(Debug, Clone)]
pub struct Holds {
    per_key: usize,
    per_tenant: usize,
    open: Arc<Mutex<Open>>,
}

/// One open wait or stream; closing it (dropping) gives its place back.
#[derive(Debug)]
pub struct Hold {
    open: Arc<Mutex<Open>>,
    key: Option<String>,
    tenant: String,
}

impl Holds {
    /// At most `per_key` open per key and `per_tenant` per tenant.
    pub fn new(per_key: usize, per_tenant: usize) -> Holds {
        Holds {
            per_key,
            per_tenant,
            open: Arc::default(),
        }
    }

    /// A place for one more wait or stream of `caller`, or 429.
    pub fn take(&self, caller: &Caller) -> Result<Hold, Problem> {
        let mut open = lock(&self.open);
        let of_tenant = open.tenants.get(&caller.tenant).copied().unwrap_or(0);
        if of_tenant >= self.per_tenant {
            return Err(Problem::too_many_waits(format!(
                "this tenant already has {} requests waiting on jobs or streaming their events, its limit in this API process",
                self.per_tenant
            )));
        }
        if let Some(key) = &caller.key {
            let of_key = open.keys.get(key).copied().unwrap_or(0);
            if of_key >= self.per_key {
                return Err(Problem::too_many_waits(format!(
                    "this key already has {} requests waiting on jobs or streaming their events, its limit in this API process",
                    self.per_key
                )));
            }
            *open.keys.entry(key.clone()).or_default() += 1;
        }
        *open.tenants.entry(caller.tenant.clone()).or_default() += 1;
        Ok(Hold {
            open: self.open.clone(),
            key: caller.key.clone(),
            tenant: caller.tenant.clone(),
        })
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let mut open = lock(&self.open);
        let open = &mut *open;
        release(&mut open.tenants, &self.tenant);
        if let Some(key) = &self.key {
            release(&mut open.keys, key);
        }
    }
}

fn release(counts: &mut HashMap<String, usize>, name: &str) {
    if let Some(count) = counts.get_mut(name) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            counts.remove(name);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn caller(tenant: &str, key: &str) -> Caller {
        Caller {
            tenant: tenant.to_owned(),
            role: Role::Read,
            key: Some(key.to_owned()),
        }
    }

    #[test]
    fn a_key_and_a_tenant_hold_at_most_their_caps_and_give_places_back() {
        let holds = Holds::new(2, 3);
        let a = caller("acme", "k1");
        let first = holds.take(&a).expect("first");
        let _second = holds.take(&a).expect("second");
        assert!(holds.take(&a).is_err(), "the key's cap");
        let b = caller("acme", "k2");
        let _third = holds.take(&b).expect("another key of the tenant");
        assert!(holds.take(&b).is_err(), "the tenant's cap");
        assert!(holds.take(&caller("other", "k3")).is_ok(), "other tenants");
        drop(first);
        assert!(holds.take(&a).is_ok(), "a place given back");
    }
}
