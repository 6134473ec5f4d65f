//! The invariants fuzzing checks on SigV4 verification: any request is
//! answered without panicking, with an error message of bounded size
//! whatever the client sent; and a request that verifies stops verifying
//! once its body changes or its date falls out of the allowed skew.

use std::time::{Duration, UNIX_EPOCH};

use super::{verify, Principal, Request, SigV4Error, MAX_SKEW_SECS};

/// The key the seeds are signed with (AWS's documentation example key).
const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// 2015-08-30T12:36:00Z, when the seeds were signed.
const SIGNED_AT: u64 = 1_440_938_160;
/// Two echoed client values of at most 64 characters each, plus AWS's
/// longest fixed phrasing, fit well within this.
const MAX_MESSAGE_CHARS: usize = 512;

/// Fuzz and smoke-test entry point: `data` is an HTTP/1.1 request as sent
/// on the wire (request line, header lines, blank line, body).
///
/// # Panics
///
/// When an invariant above does not hold.
pub fn fuzz_check(data: &[u8]) {
    let Some(parts) = split_request(data) else {
        return;
    };
    let result = verify_at(&parts, parts.body, SIGNED_AT);
    match &result {
        Err(e) => check_error(e),
        Ok(principal) => {
            assert_eq!(principal.access_key_id, AKID);
            let mut body = parts.body.to_vec();
            body.push(b'x');
            assert!(
                verify_at(&parts, &body, SIGNED_AT).is_err(),
                "verified with a changed body"
            );
            let late = SIGNED_AT + MAX_SKEW_SECS.unsigned_abs() * 3;
            assert!(
                matches!(
                    verify_at(&parts, parts.body, late),
                    Err(SigV4Error::SignatureExpired { .. })
                ),
                "verified long after its date"
            );
        }
    }
    assert_eq!(
        verify_at(&parts, parts.body, SIGNED_AT),
        result,
        "not deterministic"
    );
}

/// Verifies `parts` with `body` against the seeds' key at Unix time `now`.
fn verify_at(parts: &Parts<'_>, body: &[u8], now: u64) -> Result<Principal, SigV4Error> {
    let request = Request {
        method: parts.method,
        path: parts.path,
        query: parts.query,
        headers: &parts.headers,
        body,
    };
    verify(&request, UNIX_EPOCH + Duration::from_secs(now), |id| {
        (id == AKID).then_some(SECRET)
    })
}

fn check_error(e: &SigV4Error) {
    let message = e.message();
    assert!(
        message.chars().count() <= MAX_MESSAGE_CHARS,
        "{} characters: {message}",
        message.chars().count()
    );
    assert!(!e.code().is_empty() && e.http_status() == 403);
}

struct Parts<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: Vec<(&'a str, &'a [u8])>,
    body: &'a [u8],
}

/// Splits a request as hyper would hand it over; `None` for input no HTTP
/// server would have accepted (non-UTF-8 request line or header names).
fn split_request(data: &[u8]) -> Option<Parts<'_>> {
    let (head, body) = match data.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => (&data[..i], &data[i + 4..]),
        None => (data, &[][..]),
    };
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let request_line = std::str::from_utf8(lines.next()?).ok()?;
    let mut words = request_line.split(' ');
    let method = words.next()?;
    let target = words.next().unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = Vec::new();
    for line in lines {
        let colon = line.iter().position(|&b| b == b':')?;
        let name = std::str::from_utf8(&line[..colon]).ok()?;
        let value = line[colon + 1..].trim_ascii();
        headers.push((name, value));
    }
    Some(Parts {
        method,
        path,
        query,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::{fuzz_check, split_request, verify_at, SIGNED_AT};

    /// The sigv4 fuzz target's inputs, on stable Rust.
    #[test]
    fn fuzz_inputs_hold_the_invariants() {
        let n = wardmq_broker::fuzz_corpus::replay(env!("CARGO_MANIFEST_DIR"), "sigv4", fuzz_check);
        assert!(n > 10, "only {n} inputs");
    }

    /// The botocore-signed seeds must verify, or the fuzzer never reaches
    /// the checks made on a valid signature.
    #[test]
    fn signed_seeds_verify() {
        let verified = wardmq_broker::fuzz_corpus::inputs(env!("CARGO_MANIFEST_DIR"), "sigv4")
            .iter()
            .filter(|(path, _)| path.parent().is_some_and(|d| d.ends_with("seeds/sigv4")))
            .filter_map(|(_, data)| split_request(data))
            .filter(|parts| verify_at(parts, parts.body, SIGNED_AT).is_ok())
            .count();
        assert!(verified >= 10, "only {verified} seeds verify");
    }
}
