//! A small SQL lexer: enough to count the statements of a query string and to find the
//! string literals that set passwords. Not a parser; pure and total (never panics, any bytes).
//!
//! PostgreSQL: `'…'` (`''` escape), `E'…'` (backslash escapes), `"…"`, `$tag$…$tag$`, `--`
//! and nested `/* */` comments (PostgreSQL docs, "Lexical Structure"). MySQL/MariaDB: `'…'`
//! and `"…"` with backslash escapes, `` `…` ``, `--␠`, `#` and `/* */` comments.

/// Which lexical rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// MySQL / MariaDB.
    Mysql,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    /// A word (keyword or identifier), ASCII-lowercased comparison later.
    Word,
    /// A string literal (any quoting that yields a value).
    Str,
    /// `;`.
    Semi,
    /// Another symbol or a quoted identifier.
    Other,
}

/// Tokens with their byte ranges; whitespace and comments are skipped.
fn lex(s: &[u8], d: Dialect) -> Vec<(Tok, usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    let n = s.len();
    while i < n {
        let c = s[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'-' && s.get(i + 1) == Some(&b'-') {
            if d == Dialect::Mysql && !s.get(i + 2).is_none_or(|b| b.is_ascii_whitespace()) {
                // MySQL needs a space after `--`; otherwise it is two minus signs.
                out.push((Tok::Other, i, i + 1));
                i += 1;
                continue;
            }
            while i < n && s[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'#' && d == Dialect::Mysql {
            while i < n && s[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && s.get(i + 1) == Some(&b'*') {
            let mut depth = 0usize;
            while i < n {
                if s[i] == b'/' && s.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                    if d == Dialect::Mysql && depth > 1 {
                        depth = 1; // MySQL comments do not nest
                    }
                } else if s[i] == b'*' && s.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            continue;
        }
        if c == b';' {
            out.push((Tok::Semi, i, i + 1));
            i += 1;
            continue;
        }
        if c == b'\'' || (c == b'"' && d == Dialect::Mysql) {
            let backslash = d == Dialect::Mysql;
            i = quoted(s, i + 1, c, backslash);
            out.push((Tok::Str, start, i));
            continue;
        }
        if (c == b'e' || c == b'E') && s.get(i + 1) == Some(&b'\'') && d == Dialect::Postgres {
            i = quoted(s, i + 2, b'\'', true);
            out.push((Tok::Str, start, i));
            continue;
        }
        if c == b'"' || (c == b'`' && d == Dialect::Mysql) {
            i = quoted(s, i + 1, c, false);
            out.push((Tok::Other, start, i));
            continue;
        }
        if c == b'$' && d == Dialect::Postgres {
            // $tag$ … $tag$ (tag empty or an identifier); `$1` is a parameter.
            let mut j = i + 1;
            while j < n && (s[j].is_ascii_alphanumeric() || s[j] == b'_' || s[j] >= 0x80) {
                j += 1;
            }
            let tag_ok = j < n && s[j] == b'$' && !s.get(i + 1).is_some_and(u8::is_ascii_digit);
            if tag_ok {
                let tag = &s[i..=j];
                let mut k = j + 1;
                let mut end = n;
                while k + tag.len() <= n {
                    if &s[k..k + tag.len()] == tag {
                        end = k + tag.len();
                        break;
                    }
                    k += 1;
                }
                out.push((Tok::Str, start, end));
                i = end;
                continue;
            }
            out.push((Tok::Other, i, i + 1));
            i += 1;
            continue;
        }
        if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 {
            while i < n
                && (s[i].is_ascii_alphanumeric() || s[i] == b'_' || s[i] == b'$' || s[i] >= 0x80)
            {
                i += 1;
            }
            out.push((Tok::Word, start, i));
            continue;
        }
        out.push((Tok::Other, i, i + 1));
        i += 1;
    }
    out
}

/// Index after the closing quote `q` of a literal whose body starts at `i` (`qq` doubles
/// always escape; `\` escapes when `backslash`); `s.len()` when unterminated.
fn quoted(s: &[u8], mut i: usize, q: u8, backslash: bool) -> usize {
    while i < s.len() {
        let c = s[i];
        if backslash && c == b'\\' {
            i += 2;
            continue;
        }
        if c == q {
            if s.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    s.len()
}

/// Number of statements in `s`: `;`-separated parts that hold at least one token. A lexical
/// count (SQL-standard function bodies with `BEGIN ATOMIC … END` count their inner `;`).
pub fn count_statements(s: &[u8], d: Dialect) -> u64 {
    let mut n = 0;
    let mut open = false;
    for (t, _, _) in lex(s, d) {
        match t {
            Tok::Semi => {
                if open {
                    n += 1;
                }
                open = false;
            }
            _ => open = true,
        }
    }
    n + u64::from(open)
}

/// Replace the string literals that set a password with `'***'`: a literal after the word
/// `PASSWORD` (also `PASSWORD (`, `PASSWORD =`), or after `BY` / `USING` in a statement that
/// has `IDENTIFIED` earlier (`CREATE USER … IDENTIFIED BY 'x'`, `IDENTIFIED VIA … USING
/// PASSWORD('x')`, `IDENTIFIED WITH plugin BY 'x'`). Returns the text and whether anything
/// was replaced.
pub fn redact_passwords(s: &[u8], d: Dialect) -> (Vec<u8>, bool) {
    let toks = lex(s, d);
    let word = |k: usize, w: &str| {
        let (t, a, b) = toks[k];
        t == Tok::Word && s[a..b].eq_ignore_ascii_case(w.as_bytes())
    };
    let mut hits = Vec::new();
    let mut identified = false;
    for k in 0..toks.len() {
        match toks[k].0 {
            Tok::Semi => identified = false,
            Tok::Word if word(k, "identified") => identified = true,
            Tok::Str => {
                // Previous significant token, skipping `(` and `=`.
                let mut j = k;
                while j > 0 {
                    j -= 1;
                    let (t, a, b) = toks[j];
                    if t == Tok::Other && matches!(&s[a..b], b"(" | b"=") {
                        continue;
                    }
                    break;
                }
                if j < k
                    && (word(j, "password") || (identified && (word(j, "by") || word(j, "using"))))
                {
                    hits.push((toks[k].1, toks[k].2));
                }
            }
            _ => {}
        }
    }
    if hits.is_empty() {
        return (s.to_vec(), false);
    }
    let mut out = Vec::with_capacity(s.len());
    let mut at = 0;
    for (a, b) in hits {
        out.extend_from_slice(&s[at..a]);
        out.extend_from_slice(b"'***'");
        at = b;
    }
    out.extend_from_slice(&s[at..]);
    (out, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn red(s: &str, d: Dialect) -> String {
        String::from_utf8(redact_passwords(s.as_bytes(), d).0).unwrap()
    }

    #[test]
    fn counts() {
        let pg = Dialect::Postgres;
        assert_eq!(
            count_statements(b"BEGIN; INSERT INTO t VALUES (1); SELECT 1/0; COMMIT;", pg),
            4
        );
        assert_eq!(count_statements(b";", pg), 0);
        assert_eq!(
            count_statements(b"SELECT ';'; -- x;\n SELECT $$a;b$$", pg),
            2
        );
        assert_eq!(
            count_statements(b"SELECT E'\\';'; /* ; /* ; */ ; */ SELECT 2", pg),
            2
        );
        assert_eq!(count_statements(b"SELECT \"a;b\" FROM t", pg), 1);
        assert_eq!(
            count_statements(b"SELECT 'x\\'; y'; SELECT 2 # ;\n", Dialect::Mysql),
            2
        );
    }

    #[test]
    fn passwords_redacted() {
        let pg = Dialect::Postgres;
        assert_eq!(
            red(
                "ALTER ROLE bob WITH ENCRYPTED PASSWORD 's3cr''et' VALID UNTIL '2030-01-01'",
                pg
            ),
            "ALTER ROLE bob WITH ENCRYPTED PASSWORD '***' VALID UNTIL '2030-01-01'"
        );
        assert_eq!(
            red("create user x password $p$secret$p$", pg),
            "create user x password '***'"
        );
        assert_eq!(
            red("ALTER USER app PASSWORD 'SCRAM-SHA-256$4096:abc'", pg),
            "ALTER USER app PASSWORD '***'"
        );
        let my = Dialect::Mysql;
        assert_eq!(
            red("CREATE USER 'a'@'%' IDENTIFIED BY 'pw\\'x'", my),
            "CREATE USER 'a'@'%' IDENTIFIED BY '***'"
        );
        assert_eq!(
            red(
                "ALTER USER a IDENTIFIED VIA ed25519 USING PASSWORD('pw')",
                my
            ),
            "ALTER USER a IDENTIFIED VIA ed25519 USING PASSWORD('***')"
        );
        assert_eq!(
            red("SET PASSWORD FOR a = PASSWORD('pw')", my),
            "SET PASSWORD FOR a = PASSWORD('***')"
        );
        assert_eq!(red("SET PASSWORD = \"pw\"", my), "SET PASSWORD = '***'");
        // Not a password: left alone.
        assert_eq!(
            red("SELECT 'by' FROM t WHERE a = 'password'", my),
            "SELECT 'by' FROM t WHERE a = 'password'"
        );
        assert!(!redact_passwords(b"SELECT 1", pg).1);
    }

    #[test]
    fn total_on_garbage() {
        for s in [
            &b"'"[..],
            b"$a",
            b"$a$",
            b"/*",
            b"E'\\",
            b"\xff\xfe'",
            b"--",
        ] {
            let _ = count_statements(s, Dialect::Postgres);
            let _ = redact_passwords(s, Dialect::Postgres);
            let _ = redact_passwords(s, Dialect::Mysql);
        }
    }
}
