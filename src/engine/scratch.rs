//! The disk tier's run directories: named so that no two ever collide, locked while their run
//! lives, swept once their owner is gone, and removable from a signal handler's thread.
//!
//! A run that ends in any ordinary way (success, error, Ctrl-C, a panic that unwinds) removes
//! its directory when the disk tier drops. What no destructor survives is `SIGKILL`, a power
//! cut or an abort. For those, each directory holds a `.lock` file that its run keeps locked
//! (an advisory `flock`, released by the kernel when the process dies), and every new disk
//! tier first removes the directories beside it whose lock is free and whose creator's PID is
//! no longer running: both tests, because the creator locks its file a moment after it makes
//! the directory, and a PID can be reused.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every name starts with this; nothing else in the parent is ever touched.
const PREFIX: &str = "gpurevolve-";
/// The lock file inside each directory.
const LOCK: &str = ".lock";

/// The live directories of this process, for [`remove_scratch_directories`].
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Makes names unique within the process.
static RUNS: AtomicU64 = AtomicU64::new(0);

/// A run directory, locked; removed on drop.
#[derive(Debug)]
pub(crate) struct ScratchDir {
    path: PathBuf,
    /// Held for the directory's life: the lock is the sign that its run is alive.
    _lock: File,
}

impl ScratchDir {
    /// Sweeps the stale directories in `parent`, then makes and locks a fresh one there.
    pub(crate) fn create(parent: &Path) -> std::io::Result<Self> {
        sweep_stale(parent);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut last = None;
        // The PID, the clock and a counter make a collision all but impossible; `create_dir`
        // failing on an existing name makes it harmless.
        for _ in 0..16 {
            let run = RUNS.fetch_add(1, Ordering::Relaxed);
            let path = parent.join(format!("{PREFIX}{}-{nanos:x}-{run}", std::process::id()));
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    let lock = match lock_new(&path) {
                        Ok(lock) => lock,
                        Err(e) => {
                            let _ = std::fs::remove_dir_all(&path);
                            return Err(e);
                        }
                    };
                    if let Ok(mut live) = LIVE.lock() {
                        live.push(path.clone());
                    }
                    return Ok(Self { path, _lock: lock });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no free directory name")))
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Ok(mut live) = LIVE.lock() {
            live.retain(|p| *p != self.path);
        }
        match std::fs::remove_dir_all(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => log::warn!(
                "could not remove the disk tier's {}: {e}",
                self.path.display()
            ),
        }
    }
}

fn lock_new(dir: &Path) -> std::io::Result<File> {
    let file = File::create(dir.join(LOCK))?;
    file.lock()?;
    Ok(file)
}

/// Removes every disk-tier directory of this process now, and returns how many it removed.
///
/// For a signal handler that must end the process at once (a second Ctrl-C, say): the runs
/// still using them fail at their next read with a typed error, never with wrong data. Safe
/// to call from any thread; the `ctrlc` crate's handlers run on an ordinary one.
pub fn remove_scratch_directories() -> usize {
    let paths: Vec<PathBuf> = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
    paths
        .iter()
        .filter(|p| std::fs::remove_dir_all(p).is_ok())
        .count()
}

/// Removes the directories in `parent` left by runs that are gone (see the module's notes).
fn sweep_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(creator) else {
            continue;
        };
        let path = entry.path();
        if !path.is_dir() || process_alive(pid) {
            continue;
        }
        // A lock another process holds means a live run (a PID from another PID namespace,
        // say): leave it. A missing lock file is an older layout's run, or one that died
        // before locking: its creator is gone either way.
        let free = match File::open(path.join(LOCK)) {
            Ok(file) => file.try_lock().is_ok(),
            Err(_) => true,
        };
        if free {
            match std::fs::remove_dir_all(&path) {
                Ok(()) => log::info!(
                    "removed the disk tier's directory {} left by process {pid}, which is gone",
                    path.display()
                ),
                Err(e) => log::warn!("could not remove the stale {}: {e}", path.display()),
            }
        }
    }
}

/// The PID in a run directory's name, `gpurevolve-<pid>-…`.
fn creator(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let (pid, tail) = rest.split_once('-')?;
    (!tail.is_empty()).then_some(())?;
    pid.parse().ok()
}

/// Whether process `pid` runs (Linux: `/proc/<pid>`). Elsewhere, every process counts as alive
/// and only the lock decides.
fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if Path::new("/proc/self").exists() {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parent(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "gpurevolve-scratch-test-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A directory of a dead process is swept, with or without its lock file; a live one
    /// (this process's, or a lock held) stays; names never collide; drop removes.
    #[test]
    fn stale_directories_are_swept_and_live_ones_kept() {
        let root = parent("sweep");
        // PID 0 never names a user process; /proc/0 does not exist.
        let dead_locked = root.join("gpurevolve-0-1f-0");
        std::fs::create_dir(&dead_locked).unwrap();
        std::fs::write(dead_locked.join(LOCK), b"").unwrap();
        std::fs::write(dead_locked.join("slot-0.ckpt"), b"old").unwrap();
        let dead_unlocked = root.join("gpurevolve-0-5");
        std::fs::create_dir(&dead_unlocked).unwrap();
        let unrelated = root.join("gpurevolve-notes");
        std::fs::create_dir(&unrelated).unwrap();
        let a = ScratchDir::create(&root).unwrap();
        let b = ScratchDir::create(&root).unwrap();
        assert_ne!(a.path(), b.path());
        assert!(!dead_locked.exists() && !dead_unlocked.exists());
        assert!(unrelated.exists() && a.path().exists());
        let (pa, pb) = (a.path().to_path_buf(), b.path().to_path_buf());
        let listed = |p: &Path| LIVE.lock().unwrap().iter().any(|l| l == p);
        assert!(listed(&pa) && listed(&pb));
        drop(a);
        assert!(!pa.exists() && pb.exists() && !listed(&pa));
        // `remove_scratch_directories` removes every listed one: other tests of this binary
        // run beside this one, so its effect is checked by CI's second-signal run instead.
        drop(b);
        assert!(!pb.exists() && !listed(&pb));
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn only_run_directory_names_have_a_creator() {
        assert_eq!(creator("gpurevolve-123-abc-0"), Some(123));
        assert_eq!(creator("gpurevolve-123-4"), Some(123));
        assert_eq!(creator("gpurevolve-runtime"), None);
        assert_eq!(creator("gpurevolve-123"), None);
        assert_eq!(creator("other-123-4"), None);
    }
}
