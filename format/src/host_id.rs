//! Host ids (SPEC §2.1, §4, §5): the name a recording binds into its genesis and every
//! checkpoint, and the `allowed_signers` principal a key signs for (SPEC §6). A host id
//! contains no whitespace.

/// `raw` (a host name, a `--host-id` argument) as a host id: trimmed, and every remaining
/// whitespace character turned into `-` (SPEC §5: host ids contain no whitespace). The one
/// sanitizer used by `record`, sealcast-shell, `install-bastion`, `keygen` and `upload`.
pub fn sanitize(raw: &str) -> String {
    raw.trim()
        .chars()
        .map(|c| if c.is_whitespace() { '-' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_becomes_dashes() {
        assert_eq!(sanitize(" my host\tname "), "my-host-name");
        assert_eq!(sanitize("bastion-01"), "bastion-01");
        assert_eq!(sanitize(" \t"), "");
    }
}
