//! Files written whole: the library's outputs (arrays, journal records) and the main job's
//! (summary, pictures) go through [`write_atomically`], so a run stopped at any moment leaves
//! each file as it was or whole, never partial.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

fn bad(path: &Path, detail: impl Into<String>) -> Error {
    Error::File {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

/// Names each temporary file uniquely within the process.
static TEMPORARIES: AtomicU64 = AtomicU64::new(0);

/// Removes the temporary file when dropped, unless it was renamed.
struct Temporary(Option<PathBuf>);

impl Drop for Temporary {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Writes the file `path` atomically: `write` fills a temporary file in the same directory
/// (`.NAME.tmp-PID-N`), which is flushed and synced to disk, then renamed onto `path`. A file
/// under `path`'s name is never partial: a reader (or a run stopped halfway) sees the old file
/// or the new one, whole. On any error, a failing `write` included, and on a panic in it, the
/// temporary file is removed and `path` is left as it was. `write` gets a buffered writer.
///
/// For any output file: `.npy` arrays, the journal's records, the examples' PNG and JSON.
/// (A `path` that is a symbolic link is replaced by the new file, not written through.)
///
/// ```
/// let path = std::env::temp_dir().join(format!("gpurevolve-doc-{}.json", std::process::id()));
/// gpurevolve::fs::write_atomically(&path, |w| w.write_all(b"{\"ok\": true}\n")).unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"{\"ok\": true}\n");
/// std::fs::remove_file(&path).unwrap();
/// ```
///
/// # Errors
/// [`Error::File`] naming `path` when the temporary file cannot be made (a missing or
/// read-only directory), written, synced or renamed, or when `write` fails (its error's text
/// is kept).
pub fn write_atomically(
    path: impl AsRef<Path>,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let path = path.as_ref();
    let name = path
        .file_name()
        .ok_or_else(|| bad(path, "not a file name to write"))?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let temporary = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        TEMPORARIES.fetch_add(1, Ordering::Relaxed)
    ));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temporary)
        .map_err(|e| {
            bad(
                path,
                format!(
                    "cannot create a temporary file {}: {e}",
                    temporary.display()
                ),
            )
        })?;
    let mut guard = Temporary(Some(temporary.clone()));
    let mut out = BufWriter::new(file);
    let written = write(&mut out)
        .and_then(|()| {
            out.into_inner()
                .map_err(std::io::IntoInnerError::into_error)
        })
        .and_then(|file| file.sync_data());
    if let Err(e) = written {
        return Err(bad(path, format!("writing: {e}")));
    }
    std::fs::rename(&temporary, path).map_err(|e| {
        bad(
            path,
            format!("renaming {} onto it: {e}", temporary.display()),
        )
    })?;
    guard.0 = None;
    Ok(())
}

/// Whether `dir` takes a file: one is made there and removed.
///
/// # Errors
/// The I/O error of making the file.
pub fn probe_writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".gpurevolve-probe-{}", std::process::id()));
    std::fs::write(&probe, b"probe")?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}
