//! `rolewatch keygen`: makes the Ed25519 key that signs the lake's manifests, or shows the
//! public key of one, for `rolewatch verify --trusted-key`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use rolewatch_lake::{KeySource, ManifestSigner};

/// Arguments of `rolewatch keygen`.
#[derive(Debug, Clone, Args)]
pub struct KeygenArgs {
    /// Where to write a new signing key (64 hex characters, mode 0600). An existing file is
    /// never overwritten.
    #[arg(long, conflicts_with = "public_of", required_unless_present = "public_of")]
    pub out: Option<PathBuf>,
    /// Print the public key of this existing signing key file instead.
    #[arg(long)]
    pub public_of: Option<PathBuf>,
}

/// Runs the command: prints the public key on stdout.
pub fn run(args: KeygenArgs) -> anyhow::Result<()> {
    let signer = match (&args.out, &args.public_of) {
        (Some(out), _) => {
            let mut seed = [0_u8; 32];
            getrandom::fill(&mut seed)
                .map_err(|error| anyhow::anyhow!("no randomness available: {error}"))?;
            let mut file =
                std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(out).with_context(
                    || format!("cannot create {} (an existing key is never overwritten)", out.display()),
                )?;
            writeln!(file, "{}", hex::encode(seed))
                .with_context(|| format!("cannot write {}", out.display()))?;
            file.sync_all().with_context(|| format!("cannot write {}", out.display()))?;
            super::say(&format!("signing key written to {}; keep it secret", out.display()));
            ManifestSigner::from_seed(&seed)
        }
        (None, Some(path)) => ManifestSigner::load(&KeySource::File(path.clone()))?,
        (None, None) => anyhow::bail!("pass --out FILE or --public-of FILE"),
    };
    let stdout = std::io::stdout();
    writeln!(stdout.lock(), "{}", signer.public_key_hex()).context("cannot write to stdout")?;
    Ok(())
}
