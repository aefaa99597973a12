//! SPEC §2.2 "Byte exactness", as a property of the writer: whatever chunks the output
//! arrives in, the `o` events (with `b` substitution) concatenate to exactly the bytes
//! written, and every event ends where the output is outside every escape and UTF-8
//! sequence, except a forced cut (a sequence longer than `MAX_HELD` bytes, or the end of the
//! session inside one).

use proptest::prelude::*;
use sealcast_format::{
    decompress_frame, parse_event, scan, EventKind, FrameKind, Header, SealMeta,
};
use sealcast_signer::SigningKey;
use sealcast_writer::boundary::{BoundaryScanner, MAX_HELD};
use sealcast_writer::{CheckpointPolicy, SealedWriter, SystemClock};

/// A piece of terminal output.
fn token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[a-z \r\n]{1,12}".prop_map(String::into_bytes),
        prop::sample::select(vec!["é", "€", "😀", "✓", "日本"]).prop_map(|s| s.as_bytes().to_vec()),
        (
            0u16..400,
            prop::sample::select(vec!['m', 'H', 'J', 'K', 'h'])
        )
            .prop_map(|(n, f)| format!("\x1b[{n};1{f}").into_bytes()),
        "[ -~]{0,20}".prop_map(|t| format!("\x1b]0;{t}\x07").into_bytes()),
        "[ -~]{0,20}".prop_map(|t| format!("\x1b]133;A;cwd={t}\x1b\\").into_bytes()),
        // Longer than MAX_HELD: forces a cut inside it.
        "[a-z]{70,200}".prop_map(|t| format!("\x1b]2;{t}\x07").into_bytes()),
        "[a-z]{0,10}".prop_map(|t| format!("\x1bP{t}\x1b\\").into_bytes()),
        Just(b"\x1b(B".to_vec()),
        Just(b"\x1b[12\x18".to_vec()),
        prop::collection::vec(any::<u8>(), 1..6),
    ]
}

fn writer() -> SealedWriter<Vec<u8>, SystemClock> {
    let key = SigningKey::generate().unwrap();
    let h = Header::sealed(SealMeta::new(
        "0123456789abcdef0123456789abcdef",
        "h",
        "u",
        0,
        "test",
        key.id().to_string(),
    ));
    SealedWriter::new(
        Vec::new(),
        key,
        &h,
        SystemClock::new(),
        CheckpointPolicy::default(),
    )
    .unwrap()
}

/// The exact bytes of each `o` event, in order.
fn o_events(file: &[u8]) -> Vec<Vec<u8>> {
    let mut text = Vec::new();
    for f in scan(file) {
        let f = f.unwrap();
        if f.kind == FrameKind::Data {
            decompress_frame(f.bytes, f.offset, &mut text).unwrap();
        }
    }
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut last_o = false;
    for line in text
        .split(|&b| b == b'\n')
        .skip(1)
        .filter(|l| !l.is_empty())
    {
        let ev = parse_event(line).unwrap();
        match ev.kind {
            EventKind::Output => {
                out.push(ev.data.into_bytes());
                last_o = true;
            }
            EventKind::Bytes => {
                assert!(last_o, "b after a non-o event");
                *out.last_mut().unwrap() = ev.raw_bytes().unwrap();
                last_o = false;
            }
            _ => last_o = false,
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn events_are_exact_and_end_at_sequence_boundaries(
        tokens in prop::collection::vec(token(), 1..60),
        splits in prop::collection::vec(1usize..48, 1..200),
    ) {
        let input: Vec<u8> = tokens.concat();
        let mut w = writer();
        let mut at = 0;
        for n in splits.iter().cycle() {
            if at >= input.len() {
                break;
            }
            let end = (at + n).min(input.len());
            w.output(&input[at..end]).unwrap();
            at = end;
        }
        let (file, _) = w.finish(Some(0)).unwrap();
        let events = o_events(&file);
        prop_assert_eq!(events.concat(), input.clone());

        // Where the stream is in ground, and the last ground offset at or before each offset.
        // `strict`: the scanner's ground (what the writer cuts at and counts a carried tail
        // from); `ground` adds the offsets where an invalid UTF-8 sequence ended, which the
        // event encoder's UTF-8 carry may cut at (`BoundaryScanner::in_utf8`).
        let mut strict = vec![true; input.len() + 1];
        let mut s = BoundaryScanner::new();
        for (i, b) in input.iter().enumerate() {
            s.feed(std::slice::from_ref(b));
            strict[i + 1] = s.at_ground();
        }
        let mut ground = strict.clone();
        let mut s = BoundaryScanner::new();
        for (i, b) in input.iter().enumerate() {
            let before = s.clone();
            s.feed(std::slice::from_ref(b));
            let mut fresh = BoundaryScanner::new();
            fresh.feed(std::slice::from_ref(b));
            if (before.in_utf8() || *b >= 0x80) && format!("{s:?}") == format!("{fresh:?}") {
                // `b` ended an invalid UTF-8 sequence (or an escape sequence it cannot be
                // part of) and started afresh.
                ground[i] = true;
            }
        }
        let mut last_ground = vec![0; input.len() + 1];
        for i in 0..=input.len() {
            last_ground[i] = if strict[i] { i } else { last_ground[i - 1] };
        }
        let mut end = 0;
        for (k, e) in events.iter().enumerate() {
            end += e.len();
            let last = k + 1 == events.len();
            let forced = end - last_ground[end] > MAX_HELD - 4;
            prop_assert!(
                ground[end] || forced || (last && end == input.len()),
                "event {} ends at {} inside a sequence that began at {}",
                k, end, last_ground[end]
            );
        }
    }
}
