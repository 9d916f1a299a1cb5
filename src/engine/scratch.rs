//! The disk tier's run directories: named so that no two ever collide, locked while their run
//! lives, swept once their owner is gone, and removable from a signal handler's thread.
//!
//! A run that ends in any ordinary way (success, error, Ctrl-C, a panic that unwinds) removes
//! its directory when the disk tier drops. What no destructor survives is `SIGKILL`, a power
//! cut or an abort. For those, each directory is named `gpurevolve-<host>-<pid>-<clock>-<n>`
//! (`<host>` a hash of the host's name) and holds a `.lock` file its run keeps locked (an
//! advisory `flock`, released by the kernel when the process dies). Every new disk tier first
//! removes the directories beside it that
//!
//! * have exactly that form of name, with this host's hash in it (a directory shared between
//!   machines holds other hosts' live runs, whose PIDs mean nothing here);
//! * hold a `.lock` that nobody holds, and whose creator's PID no longer runs (both: the
//!   creator locks its file a moment after it makes the directory, and a PID can be reused);
//! * hold nothing but the lock and checkpoint files (`slot-*.ckpt`): a user's own folder is
//!   never removed, whatever its name.
//!
//! Where the file system has no locks (some network file systems), a run goes on unlocked,
//! with a warning, and its directory is never swept.

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
        // The host, the PID, the clock and a counter make a collision all but impossible;
        // `create_dir` failing on an existing name makes it harmless.
        for _ in 0..16 {
            let run = RUNS.fetch_add(1, Ordering::Relaxed);
            let path = parent.join(format!(
                "{PREFIX}{}-{}-{nanos:x}-{run}",
                host(),
                std::process::id()
            ));
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
    if let Err(e) = file.lock() {
        // No locks here: the run goes on, and no sweep ever takes this directory for stale
        // (a sweeper's `try_lock` fails the same way).
        log::warn!(
            "cannot lock {} ({e}): if this run is killed outright, remove it by hand",
            dir.display()
        );
    }
    Ok(file)
}

/// This host's tag in a directory's name: a hash of its name (16 hex digits, no `-`).
fn host() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::env::var("HOSTNAME"))
            .or_else(|_| std::env::var("COMPUTERNAME"))
            .unwrap_or_default();
        let mut sum = super::checksum::Checksum::new();
        sum.update(name.trim().as_bytes());
        format!("{:016x}", sum.value())
    })
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
        .filter(|p| {
            // The disk thread may be creating a file as the tree goes ("directory not
            // empty"): a few tries, a few milliseconds apart.
            (0..10).any(|_| {
                let gone = std::fs::remove_dir_all(p).is_ok() || !p.exists();
                if !gone {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                gone
            })
        })
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
        if !path.is_dir() || process_alive(pid) || !only_checkpoints(&path) {
            continue;
        }
        // A lock another process holds means a live run (a PID from another PID namespace,
        // say): leave it. No lock file, or no locks on this file system: leave it too.
        let free = File::open(path.join(LOCK)).is_ok_and(|file| file.try_lock().is_ok());
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

/// Whether `dir` holds a lock file and nothing but it and checkpoint files.
fn only_checkpoints(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut locked = false;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let plain = entry.file_type().is_ok_and(|t| t.is_file());
        if name == LOCK && plain {
            locked = true;
        } else if !(plain && name.starts_with("slot-") && name.ends_with(".ckpt")) {
            return false;
        }
    }
    locked
}

/// The PID in a run directory's name, `gpurevolve-<this host>-<pid>-<hex clock>-<n>`; `None`
/// for any other name, another host's included.
fn creator(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?.strip_prefix(host())?;
    let mut parts = rest.strip_prefix('-')?.split('-');
    let (pid, clock, run) = (parts.next()?, parts.next()?, parts.next()?);
    let exact = parts.next().is_none()
        && u128::from_str_radix(clock, 16).is_ok()
        && run.parse::<u64>().is_ok();
    exact.then(|| pid.parse().ok()).flatten()
}

/// Whether process `pid` runs (Linux: `/proc/<pid>`). Where there is no `/proc`, every
/// process counts as alive, and nothing is ever swept.
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

    /// A directory of a dead process on this host is swept; a live one (this process's),
    /// another host's, one without its lock file, one holding a file of the user's, and a
    /// name of another form all stay; names never collide; drop removes.
    #[test]
    fn stale_directories_are_swept_and_everything_else_kept() {
        let root = parent("sweep");
        let run_dir = |pid: u32, host: &str, files: &[&str]| {
            let dir = root.join(format!("{PREFIX}{host}-{pid}-1f-0"));
            std::fs::create_dir(&dir).unwrap();
            for f in files {
                std::fs::write(dir.join(f), b"x").unwrap();
            }
            dir
        };
        // PID 0 never names a user process; /proc/0 does not exist.
        let dead = run_dir(0, host(), &[LOCK, "slot-0.ckpt", "slot-3.ckpt"]);
        let other_host = run_dir(0, "0123456789abcdef", &[LOCK, "slot-0.ckpt"]);
        let unlocked = root.join(format!("{PREFIX}{}-0-2a-1", host()));
        std::fs::create_dir(&unlocked).unwrap();
        std::fs::write(unlocked.join("slot-0.ckpt"), b"x").unwrap();
        let users = root.join(format!("{PREFIX}{}-0-3b-2", host()));
        std::fs::create_dir(&users).unwrap();
        std::fs::write(users.join(LOCK), b"").unwrap();
        std::fs::write(users.join("results.npy"), b"mine").unwrap();
        let notes = root.join("gpurevolve-2024-results");
        std::fs::create_dir(&notes).unwrap();
        let a = ScratchDir::create(&root).unwrap();
        let b = ScratchDir::create(&root).unwrap();
        assert_ne!(a.path(), b.path());
        assert!(!dead.exists(), "a dead run's directory stays");
        for kept in [&other_host, &unlocked, &users, &notes] {
            assert!(kept.exists(), "{} was removed", kept.display());
        }
        let (pa, pb) = (a.path().to_path_buf(), b.path().to_path_buf());
        let listed = |p: &Path| LIVE.lock().unwrap().iter().any(|l| l == p);
        assert!(pa.exists() && listed(&pa) && listed(&pb));
        drop(a);
        assert!(!pa.exists() && pb.exists() && !listed(&pa));
        // `remove_scratch_directories` removes every listed one: other tests of this binary
        // run beside this one, so its effect is checked by CI's second-signal run instead.
        drop(b);
        assert!(!pb.exists() && !listed(&pb));
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn only_run_directory_names_of_this_host_have_a_creator() {
        let h = host();
        assert_eq!(creator(&format!("gpurevolve-{h}-123-abc-0")), Some(123));
        assert_eq!(creator(&format!("gpurevolve-{h}-123-abc")), None);
        assert_eq!(creator(&format!("gpurevolve-{h}-123-xyz-0")), None);
        assert_eq!(creator(&format!("gpurevolve-{h}-123-abc-0-extra")), None);
        assert_eq!(creator("gpurevolve-0123456789abcdef-123-abc-0"), None);
        assert_eq!(creator("gpurevolve-runtime"), None);
        assert_eq!(creator("gpurevolve-123-4"), None);
        assert_eq!(creator("other-123-4"), None);
    }
}
