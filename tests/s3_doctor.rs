//! `sealcast doctor s3://…` against moto_server on 127.0.0.1: it reports what the store
//! really enforces, found by trying it.

mod common;
mod s3_support;

use common::TestEnv;
use s3_support::{aws_env, client, create_bucket, run, Moto};

fn doctor(env: &TestEnv, target: &str, endpoint: &str) -> (i32, String) {
    let mut c = env.command();
    aws_env(&mut c).args(["doctor", target, "--endpoint-url", endpoint]);
    let o = run(&mut c);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

fn line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.contains(name))
        .unwrap_or_else(|| panic!("no {name} line in {out}"))
}

#[test]
fn doctor_reports_what_the_bucket_enforces() {
    let moto = Moto::start();
    let c = client(&moto.endpoint());
    create_bucket(&c, "locked", true);
    create_bucket(&c, "plain", false);
    let env = TestEnv::new();

    let (code, out) = doctor(&env, "s3://locked/p", &moto.endpoint());
    assert!(line(&out, "bucket reachable").starts_with("yes"), "{out}");
    assert!(line(&out, "versioning").starts_with("yes"), "{out}");
    assert!(line(&out, "object lock").starts_with("yes"), "{out}");
    assert!(line(&out, "If-None-Match").starts_with("yes"), "{out}");
    assert!(line(&out, "stores our SHA-256").starts_with("yes"), "{out}");
    // Whatever the store does with a wrong checksum, doctor says it, and the exit code
    // follows: 0 only when everything is enforced.
    let rejects = line(&out, "rejects a wrong SHA-256");
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
    assert!(line(&out, "versioning").starts_with("NO"), "{out}");
    assert!(line(&out, "object lock").starts_with("NO"), "{out}");

    let (code, out) = doctor(&env, "s3://nosuchbucket", &moto.endpoint());
    assert_eq!(code, 4, "{out}");
    assert!(line(&out, "bucket reachable").starts_with("NO"), "{out}");
}
