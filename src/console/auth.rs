//! Who may use the console: the password file, login attempts limited per
//! source address, sessions held in memory behind a random cookie, and each
//! session's CSRF token.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "wardmq_console";
/// Failed logins from one address within `FAIL_WINDOW` before it must wait.
const MAX_FAILURES: u32 = 5;
const FAIL_WINDOW: Duration = Duration::from_secs(60);
/// Sessions held at once; the oldest goes first beyond it.
const MAX_SESSIONS: usize = 1_000;
/// Source addresses whose failures are remembered; beyond it all are
/// forgotten (an attacker with that many addresses is not slowed by a
/// per-address limit anyway).
const MAX_TRACKED: usize = 10_000;

/// Whether the password file was read or made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Loaded,
    Created,
}

/// The password's SHA-256, so comparisons take the same time whatever the
/// input's length and nothing but the file holds the password itself.
pub struct Password([u8; 32]);

impl Password {
    /// Reads the first line of `path`, or creates the file (0600, before
    /// anything is written) with a generated password.
    pub fn load_or_create(path: &Path) -> Result<(Password, Origin, String), String> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let line = text.lines().next().unwrap_or("").trim();
                if line.is_empty() {
                    return Err(format!("{} holds no password", path.display()));
                }
                Ok((Password::of(line), Origin::Loaded, String::new()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let password = random_token(24);
                crate::admin::credentials::write_new(path, &format!("{password}\n"))
                    .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                Ok((Password::of(&password), Origin::Created, password))
            }
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    pub fn of(text: &str) -> Password {
        Password(Sha256::digest(text.as_bytes()).into())
    }

    pub fn matches(&self, attempt: &str) -> bool {
        let other: [u8; 32] = Sha256::digest(attempt.as_bytes()).into();
        self.0.ct_eq(&other).into()
    }
}

/// URL- and cookie-safe random text from the OS-seeded CSPRNG.
pub fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    crate::admin::credentials::random_string(ALPHABET, len)
}

/// Constant-time equality of two secrets of any length.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (x, y): ([u8; 32], [u8; 32]) = (
        Sha256::digest(a.as_bytes()).into(),
        Sha256::digest(b.as_bytes()).into(),
    );
    x.ct_eq(&y).into()
}

/// A logged-in operator.
#[derive(Clone, Debug)]
pub struct Session {
    pub user: String,
    pub csrf: String,
    expires: Instant,
}

struct Failures {
    first: Instant,
    count: u32,
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, Session>,
    failures: HashMap<IpAddr, Failures>,
}

/// Sessions and login throttling.
pub struct Gate {
    user: String,
    password: Password,
    lifetime: Duration,
    inner: Mutex<Inner>,
}

/// Why a login was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum LoginError {
    Wrong,
    /// Too many failures; try again after this long.
    Throttled(Duration),
}

impl Gate {
    pub fn new(user: String, password: Password, lifetime: Duration) -> Gate {
        Gate {
            user,
            password,
            lifetime,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Checks the credentials; on success returns the new session's id.
    /// A throttled address is refused before the password is looked at.
    pub fn login(&self, from: IpAddr, user: &str, password: &str) -> Result<String, LoginError> {
        let now = Instant::now();
        {
            let mut inner = self.lock();
            if let Some(f) = inner.failures.get(&from) {
                let age = now.duration_since(f.first);
                if age >= FAIL_WINDOW {
                    inner.failures.remove(&from);
                } else if f.count >= MAX_FAILURES {
                    return Err(LoginError::Throttled(FAIL_WINDOW - age));
                }
            }
        }
        // Both compared, always, so timing does not tell which was wrong.
        let user_ok = same_secret(user, &self.user);
        let password_ok = self.password.matches(password);
        let mut inner = self.lock();
        if !(user_ok && password_ok) {
            if inner.failures.len() >= MAX_TRACKED {
                inner.failures.clear();
            }
            let f = inner.failures.entry(from).or_insert(Failures {
                first: now,
                count: 0,
            });
            f.count += 1;
            return Err(LoginError::Wrong);
        }
        inner.failures.remove(&from);
        inner.sessions.retain(|_, s| s.expires > now);
        if inner.sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = inner
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
            {
                inner.sessions.remove(&oldest);
            }
        }
        let id = random_token(43);
        inner.sessions.insert(
            id.clone(),
            Session {
                user: self.user.clone(),
                csrf: random_token(43),
                expires: now + self.lifetime,
            },
        );
        Ok(id)
    }

    /// The live session `id` names.
    pub fn session(&self, id: &str) -> Option<Session> {
        let mut inner = self.lock();
        let s = inner.sessions.get(id)?;
        if s.expires <= Instant::now() {
            inner.sessions.remove(id);
            return None;
        }
        Some(s.clone())
    }

    pub fn logout(&self, id: &str) {
        self.lock().sessions.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> Gate {
        Gate::new(
            "admin".into(),
            Password::of("s3cret"),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn login_session_logout() {
        let g = gate();
        let ip: IpAddr = [127, 0, 0, 1].into();
        assert_eq!(g.login(ip, "admin", "nope"), Err(LoginError::Wrong));
        assert_eq!(g.login(ip, "root", "s3cret"), Err(LoginError::Wrong));
        let id = g.login(ip, "admin", "s3cret").expect("login");
        let s = g.session(&id).expect("session");
        assert_eq!(s.user, "admin");
        assert_eq!(s.csrf.len(), 43);
        g.logout(&id);
        assert!(g.session(&id).is_none());
    }

    #[test]
    fn failures_throttle_one_address() {
        let g = gate();
        let ip: IpAddr = [10, 0, 0, 1].into();
        for _ in 0..MAX_FAILURES {
            assert_eq!(g.login(ip, "admin", "x"), Err(LoginError::Wrong));
        }
        assert!(matches!(
            g.login(ip, "admin", "s3cret"),
            Err(LoginError::Throttled(_))
        ));
        let other: IpAddr = [10, 0, 0, 2].into();
        assert!(g.login(other, "admin", "s3cret").is_ok());
    }

    #[test]
    fn expired_sessions_are_gone() {
        let g = Gate::new("a".into(), Password::of("p"), Duration::ZERO);
        let id = g.login([127, 0, 0, 1].into(), "a", "p").expect("login");
        assert!(g.session(&id).is_none());
    }

    #[test]
    fn password_file_is_created_private() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("pw");
        let (p, origin, shown) = Password::load_or_create(&path).expect("create");
        assert_eq!(origin, Origin::Created);
        assert!(p.matches(&shown));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (again, origin, _) = Password::load_or_create(&path).expect("load");
        assert_eq!(origin, Origin::Loaded);
        assert!(again.matches(&shown));
    }
}
