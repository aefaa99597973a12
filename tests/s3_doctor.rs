//! `sealcast doctor s3://…` against moto_server on 127.0.0.1: it reports what the store
//! really enforces, found by trying it.

mod common;
mod s3_support;

use common::TestEnv;
use s3_support::{client, create_bucket, doctor, doctor_line, Moto};

#[test]
fn doctor_reports_what_the_bucket_enforces() {
    let moto = Moto::start();
    let c = client(&moto.endpoint());
    create_bucket(&c, "locked", true);
    create_bucket(&c, "plain", false);
    let env = TestEnv::new();

    let (code, out) = doctor(&env, "s3://locked/p", &moto.endpoint());
    assert!(
        doctor_line(&out, "bucket reachable").starts_with("yes"),
        "{out}"
    );
    assert!(doctor_line(&out, "versioning").starts_with("yes"), "{out}");
    assert!(doctor_line(&out, "object lock").starts_with("yes"), "{out}");
    assert!(
        doctor_line(&out, "If-None-Match").starts_with("yes"),
        "{out}"
    );
    assert!(
        doctor_line(&out, "stores our SHA-256").starts_with("yes"),
        "{out}"
    );
    // Whatever the store does with a wrong checksum, doctor says it, and the exit code
    // follows: 0 only when everything is enforced.
    let rejects = doctor_line(&out, "rejects a wrong SHA-256");
    assert!(
        rejects.starts_with("yes") || rejects.starts_with("NO"),
        "{out}"
    );
    assert_eq!(
        code,
        if rejects.starts_with("yes") { 0 } else { 2 },
        "{out}"
    );

    let (code, out) = doctor(&env, "s3://plain", &moto.endpoint());
    assert_eq!(code, 2, "{out}");
    assert!(doctor_line(&out, "versioning").starts_with("NO"), "{out}");
    assert!(doctor_line(&out, "object lock").starts_with("NO"), "{out}");

    let (code, out) = doctor(&env, "s3://nosuchbucket", &moto.endpoint());
    assert_eq!(code, 4, "{out}");
    assert!(
        doctor_line(&out, "bucket reachable").starts_with("NO"),
        "{out}"
    );
}
