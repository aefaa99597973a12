//! Stable stand-in for the fuzz targets: seeded random and mutated protocol streams through
//! both state machines never panic.

fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// A plausible PostgreSQL or MySQL conversation to mutate.
fn seed(pg: bool) -> Vec<u8> {
    let m = |tag: u8, body: &[u8]| {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    };
    let p = |seq: u8, body: &[u8]| {
        let mut v = (body.len() as u32).to_le_bytes()[..3].to_vec();
        v.push(seq);
        v.extend_from_slice(body);
        v
    };
    let mut out = Vec::new();
    let mut step = |client: bool, b: Vec<u8>| {
        for ch in b.chunks(60) {
            out.push(((ch.len() as u8) << 1) | u8::from(!client));
            out.extend_from_slice(ch);
        }
    };
    if pg {
        step(
            true,
            [
                m(b'Q', b"BEGIN; SELECT 1/0; COMMIT;\0"),
                m(b'P', b"s\0SELECT $1\0\0\0"),
                m(b'B', b"\0s\0\0\0\0\x01\0\0\0\x01x\0\0"),
                m(b'E', b"\0\0\0\0\0"),
                m(b'S', b""),
            ]
            .concat(),
        );
        step(
            false,
            [
                m(b'C', b"BEGIN\0"),
                m(b'E', b"SERROR\0C22012\0\0"),
                m(b'Z', b"E"),
                m(b'1', b""),
                m(b'2', b""),
                m(b'D', b"\0\x01\0\0\0\x01x"),
                m(b'C', b"SELECT 1\0"),
                m(b'Z', b"I"),
            ]
            .concat(),
        );
        step(
            true,
            [
                m(b'Q', b"COPY t FROM STDIN\0"),
                m(b'd', b"1\n"),
                m(b'c', b""),
            ]
            .concat(),
        );
        step(
            false,
            [m(b'G', b"\0\0\0"), m(b'C', b"COPY 1\0"), m(b'Z', b"I")].concat(),
        );
    } else {
        step(true, p(0, b"\x03SELECT 1; CALL p()"));
        step(
            false,
            [
                p(1, b"\x01"),
                p(
                    2,
                    b"\x03def\0\0\0\x011\0\x0c\x3f\0\x01\0\0\0\x08\x81\0\0\0\0",
                ),
                p(3, b"\xfe\0\0\x0a\0"),
                p(4, b"\x011"),
                p(5, b"\xfe\0\0\x02\0"),
            ]
            .concat(),
        );
        step(true, p(0, b"\x16SELECT ?"));
        step(
            false,
            [
                p(1, b"\0\x01\0\0\0\0\0\x01\0\0\0\0"),
                p(2, b"\x03def\0\0\0\x01?\0\x0c\x3f\0\0\0\0\0\xfd\x80\0\0\0\0"),
                p(3, b"\xfe\0\0\x02\0"),
            ]
            .concat(),
        );
        step(true, p(0, b"\x17\x01\0\0\0\0\x01\0\0\0\0\x01\xfd\0\x02hi"));
        step(false, p(1, b"\0\0\0\x02\0\0\0"));
    }
    out
}

#[test]
fn random_and_mutated_streams_never_panic() {
    let mut r = xorshift(0x5EA1_CA57);
    for pg in [true, false] {
        let base = seed(pg);
        let run = |d: &[u8]| {
            if pg {
                sealcast_dbproxy::fuzzing::pg(d)
            } else {
                sealcast_dbproxy::fuzzing::mysql(d)
            }
        };
        run(&base);
        for _ in 0..3000 {
            let mut d = base.clone();
            for _ in 0..(1 + r() % 8) {
                let at = (r() as usize) % d.len();
                match r() % 3 {
                    0 => d[at] = r() as u8,
                    1 => {
                        d.remove(at);
                    }
                    _ => d.insert(at, r() as u8),
                }
            }
            run(&d);
        }
        for _ in 0..500 {
            let n = (r() % 600) as usize;
            let d: Vec<u8> = (0..n).map(|_| r() as u8).collect();
            run(&d);
        }
    }
}
