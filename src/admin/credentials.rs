//! The admin API's access keys, kept in an AWS shared-credentials file so
//! the same file works as `AWS_SHARED_CREDENTIALS_FILE` for the CLI and
//! boto3. Every profile in the file is an accepted key. On first start
//! the file is created with one fresh key pair, readable by its owner only.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::Path;

use rand::Rng;

/// AWS access key ids: `AKIA` and 16 characters of the RFC 4648 base32
/// alphabet.
const KEY_ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// AWS secret keys: 40 characters of the base64 alphabet.
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Accepted access key ids and their secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    keys: HashMap<String, String>,
}

// Secrets must never reach a log line.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&String> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("Credentials")
            .field("access_key_ids", &ids)
            .finish()
    }
}

/// What [`Credentials::load_or_create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Loaded,
    Created,
}

impl Credentials {
    /// The secret of an access key id, if it is accepted.
    pub fn secret(&self, access_key_id: &str) -> Option<&str> {
        self.keys.get(access_key_id).map(String::as_str)
    }

    /// Loads the file, or creates it with a new key pair if it does not
    /// exist. A file without any key is an error: the API would refuse
    /// every request.
    pub fn load_or_create(path: &Path) -> Result<(Credentials, Origin), String> {
        let origin = match std::fs::read_to_string(path) {
            Ok(text) => return Credentials::parse(&text).map(|c| (c, Origin::Loaded)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Origin::Created,
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let (id, secret) = generate();
        write_new(path, &render(&id, &secret))
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let mut keys = HashMap::new();
        keys.insert(id, secret);
        Ok((Credentials { keys }, origin))
    }

    /// Parses a shared-credentials file: `[profile]` sections with
    /// `aws_access_key_id` and `aws_secret_access_key`; comments (`#`, `;`)
    /// and other keys are ignored, as botocore ignores them.
    pub fn parse(text: &str) -> Result<Credentials, String> {
        let mut keys = HashMap::new();
        let mut section: Option<(String, Option<String>, Option<String>)> = None;
        let mut problems = Vec::new();
        let mut finish = |s: Option<(String, Option<String>, Option<String>)>,
                          keys: &mut HashMap<String, String>| {
            match s {
                Some((_, Some(id), Some(secret))) => {
                    keys.insert(id, secret);
                }
                Some((name, _, _)) => problems.push(format!(
                    "profile [{name}] lacks aws_access_key_id or aws_secret_access_key"
                )),
                None => {}
            }
        };
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                finish(section.take(), &mut keys);
                section = Some((name.trim().to_owned(), None, None));
                continue;
            }
            let (Some((_, id, secret)), Some((k, v))) = (section.as_mut(), line.split_once('='))
            else {
                continue;
            };
            match k.trim() {
                "aws_access_key_id" => *id = Some(v.trim().to_owned()),
                "aws_secret_access_key" => *secret = Some(v.trim().to_owned()),
                _ => {}
            }
        }
        finish(section.take(), &mut keys);
        if keys.is_empty() {
            problems.push("no access key is defined".to_owned());
            return Err(problems.join("; "));
        }
        Ok(Credentials { keys })
    }
}

pub(crate) fn random_string(alphabet: &[u8], len: usize) -> String {
    // ThreadRng is a CSPRNG (ChaCha, seeded from the OS), fit for secrets.
    let mut rng = rand::rng();
    (0..len)
        .map(|_| {
            let i = rng.random_range(0..alphabet.len());
            char::from(alphabet[i])
        })
        .collect()
}

/// A new (access key id, secret access key) pair.
pub fn generate() -> (String, String) {
    (
        format!("AKIA{}", random_string(KEY_ID_ALPHABET, 16)),
        random_string(SECRET_ALPHABET, 40),
    )
}

fn render(id: &str, secret: &str) -> String {
    format!("[default]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n")
}

/// Creates the file (never overwriting one) with owner-only permissions
/// from the start, so the secret is never readable by others.
pub(crate) fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_look_like_aws_keys() {
        let (id, secret) = generate();
        assert_eq!(id.len(), 20);
        assert!(id.starts_with("AKIA"));
        assert!(id.bytes().skip(4).all(|b| KEY_ID_ALPHABET.contains(&b)));
        assert_eq!(secret.len(), 40);
        assert_ne!(generate(), generate());
    }

    #[test]
    fn parses_every_profile() {
        let text = "# keys\n[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s1\n\n\
                    [ops]\nregion = x\naws_access_key_id=AKIA2\naws_secret_access_key=s2\n";
        let c = Credentials::parse(text).unwrap_or_default();
        assert_eq!(c.secret("AKIA1"), Some("s1"));
        assert_eq!(c.secret("AKIA2"), Some("s2"));
        assert!(!format!("{c:?}").contains("s1"));
        assert!(Credentials::parse("[default]\naws_access_key_id = A\n").is_err());
        assert!(Credentials::parse("").is_err());
    }

    #[test]
    fn creates_once_with_owner_only_mode() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("sub/admin-credentials");
        let (first, origin) = Credentials::load_or_create(&path).expect("credentials");
        assert_eq!(origin, Origin::Created);
        let (again, origin) = Credentials::load_or_create(&path).expect("credentials");
        assert_eq!(origin, Origin::Loaded);
        assert_eq!(first, again);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0);
            assert_eq!(mode, 0o600);
        }
    }
}
