//! `make bench`: native cost of the local rate-limit check per call (two limits, one request
//! and one token limit: each a shared-data read + CAS write, and the token reservation's
//! settlement another), against an in-memory store with the same get/set contract as Envoy's
//! shared data. Prints figures; asserts nothing.

use llm_warden::host::memory::MemStore;
use llm_warden::limits::ratelimit::{
    key_hash, reserve, settle_call, KeyBy, Kind, Limit, LimitSpec, ModelScope, SlotTable,
};
use llm_warden::limits::usage::TokenEstimate;
use std::hint::black_box;
use std::time::Instant;

fn spec(name: &str, kind: Kind, amount: u64) -> LimitSpec {
    LimitSpec {
        limit: Limit {
            name: name.into(),
            kind,
            amount,
            period_ns: 60_000_000_000,
        },
        by: KeyBy::Subject,
        models: ModelScope::Each,
        must_fit: false,
    }
}

fn main() {
    let store = MemStore::default();
    let table = SlotTable::new("bench", 16384);
    let specs = [
        spec("rpm", Kind::Requests, u64::MAX / 2),
        spec("tpm", Kind::Tokens, u64::MAX / 2),
    ];
    let users: Vec<String> = (0..1000).map(|i| format!("user-{i}")).collect();
    let mut now = 1_000_000_000u64;
    let mut i = 0usize;
    let mut run = || {
        let user = &users[i % users.len()];
        i += 1;
        now += 1000;
        let key_of = |s: &LimitSpec| key_hash(&[&s.limit.name, user, "gpt-4o"]);
        let estimate = TokenEstimate {
            prompt: 50,
            output_cap: 256,
            choices: 1,
            cap_requested: true,
        };
        let a = reserve(&table, &store, now, &specs, &key_of, &estimate, true);
        black_box(settle_call(&table, &store, now, &a, 42));
        black_box(a);
    };
    for _ in 0..20_000 {
        run();
    }
    let mut rounds = Vec::new();
    for _ in 0..7 {
        let n = 100_000;
        let t = Instant::now();
        for _ in 0..n {
            run();
        }
        rounds.push(t.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
    rounds.sort_by(|a, b| a.total_cmp(b));
    let us = rounds[3];
    println!("llm-warden local rate-limit check (release profile, in-memory shared store)");
    println!(
        "{:<44} {:>10.2} us/call {:>12.0} calls/s",
        "request + token limit, reserve and settle",
        us,
        1e6 / us
    );
    println!("(in Envoy each shared-data get/set is a hostcall on top of this)");
}
