//! A stable hash of account ids, shared by sharding ([`crate::accounts::Shard`]) and the refresh
//! jitter ([`crate::fleet`]).

/// FNV-1a: stable across versions, platforms and restarts (unlike std's hasher), so a shard or a
/// jitter offset stays with its account.
pub fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
