//! The ROCA fingerprint (CVE-2017-15361): RSA moduli made by Infineon's
//! RSALib have the form `p = k·M + (65537^a mod M)`, so for each small
//! prime `r` dividing `M` the modulus `N = p·q` reduced mod `r` lies in the
//! subgroup that 65537 generates mod `r`. The published detector (Nemec et
//! al., "The Return of Coppersmith's Attack", CCS 2017; `roca-detect`)
//! tests exactly that for the primes 3 to 167: a random modulus passes all
//! 38 tests with probability about 2^-154, every RSALib modulus passes
//! them all.
//!
//! The residue sets are computed here rather than copied (each is the
//! orbit of 1 under multiplication by 65537 mod `r`); the tests pin a few
//! against the masks `roca-detect` publishes.

/// The primes `roca-detect` tests, in its order.
pub(crate) const PRIMES: [u64; 38] = [
    3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
    101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
];

/// A set of residues below 192, as bits.
type Residues = [u64; 3];

/// For each prime, the residues `65537^k mod p`.
const MASKS: [Residues; 38] = masks();

const fn masks() -> [Residues; 38] {
    let mut out = [[0u64; 3]; 38];
    let mut i = 0;
    while i < PRIMES.len() {
        let p = PRIMES[i];
        let g = 65537 % p;
        let mut x = 1u64;
        // The orbit of 1 closes after at most p - 1 steps.
        let mut steps = 0;
        while steps < p {
            out[i][(x / 64) as usize] |= 1 << (x % 64);
            x = x * g % p;
            steps += 1;
        }
        i += 1;
    }
    out
}

/// Products of consecutive primes that stay below 2^32, so a modulus can
/// be reduced four bytes at a time in u64 arithmetic: (first prime index,
/// one past the last, product).
const GROUPS: [(usize, usize, u64); 12] = groups();

const fn groups() -> [(usize, usize, u64); 12] {
    let mut out = [(0usize, 0usize, 1u64); 12];
    let mut g = 0;
    let mut i = 0;
    while i < PRIMES.len() {
        let start = i;
        let mut product = 1u64;
        while i < PRIMES.len() && product * PRIMES[i] < (1 << 32) {
            product *= PRIMES[i];
            i += 1;
        }
        out[g] = (start, i, product);
        g += 1;
    }
    out
}

/// Whether the big-endian RSA modulus `n` has the ROCA fingerprint.
/// Leading zero bytes (DER's sign padding) are fine. An empty or tiny
/// modulus is not reported (it is caught as a short key instead).
pub(crate) fn has_fingerprint(n: &[u8]) -> bool {
    let n = strip_leading_zeros(n);
    if n.len() < 8 {
        return false;
    }
    for &(start, end, product) in &GROUPS {
        if start == end {
            continue;
        }
        let r = reduce(n, product);
        for i in start..end {
            let residue = r % PRIMES[i];
            if MASKS[i][(residue / 64) as usize] & (1 << (residue % 64)) == 0 {
                return false;
            }
        }
    }
    true
}

fn strip_leading_zeros(n: &[u8]) -> &[u8] {
    let first = n.iter().position(|&b| b != 0).unwrap_or(n.len());
    &n[first..]
}

/// `n mod m` for a big-endian `n` and `m < 2^32`.
fn reduce(n: &[u8], m: u64) -> u64 {
    let head = n.len() % 4;
    let mut r = 0u64;
    for &b in &n[..head] {
        r = ((r << 8) | u64::from(b)) % m;
    }
    for word in n[head..].chunks_exact(4) {
        let w = u64::from(u32::from_be_bytes([word[0], word[1], word[2], word[3]]));
        r = ((r << 32) | w) % m;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask_value(i: usize) -> u128 {
        u128::from(MASKS[i][0]) | (u128::from(MASKS[i][1]) << 64)
    }

    #[test]
    fn masks_match_the_published_detector() {
        // roca-detect's `prints` for 3, 5, 7, 11, 13, 17, 19, 31, 37.
        assert_eq!(mask_value(0), 6);
        assert_eq!(mask_value(1), 30);
        assert_eq!(mask_value(2), 126);
        assert_eq!(mask_value(3), 1026);
        assert_eq!(mask_value(4), 5658);
        assert_eq!(mask_value(5), 107286);
        assert_eq!(mask_value(6), 199410);
        assert_eq!(mask_value(9), 2147483646);
        assert_eq!(mask_value(10), 67109890);
    }

    #[test]
    fn groups_cover_every_prime_once() {
        let covered: usize = GROUPS.iter().map(|&(s, e, _)| e - s).sum();
        assert_eq!(covered, PRIMES.len());
        for &(s, e, product) in &GROUPS {
            assert_eq!(PRIMES[s..e].iter().product::<u64>(), product.max(1));
            assert!(product < 1 << 32);
        }
    }

    /// Multiplies a big-endian number by a small factor.
    fn mul_small(n: &mut Vec<u8>, f: u64) {
        let mut carry = 0u64;
        for b in n.iter_mut().rev() {
            let v = u64::from(*b) * f + carry;
            *b = (v & 0xFF) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            n.insert(0, (carry & 0xFF) as u8);
            carry >>= 8;
        }
    }

    #[test]
    fn reduction_is_exact() {
        let mut n = vec![1u8];
        for f in [65537u64, 1_000_003, 999_983, 4_294_967_291] {
            mul_small(&mut n, f);
        }
        // 65537 · 1000003 · 999983 · 4294967291, reduced by hand in u128.
        let exact: u128 = 65537u128 * 1_000_003 * 999_983 * 4_294_967_291;
        for m in [3u64, 167, 4_294_967_291, 2_147_483_647, 1 << 31] {
            assert_eq!(u128::from(reduce(&n, m)), exact % u128::from(m), "mod {m}");
        }
    }

    #[test]
    fn powers_of_65537_have_the_fingerprint() {
        // 65537^k mod r is in the subgroup 65537 generates mod r, for
        // every r: exactly the property RSALib primes give their moduli.
        let mut n = vec![1u8];
        for _ in 0..128 {
            mul_small(&mut n, 65537);
        }
        assert!(n.len() >= 256, "a 2048-bit sized number");
        assert!(has_fingerprint(&n));
        let mut padded = vec![0u8];
        padded.extend_from_slice(&n);
        assert!(has_fingerprint(&padded));
    }

    #[test]
    fn ordinary_numbers_do_not() {
        // 65537^128 + 1: 65537 ≡ -1 mod 11, so the subgroup mod 11 is
        // {1, 10}, and 65537^128 + 1 ≡ 2 mod 11 is not in it.
        let mut n = vec![1u8];
        for _ in 0..128 {
            mul_small(&mut n, 65537);
        }
        let last = n.len() - 1;
        n[last] = n[last].wrapping_add(1);
        assert!(!has_fingerprint(&n));
        // (2^61 - 1)·7 ≡ 0 mod 7, and 0 is in no multiplicative subgroup.
        let mut m = vec![0x1F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        mul_small(&mut m, 7);
        assert!(!has_fingerprint(&m));
        assert!(!has_fingerprint(&[]));
        assert!(!has_fingerprint(&[0, 0, 5]));
    }
}
