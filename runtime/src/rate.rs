//! Rate limits: per-key request rates (`rate=600/m`) and the per-address limit on failed
//! authentications.
//!
//! Both use GCRA (the generic cell rate algorithm): a limit of `n` per `period` lets `n` requests
//! through at once, then one more every `period / n`. The in-process state is one atomic
//! "theoretical arrival time" per limited thing, updated by compare-and-swap, so checking costs
//! no lock. The Redis backend (feature `redis`) runs the same arithmetic in a script, on
//! Redis's clock, so instances sharing it share one limit.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// A rate: `n` per second, minute, hour or day, written `600/m`.
///
/// ```
/// use rocket_api_key::config::RateSpec;
///
/// let rate: RateSpec = "600/m".parse().unwrap();
/// assert_eq!(rate.to_string(), "600/m");
/// assert!("0/m".parse::<RateSpec>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateSpec {
    count: u32,
    unit: char,
}

/// The largest `n` of a rate.
const MAX_RATE: u32 = 1_000_000_000;

impl RateSpec {
    /// How many requests per [`period`](Self::period).
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The period `n` requests are allowed in.
    pub fn period(&self) -> Duration {
        Duration::from_secs(match self.unit {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            _ => 86_400,
        })
    }

    pub(crate) fn gcra(&self) -> Gcra {
        let interval = (self.period().as_nanos() / u128::from(self.count)).max(1) as u64;
        Gcra {
            interval,
            tolerance: interval * u64::from(self.count - 1),
        }
    }
}

impl FromStr for RateSpec {
    type Err = RateError;

    fn from_str(text: &str) -> Result<Self, RateError> {
        let bad = || RateError {
            text: text.to_owned(),
        };
        let (count, unit) = text.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let unit = match unit.trim() {
            "s" => 's',
            "m" => 'm',
            "h" => 'h',
            "d" => 'd',
            _ => return Err(bad()),
        };
        if !(1..=MAX_RATE).contains(&count) {
            return Err(bad());
        }
        Ok(RateSpec { count, unit })
    }
}

/// Text that is not a [`RateSpec`]. Its message quotes the text with control characters
/// escaped, so a configuration value cannot forge a log line.
///
/// ```
/// use rocket_api_key::{config::RateError, config::RateSpec};
///
/// let error: RateError = "600/min".parse::<RateSpec>().unwrap_err();
/// assert!(error.to_string().starts_with("`600/min` is not a rate;"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateError {
    text: String,
}

impl fmt::Display for RateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a rate; write `<n>/<s|m|h|d>` with n from 1 to {MAX_RATE}, e.g. `600/m`",
            self.text.escape_debug()
        )
    }
}

impl std::error::Error for RateError {}

impl fmt::Display for RateSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, self.unit)
    }
}

impl Serialize for RateSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RateSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}

/// GCRA parameters in nanoseconds: the emission interval (`period / n`) and the tolerance that
/// admits a burst of `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gcra {
    pub interval: u64,
    pub tolerance: u64,
}

/// One GCRA state: the theoretical arrival time, in nanoseconds since the owner's epoch.
#[derive(Debug, Default)]
pub(crate) struct GcraCell(AtomicU64);

impl GcraCell {
    /// Forgets the state, for a key whose rate changed.
    pub fn reset(&self) {
        self.0.store(0, Ordering::Release);
    }

    /// `None` when a request at `now` conforms (and, with `consume`, is counted); otherwise how
    /// long until one would.
    pub fn check(&self, gcra: Gcra, now: u64, consume: bool) -> Option<Duration> {
        let mut current = self.0.load(Ordering::Acquire);
        loop {
            let tat = current.max(now);
            let earliest = tat.saturating_sub(gcra.tolerance);
            if now < earliest {
                return Some(Duration::from_nanos(earliest - now));
            }
            if !consume {
                return None;
            }
            match self.0.compare_exchange_weak(
                current,
                tat + gcra.interval,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return None,
                Err(actual) => current = actual,
            }
        }
    }
}

/// Nanoseconds on a monotonic clock, from an epoch fixed at creation.
#[derive(Debug)]
pub(crate) struct Clock(Instant);

impl Clock {
    pub fn new() -> Self {
        Clock(Instant::now())
    }

    pub fn now(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Failed authentications per client address, in a table of fixed size: memory does not grow
/// however many addresses a flood comes from. Addresses are placed by a hash with a per-process
/// random key, so nobody can aim at a victim's slot; two addresses sharing a slot share a limit.
#[derive(Debug)]
pub(crate) struct FailureTable {
    gcra: Gcra,
    cells: Box<[GcraCell]>,
    hasher: RandomState,
}

impl FailureTable {
    pub fn new(spec: RateSpec, slots: usize) -> Self {
        let slots = slots.next_power_of_two();
        FailureTable {
            gcra: spec.gcra(),
            cells: (0..slots).map(|_| GcraCell::default()).collect(),
            hasher: RandomState::new(),
        }
    }

    fn cell(&self, ip: IpAddr) -> &GcraCell {
        let slot = self.hasher.hash_one(limited_address(ip)) as usize & (self.cells.len() - 1);
        &self.cells[slot]
    }

    /// `None` when `ip` is within the limit (and, with `count`, a failed authentication is
    /// counted against it, in the same compare-and-swap); otherwise how long until it would be.
    pub fn check(&self, ip: IpAddr, now: u64, count: bool) -> Option<Duration> {
        self.cell(ip).check(self.gcra, now, count)
    }

    /// The slots whose failures have not all been paid off by `now`: the addresses the table
    /// still remembers (a slot past its theoretical arrival time is as good as empty).
    #[cfg(feature = "metrics")]
    pub fn in_use(&self, now: u64) -> usize {
        self.cells
            .iter()
            .filter(|cell| cell.0.load(Ordering::Relaxed) > now)
            .count()
    }
}

/// The unit a failure limit applies to: an IPv4 address, or the /64 network of an IPv6 address
/// (one host usually has a whole /64 to pick addresses from).
pub(crate) fn limited_address(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn rate_specs() {
        let r: RateSpec = " 30 / m ".parse().unwrap();
        assert_eq!((r.count(), r.period()), (30, Duration::from_secs(60)));
        assert_eq!(
            r.gcra(),
            Gcra {
                interval: 2 * SEC,
                tolerance: 58 * SEC
            }
        );
        for bad in [
            "",
            "30",
            "30/",
            "/m",
            "0/m",
            "-1/m",
            "30/x",
            "30/min",
            "1.5/s",
            "1000000001/s",
        ] {
            assert_eq!(
                bad.parse::<RateSpec>().unwrap_err().to_string(),
                format!(
                    "`{bad}` is not a rate; write `<n>/<s|m|h|d>` with n from 1 to 1000000000, e.g. `600/m`"
                ),
            );
        }
        assert_eq!(
            "1/d".parse::<RateSpec>().unwrap().period(),
            Duration::from_secs(86_400)
        );
    }

    #[test]
    fn gcra_allows_a_burst_then_one_per_interval() {
        let gcra: Gcra = "3/s".parse::<RateSpec>().unwrap().gcra();
        let cell = GcraCell::default();
        let t0 = 10 * SEC;
        for _ in 0..3 {
            assert_eq!(cell.check(gcra, t0, true), None);
        }
        let wait = cell.check(gcra, t0, true).unwrap();
        assert_eq!(wait.as_nanos(), u128::from(SEC / 3));
        // A refused request does not push the limit further.
        assert_eq!(cell.check(gcra, t0, true).unwrap(), wait);
        assert_eq!(cell.check(gcra, t0 + SEC / 3, true), None);
        assert!(cell.check(gcra, t0 + SEC / 3, true).is_some());
        // A full period later the whole burst is back.
        let later = t0 + 2 * SEC;
        for _ in 0..3 {
            assert_eq!(cell.check(gcra, later, true), None);
        }
        assert!(cell.check(gcra, later, true).is_some());
    }

    #[test]
    fn peeking_does_not_consume() {
        let gcra = "1/m".parse::<RateSpec>().unwrap().gcra();
        let cell = GcraCell::default();
        for _ in 0..10 {
            assert_eq!(cell.check(gcra, SEC, false), None);
        }
        assert_eq!(cell.check(gcra, SEC, true), None);
        assert_eq!(cell.check(gcra, SEC, false), Some(Duration::from_secs(60)));
    }

    #[test]
    fn concurrent_consumers_never_exceed_the_burst() {
        let gcra = "1000/h".parse::<RateSpec>().unwrap().gcra();
        let cell = GcraCell::default();
        let allowed = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        if cell.check(gcra, SEC, true).is_none() {
                            allowed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(allowed.load(Ordering::Relaxed), 1000);
    }

    #[test]
    fn failure_table_is_per_address_and_fixed_size() {
        let table = FailureTable::new("2/m".parse().unwrap(), 1000);
        assert_eq!(table.cells.len(), 1024);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(table.check(a, SEC, true), None);
        assert_eq!(table.check(a, SEC, false), None);
        assert_eq!(table.check(a, SEC, true), None);
        assert_eq!(table.check(a, SEC, false), Some(Duration::from_secs(30)));
        // Past the limit a failure is refused, and not counted: the wait stays the same.
        assert_eq!(table.check(a, SEC, true), Some(Duration::from_secs(30)));
        // Another address is unaffected (unless it shares the slot: retry with another).
        let other = if table.check(b, SEC, false).is_none() {
            b
        } else {
            "198.51.100.7".parse().unwrap()
        };
        assert_eq!(table.check(other, SEC, false), None);
        assert_eq!(table.check(a, SEC + 30 * SEC, false), None);
        // A flood from a million addresses leaves the table as it was.
        for i in 0..1_000_000u32 {
            let _ = table.check(IpAddr::from(i.to_be_bytes()), SEC, true);
        }
        assert_eq!(table.cells.len(), 1024);
    }

    #[test]
    fn ipv6_hosts_are_limited_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(limited_address(a), limited_address(b));
        assert_eq!(
            limited_address("::ffff:10.1.2.3".parse().unwrap()),
            "10.1.2.3".parse::<IpAddr>().unwrap()
        );
    }
}
