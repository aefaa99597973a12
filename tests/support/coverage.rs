//! The verifying reader checked against `verify` on one file: a read with a trust store
//! reports exactly what `verify_recording` reports for the same bytes, reads exactly what an
//! unchecked read reads, and gives each line a coverage that agrees with that report. Used
//! by tests/vectors.rs (every vector) and tests/mutation_smoke.rs (every mutation).

use sealcast_format::EventLine;
use sealcast_reader::{
    verify_recording, CheckedLines, Context, Coverage, Reader, Receipt, Report, Status,
};
use sealcast_signer::TrustStore;

/// What a reader yields, comparable: the event, or the error text.
fn items(r: &mut Reader<'_>) -> Vec<Result<EventLine, String>> {
    r.map(|e| e.map(|e| e.into_event()).map_err(|e| e.to_string()))
        .collect()
}

/// Check the verifying reader on `file` with `seal` as its receipt (see the module
/// documentation); `label` names the case in failures. Returns the report and the coverage
/// of every line that reads (the header first), or `None` when the file does not open as a
/// recording (then `verify` must not call it OK).
pub fn reads_as_it_verifies(
    label: &str,
    file: &[u8],
    seal: Option<&[u8]>,
    trust: &TrustStore,
) -> (Report, Option<Vec<Coverage>>) {
    let ctx = Context {
        file_name: None,
        receipt: seal.map_or(Receipt::Absent, |bytes| Receipt::Read { path: "", bytes }),
    };
    let want = verify_recording(file, &ctx, trust);

    // The events and errors are those of an unchecked read; the report is verify's,
    // after a full read and after reading only the first item.
    match (Reader::verifying(file, trust, ctx), Reader::open(file)) {
        (Ok(mut verifying), Ok(mut plain)) => {
            let read = items(&mut verifying);
            assert_eq!(
                read,
                items(&mut plain),
                "{label}: verifying changes what is read"
            );
            assert_eq!(
                verifying.finish().as_ref(),
                Some(&want),
                "{label}: full read"
            );
            let mut partial = Reader::verifying(file, trust, ctx).unwrap();
            partial.next();
            assert_eq!(
                partial.finish().as_ref(),
                Some(&want),
                "{label}: partial read"
            );
        }
        (Err(a), Err(b)) => {
            assert_eq!(a.to_string(), b.to_string(), "{label}");
            assert_ne!(
                want.status,
                Status::Ok,
                "{label}: verified OK, does not open"
            );
            return (want, None);
        }
        (a, b) => panic!(
            "{label}: opens {} verifying, {} unchecked",
            a.is_ok(),
            b.is_ok()
        ),
    }

    // The coverage of every line agrees with the report.
    let mut lines = CheckedLines::verifying(file, trust, ctx).unwrap();
    let mut coverage = vec![lines.header_coverage()];
    let mut bad_lines = 0;
    while let Some(line) = lines.next_checked() {
        match line {
            Ok(l) => coverage.push(l.coverage),
            Err(_) => bad_lines += 1,
        }
    }
    assert_eq!(lines.finish().as_ref(), Some(&want), "{label}: lines");
    let seqs: Vec<u64> = coverage
        .iter()
        .filter_map(|c| match c {
            Coverage::Verified { checkpoint } => Some(*checkpoint),
            _ => None,
        })
        .collect();
    assert_eq!(
        seqs.len() as u64,
        want.verified_lines,
        "{label}: verified lines ({:?} {})",
        want.status,
        want.reason
    );
    assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "{label}: {seqs:?}");
    assert!(seqs.last().is_none_or(|&s| s < want.checkpoints), "{label}");
    let has = |c: Coverage| coverage.contains(&c);
    assert!(!has(Coverage::Unchecked), "{label}");
    match want.status {
        Status::Ok => assert!(
            bad_lines == 0 && coverage.iter().all(|c| c.is_verified()),
            "{label}: OK, but not every line is verified"
        ),
        Status::Unclosed => assert!(
            coverage.iter().all(|c| c.is_verified()),
            "{label}: UNCLOSED, but not every line is verified"
        ),
        _ => {}
    }
    if has(Coverage::Failed) {
        assert_eq!(
            want.status.exit_class(),
            1,
            "{label}: Failed lines, {:?}",
            want.status
        );
    }
    if want.status == Status::UnsealedTail {
        let unsealed = coverage
            .iter()
            .filter(|c| **c == Coverage::Unsealed)
            .count() as u64;
        let tail = want.tail.as_ref().map_or(0, |t| t.lines);
        assert!(
            unsealed <= tail,
            "{label}: {unsealed} unsealed lines, tail of {tail}"
        );
    }
    if has(Coverage::Unsealed) {
        assert!(
            want.checkpoints > 0 && !matches!(want.status, Status::Ok | Status::Unclosed),
            "{label}: Unsealed lines, {:?}",
            want.status
        );
    }
    (want, Some(coverage))
}
