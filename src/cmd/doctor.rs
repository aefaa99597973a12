//! `sealcast doctor s3://BUCKET/PREFIX [--endpoint-url URL] [--json]`: probe what the bucket
//! really enforces ([`sealcast_store::doctor`]). Exit 0 when everything sealcast relies on is
//! enforced, 2 when the bucket works but something is missing (weaker guarantees), 4 when a
//! probe could not run. The code is the same whether or not stdout is still open.

use std::io::{self, Write};

use anyhow::Result;

use sealcast_store::s3::{self, S3Url};

use crate::cmd::{UsageError, VerdictOut};

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// s3://BUCKET/PREFIX to probe (writes two small objects under PREFIX/doctor/).
    pub target: String,
    /// S3 endpoint (default: AWS_ENDPOINT_URL, else AWS).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// One JSON object per probe.
    #[arg(long)]
    pub json: bool,
}

/// Run `sealcast doctor`.
///
/// # Errors
/// [`UsageError`] for a bad URL.
pub fn run(a: DoctorArgs) -> Result<u8> {
    let url = S3Url::parse(&a.target).map_err(|e| UsageError(format!("{e:#}")))?;
    let rt = s3::runtime()?;
    let probes = rt.block_on(async {
        let client = s3::client(a.endpoint_url.as_deref()).await;
        sealcast_store::doctor::probe(&client, &url).await
    })?;
    let stdout = io::stdout();
    let mut out = VerdictOut::new(stdout.lock());
    for p in &probes {
        if a.json {
            serde_json::to_writer(&mut out, p)?;
            writeln!(out)?;
        } else {
            let v = match p.ok {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "UNKNOWN",
            };
            writeln!(out, "{v:<8} {:<36} {}", p.name, p.detail)?;
        }
    }
    out.flush()?;
    let code = if probes.iter().any(|p| p.ok.is_none())
        || probes.first().and_then(|p| p.ok) != Some(true)
    {
        4
    } else if probes.iter().any(|p| p.ok == Some(false)) {
        2
    } else {
        0
    };
    Ok(code)
}
