//! The pending directory (`PENDING_DIR`): one marker per session not yet safely in S3
//! (`<session>.json`, a [`SessionRecord`]), what this host last set the instance tag to
//! (`tag-state`), a lock serialising marker and tag changes (`.lock`) and one lock per
//! session being uploaded (`locks/<session>.lock`), so that Jibri's finalize and the
//! systemd timer never upload the same session at once.
//!
//! Markers are replaced atomically (write, fsync, rename, fsync the directory), so a crash
//! leaves the old or the new record, never half of one.

use crate::core::session::{SessionRecord, TagState};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const MARKER_SUFFIX: &str = ".json";
const TAG_STATE: &str = "tag-state";
const GLOBAL_LOCK: &str = ".lock";
const LOCKS: &str = "locks";

#[derive(Debug, Clone)]
pub struct PendingDir {
    root: PathBuf,
}

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct Lock {
    file: File,
    /// Removed before unlocking (session locks, once the session is done).
    path: Option<PathBuf>,
}

impl Lock {
    /// Releases the lock and removes its file, for a session that is no longer pending.
    /// Whoever waits on the old file notices it was replaced (see [`PendingDir::session_lock`]).
    pub fn release_and_remove(mut self) {
        if let Some(p) = self.path.take() {
            let _ = fs::remove_file(p);
        }
        drop(self);
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

impl PendingDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the directory (and the locks directory) if missing.
    pub fn ensure(&self) -> io::Result<()> {
        fs::create_dir_all(self.root.join(LOCKS))
    }

    fn marker(&self, session: &str) -> PathBuf {
        self.root.join(format!("{session}{MARKER_SUFFIX}"))
    }

    /// The lock around marker and tag changes (held for milliseconds, or for one tag call).
    pub fn global_lock(&self) -> io::Result<Lock> {
        self.ensure()?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(self.root.join(GLOBAL_LOCK))?;
        file.lock()?;
        Ok(Lock { file, path: None })
    }

    /// The lock of one session's upload: waits for it, or with `wait = false` returns
    /// `None` if another process holds it.
    pub fn session_lock(&self, session: &str, wait: bool) -> io::Result<Option<Lock>> {
        self.ensure()?;
        let path = self.root.join(LOCKS).join(format!("{session}.lock"));
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&path)?;
            if wait {
                file.lock()?;
            } else {
                match file.try_lock() {
                    Ok(()) => {}
                    Err(TryLockError::WouldBlock) => return Ok(None),
                    Err(TryLockError::Error(e)) => return Err(e),
                }
            }
            // The holder before us may have finished and unlinked the file while we waited:
            // then our lock is on a file nobody else will ever see. Take the current one.
            let same = fs::metadata(&path).is_ok_and(|m| {
                file.metadata()
                    .is_ok_and(|f| f.ino() == m.ino() && f.dev() == m.dev())
            });
            if same {
                return Ok(Some(Lock {
                    file,
                    path: Some(path),
                }));
            }
        }
    }

    /// `Ok(None)` when the session has no marker.
    pub fn load(&self, session: &str) -> io::Result<Option<SessionRecord>> {
        match fs::read(self.marker(session)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", self.marker(session).display()),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes the marker atomically; `durable` also fsyncs it and the directory (for the
    /// first write and the last ones: progress in between may be lost in a crash, which
    /// only costs re-uploading a few parts).
    pub fn save(&self, record: &SessionRecord, durable: bool) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(record)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        write_atomic(&self.root, &self.marker(&record.session), &bytes, durable)
    }

    pub fn remove(&self, session: &str) -> io::Result<()> {
        match fs::remove_file(self.marker(session)) {
            Ok(()) => sync_dir(&self.root),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The sessions with a marker, sorted. A marker that cannot be parsed still counts.
    pub fn list(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.root)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(session) = name.strip_suffix(MARKER_SUFFIX) {
                if !session.is_empty() && entry.file_type()?.is_file() {
                    out.push(session.to_owned());
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Every pending session's record, or why it cannot be read (for `--status`).
    pub fn records(&self) -> io::Result<Vec<Result<SessionRecord, String>>> {
        let names = match self.list() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
            other => other?,
        };
        Ok(names
            .iter()
            .map(|n| {
                self.load(n)
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.ok_or_else(|| format!("{n}: marker vanished")))
            })
            .collect())
    }

    pub fn tag_state(&self) -> TagState {
        match fs::read_to_string(self.root.join(TAG_STATE)) {
            Ok(s) if s.trim() == "absent" => TagState::Absent,
            Ok(s) => s
                .trim()
                .parse()
                .map(TagState::Value)
                .unwrap_or(TagState::Unknown),
            Err(_) => TagState::Unknown,
        }
    }

    /// Records the tag's state; `Unknown` (before a call whose outcome is not yet known)
    /// removes the record.
    pub fn set_tag_state(&self, state: TagState) -> io::Result<()> {
        let path = self.root.join(TAG_STATE);
        match state {
            TagState::Unknown => match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
            TagState::Absent => write_atomic(&self.root, &path, b"absent\n", false),
            TagState::Value(n) => {
                write_atomic(&self.root, &path, format!("{n}\n").as_bytes(), false)
            }
        }
    }
}

fn write_atomic(dir: &Path, path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        if durable {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        if durable {
            sync_dir(dir)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("jf-pending-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        p
    }

    #[test]
    fn markers_round_trip_and_are_listed_and_removed() {
        let root = tmp("markers");
        let p = PendingDir::new(&root);
        assert_eq!(
            p.list().ok(),
            None,
            "no directory yet: unreadable, not empty"
        );
        p.ensure().unwrap();
        assert_eq!(p.list().unwrap(), Vec::<String>::new());
        let rec = SessionRecord::new("abc", "/rec/abc", "recordings/2026/01/01/abc/".into(), 5);
        p.save(&rec, true).unwrap();
        p.save(
            &SessionRecord::new("0first", "/rec/0first", "x/".into(), 5),
            false,
        )
        .unwrap();
        assert_eq!(p.list().unwrap(), ["0first", "abc"]);
        assert_eq!(p.load("abc").unwrap(), Some(rec));
        assert_eq!(p.load("nope").unwrap(), None);
        p.remove("abc").unwrap();
        p.remove("abc").unwrap();
        assert_eq!(p.list().unwrap(), ["0first"]);
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_corrupt_marker_is_an_error_but_still_counted() {
        let root = tmp("corrupt");
        let p = PendingDir::new(&root);
        p.ensure().unwrap();
        fs::write(root.join("bad.json"), b"{ half").unwrap();
        assert_eq!(p.list().unwrap(), ["bad"]);
        assert_eq!(
            p.load("bad").unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn tag_state_is_unknown_until_recorded() {
        let root = tmp("tagstate");
        let p = PendingDir::new(&root);
        assert_eq!(p.tag_state(), TagState::Unknown);
        p.set_tag_state(TagState::Value(2)).unwrap();
        assert_eq!(p.tag_state(), TagState::Value(2));
        p.set_tag_state(TagState::Absent).unwrap();
        assert_eq!(p.tag_state(), TagState::Absent);
        p.set_tag_state(TagState::Unknown).unwrap();
        assert_eq!(p.tag_state(), TagState::Unknown);
        p.set_tag_state(TagState::Unknown).unwrap();
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_session_lock_excludes_a_second_holder_until_released() {
        let root = tmp("locks");
        let p = PendingDir::new(&root);
        let held = p.session_lock("s1", false).unwrap().expect("free");
        assert!(
            p.session_lock("s1", false).unwrap().is_none(),
            "flock is per open file: a second open is refused"
        );
        assert!(
            p.session_lock("s2", false).unwrap().is_some(),
            "other sessions are independent"
        );
        held.release_and_remove();
        assert!(!root.join(LOCKS).join("s1.lock").exists());
        assert!(p.session_lock("s1", false).unwrap().is_some());
        let _g = p.global_lock().unwrap();
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_waiter_on_a_removed_lock_file_takes_the_new_one() {
        let root = tmp("relock");
        let p = PendingDir::new(&root);
        let held = p.session_lock("s", true).unwrap().unwrap();
        let p2 = p.clone();
        let waiter = std::thread::spawn(move || p2.session_lock("s", true).unwrap().unwrap());
        std::thread::sleep(std::time::Duration::from_millis(100));
        held.release_and_remove();
        let got = waiter.join().unwrap();
        // The waiter holds the lock of the file now at the path, so a third party is refused.
        assert!(p.session_lock("s", false).unwrap().is_none());
        drop(got);
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file_and_the_old_marker() {
        let root = tmp("enospc");
        let p = PendingDir::new(&root);
        p.ensure().unwrap();
        let rec = SessionRecord::new("s", "/rec/s", "x/".into(), 1);
        p.save(&rec, true).unwrap();
        // The temporary file is a link to /dev/full: every write fails with ENOSPC.
        std::os::unix::fs::symlink("/dev/full", root.join("s.tmp")).unwrap();
        let mut newer = rec.clone();
        newer.attempts = 9;
        let err = p.save(&newer, true).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(28), "ENOSPC: {err}");
        assert_eq!(p.load("s").unwrap(), Some(rec));
        assert!(!root.join("s.tmp").exists());
        fs::remove_dir_all(root).unwrap();
    }
}
