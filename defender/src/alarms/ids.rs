//! Violation IDs: 32 lowercase hex digits, the form AWS shows
//! (`37e18651d207bbc74236c13faf146127`), unique by construction.
//!
//! An ID is a bijective scramble of a counter offset by a seed, so two IDs
//! from one generator can never collide (no birthday bound), the sequence is
//! reproducible from the seed (tests pin exact IDs), and IDs do not reveal
//! how many violations came before. The generator's state is stored with
//! the alarm book, so the counter survives a restart. A deployment picks a
//! random seed once, when the book is first created.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One violation's ID. Held as a number (16 bytes, no heap) in alarm state;
/// written as 32 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ViolationId(pub u128);

impl fmt::Display for ViolationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl std::str::FromStr for ViolationId {
    type Err = ();
    /// Only our own form: exactly 32 hex digits. Any other string (the
    /// model allows up to 128 of `[a-zA-Z0-9-]`) names no violation of ours.
    fn from_str(s: &str) -> Result<Self, ()> {
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(());
        }
        u128::from_str_radix(s, 16).map(ViolationId).map_err(|_| ())
    }
}

impl Serialize for ViolationId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ViolationId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|()| serde::de::Error::custom("violation id must be 32 hex digits"))
    }
}

/// The injected source of IDs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViolationIdGen {
    seed: u64,
    next: u64,
}

/// splitmix64's finaliser: a bijection on u64 with good avalanche.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl ViolationIdGen {
    pub fn new(seed: u64) -> Self {
        Self { seed, next: 0 }
    }

    /// The next ID. The low 64 bits are `mix(counter + seed)`, a bijection
    /// of the counter, so IDs repeat only after 2^64 violations; the high
    /// half only pads to AWS's length.
    pub fn next_id(&mut self) -> ViolationId {
        let low = mix(self.next.wrapping_add(self.seed));
        let high = mix(low ^ self.seed.rotate_left(32));
        self.next = self.next.wrapping_add(1);
        ViolationId((u128::from(high) << 64) | u128::from(low))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn deterministic_and_unique() {
        let mut a = ViolationIdGen::new(7);
        let mut b = ViolationIdGen::new(7);
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let id = a.next_id();
            assert_eq!(id, b.next_id());
            assert!(seen.insert(id));
        }
        assert_ne!(
            ViolationIdGen::new(8).next_id(),
            ViolationIdGen::new(7).next_id()
        );
    }

    #[test]
    fn text_form_round_trips() {
        let id = ViolationIdGen::new(0).next_id();
        let s = id.to_string();
        assert_eq!(s.len(), 32);
        assert!(s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(s.parse::<ViolationId>(), Ok(id));
        let json = serde_json::to_string(&id).expect("serialises");
        assert_eq!(
            serde_json::from_str::<ViolationId>(&json).expect("parses"),
            id
        );
        assert!("xyz".parse::<ViolationId>().is_err());
        assert!("0".repeat(33).parse::<ViolationId>().is_err());
    }

    #[test]
    fn counter_survives_serialisation() {
        let mut g = ViolationIdGen::new(3);
        g.next_id();
        let mut restored: ViolationIdGen =
            serde_json::from_str(&serde_json::to_string(&g).expect("serialises")).expect("parses");
        assert_eq!(restored.next_id(), g.next_id());
    }
}
