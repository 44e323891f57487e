//! The uploader on the fakes: which calls it makes, in which order, which it never makes,
//! and what it leaves on disk, for every path of the contract (no AWS endpoint needed).

use jibri_finalize::core::checksum::{ChecksumAlgorithm, Crc};
use jibri_finalize::core::retry::{FailureKind, RetryPolicy};
use jibri_finalize::core::session::SessionRecord;
use jibri_finalize::fake::{FakeStore, FakeTags, Journal};
use jibri_finalize::pending::PendingDir;
use jibri_finalize::uploader::{Clock, Outcome, Settings, Uploader};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const MIB: usize = 1 << 20;
/// 2026-01-02T00:00:00Z
const DAY1: u64 = 1_767_312_000;

const JIBRI_METADATA: &str = r#"{"meeting_url":"https://meet.example.org/acme/Standup","participants":[{"user":{"name":"Ana","id":"u-1"}},{"user":{"name":"Bo","id":"u-2"}}]}"#;

struct World {
    root: PathBuf,
    rec: PathBuf,
    pending: PathBuf,
    journal: Journal,
    now: Arc<AtomicU64>,
    up: Uploader<FakeStore, FakeTags>,
}

fn settings() -> Settings {
    Settings {
        prefix: "recordings/".into(),
        part_size: 5 * MIB as u64,
        multipart_threshold: 5 * MIB as u64,
        concurrency: 3,
        algorithm: ChecksumAlgorithm::Crc64Nvme,
        retry: RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(5),
        },
        instance_id: "i-0123456789abcdef0".into(),
        unrecorded_round_wait: Duration::from_millis(20),
    }
}

impl World {
    fn new(pending: Option<PathBuf>) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "jf-fakes-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&root);
        let rec = root.join("recordings");
        std::fs::create_dir_all(&rec).unwrap();
        let pending = pending.unwrap_or_else(|| root.join("pending"));
        let journal = Journal::default();
        let now = Arc::new(AtomicU64::new(DAY1 + 3600));
        let clock_now = now.clone();
        let clock: Clock = Arc::new(move || clock_now.load(Ordering::SeqCst));
        let up = Uploader::new(
            FakeStore::new(journal.clone()),
            FakeTags::new(journal.clone()),
            PendingDir::new(&pending),
            settings(),
        )
        .with_clock(clock);
        Self {
            root,
            rec,
            pending,
            journal,
            now,
            up,
        }
    }

    /// A session as Jibri leaves it: a recording of `mp4_bytes` and metadata.json.
    fn session(&self, name: &str, mp4_bytes: usize) -> PathBuf {
        let dir = self.rec.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("standup_2026-01-02-01-00-00.mp4"),
            pattern(mp4_bytes, name.len() as u64),
        )
        .unwrap();
        std::fs::write(dir.join("metadata.json"), JIBRI_METADATA).unwrap();
        dir
    }

    fn marker(&self, session: &str) -> Option<SessionRecord> {
        std::fs::read(self.pending.join(format!("{session}.json")))
            .ok()
            .map(|b| serde_json::from_slice(&b).unwrap())
    }

    fn tag(&self) -> Option<String> {
        self.up.tags().value()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

const KEY_PREFIX: &str = "recordings/2026/01/02/";

#[tokio::test]
async fn the_tag_is_set_before_any_byte_leaves_and_removed_after_the_manifest() {
    let w = World::new(None);
    let dir = w.session("s-ok", 12 * MIB);
    let mp4 = std::fs::read(dir.join("standup_2026-01-02-01-00-00.mp4")).unwrap();
    let report = w.up.finalize(&dir).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(
        report.outcome("s-ok"),
        Some(&Outcome::Uploaded {
            files: 2,
            bytes: (12 * MIB + JIBRI_METADATA.len()) as u64
        })
    );

    let calls = w.journal.calls();
    assert_eq!(
        calls.first().map(String::as_str),
        Some("CreateTags 1"),
        "{calls:#?}"
    );
    assert_eq!(
        calls.last().map(String::as_str),
        Some("DeleteTags"),
        "{calls:#?}"
    );
    let manifest_put = calls
        .iter()
        .position(|c| c == &format!("PutObject {KEY_PREFIX}s-ok/manifest.json"))
        .expect("manifest written");
    assert!(
        calls[manifest_put + 1..]
            .iter()
            .all(|c| c.starts_with("HeadObject") || c == "DeleteTags"),
        "the manifest is the last write: {calls:#?}"
    );
    assert_eq!(w.journal.count("UploadPart"), 3, "12 MiB in 5 MiB parts");

    let store = w.up.store();
    let obj = store
        .object(&format!("{KEY_PREFIX}s-ok/standup_2026-01-02-01-00-00.mp4"))
        .unwrap();
    assert_eq!(obj.data, mp4);
    let mut c = Crc::new(ChecksumAlgorithm::Crc64Nvme);
    c.update(&mp4);
    assert_eq!(obj.checksum, c.finish());
    assert_eq!(obj.content_type, "video/mp4");
    let md: std::collections::HashMap<_, _> = obj.metadata.iter().cloned().collect();
    assert_eq!(md["jibri-meeting-name"], "Standup");
    assert!(
        !md.contains_key("jibri-participants"),
        "no participant names in object metadata (issue 14): {md:?}"
    );
    assert_eq!(md["jibri-participant-count"], "2");
    assert_eq!(md["jibri-instance-id"], "i-0123456789abcdef0");
    assert_eq!(md["jibri-session"], "s-ok");

    let manifest: serde_json::Value = serde_json::from_slice(
        &store
            .object(&format!("{KEY_PREFIX}s-ok/manifest.json"))
            .unwrap()
            .data,
    )
    .unwrap();
    assert_eq!(manifest["files"].as_array().unwrap().len(), 2);
    assert_eq!(manifest["participants"][1]["name"], "Bo");
    assert_eq!(manifest["files"][1]["checksum"], obj.checksum.base64());

    assert!(!dir.exists(), "local copies deleted once verified");
    assert_eq!(w.marker("s-ok"), None);
    assert_eq!(w.tag(), None);
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried() {
    let w = World::new(None);
    let dir = w.session("s-flaky", 11 * MIB);
    w.up.store().fail("UploadPart", FailureKind::Server, 2);
    w.up.store().fail("PutObject", FailureKind::Throttled, 2);
    w.up.store()
        .fail("CompleteMultipartUpload", FailureKind::Timeout, 1);
    w.up.store().fail("HeadObject", FailureKind::Transport, 1);
    w.up.tags().fail("CreateTags", FailureKind::Throttled, 1);
    let report = w.up.finalize(&dir).await;
    assert!(report.ok(), "{report:?}");
    assert!(!dir.exists());
    assert_eq!(w.journal.count("UploadPart"), 3 + 2);
}

#[tokio::test]
async fn errors_a_retry_cannot_fix_fail_at_once_and_keep_the_files() {
    let w = World::new(None);
    let dir = w.session("s-denied", 1024);
    w.up.store()
        .fail_always("PutObject", FailureKind::Rejected, None);
    let report = w.up.finalize(&dir).await;
    assert!(matches!(
        report.outcome("s-denied"),
        Some(Outcome::Failed(_))
    ));
    assert_eq!(
        w.journal.count("PutObject"),
        2,
        "one attempt per file, no retries of a refusal"
    );
    assert_eq!(files_in(&dir), 2);
    assert_eq!(w.tag().as_deref(), Some("1"));
    let rec = w.marker("s-denied").unwrap();
    assert!(rec.last_error.unwrap().contains("injected"));
}

#[tokio::test]
async fn an_object_that_does_not_match_is_never_trusted_and_nothing_is_deleted() {
    let w = World::new(None);
    let dir = w.session("s-corrupt", 7 * MIB);
    w.up.store().corrupt_next_store();
    let report = w.up.finalize(&dir).await;
    let Some(Outcome::Failed(e)) = report.outcome("s-corrupt") else {
        panic!("{report:?}")
    };
    assert!(e.contains("is not the local file"), "{e}");
    assert_eq!(files_in(&dir), 2, "both kept: the session is not complete");
    assert_eq!(w.tag().as_deref(), Some("1"));

    let report = w.up.retry_pending().await;
    assert!(report.ok(), "{report:?}");
    assert!(!dir.exists());
    assert_eq!(w.tag(), None);
}

#[tokio::test]
async fn a_resumed_upload_sends_only_the_parts_s3_does_not_have() {
    let w = World::new(None);
    let dir = w.session("s-resume", 23 * MIB); // 5 parts
    w.up.store()
        .fail_always("UploadPart", FailureKind::Rejected, Some("#5"));
    let report = w.up.finalize(&dir).await;
    assert!(matches!(
        report.outcome("s-resume"),
        Some(Outcome::Failed(_))
    ));
    let mp = w.marker("s-resume").unwrap().files["standup_2026-01-02-01-00-00.mp4"]
        .multipart
        .clone()
        .expect("progress recorded");
    let done_before = mp.parts.len();
    assert!(done_before >= 1, "{mp:?}");

    w.up.store().clear_faults();
    w.journal.clear();
    let report = w.up.retry_pending().await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(
        w.journal.count("CreateMultipartUpload"),
        0,
        "the same upload goes on"
    );
    assert_eq!(w.journal.count("ListParts"), 1);
    assert_eq!(w.journal.count("UploadPart"), 5 - done_before);
    assert_eq!(w.up.store().open_uploads(), 0);
}

#[tokio::test]
async fn without_a_part_listing_the_recorded_parts_are_trusted_and_complete_checks_them() {
    let w = World::new(None);
    let dir = w.session("s-unlisted", 23 * MIB);
    w.up.store()
        .fail_always("UploadPart", FailureKind::Rejected, Some("#5"));
    assert!(!w.up.finalize(&dir).await.ok());
    let done_before = w.marker("s-unlisted").unwrap().files["standup_2026-01-02-01-00-00.mp4"]
        .multipart
        .clone()
        .unwrap()
        .parts
        .len();
    w.up.store().clear_faults();
    w.up.store()
        .fail_always("ListParts", FailureKind::Rejected, None);
    w.journal.clear();
    let report = w.up.retry_pending().await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(w.journal.count("UploadPart"), 5 - done_before);
    assert_eq!(w.journal.count("CreateMultipartUpload"), 0);
}

#[tokio::test]
async fn a_complete_that_refuses_the_parts_restarts_the_upload_next_time() {
    let w = World::new(None);
    let dir = w.session("s-refused", 12 * MIB);
    w.up.store()
        .fail("CompleteMultipartUpload", FailureKind::Rejected, 1);
    assert!(!w.up.finalize(&dir).await.ok());
    assert!(
        w.marker("s-refused").unwrap().files["standup_2026-01-02-01-00-00.mp4"]
            .multipart
            .is_none(),
        "progress forgotten"
    );
    w.journal.clear();
    assert!(w.up.retry_pending().await.ok());
    assert_eq!(w.journal.count("CreateMultipartUpload"), 1);
    assert_eq!(w.journal.count("UploadPart"), 3);
}

#[tokio::test]
async fn a_multipart_upload_that_vanished_is_started_over() {
    let w = World::new(None);
    let dir = w.session("s-vanished", 12 * MIB);
    w.up.store()
        .fail_always("CompleteMultipartUpload", FailureKind::Rejected, None);
    assert!(!w.up.finalize(&dir).await.ok());
    w.up.store().clear_faults();
    // The bucket's lifecycle rule aborted it meanwhile.
    w.up.store()
        .fail_always("ListParts", FailureKind::NoSuchUpload, None);
    w.journal.clear();
    let report = w.up.retry_pending().await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(w.journal.count("CreateMultipartUpload"), 1);
    assert_eq!(w.journal.count("UploadPart"), 3);
}

#[tokio::test]
async fn the_timer_with_nothing_pending_makes_no_call() {
    let w = World::new(None);
    // First run on a new host: the tag's state is unknown, reconciled once.
    assert!(w.up.retry_pending().await.ok());
    assert_eq!(w.journal.calls(), vec!["DeleteTags"]);
    w.journal.clear();
    for _ in 0..3 {
        let report = w.up.retry_pending().await;
        assert!(report.ok(), "{report:?}");
    }
    assert_eq!(
        w.journal.calls(),
        Vec::<String>::new(),
        "steady state: not one call"
    );
}

#[tokio::test]
async fn the_tag_counts_the_pending_sessions() {
    let w = World::new(None);
    w.up.store()
        .fail_always("PutObject", FailureKind::Rejected, None);
    let a = w.session("s-a", 1000);
    let b = w.session("s-b", 1000);
    assert!(!w.up.finalize(&a).await.ok());
    assert_eq!(w.tag().as_deref(), Some("1"));
    let report = w.up.finalize(&b).await;
    assert_eq!(w.tag().as_deref(), Some("2"));
    assert!(
        matches!(report.outcome("s-a"), Some(Outcome::Failed(_))),
        "the next finalize retries the older session too: {report:?}"
    );

    w.up.store().clear_faults();
    let c = w.session("s-c", 1000);
    let report = w.up.finalize(&c).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.sessions.len(), 3);
    assert_eq!(w.tag(), None);
    assert!(!a.exists() && !b.exists() && !c.exists());
}

#[tokio::test]
async fn a_session_another_run_is_uploading_is_left_to_it() {
    let w = World::new(None);
    let dir = w.session("s-busy", 1000);
    w.up.store()
        .fail_always("PutObject", FailureKind::Rejected, None);
    assert!(!w.up.finalize(&dir).await.ok());
    w.up.store().clear_faults();
    let held = PendingDir::new(&w.pending)
        .session_lock("s-busy", false)
        .unwrap()
        .unwrap();
    w.journal.clear();
    let report = w.up.retry_pending().await;
    assert_eq!(report.outcome("s-busy"), Some(&Outcome::Busy));
    assert_eq!(w.journal.count("PutObject"), 0);
    assert_eq!(w.tag().as_deref(), Some("1"));
    drop(held);
    assert!(w.up.retry_pending().await.ok());
    assert_eq!(w.tag(), None);
}

#[tokio::test]
async fn a_retry_on_a_later_day_keeps_the_first_days_keys() {
    let w = World::new(None);
    let dir = w.session("s-late", 1000);
    w.up.store()
        .fail_always("PutObject", FailureKind::Rejected, None);
    assert!(!w.up.finalize(&dir).await.ok());
    w.up.store().clear_faults();
    w.now.store(DAY1 + 3 * 86_400, Ordering::SeqCst);
    assert!(w.up.retry_pending().await.ok());
    assert!(
        w.up.store()
            .keys()
            .iter()
            .all(|k| k.starts_with(&format!("{KEY_PREFIX}s-late/"))),
        "{:?}",
        w.up.store().keys()
    );
}

#[tokio::test]
async fn a_directory_that_vanished_drops_its_marker_and_the_tag() {
    let w = World::new(None);
    let dir = w.session("s-gone", 1000);
    w.up.store()
        .fail_always("PutObject", FailureKind::Rejected, None);
    assert!(!w.up.finalize(&dir).await.ok());
    std::fs::remove_dir_all(&dir).unwrap();
    let report = w.up.retry_pending().await;
    assert_eq!(report.outcome("s-gone"), Some(&Outcome::Gone));
    assert_eq!(w.marker("s-gone"), None);
    assert_eq!(w.tag(), None);
}

#[tokio::test]
async fn a_held_session_is_tagged_without_upload_and_keyed_by_its_first_day() {
    let w = World::new(None);
    let dir = w.session("s-held", 1000);
    let report = w.up.hold(&dir, "configuration: BUCKET is required").await;
    assert!(!report.ok());
    assert_eq!(
        w.journal.calls(),
        vec!["CreateTags 1"],
        "recorded and tagged, nothing uploaded"
    );
    assert_eq!(w.marker("s-held").unwrap().key_prefix, "");
    w.now.store(DAY1 + 2 * 86_400, Ordering::SeqCst);
    assert!(w.up.retry_pending().await.ok());
    assert!(
        w.up.store()
            .keys()
            .iter()
            .all(|k| k.starts_with(&format!("{KEY_PREFIX}s-held/"))),
        "{:?}",
        w.up.store().keys()
    );
    assert_eq!(w.tag(), None);
}

#[tokio::test]
async fn a_session_that_cannot_be_recorded_is_uploaded_in_process_and_the_tag_kept() {
    // The pending directory cannot be created: /dev/full is not a directory.
    let w = World::new(Some(PathBuf::from("/dev/full/jibri-finalize")));
    let dir = w.session("s-nodisk", 6 * MIB);
    let report = w.up.finalize(&dir).await;
    assert_eq!(
        report.outcome("s-nodisk"),
        Some(&Outcome::Uploaded {
            files: 2,
            bytes: (6 * MIB + JIBRI_METADATA.len()) as u64
        })
    );
    assert!(
        !report.ok(),
        "the broken pending directory is reported: {report:?}"
    );
    assert!(!dir.exists(), "verified objects: local copies deleted");
    assert_eq!(
        w.journal.calls().first().map(String::as_str),
        Some("CreateTags 1")
    );
    assert_eq!(
        w.tag().as_deref(),
        Some("1"),
        "nothing says no other session is pending: the tag stays"
    );
}

#[tokio::test]
async fn an_unrecorded_session_is_retried_in_process_until_it_can_be_handed_off() {
    let root = std::env::temp_dir().join(format!("jf-fakes-handoff-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    // A file where the pending directory should be: nothing can be written under it.
    let blocker = root.join("pending");
    std::fs::write(&blocker, b"").unwrap();
    let w = World::new(Some(blocker.clone()));
    let dir = w.session("s-handoff", 1000);
    w.up.store()
        .fail_always("PutObject", FailureKind::Rejected, None);
    let run = w.up.finalize(&dir);
    let unblock = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        std::fs::remove_file(&blocker).unwrap();
    };
    let (report, ()) = tokio::join!(run, unblock);
    let Some(Outcome::Failed(e)) = report.outcome("s-handoff") else {
        panic!("{report:?}")
    };
    assert!(e.contains("now recorded as pending"), "{e}");
    assert!(
        PendingDir::new(&blocker)
            .load("s-handoff")
            .unwrap()
            .is_some(),
        "handed to the timer"
    );
    assert_eq!(files_in(&dir), 2);
    let _ = std::fs::remove_dir_all(&root);
}

// ---- issue 14, item 12: tagging failures, unusable names, create-only uploads, privacy ----

/// The manifest of an uploaded session, parsed.
fn manifest_of(w: &World, session: &str) -> serde_json::Value {
    let m =
        w.up.store()
            .object(&format!("{KEY_PREFIX}{session}/manifest.json"))
            .expect("manifest written");
    serde_json::from_slice(&m.data).unwrap()
}

/// The key the manifest records for a session file.
fn manifest_key_of(manifest: &serde_json::Value, path: &str) -> String {
    manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("{path} not in {manifest}"))["key"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_tagging_failure_does_not_stop_the_upload_and_the_exit_is_the_uploads() {
    let w = World::new(None);
    let dir = w.session("s-notag", 6 * MIB);
    w.up.tags().fail_always("CreateTags", FailureKind::Rejected);
    let report = w.up.finalize(&dir).await;
    assert_eq!(
        report.outcome("s-notag"),
        Some(&Outcome::Uploaded {
            files: 2,
            bytes: (6 * MIB + JIBRI_METADATA.len()) as u64
        }),
        "Jibri is BUSY while finalize runs: upload regardless of the tag: {report:?}"
    );
    assert!(report.ok(), "the exit status is the upload's: {report:?}");
    let calls = w.journal.calls();
    assert_eq!(
        calls.first().map(String::as_str),
        Some("CreateTags 1"),
        "the tag is still tried first: {calls:#?}"
    );
    assert!(calls.iter().any(|c| c.starts_with("UploadPart")));
    assert!(w
        .up
        .store()
        .object(&format!("{KEY_PREFIX}s-notag/manifest.json"))
        .is_some());
    assert!(!dir.exists(), "verified: deleted");
    assert_eq!(w.marker("s-notag"), None);
    assert_eq!(w.tag(), None);
}

#[tokio::test]
async fn with_the_tag_refused_a_failed_upload_keeps_the_marker_and_the_timer_uploads_anyway() {
    let w = World::new(None);
    let dir = w.session("s-notag-timer", 1000);
    w.up.tags().fail_always("CreateTags", FailureKind::Rejected);
    w.up.store()
        .fail_always("PutObject", FailureKind::Rejected, None);
    let report = w.up.finalize(&dir).await;
    assert!(
        matches!(report.outcome("s-notag-timer"), Some(Outcome::Failed(_))),
        "{report:?}"
    );
    assert!(
        w.journal.count("PutObject") > 0,
        "the upload was tried although the tag was refused: {:?}",
        w.journal.calls()
    );
    assert_eq!(files_in(&dir), 2, "files kept");
    let marker = w.marker("s-notag-timer").expect("the local marker stays");
    assert!(marker.last_error.is_some(), "{marker:?}");

    // The timer: S3 is back, EC2 still refuses the tag; it uploads anyway.
    w.up.store().clear_faults();
    w.journal.clear();
    let report = w.up.retry_pending().await;
    assert_eq!(
        report.outcome("s-notag-timer"),
        Some(&Outcome::Uploaded {
            files: 2,
            bytes: (1000 + JIBRI_METADATA.len()) as u64
        }),
        "{report:?}"
    );
    assert!(report.ok(), "{report:?}");
    assert!(w.journal.count("CreateTags") > 0, "the tag was tried first");
    assert!(!dir.exists());
    assert_eq!(w.marker("s-notag-timer"), None);
    assert_eq!(w.tag(), None);
}

#[tokio::test]
async fn an_unknown_instance_id_still_uploads_the_session() {
    let w = World::new(None);
    let dir = w.session("s-noid", 2000);
    let up = Uploader::new(
        FakeStore::new(w.journal.clone()),
        jibri_finalize::aws::UnknownInstance("instance metadata service: timed out".into()),
        PendingDir::new(&w.pending),
        settings(),
    )
    .with_clock(Arc::new(|| DAY1 + 3600));
    let report = up.finalize(&dir).await;
    assert_eq!(
        report.outcome("s-noid"),
        Some(&Outcome::Uploaded {
            files: 2,
            bytes: (2000 + JIBRI_METADATA.len()) as u64
        }),
        "{report:?}"
    );
    assert!(report.ok(), "the exit status is the upload's: {report:?}");
    assert!(up
        .store()
        .object(&format!("{KEY_PREFIX}s-noid/manifest.json"))
        .is_some());
    assert!(!dir.exists());
    assert_eq!(w.marker("s-noid"), None);
}

#[tokio::test]
async fn without_the_tag_a_failed_upload_is_retried_in_process_with_backoff() {
    let w = World::new(None);
    let dir = w.rec.join("s-rounds");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("only.mp4"), pattern(3000, 7)).unwrap();
    w.up.tags().fail_always("CreateTags", FailureKind::Rejected);
    // Every attempt of the first round (MAX_ATTEMPTS = 4) fails; S3 recovers after.
    w.up.store().fail("PutObject", FailureKind::Server, 4);
    let started = std::time::Instant::now();
    let report = w.up.finalize(&dir).await;
    assert_eq!(
        report.outcome("s-rounds"),
        Some(&Outcome::Uploaded {
            files: 1,
            bytes: 3000
        }),
        "an unprotected session (no tag) is not left to the timer while Jibri is BUSY: {report:?}"
    );
    assert!(report.ok(), "{report:?}");
    assert_eq!(
        w.journal
            .count(&format!("PutObject {KEY_PREFIX}s-rounds/only.mp4")),
        5,
        "4 attempts, a wait, then a second round"
    );
    assert!(
        w.journal.count("CreateTags") >= 2,
        "each round tries the tag again: {:?}",
        w.journal.calls()
    );
    assert!(
        started.elapsed() >= Duration::from_millis(10),
        "the rounds are apart"
    );
    assert!(!dir.exists());
}

#[tokio::test]
async fn an_unusable_file_name_is_skipped_and_the_rest_of_the_session_still_uploads() {
    use std::os::unix::ffi::OsStrExt;
    let w = World::new(None);
    let dir = w.session("s-badname", 6 * MIB);
    let bad = dir.join(std::ffi::OsStr::from_bytes(b"bad\xffname.mp4"));
    std::fs::write(&bad, b"latin-1 name").unwrap();
    let ctrl = dir.join("tab\there.txt");
    std::fs::write(&ctrl, b"control character").unwrap();
    let report = w.up.finalize(&dir).await;
    let Some(Outcome::Failed(e)) = report.outcome("s-badname") else {
        panic!("the session is not complete: {report:?}")
    };
    assert!(
        e.contains("not valid UTF-8") && e.contains("control characters"),
        "{e}"
    );
    let mp4_key = format!("{KEY_PREFIX}s-badname/standup_2026-01-02-01-00-00.mp4");
    let store = w.up.store();
    assert_eq!(
        store.object(&mp4_key).map(|o| o.data.len()),
        Some(6 * MIB),
        "the other files are uploaded and verified: {:?}",
        store.keys()
    );
    assert!(store
        .object(&format!("{KEY_PREFIX}s-badname/metadata.json"))
        .is_some());
    assert!(
        store
            .object(&format!("{KEY_PREFIX}s-badname/manifest.json"))
            .is_none(),
        "no manifest: the session is not complete"
    );
    assert_eq!(files_in(&dir), 4, "everything kept on disk");
    let marker = w.marker("s-badname").expect("pending");
    assert!(marker.files["standup_2026-01-02-01-00-00.mp4"]
        .stored
        .is_some());
    assert!(
        marker.files.keys().any(|k| k.starts_with("bad")),
        "the skipped file is recorded as pending: {:?}",
        marker.files.keys()
    );
    assert!(
        marker.last_error.unwrap().contains("bad"),
        "and why, for --status"
    );
    assert_eq!(w.tag().as_deref(), Some("1"));

    // An operator renames them: the timer finishes the session without sending the rest again.
    std::fs::rename(&bad, dir.join("badname.mp4")).unwrap();
    std::fs::rename(&ctrl, dir.join("tab-here.txt")).unwrap();
    w.journal.clear();
    let report = w.up.retry_pending().await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(w.journal.count("UploadPart"), 0, "{:?}", w.journal.calls());
    assert_eq!(w.journal.count(&format!("PutObject {mp4_key}")), 0);
    let m = manifest_of(&w, "s-badname");
    assert_eq!(m["files"].as_array().unwrap().len(), 4, "{m}");
    assert!(!dir.exists());
    assert_eq!(w.tag(), None);
}

#[tokio::test]
async fn another_meetings_objects_at_our_keys_are_never_overwritten() {
    let w = World::new(None);
    let dir = w.session("s-clash", 6 * MIB);
    let mp4 = std::fs::read(dir.join("standup_2026-01-02-01-00-00.mp4")).unwrap();
    let mp4_key = format!("{KEY_PREFIX}s-clash/standup_2026-01-02-01-00-00.mp4");
    let md_key = format!("{KEY_PREFIX}s-clash/metadata.json");
    // Another recorder's session of the same name, the same day (or any earlier object).
    w.up.store().seed(
        &mp4_key,
        b"another meeting's recording",
        ChecksumAlgorithm::Crc64Nvme,
    );
    w.up.store()
        .seed(&md_key, b"{\"other\":true}", ChecksumAlgorithm::Crc64Nvme);
    let before: Vec<_> = [&mp4_key, &md_key]
        .iter()
        .map(|k| w.up.store().object(k).unwrap())
        .collect();
    let report = w.up.finalize(&dir).await;
    assert!(report.ok(), "{report:?}");
    for (k, b) in [&mp4_key, &md_key].iter().zip(&before) {
        assert_eq!(
            w.up.store().object(k).as_ref(),
            Some(b),
            "{k} is never overwritten"
        );
        assert_eq!(w.up.store().writes(k), 0, "{k}");
    }
    let m = manifest_of(&w, "s-clash");
    let got_mp4 = manifest_key_of(&m, "standup_2026-01-02-01-00-00.mp4");
    let got_md = manifest_key_of(&m, "metadata.json");
    assert_ne!(got_mp4, mp4_key);
    assert_ne!(got_md, md_key);
    assert!(
        got_mp4.starts_with(&format!("{KEY_PREFIX}s-clash/")),
        "{got_mp4}"
    );
    assert_eq!(w.up.store().object(&got_mp4).unwrap().data, mp4);
    assert_eq!(
        w.up.store().object(&got_md).unwrap().data,
        JIBRI_METADATA.as_bytes()
    );
    assert!(!dir.exists());
}

#[tokio::test]
async fn a_write_whose_answer_was_lost_is_not_written_twice() {
    let w = World::new(None);
    let dir = w.session("s-lost", 6 * MIB);
    // The PUT of metadata.json and the completion of the mp4 land, their answers do not.
    w.up.store().lose_answers("PutObject", 1);
    w.up.store().lose_answers("CompleteMultipartUpload", 1);
    let report = w.up.finalize(&dir).await;
    assert!(report.ok(), "{report:?}");
    let m = manifest_of(&w, "s-lost");
    for path in ["metadata.json", "standup_2026-01-02-01-00-00.mp4"] {
        let key = format!("{KEY_PREFIX}s-lost/{path}");
        assert_eq!(
            manifest_key_of(&m, path),
            key,
            "the retry found its own object"
        );
        assert_eq!(w.up.store().writes(&key), 1, "{key} written once");
    }
    assert!(!dir.exists());
}

#[tokio::test]
async fn participant_names_stay_out_of_object_metadata() {
    let w = World::new(None);
    let dir = w.session("s-privacy", 1000);
    assert!(w.up.finalize(&dir).await.ok());
    let store = w.up.store();
    let keys = store.keys();
    assert_eq!(keys.len(), 3, "{keys:?}");
    for k in &keys {
        let o = store.object(k).unwrap();
        for (name, value) in &o.metadata {
            assert_ne!(name, "jibri-participants", "{k}");
            for who in ["Ana", "Bo", "u-1", "u-2"] {
                assert!(!value.contains(who), "{k}: {name}={value} names {who}");
            }
        }
        let md: std::collections::HashMap<_, _> = o.metadata.iter().cloned().collect();
        assert_eq!(md["jibri-participant-count"], "2", "the count is no name");
    }
    // The manifest (an object, not metadata) keeps the list for whoever may read the session.
    assert_eq!(
        manifest_of(&w, "s-privacy")["participants"][0]["name"],
        "Ana"
    );
}

#[tokio::test]
async fn the_in_process_rounds_stop_once_the_tag_is_set_and_are_bounded_without_it() {
    // The tag works again after the first round: the session is protected, the timer may
    // take over; the rounds stop after one more attempt.
    let w = World::new(None);
    let dir = w.session("s-retag", 1000);
    w.up.tags().fail("CreateTags", FailureKind::Rejected, 1);
    w.up.store()
        .fail_always("PutObject", FailureKind::Rejected, None);
    let report = w.up.finalize(&dir).await;
    assert!(
        matches!(report.outcome("s-retag"), Some(Outcome::Failed(_))),
        "{report:?}"
    );
    assert_eq!(w.journal.count("CreateTags"), 2, "{:?}", w.journal.calls());
    assert_eq!(
        w.journal.count("PutObject"),
        2 * 2,
        "two files, two rounds: {:?}",
        w.journal.calls()
    );
    assert_eq!(w.tag().as_deref(), Some("1"), "protected now");
    assert_eq!(files_in(&dir), 2);
    assert!(w.marker("s-retag").is_some());

    // Neither EC2 nor S3 ever recovers: MAX_ATTEMPTS rounds (4 here), then the timer's.
    let w = World::new(None);
    let dir = w.session("s-bounded", 1000);
    w.up.tags().fail_always("CreateTags", FailureKind::Rejected);
    w.up.store()
        .fail_always("PutObject", FailureKind::Rejected, None);
    let report = w.up.finalize(&dir).await;
    assert!(
        matches!(report.outcome("s-bounded"), Some(Outcome::Failed(_))),
        "{report:?}"
    );
    assert_eq!(
        w.journal.count("PutObject"),
        2 * 4,
        "{:?}",
        w.journal.calls()
    );
    assert_eq!(
        w.journal.count("CreateTags"),
        1 + 3 + 1,
        "first, before rounds 2 to 4, and once more at the end of the run"
    );
    assert_eq!(w.tag(), None);
    assert_eq!(files_in(&dir), 2, "kept");
    assert!(w.marker("s-bounded").is_some(), "pending for the timer");
}
