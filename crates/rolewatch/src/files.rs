//! Small files the binary keeps in its state directory (detector state, detection intents),
//! replaced whole so that a crash leaves the old content or the new, never half of one.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// Replaces `path` with `bytes` durably: written to `<path>.tmp`, synced, renamed over `path`,
/// and the directory synced, so that the new content survives a power loss once this returns.
/// Creates the parent directory if needed.
pub fn replace_durably(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let directory = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(directory).with_context(|| format!("cannot create {}", directory.display()))?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = Path::new(&temporary);
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(temporary, path)?;
        std::fs::File::open(directory)?.sync_all()
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_content_and_leaves_no_temporary_file() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("nested").join("state.json");
        replace_durably(&path, b"first").unwrap();
        replace_durably(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["state.json"]);
    }
}
