//! The finalize and the retry of pending sessions.
//!
//! Finalize of a session: record it as pending and tag the instance (before any byte
//! leaves, so a crash mid-upload leaves both; if the tag cannot be set the upload goes on
//! all the same, Jibri being BUSY while the finalize runs), upload every file (streamed
//! from disk, multipart above the threshold, each request carrying the checksum of the
//! bytes read, which S3 verifies; created only, never replacing an object), check each
//! object's full-object checksum as S3 reports it against the local one, write the
//! manifest last, delete the local files that are verified and unchanged, drop the marker,
//! and set the tag to the number of sessions still pending (removed at 0). Then the same
//! for every other pending session. Any failure keeps the files and the marker for the
//! next finalize or the systemd timer.

use crate::core::checksum::{combine_parts, Checksum, ChecksumAlgorithm, Crc};
use crate::core::layout::{self, SessionName};
use crate::core::metadata::{self, RecordingInfo};
use crate::core::parts::{is_multipart, plan_parts, PartPlan};
use crate::core::retry::{FailureKind, Next, RetryPolicy};
use crate::core::session::{
    self, FileAction, FileRecord, FileStamp, ListedPart, MultipartProgress, ObjectHead, PartDone,
    PartsInS3, Pending, SessionRecord, StoredObject, TagAction, TagState,
};
use crate::pending::{Lock, PendingDir};
use crate::ports::{
    AwsResult, CompletedPart, FileRange, InstanceTags, ObjectAttributes, ObjectStore,
};
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

/// Largest `metadata.json` read (Jibri's is a few KB).
const MAX_METADATA_BYTES: u64 = 1 << 20;
/// Read buffer of the checksum pass.
const HASH_BUFFER: usize = 512 * 1024;
/// Progress (parts done) is written to the marker at most this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// Keys tried for one file (its own, then `~2/`, `~3/`...) when other objects hold them.
const MAX_KEYS_PER_FILE: u32 = 20;
pub const UPLOADER: &str = concat!("jibri-finalize ", env!("CARGO_PKG_VERSION"));

/// What the uploader needs of the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Normalised key prefix (empty or ending in '/').
    pub prefix: String,
    pub part_size: u64,
    pub multipart_threshold: u64,
    pub concurrency: usize,
    pub algorithm: ChecksumAlgorithm,
    pub retry: RetryPolicy,
    pub instance_id: String,
    /// Wait between rounds for a session that could not be recorded as pending (it is
    /// not handed to the timer, so this process keeps at it).
    pub unrecorded_round_wait: Duration,
}

/// What became of one session in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every file verified in S3, manifest written, local files deleted, marker dropped.
    Uploaded { files: usize, bytes: u64 },
    /// Another run finished it first.
    AlreadyDone,
    /// Another run holds it now; left to that run.
    Busy,
    /// Its directory disappeared before it was uploaded: nothing is left to protect.
    Gone,
    /// Kept for the next attempt: files on disk, marker in place.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionReport {
    pub session: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    pub sessions: Vec<SessionReport>,
    /// Sessions still pending at the end, if the pending directory could be read.
    pub pending_after: Option<Pending>,
    /// Problems that are no single session's (pending directory).
    pub problems: Vec<String>,
    /// The instance tag could not be set or removed. Logged loudly, but no part of the
    /// exit status, which is the uploads' (a session is uploaded whether or not it could
    /// be tagged: Jibri is BUSY while the finalize runs).
    pub tag_problems: Vec<String>,
}

impl RunReport {
    /// No session failed and nothing else went wrong: the exit status 0.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
            && !self
                .sessions
                .iter()
                .any(|s| matches!(s.outcome, Outcome::Failed(_)))
    }

    fn push(&mut self, session: &str, outcome: Outcome) {
        self.sessions.push(SessionReport {
            session: session.into(),
            outcome,
        });
    }

    pub fn outcome(&self, session: &str) -> Option<&Outcome> {
        self.sessions
            .iter()
            .find(|s| s.session == session)
            .map(|s| &s.outcome)
    }
}

/// Epoch seconds, injected so tests choose the day.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    })
}

/// Jitter for the backoff: xorshift64* seeded by the standard library's random hasher keys.
#[derive(Debug)]
pub struct Jitter(Mutex<u64>);

impl Jitter {
    pub fn new() -> Self {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(std::process::id().into());
        Self(Mutex::new(h.finish() | 1))
    }

    /// A number in [0, 1).
    pub fn next(&self) -> f64 {
        let mut s = lock(&self.0);
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        let x = s.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Default for Jitter {
    fn default() -> Self {
        Self::new()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Calls `call` until it succeeds or the policy gives up.
async fn with_retry<T, F, Fut>(
    policy: &RetryPolicy,
    jitter: &Jitter,
    what: &str,
    mut call: F,
) -> AwsResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = AwsResult<T>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) => match policy.decide(attempt, e.kind, jitter.next()) {
                Next::RetryAfter(wait) => {
                    warn!(call = what, attempt, wait_ms = wait.as_millis() as u64, error = %e, "retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Next::GiveUp => return Err(e),
            },
        }
    }
}

/// The session's record, shared by the tasks of one session and written to its marker
/// (unless the session could not be recorded): progress at most [`PROGRESS_EVERY`] late.
struct RecordSink {
    record: SessionRecord,
    pending: Option<PendingDir>,
    last_save: Instant,
    dirty: bool,
}

impl RecordSink {
    fn new(record: SessionRecord, pending: Option<PendingDir>) -> Self {
        Self {
            record,
            pending,
            last_save: Instant::now(),
            dirty: false,
        }
    }

    fn save(&mut self, durable: bool) {
        if let Some(p) = &self.pending {
            if let Err(e) = p.save(&self.record, durable) {
                warn!(session = %self.record.session, error = %e, "could not update the pending marker");
            }
        }
        self.last_save = Instant::now();
        self.dirty = false;
    }

    /// Applies a change; writes it out if the last write is old enough (else the
    /// session's flusher does, see [`Flusher`]).
    fn update(&mut self, f: impl FnOnce(&mut SessionRecord)) {
        f(&mut self.record);
        self.dirty = true;
        if self.last_save.elapsed() >= PROGRESS_EVERY {
            self.save(false);
        }
    }
}

/// Writes a session's pending progress out every [`PROGRESS_EVERY`] while it uploads, so
/// that a crash loses at most that much (parts in S3 but not in the marker are sent again).
struct Flusher(tokio::task::JoinHandle<()>);

impl Flusher {
    fn start(sink: &Sink) -> Self {
        let sink = sink.clone();
        Self(tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROGRESS_EVERY);
            loop {
                tick.tick().await;
                let mut s = lock(&sink);
                if s.dirty {
                    s.save(false);
                }
            }
        }))
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

type Sink = Arc<Mutex<RecordSink>>;

/// A regular file of the session directory.
#[derive(Debug, Clone)]
struct LocalFile {
    /// '/'-separated path relative to the session directory.
    rel: String,
    components: Vec<OsString>,
    path: PathBuf,
    stamp: FileStamp,
}

fn stamp_of(m: &std::fs::Metadata) -> FileStamp {
    FileStamp {
        size: m.len(),
        mtime_s: m.mtime(),
        mtime_ns: m.mtime_nsec().clamp(0, 999_999_999) as u32,
        inode: m.ino(),
    }
}

/// What a session directory holds.
struct Scan {
    /// Regular files, recursively, sorted by relative path.
    files: Vec<LocalFile>,
    subdirs: Vec<PathBuf>,
    /// Neither file nor directory (links, devices...): not uploaded, left in place.
    skipped: Vec<PathBuf>,
}

/// `None` if `dir` does not exist.
fn scan(dir: &Path) -> io::Result<Option<Scan>> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
        Ok(m) if !m.is_dir() => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory", dir.display()),
            ))
        }
        Ok(_) => {}
    }
    let (mut files, mut dirs, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    let mut stack: Vec<(PathBuf, Vec<OsString>)> = vec![(dir.to_path_buf(), vec![])];
    while let Some((abs, rel)) = stack.pop() {
        for entry in std::fs::read_dir(&abs)? {
            let entry = entry?;
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path)?;
            let mut components = rel.clone();
            components.push(entry.file_name());
            if meta.is_file() {
                let rel = components
                    .iter()
                    .map(|c| c.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                files.push(LocalFile {
                    rel,
                    components,
                    path,
                    stamp: stamp_of(&meta),
                });
            } else if meta.is_dir() {
                dirs.push(path.clone());
                stack.push((path, components));
            } else {
                skipped.push(path);
            }
        }
    }
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(Some(Scan {
        files,
        subdirs: dirs,
        skipped,
    }))
}

/// The checksum of `len` bytes of a file from `offset`, read from disk.
fn hash_range(
    path: &Path,
    offset: u64,
    len: u64,
    algorithm: ChecksumAlgorithm,
) -> io::Result<Checksum> {
    let f = std::fs::File::open(path)?;
    let mut crc = Crc::new(algorithm);
    let mut buf = vec![0u8; HASH_BUFFER.min(len.max(1) as usize)];
    let mut done = 0u64;
    while done < len {
        let want = buf.len().min((len - done) as usize);
        let n = f.read_at(&mut buf[..want], offset + done)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} is shorter than expected", path.display()),
            ));
        }
        crc.update(&buf[..n]);
        done += n as u64;
    }
    Ok(crc.finish())
}

async fn hash(
    path: &Path,
    offset: u64,
    len: u64,
    algorithm: ChecksumAlgorithm,
) -> Result<Checksum, String> {
    let p = path.to_path_buf();
    match tokio::task::spawn_blocking(move || hash_range(&p, offset, len, algorithm)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(format!("reading {}: {e}", path.display())),
        Err(e) => Err(format!("reading {}: {e}", path.display())),
    }
}

fn read_recording_info(dir: &Path) -> Option<RecordingInfo> {
    let path = dir.join(metadata::JIBRI_METADATA_FILE);
    let m = std::fs::metadata(&path).ok()?;
    if !m.is_file() || m.len() > MAX_METADATA_BYTES {
        warn!(path = %path.display(), "metadata.json is not a small regular file; objects get no meeting metadata");
        return None;
    }
    let parsed = std::fs::read(&path)
        .map_err(|e| e.to_string())
        .and_then(|b| metadata::parse_jibri_metadata(&b).map_err(|e| e.to_string()));
    match parsed {
        Ok(info) => Some(info),
        Err(e) => {
            warn!(path = %path.display(), error = %e, "metadata.json unreadable; objects get no meeting metadata (it is uploaded as it is)");
            None
        }
    }
}

/// What one session's upload tasks share.
struct SessionCtx<S> {
    store: Arc<S>,
    settings: Arc<Settings>,
    jitter: Arc<Jitter>,
    permits: Arc<Semaphore>,
    sink: Sink,
    attrs_metadata: Vec<(String, String)>,
}

impl<S> Clone for SessionCtx<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            settings: self.settings.clone(),
            jitter: self.jitter.clone(),
            permits: self.permits.clone(),
            sink: self.sink.clone(),
            attrs_metadata: self.attrs_metadata.clone(),
        }
    }
}

/// One file's result: bytes uploaded now (0 if it was already in S3).
struct FileDone {
    uploaded: u64,
}

/// Why one attempt at one key did not store the file.
enum NotStored {
    /// Another object has the key (a create-only write was refused and that object is not
    /// this file): left as it is, the file goes to another key.
    KeyTaken,
    Failed(String),
}

impl From<String> for NotStored {
    fn from(e: String) -> Self {
        Self::Failed(e)
    }
}

/// What is at a key that a create-only write found taken.
enum Existing {
    /// This very file (same size, same full-object checksum): an earlier attempt whose
    /// answer was lost, or a retry of this one.
    Ours(ObjectHead),
    /// Anything else, or an object that cannot be compared: never touched.
    Theirs,
}

impl<S: ObjectStore> SessionCtx<S> {
    async fn retry<T, F, Fut>(&self, what: &str, call: F) -> AwsResult<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = AwsResult<T>>,
    {
        with_retry(&self.settings.retry, &self.jitter, what, call).await
    }

    fn attrs(&self, rel: &str) -> ObjectAttributes {
        ObjectAttributes {
            content_type: layout::content_type(rel),
            metadata: self.attrs_metadata.clone(),
        }
    }

    async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, String> {
        self.permits.acquire().await.map_err(|e| e.to_string())
    }

    /// Whether a verified object is still in S3 as recorded.
    async fn still_stored(&self, stored: &StoredObject) -> bool {
        let Some(sum) = Checksum::from_base64(stored.algorithm, &stored.checksum) else {
            return false;
        };
        let key = stored.key.as_str();
        let version = stored.version_id.as_deref();
        match self
            .retry("HeadObject", || self.store.head(key, version))
            .await
        {
            Ok(head) => session::verify(&head, stored.size, &sum).is_ok(),
            Err(e) => {
                warn!(key, error = %e, "a verified object could not be checked again; uploading it again");
                false
            }
        }
    }

    async fn upload_file(&self, file: LocalFile, key: String) -> Result<FileDone, String> {
        let s = &self.settings;
        let (record, prefix) = {
            let sink = lock(&self.sink);
            (
                sink.record.files.get(&file.rel).cloned(),
                sink.record.key_prefix.clone(),
            )
        };
        let multipart = is_multipart(file.stamp.size, s.multipart_threshold);
        let plan =
            plan_parts(file.stamp.size, s.part_size).map_err(|e| format!("{}: {e}", file.rel))?;
        let relative = key.strip_prefix(&prefix).unwrap_or(&key).to_owned();
        match session::file_action(
            record.as_ref(),
            file.stamp,
            multipart,
            plan.part_size,
            s.algorithm,
        ) {
            FileAction::AlreadyStored => {
                let stored = record.and_then(|r| r.stored).map(|(o, _)| o);
                if let Some(o) = &stored {
                    // Its own key, or the one it moved to because its own was taken.
                    if layout::is_key_for(&o.key, &prefix, &relative) && self.still_stored(o).await
                    {
                        debug!(file = %file.rel, key = %o.key, "already verified in S3");
                        return Ok(FileDone { uploaded: 0 });
                    }
                }
                self.upload_fresh(&file, &prefix, &relative, &key, multipart, None)
                    .await
            }
            FileAction::Resume(progress) => {
                self.create(&file, &prefix, &relative, &key, true, Some(progress))
                    .await
            }
            FileAction::Fresh { abort } => {
                self.upload_fresh(&file, &prefix, &relative, &key, multipart, abort)
                    .await
            }
        }
    }

    async fn upload_fresh(
        &self,
        file: &LocalFile,
        prefix: &str,
        relative: &str,
        key: &str,
        multipart: bool,
        abort: Option<String>,
    ) -> Result<FileDone, String> {
        if let Some(id) = abort {
            // A stale upload of other content or part size: give its parts back (best
            // effort: the bucket's lifecycle rule aborts forgotten uploads anyway).
            if let Err(e) = self.store.abort_upload(key, &id).await {
                debug!(key, error = %e, "could not abort a stale multipart upload");
            }
            self.forget_upload(&file.rel);
        }
        self.create(file, prefix, relative, key, multipart, None)
            .await
    }

    /// Uploads the file to `key`, or, if another object has that key, to the next free
    /// alternative key (the other object is never replaced).
    async fn create(
        &self,
        file: &LocalFile,
        prefix: &str,
        relative: &str,
        key: &str,
        multipart: bool,
        mut resume: Option<MultipartProgress>,
    ) -> Result<FileDone, String> {
        let mut key = key.to_owned();
        let mut n = 1;
        loop {
            let attempt = if multipart {
                self.upload_multipart(file, &key, resume.take()).await
            } else {
                self.upload_single(file, &key).await
            };
            match attempt {
                Ok(done) => return Ok(done),
                Err(NotStored::Failed(e)) => return Err(e),
                Err(NotStored::KeyTaken) => {
                    n += 1;
                    if n > MAX_KEYS_PER_FILE {
                        return Err(format!(
                            "{}: {MAX_KEYS_PER_FILE} keys tried, all held by other objects",
                            file.rel
                        ));
                    }
                    let next = layout::alternative_key(prefix, relative, n)
                        .map_err(|e| format!("{}: {e}", file.rel))?;
                    warn!(file = %file.rel, key = %key, new_key = %next, "another object already has the key: it is left as it is, the file goes under a new key (the manifest says which)");
                    key = next;
                }
            }
        }
    }

    /// After a create-only write of `key` was refused: is the object there this file?
    async fn existing(&self, key: &str, size: u64, sum: &Checksum) -> Result<Existing, String> {
        match self
            .retry("HeadObject", || self.store.head(key, None))
            .await
        {
            Ok(head) => match session::verify(&head, size, sum) {
                Ok(()) => {
                    info!(key, "the object at the key is this very file (an earlier attempt's): nothing to write");
                    Ok(Existing::Ours(head))
                }
                Err(m) => {
                    warn!(key, difference = %m, "another object already has the key");
                    Ok(Existing::Theirs)
                }
            },
            // Refused (not allowed to read it) or gone again: not provably this file.
            Err(e) if !e.kind.is_retryable() => {
                warn!(key, error = %e, "another object already has the key and cannot be compared");
                Ok(Existing::Theirs)
            }
            Err(e) => Err(format!("{key}: comparing the object already there: {e}")),
        }
    }

    /// The next attempt at this file starts a new multipart upload.
    fn forget_upload(&self, rel: &str) {
        lock(&self.sink).update(|r| {
            if let Some(f) = r.files.get_mut(rel) {
                f.multipart = None;
            }
        });
    }

    /// Progress, written out with the next save: lost in a crash, it only costs checking
    /// or sending the file again.
    fn record_stored(&self, file: &LocalFile, stored: StoredObject) {
        lock(&self.sink).update(|r| {
            r.files.insert(
                file.rel.clone(),
                FileRecord {
                    multipart: None,
                    stored: Some((stored, file.stamp)),
                },
            );
        });
    }

    async fn verify_stored(
        &self,
        file: &LocalFile,
        key: &str,
        version: Option<String>,
        sum: &Checksum,
    ) -> Result<StoredObject, String> {
        let head = self
            .retry("HeadObject", || self.store.head(key, version.as_deref()))
            .await
            .map_err(|e| format!("{}: verifying: {e}", file.rel))?;
        session::verify(&head, file.stamp.size, sum)
            .map_err(|e| format!("{}: the object in S3 is not the local file: {e}", file.rel))?;
        Ok(StoredObject {
            key: key.into(),
            size: file.stamp.size,
            algorithm: sum.algorithm,
            checksum: sum.base64(),
            version_id: head.version_id.or(version),
        })
    }

    async fn upload_single(&self, file: &LocalFile, key: &str) -> Result<FileDone, NotStored> {
        let _permit = self.permit().await?;
        let sum = hash(&file.path, 0, file.stamp.size, self.settings.algorithm).await?;
        let range = FileRange {
            path: file.path.clone(),
            offset: 0,
            len: file.stamp.size,
        };
        let attrs = self.attrs(&file.rel);
        let put = self
            .retry("PutObject", || {
                self.store.put_file(key, &range, &sum, &attrs)
            })
            .await;
        let version = match put {
            Ok(put) => put.version_id,
            Err(e) if e.kind == FailureKind::AlreadyExists => {
                match self.existing(key, file.stamp.size, &sum).await? {
                    Existing::Ours(head) => head.version_id,
                    Existing::Theirs => return Err(NotStored::KeyTaken),
                }
            }
            Err(e) => return Err(format!("{}: {e}", file.rel).into()),
        };
        let stored = self.verify_stored(file, key, version, &sum).await?;
        debug!(file = %file.rel, key, checksum = %sum, "stored and verified");
        self.record_stored(file, stored);
        Ok(FileDone {
            uploaded: file.stamp.size,
        })
    }

    /// A multipart upload: continue the recorded one or start one, send the parts it lacks,
    /// complete it with the full-object checksum (create only), and verify the object.
    async fn upload_multipart(
        &self,
        file: &LocalFile,
        key: &str,
        resume: Option<MultipartProgress>,
    ) -> Result<FileDone, NotStored> {
        let plan = plan_parts(file.stamp.size, self.settings.part_size)
            .map_err(|e| format!("{}: {e}", file.rel))?;
        let upload = match self.resume_upload(file, key, resume).await {
            Some(upload) => upload,
            None => self.start_upload(file, key, plan.part_size).await?,
        };
        let upload_id = upload.upload_id.clone();
        let (parts, sent) = self.send_parts(file, key, upload, plan).await?;
        let full = combine_parts(
            self.settings.algorithm,
            parts.iter().map(|p| (p.checksum, p.len)),
        );
        unchanged_since_hashed(file)?;
        let version = self
            .complete_multipart(file, key, &upload_id, &parts, &full)
            .await?;
        let stored = match self.verify_stored(file, key, version, &full).await {
            Ok(stored) => stored,
            Err(e) => {
                // The upload is completed (or gone): the next attempt starts a new one.
                self.forget_upload(&file.rel);
                return Err(e.into());
            }
        };
        info!(file = %file.rel, key, bytes = file.stamp.size, parts = plan.count, checksum = %full, "stored and verified");
        self.record_stored(file, stored);
        Ok(FileDone { uploaded: sent })
    }

    /// The recorded upload to continue, with the parts S3 still lists (unlisted if S3
    /// cannot say); `None` if there is none, or S3 no longer has it.
    async fn resume_upload(
        &self,
        file: &LocalFile,
        key: &str,
        resume: Option<MultipartProgress>,
    ) -> Option<OpenUpload> {
        let p = resume?;
        let id = p.upload_id.as_str();
        let listed = match self
            .retry("ListParts", || self.store.list_parts(key, id))
            .await
        {
            Ok(parts) => {
                info!(file = %file.rel, parts_in_s3 = parts.len(), "resuming the multipart upload");
                Some(parts.into_iter().map(|lp| (lp.number, lp)).collect())
            }
            Err(e) if matches!(e.kind, FailureKind::NoSuchUpload | FailureKind::NotFound) => {
                info!(file = %file.rel, "the unfinished upload is gone (aborted or expired); starting over");
                return None;
            }
            Err(e) => {
                warn!(file = %file.rel, error = %e, "the upload's parts could not be listed; resuming from the recorded parts");
                None
            }
        };
        Some(OpenUpload {
            upload_id: p.upload_id,
            recorded: p.parts,
            listed,
        })
    }

    /// A new multipart upload of the file, recorded in the session's marker.
    async fn start_upload(
        &self,
        file: &LocalFile,
        key: &str,
        part_size: u64,
    ) -> Result<OpenUpload, NotStored> {
        let attrs = self.attrs(&file.rel);
        let algorithm = self.settings.algorithm;
        let upload_id = self
            .retry("CreateMultipartUpload", || {
                self.store.create_upload(key, algorithm, &attrs)
            })
            .await
            .map_err(|e| format!("{}: {e}", file.rel))?;
        let progress = MultipartProgress {
            upload_id: upload_id.clone(),
            part_size,
            algorithm,
            stamp: file.stamp,
            parts: BTreeMap::new(),
        };
        let mut sink = lock(&self.sink);
        sink.record
            .files
            .entry(file.rel.clone())
            .or_insert(FileRecord {
                multipart: None,
                stored: None,
            })
            .multipart = Some(progress);
        sink.save(false);
        Ok(OpenUpload {
            upload_id,
            recorded: BTreeMap::new(),
            listed: None,
        })
    }

    /// Every part of the file, `CONCURRENCY` requests at a time with the session's other
    /// files: in order, with the bytes sent now. The first failure stops the file's other
    /// parts (it cannot complete in this attempt).
    async fn send_parts(
        &self,
        file: &LocalFile,
        key: &str,
        upload: OpenUpload,
        plan: PartPlan,
    ) -> Result<(Vec<SentPart>, u64), NotStored> {
        let upload = Arc::new(upload);
        let mut tasks = JoinSet::new();
        for n in 1..=plan.count {
            let (ctx, file, key, upload) =
                (self.clone(), file.clone(), key.to_owned(), upload.clone());
            tasks.spawn(async move { ctx.send_part(&file, &key, &upload, n, plan.range(n)).await });
        }
        let mut parts = Vec::with_capacity(plan.count as usize);
        let mut first_error: Option<(FailureKind, String)> = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(part)) => parts.push(part),
                Ok(Err(e)) => {
                    if first_error.is_none() {
                        first_error = Some(e);
                        tasks.abort_all();
                    }
                }
                Err(e) if e.is_cancelled() => {}
                Err(e) => {
                    first_error =
                        first_error.or(Some((FailureKind::Rejected, format!("{}: {e}", file.rel))))
                }
            }
        }
        lock(&self.sink).save(false);
        if let Some((kind, message)) = first_error {
            if kind == FailureKind::NoSuchUpload {
                // Gone under us: the next attempt starts a new upload.
                self.forget_upload(&file.rel);
            }
            return Err(message.into());
        }
        parts.sort_by_key(|p| p.number);
        let sent = parts.iter().filter(|p| p.sent).map(|p| p.len).sum();
        Ok((parts, sent))
    }

    /// One part: hashed from disk, kept if the upload already has exactly these bytes,
    /// else sent with its checksum (which S3 verifies) and recorded.
    async fn send_part(
        &self,
        file: &LocalFile,
        key: &str,
        upload: &OpenUpload,
        n: u32,
        (offset, len): (u64, u64),
    ) -> Result<SentPart, (FailureKind, String)> {
        let _permit = self
            .permit()
            .await
            .map_err(|e| (FailureKind::Rejected, e))?;
        let sum = hash(&file.path, offset, len, self.settings.algorithm)
            .await
            .map_err(|e| (FailureKind::Rejected, e))?;
        let in_s3 = match &upload.listed {
            Some(l) => PartsInS3::Listed(l.get(&n)),
            None => PartsInS3::Unlisted,
        };
        let recorded = upload.recorded.get(&n);
        if session::part_reusable(recorded, in_s3, &sum, len) {
            let etag = recorded.map(|p| p.etag.clone()).unwrap_or_default();
            return Ok(SentPart::new(n, etag, sum, len, false));
        }
        let range = FileRange {
            path: file.path.clone(),
            offset,
            len,
        };
        let id = upload.upload_id.as_str();
        let etag = self
            .retry("UploadPart", || {
                self.store.upload_part(key, id, n, &range, &sum)
            })
            .await
            .map_err(|e| (e.kind, format!("{}: part {n}: {e}", file.rel)))?;
        let done = PartDone {
            etag: etag.clone(),
            size: len,
            checksum: sum.base64(),
        };
        lock(&self.sink).update(|r| {
            if let Some(mp) = r
                .files
                .get_mut(&file.rel)
                .and_then(|f| f.multipart.as_mut())
            {
                mp.parts.insert(n, done);
            }
        });
        Ok(SentPart::new(n, etag, sum, len, true))
    }

    /// CompleteMultipartUpload, create only: the version of the object, if S3 names one.
    async fn complete_multipart(
        &self,
        file: &LocalFile,
        key: &str,
        upload_id: &str,
        parts: &[SentPart],
        full: &Checksum,
    ) -> Result<Option<String>, NotStored> {
        let completed: Vec<CompletedPart> = parts
            .iter()
            .map(|p| CompletedPart {
                number: p.number,
                etag: p.etag.clone(),
                checksum: p.checksum,
            })
            .collect();
        let done = self
            .retry("CompleteMultipartUpload", || {
                self.store.complete_upload(key, upload_id, &completed, full)
            })
            .await;
        match done {
            Ok(stored) => Ok(stored.version_id),
            // A retried Complete whose first attempt went through finds no upload: what
            // counts is whether the object is there, which the check after this says.
            Err(e) if e.kind == FailureKind::NoSuchUpload => Ok(None),
            // The key is taken (the upload stays open): by this very file (a retried
            // Complete whose first attempt went through), or by another object.
            Err(e) if e.kind == FailureKind::AlreadyExists => {
                let existing = self.existing(key, file.stamp.size, full).await?;
                if let Err(e) = self.store.abort_upload(key, upload_id).await {
                    debug!(key, error = %e, "could not abort the multipart upload");
                }
                self.forget_upload(&file.rel);
                match existing {
                    Existing::Ours(head) => Ok(head.version_id),
                    Existing::Theirs => Err(NotStored::KeyTaken),
                }
            }
            Err(e) => {
                if !e.kind.is_retryable() {
                    // Refused (a part S3 does not have, or a checksum it disputes): the next
                    // attempt starts a new upload rather than repeating this one.
                    self.forget_upload(&file.rel);
                }
                Err(format!("{}: {e}", file.rel).into())
            }
        }
    }
}

/// A multipart upload being continued or just started.
struct OpenUpload {
    upload_id: String,
    /// The parts the marker records as sent.
    recorded: BTreeMap<u32, PartDone>,
    /// The parts S3 lists for the upload, when it could say.
    listed: Option<HashMap<u32, ListedPart>>,
}

/// A part of a multipart upload, in S3 now.
struct SentPart {
    number: u32,
    etag: String,
    checksum: Checksum,
    len: u64,
    /// Sent by this attempt (else kept from an earlier one).
    sent: bool,
}

impl SentPart {
    fn new(number: u32, etag: String, checksum: Checksum, len: u64, sent: bool) -> Self {
        Self {
            number,
            etag,
            checksum,
            len,
            sent,
        }
    }
}

/// The parts are the bytes read now; if the file changed meanwhile they are no snapshot
/// of it. It is kept for the next attempt (which starts over: the stamp differs).
fn unchanged_since_hashed(file: &LocalFile) -> Result<(), String> {
    let now = std::fs::symlink_metadata(&file.path)
        .map(|m| stamp_of(&m))
        .map_err(|e| format!("{}: {e}", file.rel))?;
    if now != file.stamp {
        return Err(format!(
            "{}: the file changed while it was uploaded",
            file.rel
        ));
    }
    Ok(())
}

enum Marked {
    Yes,
    /// The marker could not be written: the session is this process's to finish.
    Unrecorded,
    /// A pending session of the same name from another directory.
    Conflict(String),
    /// The tag could not be set; `recorded`: the marker was written.
    TagFailed {
        recorded: bool,
        error: String,
    },
}

pub struct Uploader<S, T> {
    store: Arc<S>,
    tags: T,
    pending: PendingDir,
    settings: Arc<Settings>,
    clock: Clock,
    jitter: Arc<Jitter>,
}

impl<S: ObjectStore, T: InstanceTags> Uploader<S, T> {
    pub fn new(store: S, tags: T, pending: PendingDir, settings: Settings) -> Self {
        Self {
            store: Arc::new(store),
            tags,
            pending,
            settings: Arc::new(settings),
            clock: system_clock(),
            jitter: Arc::new(Jitter::new()),
        }
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn tags(&self) -> &T {
        &self.tags
    }

    /// Jibri's finalize: this session first, then every other pending one.
    pub async fn finalize(&self, dir: &Path) -> RunReport {
        let mut report = RunReport::default();
        let (session, dir) = match session_of(dir) {
            Ok(x) => x,
            Err(e) => {
                report.problems.push(e);
                return report;
            }
        };
        info!(session = %session, dir = %dir, "finalize");
        match self.mark_and_tag(&session, &dir, true).await {
            Marked::Yes => {
                let outcome = self.process(session.as_str(), true).await;
                report.push(session.as_str(), outcome);
            }
            Marked::Unrecorded => {
                report.problems.push(format!(
                    "session {session} could not be recorded as pending in {}",
                    self.pending.root().display()
                ));
                let outcome = self.process_unrecorded(&session, &dir).await;
                report.push(session.as_str(), outcome);
            }
            Marked::Conflict(other) => {
                report.push(session.as_str(), Outcome::Failed(format!("another pending session named {session} is from {other}: rename one of the directories; nothing uploaded")));
            }
            Marked::TagFailed {
                recorded: true,
                error: e,
            } => {
                // Jibri is BUSY until this process exits, which protects the session while
                // it uploads: upload regardless, never leave the only copy unprotected.
                error!(session = %session, error = %e, "tagging the instance failed; uploading anyway (Jibri stays BUSY while this finalize runs; the session stays pending until it is in S3)");
                report
                    .tag_problems
                    .push(format!("tagging the instance failed: {e}"));
                let outcome = self.process_untagged(session.as_str()).await;
                report.push(session.as_str(), outcome);
            }
            Marked::TagFailed {
                recorded: false,
                error: e,
            } => {
                error!(session = %session, error = %e, "tagging the instance failed and the session could not be recorded as pending; uploading anyway");
                report
                    .tag_problems
                    .push(format!("tagging the instance failed: {e}"));
                report.problems.push(format!(
                    "session {session} could not be recorded as pending in {}",
                    self.pending.root().display()
                ));
                let outcome = self.process_unrecorded(&session, &dir).await;
                report.push(session.as_str(), outcome);
            }
        }
        self.retry_all(Some(session.as_str()), &mut report).await;
        self.settle(&mut report).await;
        report
    }

    /// What a finalize does when the configuration is invalid: record the session as
    /// pending (its key prefix decided at its first real attempt) and tag the instance, so
    /// that the recording outlives the mistake; nothing is uploaded.
    pub async fn hold(&self, dir: &Path, why: &str) -> RunReport {
        let mut report = RunReport::default();
        let (session, dir) = match session_of(dir) {
            Ok(x) => x,
            Err(e) => {
                report.problems.push(e);
                return report;
            }
        };
        let outcome = match self.mark_and_tag(&session, &dir, false).await {
            Marked::Yes => format!("{why}; the session is recorded as pending and the instance tagged: fix the configuration, the timer uploads it"),
            Marked::Unrecorded => format!("{why}; the session could not even be recorded as pending (the instance is tagged)"),
            Marked::Conflict(other) => format!("{why}; another pending session of this name is from {other}"),
            Marked::TagFailed { error: e, .. } => format!("{why}; the instance could not be tagged either: {e}"),
        };
        report.push(session.as_str(), Outcome::Failed(outcome));
        report
    }

    /// The timer's run: make sure the tag covers what is pending, then retry every session
    /// (also when the tag cannot be set: the files are only safe once they are in S3).
    pub async fn retry_pending(&self) -> RunReport {
        let mut report = RunReport::default();
        {
            let _g = self.global_lock(&mut report).await;
            let count = self.count();
            if count != Pending::Known(0) {
                let action = session::tag_action(count, 0, self.pending.tag_state());
                if let Err(e) = self.apply_tag(action).await {
                    error!(error = %e, "the instance could not be tagged; uploading the pending sessions anyway");
                    report
                        .tag_problems
                        .push(format!("tagging the instance failed: {e}"));
                }
            }
        }
        self.retry_all(None, &mut report).await;
        self.settle(&mut report).await;
        report
    }

    fn count(&self) -> Pending {
        if self.pending.ensure().is_err() {
            return Pending::Unknown;
        }
        match self.pending.list() {
            Ok(names) => Pending::Known(names.len() as u32),
            Err(_) => Pending::Unknown,
        }
    }

    async fn global_lock(&self, report: &mut RunReport) -> Option<Lock> {
        let p = self.pending.clone();
        match tokio::task::spawn_blocking(move || p.global_lock()).await {
            Ok(Ok(l)) => Some(l),
            Ok(Err(e)) => {
                let msg = format!("pending directory {}: {e}", self.pending.root().display());
                if !report.problems.contains(&msg) {
                    report.problems.push(msg);
                }
                None
            }
            Err(e) => {
                report.problems.push(e.to_string());
                None
            }
        }
    }

    async fn apply_tag(&self, action: TagAction) -> AwsResult<()> {
        let target = match action {
            TagAction::Nothing => return Ok(()),
            TagAction::Set(n) => TagState::Value(n),
            TagAction::Remove => TagState::Absent,
        };
        // Until the call is known to have landed, this host does not know the tag.
        if let Err(e) = self.pending.set_tag_state(TagState::Unknown) {
            warn!(error = %e, "could not record the tag state");
        }
        let result = with_retry(&self.settings.retry, &self.jitter, "tag", || async {
            match action {
                TagAction::Set(n) => self.tags.set_upload_pending(n).await,
                _ => self.tags.remove_upload_pending().await,
            }
        })
        .await;
        match &result {
            Ok(()) => {
                info!(tag = crate::ports::TAG_UPLOAD_PENDING, value = ?target, "instance tag updated");
                if let Err(e) = self.pending.set_tag_state(target) {
                    warn!(error = %e, "could not record the tag state");
                }
            }
            Err(e) => {
                error!(tag = crate::ports::TAG_UPLOAD_PENDING, error = %e, "instance tag not updated")
            }
        }
        result
    }

    /// `decide_prefix: false` leaves the key prefix to the first real attempt (no valid
    /// configuration to take it from).
    async fn mark_and_tag(&self, session: &SessionName, dir: &str, decide_prefix: bool) -> Marked {
        let mut scratch = RunReport::default();
        let _g = self.global_lock(&mut scratch).await;
        let fresh = || {
            let now = (self.clock)();
            let prefix = if decide_prefix {
                self.key_prefix(session, now)
            } else {
                String::new()
            };
            SessionRecord::new(session.as_str(), dir, prefix, now)
        };
        let marked = match self.pending.load(session.as_str()) {
            Ok(Some(rec)) if rec.dir == dir => true,
            Ok(Some(rec)) => return Marked::Conflict(rec.dir),
            Ok(None) => self.save_new(&fresh()),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                warn!(session = %session, error = %e, "replacing an unreadable pending marker");
                self.save_new(&fresh())
            }
            Err(e) => {
                error!(session = %session, error = %e, "pending marker unreadable");
                false
            }
        };
        let (count, extra) = match (self.count(), marked) {
            (Pending::Known(n), true) => (Pending::Known(n.max(1)), 0),
            (Pending::Known(n), false) => (Pending::Known(n), 1),
            (Pending::Unknown, _) => (Pending::Unknown, 1),
        };
        match self
            .apply_tag(session::tag_action(count, extra, self.pending.tag_state()))
            .await
        {
            Ok(()) if marked => Marked::Yes,
            Ok(()) => Marked::Unrecorded,
            Err(e) => Marked::TagFailed {
                recorded: marked,
                error: e.to_string(),
            },
        }
    }

    /// `<prefix><yyyy>/<mm>/<dd>/<session>/` for a session first attempted at `first_attempt_at`.
    fn key_prefix(&self, session: &SessionName, first_attempt_at: u64) -> String {
        layout::session_prefix(
            &self.settings.prefix,
            layout::CivilDate::from_epoch_secs(first_attempt_at),
            session,
        )
    }

    fn save_new(&self, rec: &SessionRecord) -> bool {
        match self
            .pending
            .ensure()
            .and_then(|()| self.pending.save(rec, true))
        {
            Ok(()) => {
                info!(session = %rec.session, prefix = %rec.key_prefix, "recorded as pending");
                true
            }
            Err(e) => {
                error!(session = %rec.session, dir = %self.pending.root().display(), error = %e, "could not record the session as pending");
                false
            }
        }
    }

    async fn session_lock(&self, session: &str, wait: bool) -> io::Result<Option<Lock>> {
        let (p, s) = (self.pending.clone(), session.to_owned());
        tokio::task::spawn_blocking(move || p.session_lock(&s, wait))
            .await
            .map_err(io::Error::other)?
    }

    /// One recorded session, under its lock.
    async fn process(&self, session: &str, wait: bool) -> Outcome {
        let held = match self.session_lock(session, wait).await {
            Ok(Some(l)) => Some(l),
            Ok(None) => {
                info!(session, "another run is uploading this session");
                return Outcome::Busy;
            }
            Err(e) => {
                warn!(session, error = %e, "no session lock; going on without");
                None
            }
        };
        let record = match self.pending.load(session) {
            Ok(Some(r)) => r,
            Ok(None) => {
                if let Some(l) = held {
                    l.release_and_remove();
                }
                return Outcome::AlreadyDone;
            }
            Err(e) => return Outcome::Failed(format!("pending marker unreadable: {e} (remove it by hand once the session's files are safe)")),
        };
        let mut record = record;
        if record.key_prefix.is_empty() {
            // Recorded while the configuration was invalid: the keys are decided now, by
            // the day of that first attempt.
            match SessionName::new(&record.session) {
                Ok(name) => record.key_prefix = self.key_prefix(&name, record.first_attempt_at),
                Err(e) => {
                    return Outcome::Failed(format!(
                        "pending marker of an unusable session name: {e}"
                    ))
                }
            }
            if let Err(e) = self.pending.save(&record, true) {
                warn!(session, error = %e, "could not update the pending marker");
            }
        }
        let sink = Arc::new(Mutex::new(RecordSink::new(
            record,
            Some(self.pending.clone()),
        )));
        let outcome = self.upload_session(&sink).await;
        if matches!(outcome, Outcome::Uploaded { .. } | Outcome::Gone) {
            let mut scratch = RunReport::default();
            let _g = self.global_lock(&mut scratch).await;
            if let Err(e) = self.pending.remove(session) {
                return Outcome::Failed(format!(
                    "uploaded, but its pending marker could not be removed: {e}"
                ));
            }
            if let Some(l) = held {
                l.release_and_remove();
            }
        }
        outcome
    }

    /// A session whose marker could not be written is not handed to the timer: this
    /// process keeps at it (Jibri stays BUSY meanwhile) until it is uploaded or its
    /// marker can be written after all.
    async fn process_unrecorded(&self, session: &SessionName, dir: &str) -> Outcome {
        let now = (self.clock)();
        let prefix = layout::session_prefix(
            &self.settings.prefix,
            layout::CivilDate::from_epoch_secs(now),
            session,
        );
        let sink = Arc::new(Mutex::new(RecordSink::new(
            SessionRecord::new(session.as_str(), dir, prefix, now),
            None,
        )));
        let mut round = 1u32;
        loop {
            let outcome = self.upload_session(&sink).await;
            let Outcome::Failed(e) = outcome else {
                return outcome;
            };
            let record = lock(&sink).record.clone();
            let handed = {
                let mut scratch = RunReport::default();
                let _g = self.global_lock(&mut scratch).await;
                self.save_new(&record)
            };
            if handed {
                return Outcome::Failed(format!("{e} (now recorded as pending)"));
            }
            let wait = self.settings.unrecorded_round_wait;
            error!(session = %session, round, wait_s = wait.as_secs(), error = %e, "upload failed and the session cannot be recorded as pending: trying again in this process");
            tokio::time::sleep(wait).await;
            round += 1;
        }
    }

    async fn retry_all(&self, except: Option<&str>, report: &mut RunReport) {
        let names = match self.pending.list() {
            Ok(n) => n,
            Err(e) => {
                let msg = format!("pending directory {}: {e}", self.pending.root().display());
                if !report.problems.contains(&msg) {
                    report.problems.push(msg);
                }
                return;
            }
        };
        for name in names.iter().filter(|n| Some(n.as_str()) != except) {
            info!(session = %name, "retrying a pending session");
            let outcome = self.process(name, false).await;
            report.push(name, outcome);
        }
    }

    /// The tag follows what is still pending.
    async fn settle(&self, report: &mut RunReport) {
        let _g = self.global_lock(report).await;
        let count = self.count();
        report.pending_after = Some(count);
        if count == Pending::Unknown {
            report.problems.push(format!(
                "pending directory {} unreadable: the instance tag is left as it is",
                self.pending.root().display()
            ));
        }
        let action = session::tag_action(count, 0, self.pending.tag_state());
        if let Err(e) = self.apply_tag(action).await {
            report.tag_problems.push(format!("instance tag: {e}"));
        }
    }

    /// Sets the tag to the pending count again; `true` once it is known to be in place.
    async fn retag(&self) -> bool {
        let mut scratch = RunReport::default();
        let _g = self.global_lock(&mut scratch).await;
        let Pending::Known(n) = self.count() else {
            return false;
        };
        let action = session::tag_action(Pending::Known(n.max(1)), 0, self.pending.tag_state());
        self.apply_tag(action).await.is_ok()
    }

    /// A recorded session that the tag does not protect: while this finalize runs Jibri is
    /// BUSY, which does, so a failed upload is tried again here, in rounds with backoff
    /// (the wait between rounds doubling from `unrecorded_round_wait`, at most
    /// `retry.max_attempts` rounds), the tag tried again before each, until the session is
    /// in S3 or the tag is set (then the timer may take over safely).
    async fn process_untagged(&self, session: &str) -> Outcome {
        let base = self.settings.unrecorded_round_wait;
        let rounds = RetryPolicy {
            max_attempts: self.settings.retry.max_attempts,
            base,
            cap: base.saturating_mul(8),
        };
        let mut round = 1;
        let mut tagged = false;
        loop {
            let outcome = self.process(session, true).await;
            let Outcome::Failed(e) = &outcome else {
                return outcome;
            };
            if tagged {
                info!(
                    session,
                    "the instance is tagged now: the session is protected, the timer retries it"
                );
                return outcome;
            }
            match rounds.decide(round, FailureKind::Server, self.jitter.next()) {
                Next::RetryAfter(wait) => {
                    error!(session, round, wait_ms = wait.as_millis() as u64, error = %e, "upload failed and the instance is not tagged: trying again in this process while Jibri is BUSY");
                    tokio::time::sleep(wait).await;
                }
                Next::GiveUp => {
                    error!(session, rounds = round, error = %e, "upload failed and the instance could not be tagged: the session stays pending for the timer, UNPROTECTED against scale-in once Jibri is idle");
                    return outcome;
                }
            }
            round += 1;
            tagged = self.retag().await;
        }
    }

    fn ctx(&self, sink: &Sink, attrs_metadata: Vec<(String, String)>) -> SessionCtx<S> {
        SessionCtx {
            store: self.store.clone(),
            settings: self.settings.clone(),
            jitter: self.jitter.clone(),
            permits: Arc::new(Semaphore::new(self.settings.concurrency)),
            sink: sink.clone(),
            attrs_metadata,
        }
    }

    /// Uploads, verifies, writes the manifest, deletes: one attempt at one session.
    async fn upload_session(&self, sink: &Sink) -> Outcome {
        let started = Instant::now();
        let (session, dir, prefix) = begin_attempt(sink);
        let Scan {
            files,
            subdirs,
            skipped,
        } = match self.scan_session(sink, &session, &dir).await {
            Ok(scan) => scan,
            Err(outcome) => return outcome,
        };
        for p in &skipped {
            warn!(path = %p.display(), "not a regular file: not uploaded, left in place");
        }
        forget_vanished(sink, &files);
        let info_dir = dir.clone();
        let info = tokio::task::spawn_blocking(move || read_recording_info(&info_dir))
            .await
            .ok()
            .flatten();
        let ctx = self.ctx(
            sink,
            metadata::object_metadata(info.as_ref(), &self.settings.instance_id, &session),
        );
        let _flusher = Flusher::start(sink);
        let sent = match upload_files(&ctx, &session, &prefix, &files).await {
            Ok(sent) => sent,
            Err(e) => return self.failed(sink, e),
        };
        // Every file is in S3: the manifest, last.
        if sent > 0 || lock(sink).record.manifest.is_none() {
            if let Err(e) = self.write_manifest(&ctx, info.as_ref()).await {
                return self.failed(sink, e);
            }
        }
        // Only now, and only what is verified and unchanged, is deleted.
        if let Err(e) = delete_verified(sink, &files) {
            return self.failed(sink, e);
        }
        remove_dirs(subdirs, &dir);
        uploaded(sink, &session, sent, started)
    }

    /// The session directory's files, or the attempt's outcome if it cannot be read or is
    /// gone.
    async fn scan_session(&self, sink: &Sink, session: &str, dir: &Path) -> Result<Scan, Outcome> {
        let scan_dir = dir.to_path_buf();
        let scanned = match tokio::task::spawn_blocking(move || scan(&scan_dir)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(self.failed(sink, format!("reading {}: {e}", dir.display()))),
            Err(e) => return Err(self.failed(sink, e.to_string())),
        };
        scanned.ok_or_else(|| {
            let s = lock(sink);
            if s.record.manifest.is_some() {
                // Uploaded and deleted by an earlier run that stopped before dropping the marker.
                return Outcome::Uploaded {
                    files: s.record.files.len(),
                    bytes: stored_bytes(&s.record),
                };
            }
            error!(session, dir = %dir.display(), "the session directory is gone before it was uploaded: nothing left to protect");
            Outcome::Gone
        })
    }

    fn failed(&self, sink: &Sink, error: String) -> Outcome {
        let mut s = lock(sink);
        error!(session = %s.record.session, attempt = s.record.attempts, error = %error, "session not uploaded; files kept, session stays pending");
        s.record.last_error = Some(error.clone());
        s.save(true);
        Outcome::Failed(error)
    }

    async fn write_manifest(
        &self,
        ctx: &SessionCtx<S>,
        info: Option<&RecordingInfo>,
    ) -> Result<(), String> {
        let record = lock(&ctx.sink).record.clone();
        let Some(m) = session::manifest(
            &record,
            info,
            &self.settings.instance_id,
            (self.clock)(),
            UPLOADER,
        ) else {
            return Err("manifest: not every file is stored".into());
        };
        let body = serde_json::to_vec_pretty(&m).map_err(|e| format!("manifest: {e}"))?;
        let mut c = Crc::new(self.settings.algorithm);
        c.update(&body);
        let sum = c.finish();
        let attrs = ObjectAttributes {
            content_type: "application/json",
            metadata: ctx.attrs_metadata.clone(),
        };
        let size = body.len() as u64;
        // Created, never replaced: a manifest of this session already there (an earlier
        // one, of files since uploaded again) stays, this one goes to `~<n>/manifest.json`.
        let mut key = layout::manifest_key(&record.key_prefix);
        let mut n = 1;
        let version = loop {
            let put = ctx
                .retry("PutObject", || {
                    self.store.put_bytes(&key, body.clone(), &sum, &attrs)
                })
                .await;
            match put {
                Ok(put) => break put.version_id,
                Err(e) if e.kind == FailureKind::AlreadyExists => {
                    match ctx
                        .existing(&key, size, &sum)
                        .await
                        .map_err(|e| format!("manifest: {e}"))?
                    {
                        Existing::Ours(head) => break head.version_id,
                        Existing::Theirs => {
                            n += 1;
                            if n > MAX_KEYS_PER_FILE {
                                return Err(format!(
                                    "manifest: {MAX_KEYS_PER_FILE} keys tried, all held by other objects"
                                ));
                            }
                            let next = layout::alternative_key(
                                &record.key_prefix,
                                layout::MANIFEST_NAME,
                                n,
                            )
                            .map_err(|e| format!("manifest: {e}"))?;
                            warn!(key = %key, new_key = %next, "another object already has the manifest's key: it is left as it is, the manifest goes under a new key");
                            key = next;
                        }
                    }
                }
                Err(e) => return Err(format!("manifest: {e}")),
            }
        };
        let head = ctx
            .retry("HeadObject", || self.store.head(&key, version.as_deref()))
            .await
            .map_err(|e| format!("manifest: verifying: {e}"))?;
        session::verify(&head, size, &sum).map_err(|e| format!("manifest: {e}"))?;
        let stored = StoredObject {
            key: key.clone(),
            size,
            algorithm: sum.algorithm,
            checksum: sum.base64(),
            version_id: head.version_id.or(version),
        };
        let mut s = lock(&ctx.sink);
        s.record.manifest = Some(stored);
        s.save(true);
        info!(key, files = m.files.len(), "manifest written");
        Ok(())
    }
}

/// Counts the attempt; the session's name, directory and key prefix.
fn begin_attempt(sink: &Sink) -> (String, PathBuf, String) {
    let mut s = lock(sink);
    s.record.attempts += 1;
    s.save(false);
    (
        s.record.session.clone(),
        PathBuf::from(&s.record.dir),
        s.record.key_prefix.clone(),
    )
}

/// Files recorded but no longer on disk: fine if stored (deleted after an earlier
/// manifest), lost otherwise.
fn forget_vanished(sink: &Sink, files: &[LocalFile]) {
    let mut s = lock(sink);
    let local: std::collections::HashSet<&str> = files.iter().map(|f| f.rel.as_str()).collect();
    s.record.files.retain(|rel, f| {
        let keep = local.contains(rel.as_str()) || f.stored.is_some();
        if !keep {
            warn!(file = %rel, "a file recorded as pending has disappeared before it was uploaded");
        }
        keep
    });
}

/// Uploads every file of the session at once (the requests share the session's
/// `CONCURRENCY` permits): the bytes sent now, or what failed.
async fn upload_files<S: ObjectStore>(
    ctx: &SessionCtx<S>,
    session: &str,
    prefix: &str,
    files: &[LocalFile],
) -> Result<u64, String> {
    let mut tasks = JoinSet::new();
    let mut errors = Vec::new();
    for file in files.iter().cloned() {
        let key = match layout::object_key(prefix, &file.components) {
            Ok(k) => k,
            Err(e) => {
                // One unusable name never holds up the rest of the session: this file
                // stays on disk and pending (so does the session, with its tag), the
                // others are uploaded now.
                error!(session, file = %file.rel, error = %e, "this file cannot be uploaded under its name: skipped and kept; rename it and the next run uploads it");
                lock(&ctx.sink).update(|r| {
                    r.files.entry(file.rel.clone()).or_insert(FileRecord {
                        multipart: None,
                        stored: None,
                    });
                });
                errors.push(format!("{}: {e}", file.rel));
                continue;
            }
        };
        let ctx = ctx.clone();
        tasks.spawn(async move { ctx.upload_file(file, key).await });
    }
    let mut sent = 0u64;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(done)) => sent += done.uploaded,
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        return Ok(sent);
    }
    errors.sort();
    let more = if errors.len() > 3 {
        format!(" (and {} more)", errors.len() - 3)
    } else {
        String::new()
    };
    Err(format!(
        "{}{more}",
        errors[..errors.len().min(3)].join("; ")
    ))
}

/// Deletes the local files whose objects are verified and that are unchanged since; if
/// any is kept, the session is not done: a changed file is uploaded again and the
/// manifest rewritten next time.
fn delete_verified(sink: &Sink, files: &[LocalFile]) -> Result<(), String> {
    let mut kept = Vec::new();
    {
        let s = lock(sink);
        for f in files {
            let now = std::fs::symlink_metadata(&f.path)
                .map(|m| stamp_of(&m))
                .ok();
            match now {
                Some(stamp) if session::may_delete(s.record.files.get(&f.rel), stamp) => {
                    if let Err(e) = std::fs::remove_file(&f.path) {
                        kept.push(format!("{}: could not be deleted: {e}", f.rel));
                    }
                }
                Some(_) => kept.push(format!(
                    "{}: changed after it was verified; uploading it again next time",
                    f.rel
                )),
                None => {}
            }
        }
    }
    if kept.is_empty() {
        return Ok(());
    }
    let mut s = lock(sink);
    for f in files {
        if let Some(r) = s.record.files.get_mut(&f.rel) {
            if std::fs::symlink_metadata(&f.path)
                .map(|m| stamp_of(&m) != f.stamp)
                .unwrap_or(false)
            {
                r.stored = None;
            }
        }
    }
    s.record.manifest = None;
    Err(kept.join("; "))
}

/// Removes the emptied session directory, deepest first (what is not empty stays).
fn remove_dirs(mut subdirs: Vec<PathBuf>, dir: &Path) {
    subdirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in subdirs
        .iter()
        .map(PathBuf::as_path)
        .chain(std::iter::once(dir))
    {
        if let Err(e) = std::fs::remove_dir(d) {
            debug!(dir = %d.display(), error = %e, "directory left in place");
        }
    }
}

fn stored_bytes(record: &SessionRecord) -> u64 {
    record
        .files
        .values()
        .filter_map(|f| f.stored.as_ref())
        .map(|(o, _)| o.size)
        .sum()
}

/// The outcome of a session uploaded, verified and deleted, logged with its throughput.
fn uploaded(sink: &Sink, session: &str, sent: u64, started: Instant) -> Outcome {
    let (count, bytes) = {
        let s = lock(sink);
        (s.record.files.len(), stored_bytes(&s.record))
    };
    let secs = started.elapsed().as_secs_f64();
    info!(
        session,
        files = count,
        bytes,
        sent,
        seconds = format!("{secs:.1}"),
        mb_per_s = format!("{:.1}", sent as f64 / 1e6 / secs.max(1e-3)),
        "session uploaded, verified and deleted locally"
    );
    Outcome::Uploaded {
        files: count,
        bytes,
    }
}

/// The session name and absolute directory of Jibri's argument.
fn session_of(dir: &Path) -> Result<(SessionName, String), String> {
    let abs = std::fs::canonicalize(dir)
        .map_err(|e| format!("recording directory {}: {e}", dir.display()))?;
    if !abs.is_dir() {
        return Err(format!("{} is not a directory", abs.display()));
    }
    let name = abs
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{}: the directory name is not UTF-8", abs.display()))?;
    let session = SessionName::new(name).map_err(|e| e.to_string())?;
    let dir = abs
        .to_str()
        .ok_or_else(|| format!("{}: the path is not UTF-8", abs.display()))?
        .to_owned();
    Ok((session, dir))
}
