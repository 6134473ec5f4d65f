//! The web console against `wardmq serve`: plain HTTP checks of the login,
//! session cookie, CSRF refusal, security headers and login throttling,
//! and a headless-Chromium walk of every page (`tests/console/browser.py`,
//! selenium with the Debian `chromium` and `chromium-driver` packages that
//! `scripts/test` installs). Screenshots go to `target/console-screenshots/`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::wardmq::Wardmq;
use common::{repo_root, TIMEOUT};

/// One HTTP/1.1 exchange on a fresh connection.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("header end");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).expect("form")
}

fn password(w: &Wardmq) -> String {
    let path = w.dir.path().join("data/console-password");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("password file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "console-password must be private");
    }
    std::fs::read_to_string(path)
        .expect("console-password")
        .trim()
        .to_owned()
}

/// Logs in; the session cookie (`name=value`).
fn login(addr: SocketAddr, pw: &str) -> String {
    let r = http(
        addr,
        "POST",
        "/console/login",
        &[],
        &form(&[("user", "admin"), ("password", pw), ("next", "/console/")]),
    );
    assert_eq!(r.status, 303, "login: {}", r.body);
    let cookie = r.header("set-cookie").expect("session cookie").to_owned();
    cookie.split(';').next().expect("pair").to_owned()
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    page[at..].split('"').next().expect("value").to_owned()
}

#[test]
fn console_requires_login_and_protects_changes() {
    let w = Wardmq::start_defender("");
    let addr = w.addr();
    let pw = password(&w);

    let root = http(addr, "GET", "/", &[], "");
    assert_eq!(
        (root.status, root.header("location")),
        (303, Some("/console/"))
    );
    for page in [
        "/console/",
        "/console/devices",
        "/console/devices/x",
        "/console/alarms",
        "/console/profiles",
        "/console/audit",
        "/console/certificates",
        "/console/mitigations",
        "/console/live",
        "/console/live/stream",
    ] {
        let r = http(addr, "GET", page, &[], "");
        assert_eq!(r.status, 303, "{page} without login");
        assert!(
            r.header("location")
                .is_some_and(|l| l.starts_with("/console/login")),
            "{page} leads to the login"
        );
    }
    // A change without a session does nothing and leads to the login.
    let r = http(
        addr,
        "POST",
        "/console/certificates/status",
        &[],
        "id=x&status=REVOKED",
    );
    assert_eq!(r.status, 303);

    // Security headers, also on the login page.
    let r = http(addr, "GET", "/console/login", &[], "");
    assert_eq!(r.status, 200);
    let csp = r.header("content-security-policy").expect("CSP");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("referrer-policy"), Some("same-origin"));
    assert!(!r.body.contains("<script>"), "no inline script");

    // The API is untouched: unsigned requests are still refused AWS-style.
    let r = http(addr, "GET", "/things", &[], "");
    assert_eq!(r.status, 403);
    assert!(r.header("x-amzn-errortype").is_some(), "AWS error shape");

    // Wrong password, foreign origin: refused.
    let r = http(
        addr,
        "POST",
        "/console/login",
        &[],
        &form(&[("user", "admin"), ("password", "nope")]),
    );
    assert_eq!(r.status, 401);
    assert!(r.header("set-cookie").is_none());
    let r = http(
        addr,
        "POST",
        "/console/login",
        &[("Origin", "http://evil.example")],
        &form(&[("user", "admin"), ("password", &pw)]),
    );
    assert_eq!(r.status, 403);

    // The session cookie's attributes.
    let r = http(
        addr,
        "POST",
        "/console/login",
        &[],
        &form(&[("user", "admin"), ("password", &pw)]),
    );
    assert_eq!(r.status, 303);
    let set = r.header("set-cookie").expect("cookie");
    for attr in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=28800",
    ] {
        assert!(set.contains(attr), "cookie lacks {attr}: {set}");
    }
    assert!(
        !set.contains("Secure"),
        "plain HTTP without cookie_secure: {set}"
    );
    let cookie = set.split(';').next().expect("pair").to_owned();
    let page = http(
        addr,
        "GET",
        "/console/certificates",
        &[("Cookie", &cookie)],
        "",
    );
    assert_eq!(page.status, 200);
    let token = csrf_of(&page.body);

    // CSRF: missing or wrong token is refused, the right one works.
    let cert_id = page
        .body
        .split("name=\"id\" value=\"")
        .nth(2)
        .and_then(|s| s.split('"').next())
        .expect("a device certificate on the page")
        .to_owned();
    for body in [
        form(&[("id", &cert_id), ("status", "INACTIVE")]),
        form(&[("id", &cert_id), ("status", "INACTIVE"), ("csrf", "forged")]),
    ] {
        let r = http(
            addr,
            "POST",
            "/console/certificates/status",
            &[("Cookie", &cookie)],
            &body,
        );
        assert_eq!(r.status, 403, "{body}");
    }
    let described = w.aws(&["describe-certificate", "--certificate-id", &cert_id]);
    assert_eq!(described["certificateDescription"]["status"], "ACTIVE");
    // The audit page's Mitigate form: a forged token is refused; an unknown
    // finding or no finding at all comes back as a message, not a task.
    let r = http(
        addr,
        "POST",
        "/console/audit/mitigate",
        &[("Cookie", &cookie)],
        &form(&[("finding", "f"), ("action", "a"), ("csrf", "forged")]),
    );
    assert_eq!(r.status, 403);
    for (body, says) in [
        (
            form(&[
                ("finding", "no-such-finding"),
                ("action", "a"),
                ("csrf", &token),
            ]),
            "no+audit+finding",
        ),
        (
            form(&[("action", "a"), ("csrf", &token)]),
            "Select+at+least+one+finding",
        ),
    ] {
        let r = http(
            addr,
            "POST",
            "/console/audit/mitigate",
            &[("Cookie", &cookie)],
            &body,
        );
        let to = r.header("location").unwrap_or("");
        assert_eq!(r.status, 303, "{body}");
        assert!(
            to.starts_with("/console/audit?err=") && to.contains(says),
            "{body}: {to}"
        );
    }
    let tasks = w.aws(&[
        "list-audit-mitigation-actions-tasks",
        "--start-time",
        "2000-01-01T00:00:00Z",
        "--end-time",
        "2100-01-01T00:00:00Z",
    ]);
    assert_eq!(tasks["tasks"], serde_json::json!([]), "{tasks}");
    // Bad input is a 400 page, not a panic.
    let r = http(
        addr,
        "POST",
        "/console/certificates/status",
        &[("Cookie", &cookie)],
        &form(&[("id", &cert_id), ("status", "BOGUS"), ("csrf", &token)]),
    );
    assert_eq!(r.status, 400);
    let r = http(
        addr,
        "GET",
        "/console/devices/x?hours=abc",
        &[("Cookie", &cookie)],
        "",
    );
    assert_eq!(r.status, 400);
    let r = http(
        addr,
        "POST",
        "/console/certificates/status",
        &[("Cookie", &cookie)],
        &form(&[("id", &cert_id), ("status", "INACTIVE"), ("csrf", &token)]),
    );
    assert_eq!(r.status, 303);
    let described = w.aws(&["describe-certificate", "--certificate-id", &cert_id]);
    assert_eq!(described["certificateDescription"]["status"], "INACTIVE");

    // A GET never changes anything.
    let r = http(
        addr,
        "GET",
        "/console/certificates/status",
        &[("Cookie", &cookie)],
        "",
    );
    assert_ne!(r.status, 200);

    // Logout ends the session; the old cookie no longer works.
    let r = http(
        addr,
        "POST",
        "/console/logout",
        &[("Cookie", &cookie)],
        &form(&[("csrf", &token)]),
    );
    assert_eq!(r.status, 303);
    assert!(r
        .header("set-cookie")
        .is_some_and(|c| c.contains("Max-Age=0")));
    let r = http(addr, "GET", "/console/", &[("Cookie", &cookie)], "");
    assert_eq!(r.status, 303);

    // Throttling: after 5 failures even the right password waits.
    for _ in 0..5 {
        let r = http(
            addr,
            "POST",
            "/console/login",
            &[],
            &form(&[("user", "admin"), ("password", "x")]),
        );
        assert_eq!(r.status, 401);
    }
    let r = http(
        addr,
        "POST",
        "/console/login",
        &[],
        &form(&[("user", "admin"), ("password", &pw)]),
    );
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
}

#[test]
fn console_in_headless_chromium() {
    let chromedriver =
        std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    assert!(
        std::path::Path::new(&chromedriver).exists(),
        "{chromedriver} is missing: run scripts/test (installs chromium and chromium-driver)"
    );
    // A two-hour model period makes each one-second period count for the
    // ML model, which stays PENDING_BUILD (14 model days) for the test.
    let w = Wardmq::start_defender(
        "[defender]\ndatapoint_seconds = 1\nml_period_seconds = 7200\nml_min_datapoints = 500\n",
    );
    let pw = password(&w);
    // Logging in once here proves the password before the browser starts.
    let _ = login(w.addr(), &pw);
    let work = tempfile::tempdir().expect("temp dir");
    let shots = repo_root().join("target/console-screenshots");
    let out = w.run_python(
        "tests/console/browser.py",
        &[
            &w.ca_file().display().to_string(),
            &w.tls_port.to_string(),
            &pw,
            &work.path().display().to_string(),
            &shots.display().to_string(),
        ],
        "ok console",
        Duration::from_secs(90),
    );
    print!("{out}");
}
