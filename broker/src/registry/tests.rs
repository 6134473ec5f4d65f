#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use super::*;

fn scope() -> Scope {
    Scope::new("us-east-1", "123456789012")
}

fn path(dir: &TempDir) -> PathBuf {
    dir.path().join("registry.redb")
}

fn open(dir: &TempDir) -> Registry {
    Registry::open(path(dir), scope()).unwrap()
}

fn fresh() -> (TempDir, Registry) {
    let dir = tempfile::tempdir().unwrap();
    let reg = open(&dir);
    (dir, reg)
}

fn page(max: usize, token: Option<String>) -> PageRequest {
    PageRequest::new(Some(max), token)
}

fn all() -> PageRequest {
    page(MAX_PAGE_SIZE, None)
}

/// A self-signed ECDSA P-256 device certificate.
fn self_signed(cn: &str) -> (String, Vec<u8>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![cn.to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), cert.der().to_vec())
}

fn ca(cn: &str) -> CertifiedIssuer<'static, KeyPair> {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(params, key).unwrap()
}

fn issued_by(issuer: &CertifiedIssuer<'static, KeyPair>, cn: &str) -> String {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![cn.to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.signed_by(&key, issuer).unwrap().pem()
}

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}"#;

#[test]
fn registry_thing_crud_and_versions() {
    let (_d, reg) = fresh();
    let t = reg
        .create_thing("sensor-1", None, attrs(&[("color", "red")]))
        .unwrap();
    assert_eq!(t.version, 1);
    assert_eq!(t.thing_id.len(), 36);
    // Same configuration: idempotent; different: already exists.
    assert_eq!(
        reg.create_thing("sensor-1", None, attrs(&[("color", "red")]))
            .unwrap(),
        t
    );
    let err = reg
        .create_thing("sensor-1", Some("lamp"), BTreeMap::new())
        .unwrap_err();
    assert!(matches!(
        &err,
        RegistryError::ResourceAlreadyExists { arn, .. }
            if arn == "arn:aws:iot:us-east-1:123456789012:thing/sensor-1"
    ));

    let merged = reg
        .update_thing(
            "sensor-1",
            ThingUpdate {
                attribute_payload: Some(AttributePayload {
                    attributes: attrs(&[("size", "xl"), ("color", "")]),
                    merge: true,
                }),
                expected_version: Some(1),
                ..ThingUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(merged.version, 2);
    assert_eq!(merged.attributes, attrs(&[("size", "xl")]));

    let err = reg
        .update_thing(
            "sensor-1",
            ThingUpdate {
                expected_version: Some(1),
                ..ThingUpdate::default()
            },
        )
        .unwrap_err();
    assert!(matches!(
        err,
        RegistryError::VersionConflict {
            expected: 1,
            actual: 2,
            ..
        }
    ));
    assert_eq!(err.aws_code(), "VersionConflictException");

    // Three attributes without a thing type, at most.
    let four = attrs(&[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]);
    assert!(matches!(
        reg.create_thing("many", None, four.clone()),
        Err(RegistryError::InvalidRequest(_))
    ));
    reg.create_thing("many", Some("lamp"), four).unwrap();

    let listed = reg
        .list_things(Some(("size", "x")), true, None, &all())
        .unwrap();
    assert_eq!(listed.items.len(), 1);

    assert!(matches!(
        reg.delete_thing("sensor-1", Some(1)),
        Err(RegistryError::VersionConflict { .. })
    ));
    reg.delete_thing("sensor-1", Some(2)).unwrap();
    assert!(reg.thing("sensor-1").is_none());
    // Deleting a missing thing succeeds, as in AWS.
    reg.delete_thing("sensor-1", None).unwrap();
    assert!(matches!(
        reg.update_thing("sensor-1", ThingUpdate::default()),
        Err(RegistryError::ResourceNotFound { .. })
    ));
}

#[test]
fn registry_invalid_names_refused() {
    let (_d, reg) = fresh();
    for bad in ["", "has space", "a/b", "ünicode", &"x".repeat(129)] {
        assert!(
            matches!(
                reg.create_thing(bad, None, BTreeMap::new()),
                Err(RegistryError::InvalidRequest(_))
            ),
            "thing name {bad:?}"
        );
        assert!(matches!(
            reg.create_thing_group(bad, None, ThingGroupProperties::default()),
            Err(RegistryError::InvalidRequest(_))
        ));
    }
    reg.create_thing(&"x".repeat(128), None, BTreeMap::new())
        .unwrap();
    reg.create_thing("a:b_c-D9", None, BTreeMap::new()).unwrap();
    assert!(matches!(
        reg.create_policy("bad name", DOC),
        Err(RegistryError::InvalidRequest(_))
    ));
    reg.create_policy("ok+=,.@-_name", DOC).unwrap();
    assert!(matches!(
        reg.create_thing("t", None, attrs(&[("bad key!", "v")])),
        Err(RegistryError::InvalidRequest(_))
    ));
    assert!(matches!(
        reg.update_certificate("nothex", CertificateStatus::Active),
        Err(RegistryError::InvalidRequest(_))
    ));
}

#[test]
fn registry_certificate_id_is_sha256_of_der() {
    let (_d, reg) = fresh();
    let (pem, der) = self_signed("dev-1");
    let cert = reg.register_certificate_without_ca(&pem, None).unwrap();
    let expected: String = Sha256::digest(&der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(cert.id, expected);
    assert_eq!(cert.status, CertificateStatus::Inactive);
    assert_eq!(cert.facts.subject_cn.as_deref(), Some("dev-1"));
    assert_eq!(cert.facts.key_algorithm, "EC");
    assert_eq!(cert.facts.key_size, 256);
    assert!(cert.validity.not_before < cert.validity.not_after);
    assert_eq!(
        reg.certificate(&cert.id.to_uppercase()).unwrap().id,
        cert.id
    );
    let err = reg.register_certificate_without_ca(&pem, None).unwrap_err();
    assert!(matches!(err, RegistryError::ResourceAlreadyExists { id, .. } if id == cert.id));
    assert!(matches!(
        reg.register_certificate_without_ca("not a pem", None),
        Err(RegistryError::CertificateValidation(_))
    ));
    assert!(matches!(
        reg.register_certificate_without_ca(&pem, Some(CertificateStatus::PendingTransfer)),
        Err(RegistryError::InvalidRequest(_))
    ));
}

#[test]
fn registry_certificate_status_transitions() {
    let (_d, reg) = fresh();
    let (pem, _) = self_signed("dev-1");
    let id = reg
        .register_certificate_without_ca(&pem, Some(CertificateStatus::Active))
        .unwrap()
        .id;
    reg.update_certificate(&id, CertificateStatus::Inactive)
        .unwrap();
    reg.update_certificate(&id, CertificateStatus::Active)
        .unwrap();
    assert_eq!(reg.certificate(&id).unwrap().customer_version, 3);
    for internal in [
        CertificateStatus::PendingTransfer,
        CertificateStatus::PendingActivation,
        CertificateStatus::RegisterInactive,
    ] {
        assert!(matches!(
            reg.update_certificate(&id, internal),
            Err(RegistryError::InvalidRequest(_))
        ));
    }
    reg.update_certificate(&id, CertificateStatus::Revoked)
        .unwrap();
    let err = reg
        .update_certificate(&id, CertificateStatus::Active)
        .unwrap_err();
    assert!(matches!(err, RegistryError::CertificateState(_)));
    assert_eq!(err.http_status(), 406);
    // Setting the current status again is a no-op.
    reg.update_certificate(&id, CertificateStatus::Revoked)
        .unwrap();
    assert!(matches!(
        reg.update_certificate(&"0".repeat(64), CertificateStatus::Active),
        Err(RegistryError::ResourceNotFound { .. })
    ));
}

#[test]
fn registry_certificate_delete_conflicts() {
    let (_d, reg) = fresh();
    let (pem, _) = self_signed("dev-1");
    let id = reg
        .register_certificate_without_ca(&pem, Some(CertificateStatus::Active))
        .unwrap()
        .id;
    let arn = reg.scope().cert_arn(&id);
    reg.create_thing("dev-1", None, BTreeMap::new()).unwrap();
    reg.attach_thing_principal("dev-1", &arn).unwrap();
    reg.create_policy("p", DOC).unwrap();
    reg.attach_policy("p", &arn).unwrap();

    assert!(matches!(
        reg.delete_certificate(&id, true),
        Err(RegistryError::CertificateState(_))
    ));
    reg.update_certificate(&id, CertificateStatus::Inactive)
        .unwrap();
    // Attached to a thing: refused even with force.
    assert!(matches!(
        reg.delete_certificate(&id, true),
        Err(RegistryError::DeleteConflict(_))
    ));
    // A thing with principals cannot be deleted either.
    assert!(matches!(
        reg.delete_thing("dev-1", None),
        Err(RegistryError::InvalidRequest(_))
    ));
    reg.detach_thing_principal("dev-1", &arn).unwrap();
    assert!(reg
        .list_thing_principals("dev-1", &all())
        .unwrap()
        .items
        .is_empty());
    // Policies attached: refused without force.
    assert!(matches!(
        reg.delete_certificate(&id, false),
        Err(RegistryError::DeleteConflict(_))
    ));
    reg.delete_certificate(&id, true).unwrap();
    assert!(reg.certificate(&id).is_none());
    assert!(reg
        .list_targets_for_policy("p", &all())
        .unwrap()
        .items
        .is_empty());
    reg.delete_policy("p").unwrap();
}

#[test]
fn registry_ca_certificates() {
    let (_d, reg) = fresh();
    let issuer = ca("Fleet CA");
    let ca_pem = issuer.pem();
    let ca_rec = reg.register_ca_certificate(&ca_pem, false, true).unwrap();
    assert_eq!(ca_rec.status, CaCertificateStatus::Inactive);
    assert_eq!(
        ca_rec.auto_registration_status,
        AutoRegistrationStatus::Enable
    );
    // A device certificate is not a CA.
    let (dev_pem, _) = self_signed("not-a-ca");
    assert!(matches!(
        reg.register_ca_certificate(&dev_pem, true, false),
        Err(RegistryError::CertificateValidation(_))
    ));

    let dev = issued_by(&issuer, "dev-1");
    // Under an INACTIVE CA: refused.
    assert!(matches!(
        reg.register_certificate(&dev, None, Some(CertificateStatus::Active)),
        Err(RegistryError::CertificateState(_))
    ));
    reg.update_ca_certificate(&ca_rec.id, Some(CaCertificateStatus::Active), None)
        .unwrap();
    // Found by issuer, with and without the CA PEM.
    let cert = reg
        .register_certificate(&dev, None, Some(CertificateStatus::Active))
        .unwrap();
    assert_eq!(cert.ca_certificate_id.as_deref(), Some(ca_rec.id.as_str()));
    let dev2 = issued_by(&issuer, "dev-2");
    reg.register_certificate(&dev2, Some(&ca_pem), None)
        .unwrap();
    assert!(reg.certificate_usable(&cert.id));
    assert_eq!(
        reg.list_certificates_by_ca(&ca_rec.id, &all())
            .unwrap()
            .items
            .len(),
        2
    );

    // A certificate the CA did not sign is refused.
    let other = ca("Fleet CA");
    let forged = issued_by(&other, "dev-3");
    assert!(matches!(
        reg.register_certificate(&forged, Some(&ca_pem), None),
        Err(RegistryError::CertificateValidation(_))
    ));

    assert!(matches!(
        reg.delete_ca_certificate(&ca_rec.id),
        Err(RegistryError::CertificateState(_))
    ));
    reg.update_ca_certificate(&ca_rec.id, Some(CaCertificateStatus::Inactive), None)
        .unwrap();
    assert!(!reg.certificate_usable(&cert.id));
    // Still referenced by device certificates.
    assert!(matches!(
        reg.delete_ca_certificate(&ca_rec.id),
        Err(RegistryError::CertificateState(_))
    ));
    for c in reg
        .list_certificates_by_ca(&ca_rec.id, &all())
        .unwrap()
        .items
    {
        reg.update_certificate(&c.id, CertificateStatus::Inactive)
            .unwrap();
        reg.delete_certificate(&c.id, false).unwrap();
    }
    reg.delete_ca_certificate(&ca_rec.id).unwrap();
    assert!(reg.ca_certificate(&ca_rec.id).is_none());
}

#[test]
fn registry_policy_versions() {
    let (_d, reg) = fresh();
    let p = reg.create_policy("p", DOC).unwrap();
    assert_eq!(p.default_version_id, 1);
    assert!(matches!(
        reg.create_policy("p", DOC),
        Err(RegistryError::ResourceAlreadyExists { .. })
    ));
    for expected in 2..=5 {
        assert_eq!(
            reg.create_policy_version("p", DOC, false).unwrap(),
            expected
        );
    }
    let err = reg.create_policy_version("p", DOC, true).unwrap_err();
    assert!(matches!(err, RegistryError::VersionsLimitExceeded(_)));
    assert_eq!(err.aws_code(), "VersionsLimitExceededException");

    reg.set_default_policy_version("p", "3").unwrap();
    assert!(matches!(
        reg.delete_policy_version("p", "3"),
        Err(RegistryError::DeleteConflict(_))
    ));
    assert!(matches!(
        reg.set_default_policy_version("p", "9"),
        Err(RegistryError::ResourceNotFound { .. })
    ));
    assert!(matches!(
        reg.set_default_policy_version("p", "x"),
        Err(RegistryError::InvalidRequest(_))
    ));
    reg.delete_policy_version("p", "5").unwrap();
    // Ids are never reused.
    assert_eq!(reg.create_policy_version("p", DOC, false).unwrap(), 6);
    assert!(matches!(
        reg.create_policy_version("p", "   ", false),
        Err(RegistryError::MalformedPolicy(_))
    ));

    // Non-default versions and attachments block DeletePolicy.
    assert!(matches!(
        reg.delete_policy("p"),
        Err(RegistryError::DeleteConflict(_))
    ));
    for v in ["1", "2", "4", "6"] {
        reg.delete_policy_version("p", v).unwrap();
    }
    reg.create_thing_group("g", None, ThingGroupProperties::default())
        .unwrap();
    let g = reg.scope().group_arn("g");
    reg.attach_policy("p", &g).unwrap();
    assert_eq!(
        reg.list_attached_policies(&g, &all()).unwrap().items,
        vec!["p"]
    );
    assert!(matches!(
        reg.delete_policy("p"),
        Err(RegistryError::DeleteConflict(_))
    ));
    reg.detach_policy("p", &g).unwrap();
    reg.delete_policy("p").unwrap();
    assert!(reg.policy("p").is_none());
}

#[test]
fn registry_groups_hierarchy_and_membership() {
    let (_d, reg) = fresh();
    let props = ThingGroupProperties {
        description: Some("all the floors".into()),
        attribute_payload: None,
    };
    reg.create_thing_group("building", None, props).unwrap();
    reg.create_thing_group("floor1", Some("building"), ThingGroupProperties::default())
        .unwrap();
    reg.create_thing_group("room101", Some("floor1"), ThingGroupProperties::default())
        .unwrap();
    reg.create_thing_group("other", None, ThingGroupProperties::default())
        .unwrap();
    assert_eq!(
        reg.thing_group_ancestors("room101"),
        vec!["building", "floor1"]
    );
    assert!(matches!(
        reg.create_thing_group("x", Some("missing"), ThingGroupProperties::default()),
        Err(RegistryError::ResourceNotFound { .. })
    ));
    // Depth: building(1) floor1(2) room101(3) then 4..=7 fit, 8 does not.
    let mut parent = "room101".to_owned();
    for depth in 4..=7 {
        let name = format!("d{depth}");
        reg.create_thing_group(&name, Some(&parent), ThingGroupProperties::default())
            .unwrap();
        parent = name;
    }
    assert!(matches!(
        reg.create_thing_group("d8", Some(&parent), ThingGroupProperties::default()),
        Err(RegistryError::InvalidRequest(_))
    ));

    let v = reg
        .update_thing_group("floor1", ThingGroupProperties::default(), Some(1))
        .unwrap();
    assert_eq!(v, 2);
    assert!(matches!(
        reg.update_thing_group("floor1", ThingGroupProperties::default(), Some(1)),
        Err(RegistryError::VersionConflict { .. })
    ));

    for t in ["t1", "t2", "t3"] {
        reg.create_thing(t, None, BTreeMap::new()).unwrap();
    }
    reg.add_thing_to_thing_group("room101", "t1").unwrap();
    reg.add_thing_to_thing_group("floor1", "t2").unwrap();
    reg.add_thing_to_thing_group("other", "t1").unwrap();
    // Same hierarchy as room101.
    assert!(matches!(
        reg.add_thing_to_thing_group("building", "t1"),
        Err(RegistryError::InvalidRequest(_))
    ));
    let direct = reg
        .list_things_in_thing_group("building", false, &all())
        .unwrap();
    assert!(direct.items.is_empty());
    let rec = reg
        .list_things_in_thing_group("building", true, &all())
        .unwrap();
    assert_eq!(rec.items, vec!["t1", "t2"]);
    assert_eq!(
        reg.list_thing_groups_for_thing("t1", &all()).unwrap().items,
        vec!["other", "room101"]
    );
    assert_eq!(
        reg.list_thing_groups(Some("building"), None, false, &all())
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(
        reg.list_thing_groups(Some("building"), None, true, &all())
            .unwrap()
            .items
            .len(),
        6
    );

    // At most 10 groups per thing.
    for i in 0..8 {
        let g = format!("solo{i}");
        reg.create_thing_group(&g, None, ThingGroupProperties::default())
            .unwrap();
        reg.add_thing_to_thing_group(&g, "t1").unwrap();
    }
    reg.create_thing_group("solo8", None, ThingGroupProperties::default())
        .unwrap();
    assert!(matches!(
        reg.add_thing_to_thing_group("solo8", "t1"),
        Err(RegistryError::InvalidRequest(_))
    ));

    // A group with children cannot be deleted; a leaf can, memberships go.
    assert!(matches!(
        reg.delete_thing_group("floor1", None),
        Err(RegistryError::InvalidRequest(_))
    ));
    reg.remove_thing_from_thing_group("room101", "t1").unwrap();
    reg.delete_thing_group("solo0", None).unwrap();
    assert!(!reg
        .list_thing_groups_for_thing("t1", &all())
        .unwrap()
        .items
        .contains(&"solo0".to_owned()));
    reg.delete_thing_group("solo0", None).unwrap();
}

#[test]
fn registry_effective_policies_through_nested_groups() {
    let (_d, reg) = fresh();
    let (pem, _) = self_signed("dev-1");
    let id = reg
        .register_certificate_without_ca(&pem, Some(CertificateStatus::Active))
        .unwrap()
        .id;
    let cert_arn = reg.scope().cert_arn(&id);
    reg.create_thing_group("root", None, ThingGroupProperties::default())
        .unwrap();
    reg.create_thing_group("mid", Some("root"), ThingGroupProperties::default())
        .unwrap();
    reg.create_thing_group("leaf", Some("mid"), ThingGroupProperties::default())
        .unwrap();
    reg.create_thing("dev-1", None, BTreeMap::new()).unwrap();
    reg.add_thing_to_thing_group("leaf", "dev-1").unwrap();
    for (p, doc) in [
        ("on-cert", "c"),
        ("on-root", "r"),
        ("on-mid", "m"),
        ("shared", "s"),
    ] {
        reg.create_policy(p, doc).unwrap();
    }
    reg.attach_policy("on-cert", &cert_arn).unwrap();
    reg.attach_policy("shared", &cert_arn).unwrap();
    reg.attach_policy("on-root", &reg.scope().group_arn("root"))
        .unwrap();
    reg.attach_policy("shared", &reg.scope().group_arn("root"))
        .unwrap();
    reg.attach_policy("on-mid", &reg.scope().group_arn("mid"))
        .unwrap();

    let eff = reg.effective_policies(&id, Some("dev-1"));
    let names: Vec<&str> = eff.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["on-cert", "shared", "on-mid", "on-root"]);
    assert_eq!(eff[2].1, "m");
    assert_eq!(
        reg.thing_groups_with_ancestors("dev-1"),
        vec!["leaf", "mid", "root"]
    );

    // The new default version is what applies.
    reg.create_policy_version("on-mid", "m2", true).unwrap();
    let eff = reg.effective_policies(&id, Some("dev-1"));
    assert!(eff.contains(&("on-mid".to_owned(), "m2".to_owned())));
    // Without a thing, only the certificate's own policies.
    assert_eq!(reg.effective_policies(&id, None).len(), 2);
}

#[test]
fn registry_reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_id, arn);
    {
        let reg = open(&dir);
        let (pem, _) = self_signed("dev-1");
        cert_id = reg
            .register_certificate_without_ca(&pem, Some(CertificateStatus::Active))
            .unwrap()
            .id;
        arn = reg.scope().cert_arn(&cert_id);
        reg.create_thing("dev-1", Some("lamp"), attrs(&[("a", "b")]))
            .unwrap();
        reg.update_thing("dev-1", ThingUpdate::default()).unwrap();
        reg.attach_thing_principal("dev-1", &arn).unwrap();
        reg.create_policy("p", DOC).unwrap();
        reg.create_policy_version("p", "v2", true).unwrap();
        reg.attach_policy("p", &arn).unwrap();
        reg.create_thing_group("g", None, ThingGroupProperties::default())
            .unwrap();
        reg.add_thing_to_thing_group("g", "dev-1").unwrap();
        reg.register_ca_certificate(&ca("CA").pem(), true, false)
            .unwrap();
        reg.set_logging_options(LoggingOptions {
            role_arn: Some("arn:aws:iam::123456789012:role/logs".into()),
            default_log_level: LogLevel::Warn,
            disable_all_logs: false,
        })
        .unwrap();
        reg.set_log_level(
            LogTarget {
                target_type: LogTargetType::ThingGroup,
                target_name: Some("g".into()),
            },
            LogLevel::Debug,
        )
        .unwrap();
    }
    let reg = open(&dir);
    let thing = reg.thing("dev-1").unwrap();
    assert_eq!(thing.version, 2);
    assert_eq!(thing.thing_type_name.as_deref(), Some("lamp"));
    assert_eq!(
        reg.certificate(&cert_id).unwrap().status,
        CertificateStatus::Active
    );
    assert_eq!(
        reg.list_thing_principals("dev-1", &all()).unwrap().items,
        vec![arn.clone()]
    );
    assert_eq!(
        reg.list_principal_things(&arn, &all()).unwrap().items,
        vec!["dev-1"]
    );
    assert_eq!(reg.policy("p").unwrap().default_version_id, 2);
    assert_eq!(
        reg.list_attached_policies(&arn, &all()).unwrap().items,
        vec!["p"]
    );
    assert_eq!(
        reg.list_thing_groups_for_thing("dev-1", &all())
            .unwrap()
            .items,
        vec!["g"]
    );
    assert_eq!(reg.list_ca_certificates(&all()).unwrap().items.len(), 1);
    assert_eq!(reg.logging_options().default_log_level, LogLevel::Warn);
    assert_eq!(reg.list_log_levels(None, &all()).unwrap().items.len(), 1);
    assert_eq!(
        reg.effective_policies(&cert_id, Some("dev-1")),
        vec![("p".to_owned(), "v2".to_owned())]
    );
    assert!(reg.is_attached("dev-1", &cert_id));
}

#[test]
fn registry_pagination_three_pages_and_bad_token() {
    let (_d, reg) = fresh();
    // Created out of order; listed by name.
    for i in [4, 0, 6, 2, 5, 1, 3] {
        reg.create_thing(&format!("thing-{i}"), None, BTreeMap::new())
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let p = reg.list_things(None, false, None, &page(3, token)).unwrap();
        pages += 1;
        seen.extend(p.items.into_iter().map(|t| t.name));
        token = p.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..7).map(|i| format!("thing-{i}")).collect();
    assert_eq!(seen, expected);

    // Exactly one full page has no next token.
    let p = reg.list_things(None, false, None, &page(7, None)).unwrap();
    assert_eq!(p.items.len(), 7);
    assert!(p.next_token.is_none());

    for bad in ["garbage", "wmq1-zz", "wmq1-abc", "wmq1-ff"] {
        assert!(
            matches!(
                reg.list_things(None, false, None, &page(3, Some(bad.into()))),
                Err(RegistryError::InvalidRequest(_))
            ),
            "{bad}"
        );
    }
    for bad in [0, MAX_PAGE_SIZE + 1] {
        assert!(matches!(
            reg.list_things(None, false, None, &page(bad, None)),
            Err(RegistryError::InvalidRequest(_))
        ));
    }

    // Log levels page in their documented order too.
    reg.create_thing_group("g", None, ThingGroupProperties::default())
        .unwrap();
    let targets = [
        (LogTargetType::ClientId, "c1"),
        (LogTargetType::ThingGroup, "g"),
        (LogTargetType::SourceIp, "10.0.0.1"),
        (LogTargetType::ClientId, "c0"),
    ];
    for (ty, name) in targets {
        reg.set_log_level(
            LogTarget {
                target_type: ty,
                target_name: Some(name.into()),
            },
            LogLevel::Info,
        )
        .unwrap();
    }
    let first = reg.list_log_levels(None, &page(2, None)).unwrap();
    let second = reg
        .list_log_levels(None, &page(2, first.next_token.clone()))
        .unwrap();
    let all_targets: Vec<_> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|(t, _)| t.clone())
        .collect();
    let mut sorted = all_targets.clone();
    sorted.sort();
    assert_eq!(all_targets, sorted);
    assert_eq!(all_targets.len(), 4);
    assert!(second.next_token.is_none());
}

#[test]
fn registry_logging_levels() {
    let (_d, reg) = fresh();
    assert_eq!(reg.logging_options(), LoggingOptions::default());
    let missing_group = LogTarget {
        target_type: LogTargetType::ThingGroup,
        target_name: Some("nope".into()),
    };
    assert!(matches!(
        reg.set_log_level(missing_group.clone(), LogLevel::Debug),
        Err(RegistryError::InvalidRequest(_))
    ));
    let client = LogTarget {
        target_type: LogTargetType::ClientId,
        target_name: Some("dev-1".into()),
    };
    assert!(matches!(
        reg.set_log_level(
            LogTarget {
                target_type: LogTargetType::ClientId,
                target_name: None
            },
            LogLevel::Debug
        ),
        Err(RegistryError::InvalidRequest(_))
    ));
    reg.set_log_level(client.clone(), LogLevel::Debug).unwrap();
    reg.set_log_level(client.clone(), LogLevel::Warn).unwrap();
    let levels = reg
        .list_log_levels(Some(LogTargetType::ClientId), &all())
        .unwrap();
    assert_eq!(levels.items, vec![(client.clone(), LogLevel::Warn)]);
    reg.delete_log_level(client.clone()).unwrap();
    reg.delete_log_level(client).unwrap();
    assert!(reg.list_log_levels(None, &all()).unwrap().items.is_empty());
    assert_eq!("WARN".parse::<LogLevel>().unwrap(), LogLevel::Warn);
    assert!("LOUD".parse::<LogLevel>().is_err());
}

#[tokio::test]
async fn registry_change_notifications() {
    let (_d, reg) = fresh();
    let mut changes = reg.changes();
    let mut events = reg.events();
    let (pem, _) = self_signed("dev-1");
    let id = reg
        .register_certificate_without_ca(&pem, Some(CertificateStatus::Active))
        .unwrap()
        .id;
    let before = *changes.borrow_and_update();

    // From another thread, as the admin API would (spawn_blocking).
    let writer = reg.clone();
    let id2 = id.clone();
    tokio::task::spawn_blocking(move || {
        writer
            .update_certificate(&id2, CertificateStatus::Revoked)
            .unwrap()
    })
    .await
    .unwrap();

    tokio::time::timeout(Duration::from_secs(1), changes.changed())
        .await
        .unwrap()
        .unwrap();
    assert!(*changes.borrow() > before);
    let mut got = Vec::new();
    while let Ok(e) = events.try_recv() {
        got.push(e);
    }
    assert!(got.contains(&Change::CertificateStatus {
        id: id.clone(),
        status: Some(CertificateStatus::Revoked)
    }));

    // A thing attribute update is not an authorization change.
    let n = *changes.borrow_and_update();
    reg.create_thing("t", None, BTreeMap::new()).unwrap();
    assert_eq!(*changes.borrow(), n);
    // Membership is.
    reg.create_thing_group("g", None, ThingGroupProperties::default())
        .unwrap();
    reg.add_thing_to_thing_group("g", "t").unwrap();
    assert!(*changes.borrow() > n);
    let mut saw_membership = false;
    while let Ok(e) = events.try_recv() {
        saw_membership |= e == Change::MembershipChanged { thing: "t".into() };
    }
    assert!(saw_membership);
    // A refused change announces nothing.
    let n = *changes.borrow_and_update();
    assert!(reg
        .update_certificate(&id, CertificateStatus::Active)
        .is_err());
    assert_eq!(*changes.borrow(), n);
    assert!(events.try_recv().is_err());
}

#[test]
fn registry_attach_requires_existing_ends() {
    let (_d, reg) = fresh();
    reg.create_thing("t", None, BTreeMap::new()).unwrap();
    reg.create_policy("p", DOC).unwrap();
    let ghost = reg.scope().cert_arn(&"a".repeat(64));
    assert!(matches!(
        reg.attach_thing_principal("t", &ghost),
        Err(RegistryError::ResourceNotFound { .. })
    ));
    assert!(matches!(
        reg.attach_policy("p", &ghost),
        Err(RegistryError::ResourceNotFound { .. })
    ));
    assert!(matches!(
        reg.attach_policy("p", "arn:aws:iot:eu-west-1:1:cert/abc"),
        Err(RegistryError::InvalidRequest(_))
    ));
    assert!(matches!(
        reg.attach_policy("p", &reg.scope().group_arn("nope")),
        Err(RegistryError::ResourceNotFound { .. })
    ));
    // 10 policies per target at most.
    let (pem, _) = self_signed("d");
    let id = reg.register_certificate_without_ca(&pem, None).unwrap().id;
    let arn = reg.scope().cert_arn(&id);
    for i in 0..10 {
        let name = format!("p{i}");
        reg.create_policy(&name, DOC).unwrap();
        reg.attach_policy(&name, &arn).unwrap();
    }
    assert!(matches!(
        reg.attach_policy("p", &arn),
        Err(RegistryError::LimitExceeded(_))
    ));
    // Re-attaching is a no-op, not a limit error.
    reg.attach_policy("p0", &arn).unwrap();
}
