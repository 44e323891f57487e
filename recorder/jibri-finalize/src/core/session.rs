//! A pending session as it is recorded on disk between attempts, and the decisions taken
//! from it: what may be skipped, resumed or deleted, whether an object in S3 is the local
//! file, and what the instance's `upload-pending` tag must say.

use super::checksum::{Checksum, ChecksumAlgorithm};
use super::metadata::{Participant, RecordingInfo};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const RECORD_FORMAT: u32 = 1;

/// What identifies the local content that was hashed: if any of it changes, the file was
/// rewritten and nothing recorded about it may be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    pub size: u64,
    pub mtime_s: i64,
    pub mtime_ns: u32,
    pub inode: u64,
}

/// One object in S3, verified to hold the bytes of the local file with this stamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredObject {
    pub key: String,
    pub size: u64,
    pub algorithm: ChecksumAlgorithm,
    /// S3's base64 form of the full-object checksum.
    pub checksum: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

/// A part that S3 accepted (it verified the part's checksum on upload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartDone {
    pub etag: String,
    pub size: u64,
    pub checksum: String,
}

/// An unfinished multipart upload, to resume instead of starting over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultipartProgress {
    pub upload_id: String,
    pub part_size: u64,
    pub algorithm: ChecksumAlgorithm,
    pub stamp: FileStamp,
    #[serde(default)]
    pub parts: BTreeMap<u32, PartDone>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multipart: Option<MultipartProgress>,
    /// Set once the object is verified; `stamp` is the local file's at that moment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored: Option<(StoredObject, FileStamp)>,
}

/// The pending marker of one session (`<PENDING_DIR>/<session>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub format: u32,
    pub session: String,
    /// The session's recording directory (absolute).
    pub dir: String,
    /// `<prefix><yyyy>/<mm>/<dd>/<session>/`, fixed at the first attempt.
    pub key_prefix: String,
    pub first_attempt_at: u64,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// By path relative to the session directory, '/'-separated.
    #[serde(default)]
    pub files: BTreeMap<String, FileRecord>,
    /// The manifest, once written and verified: the session is in S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<StoredObject>,
}

impl SessionRecord {
    pub fn new(session: &str, dir: &str, key_prefix: String, now: u64) -> Self {
        Self {
            format: RECORD_FORMAT,
            session: session.into(),
            dir: dir.into(),
            key_prefix,
            first_attempt_at: now,
            attempts: 0,
            last_error: None,
            files: BTreeMap::new(),
            manifest: None,
        }
    }
}

/// What to do with one local file, given what the record says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileAction {
    /// Verified in S3 with this very content: nothing to upload.
    AlreadyStored,
    /// Continue this multipart upload.
    Resume(MultipartProgress),
    /// Upload from scratch (a stale upload, if any, is given back to abort).
    Fresh { abort: Option<String> },
}

/// `part_size` and `algorithm` are those the upload would use now.
pub fn file_action(
    record: Option<&FileRecord>,
    stamp: FileStamp,
    multipart: bool,
    part_size: u64,
    algorithm: ChecksumAlgorithm,
) -> FileAction {
    let Some(rec) = record else {
        return FileAction::Fresh { abort: None };
    };
    if let Some((stored, at)) = &rec.stored {
        if *at == stamp && stored.algorithm == algorithm {
            return FileAction::AlreadyStored;
        }
    }
    match &rec.multipart {
        Some(mp)
            if multipart
                && mp.stamp == stamp
                && mp.part_size == part_size
                && mp.algorithm == algorithm =>
        {
            FileAction::Resume(mp.clone())
        }
        Some(mp) => FileAction::Fresh {
            abort: Some(mp.upload_id.clone()),
        },
        None => FileAction::Fresh { abort: None },
    }
}

/// A part S3 lists for the upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPart {
    pub number: u32,
    pub etag: String,
    pub size: u64,
    /// Base64, when S3 reports per-part checksums (AWS does for uploads created with an
    /// algorithm; some emulators do not).
    pub checksum: Option<String>,
}

/// What S3 said about the upload's parts before a resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartsInS3<'a> {
    /// ListParts answered: the part as listed, or `None` if S3 does not have it.
    Listed(Option<&'a ListedPart>),
    /// ListParts could not be used (refused, or an answer that could not be read): the
    /// record alone decides, and CompleteMultipartUpload (which checks every part's ETag)
    /// plus the full-object checksum check after it are the safety net.
    Unlisted,
}

/// A part may be kept only if its bytes are the ones the local file has now (`local` is
/// the checksum just computed from disk) and S3, when it says, still has it as accepted.
pub fn part_reusable(
    recorded: Option<&PartDone>,
    in_s3: PartsInS3<'_>,
    local: &Checksum,
    len: u64,
) -> bool {
    let Some(rec) = recorded else { return false };
    let local = local.base64();
    if rec.size != len || rec.checksum != local {
        return false;
    }
    match in_s3 {
        PartsInS3::Unlisted => true,
        PartsInS3::Listed(None) => false,
        PartsInS3::Listed(Some(listed)) => {
            rec.etag == listed.etag
                && listed.size == len
                && listed.checksum.as_ref().is_none_or(|c| *c == local)
        }
    }
}

/// An object as HeadObject (checksum mode enabled) describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectHead {
    pub size: u64,
    /// (algorithm name as S3 gives it, base64 value)
    pub checksum: Option<(String, String)>,
    /// `FULL_OBJECT` or `COMPOSITE`, when S3 says.
    pub checksum_type: Option<String>,
    pub version_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("size in S3 is {actual}, the local file has {expected}")]
    Size { expected: u64, actual: u64 },
    #[error("S3 reports no {0} checksum for the object")]
    NoChecksum(ChecksumAlgorithm),
    #[error("S3 has a {actual_type} {algorithm} checksum, not a full-object one")]
    NotFullObject {
        algorithm: ChecksumAlgorithm,
        actual_type: String,
    },
    #[error("checksum in S3 is {actual}, the local file's is {expected}")]
    Checksum { expected: String, actual: String },
}

/// Whether the object S3 describes is the local file: same size and the same full-object
/// checksum, which S3 computed from the bytes it stores.
pub fn verify(head: &ObjectHead, expected_size: u64, expected: &Checksum) -> Result<(), Mismatch> {
    if head.size != expected_size {
        return Err(Mismatch::Size {
            expected: expected_size,
            actual: head.size,
        });
    }
    let Some((algo, value)) = &head.checksum else {
        return Err(Mismatch::NoChecksum(expected.algorithm));
    };
    if !algo.eq_ignore_ascii_case(expected.algorithm.s3_name()) {
        return Err(Mismatch::NoChecksum(expected.algorithm));
    }
    if let Some(t) = &head.checksum_type {
        if !t.eq_ignore_ascii_case("FULL_OBJECT") {
            return Err(Mismatch::NotFullObject {
                algorithm: expected.algorithm,
                actual_type: t.clone(),
            });
        }
    }
    // A composite checksum would read "<base64>-<parts>"; only the bare value matches.
    if *value != expected.base64() {
        return Err(Mismatch::Checksum {
            expected: expected.base64(),
            actual: value.clone(),
        });
    }
    Ok(())
}

/// A local file may be deleted only when its object is verified and the file is still the
/// content that was hashed for that verification.
pub fn may_delete(record: Option<&FileRecord>, now: FileStamp) -> bool {
    record
        .and_then(|r| r.stored.as_ref())
        .is_some_and(|(_, at)| *at == now)
}

/// How many sessions are pending, as far as this run can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    Known(u32),
    /// The pending directory could not be read.
    Unknown,
}

/// What this host last set the tag to, as recorded next to the markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagState {
    Absent,
    Value(u32),
    /// Never recorded, or a call was under way when the run stopped.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagAction {
    Set(u32),
    Remove,
    Nothing,
}

/// The tag follows the pending count: its value is the count, and it is removed at 0. An
/// unknown count never lowers or removes it (fail safe: unknown is busy), and a tag already
/// known to be right is not written again (steady state makes no call). `extra` counts
/// sessions that are being uploaded but could not be recorded as pending.
pub fn tag_action(pending: Pending, extra: u32, state: TagState) -> TagAction {
    let want = match pending {
        Pending::Known(n) => n + extra,
        Pending::Unknown if extra > 0 => match state {
            TagState::Value(v) => v.max(extra),
            _ => extra,
        },
        Pending::Unknown => return TagAction::Nothing,
    };
    match (want, state) {
        (0, TagState::Absent) => TagAction::Nothing,
        (0, _) => TagAction::Remove,
        (n, TagState::Value(v)) if v == n => TagAction::Nothing,
        (n, _) => TagAction::Set(n),
    }
}

/// The manifest object, written last: what the session holds and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub session: String,
    pub instance_id: String,
    pub key_prefix: String,
    pub first_attempt_at: String,
    pub completed_at: String,
    pub uploader: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meeting_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meeting_name: Option<String>,
    pub participants: Vec<Participant>,
    pub files: Vec<ManifestFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub key: String,
    pub size: u64,
    pub checksum_algorithm: String,
    pub checksum: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

/// The manifest of a session whose every file is stored; `None` while one is not.
pub fn manifest(
    record: &SessionRecord,
    info: Option<&RecordingInfo>,
    instance_id: &str,
    now: u64,
    uploader: &str,
) -> Option<Manifest> {
    let mut files = Vec::with_capacity(record.files.len());
    for (path, f) in &record.files {
        let (s, _) = f.stored.as_ref()?;
        files.push(ManifestFile {
            path: path.clone(),
            key: s.key.clone(),
            size: s.size,
            checksum_algorithm: s.algorithm.s3_name().into(),
            checksum: s.checksum.clone(),
            version_id: s.version_id.clone(),
        });
    }
    Some(Manifest {
        format: 1,
        session: record.session.clone(),
        instance_id: instance_id.into(),
        key_prefix: record.key_prefix.clone(),
        first_attempt_at: super::layout::rfc3339(record.first_attempt_at),
        completed_at: super::layout::rfc3339(now),
        uploader: uploader.into(),
        meeting_url: info.and_then(|i| i.meeting_url.clone()),
        meeting_name: info.and_then(|i| i.meeting_name.clone()),
        participants: info.map(|i| i.participants.clone()).unwrap_or_default(),
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::checksum::Crc;

    const ALGO: ChecksumAlgorithm = ChecksumAlgorithm::Crc64Nvme;

    fn stamp(size: u64) -> FileStamp {
        FileStamp {
            size,
            mtime_s: 1_700_000_000,
            mtime_ns: 5,
            inode: 42,
        }
    }

    fn checksum(data: &[u8]) -> Checksum {
        let mut c = Crc::new(ALGO);
        c.update(data);
        c.finish()
    }

    fn stored(size: u64) -> StoredObject {
        StoredObject {
            key: "k".into(),
            size,
            algorithm: ALGO,
            checksum: checksum(b"x").base64(),
            version_id: None,
        }
    }

    fn progress(st: FileStamp) -> MultipartProgress {
        MultipartProgress {
            upload_id: "up-1".into(),
            part_size: 8 << 20,
            algorithm: ALGO,
            stamp: st,
            parts: BTreeMap::new(),
        }
    }

    #[test]
    fn a_verified_unchanged_file_is_not_uploaded_again() {
        let rec = FileRecord {
            multipart: None,
            stored: Some((stored(10), stamp(10))),
        };
        assert_eq!(
            file_action(Some(&rec), stamp(10), false, 8 << 20, ALGO),
            FileAction::AlreadyStored
        );
    }

    #[test]
    fn a_file_rewritten_after_verification_is_uploaded_again() {
        let rec = FileRecord {
            multipart: None,
            stored: Some((stored(10), stamp(10))),
        };
        let mut touched = stamp(10);
        touched.mtime_ns += 1;
        assert_eq!(
            file_action(Some(&rec), touched, false, 8 << 20, ALGO),
            FileAction::Fresh { abort: None }
        );
        assert!(
            !may_delete(Some(&rec), touched),
            "and never deleted on the strength of the old check"
        );
        assert!(may_delete(Some(&rec), stamp(10)));
        assert!(!may_delete(None, stamp(10)));
        assert!(!may_delete(
            Some(&FileRecord {
                multipart: None,
                stored: None
            }),
            stamp(10)
        ));
    }

    #[test]
    fn an_unfinished_upload_of_the_same_content_is_resumed() {
        let rec = FileRecord {
            multipart: Some(progress(stamp(100 << 20))),
            stored: None,
        };
        assert_eq!(
            file_action(Some(&rec), stamp(100 << 20), true, 8 << 20, ALGO),
            FileAction::Resume(progress(stamp(100 << 20)))
        );
    }

    #[test]
    fn an_upload_made_with_other_parts_or_content_is_aborted_and_restarted() {
        let rec = FileRecord {
            multipart: Some(progress(stamp(100 << 20))),
            stored: None,
        };
        let abort = FileAction::Fresh {
            abort: Some("up-1".into()),
        };
        assert_eq!(
            file_action(Some(&rec), stamp(101 << 20), true, 8 << 20, ALGO),
            abort,
            "content changed"
        );
        assert_eq!(
            file_action(Some(&rec), stamp(100 << 20), true, 16 << 20, ALGO),
            abort,
            "part size changed"
        );
        assert_eq!(
            file_action(
                Some(&rec),
                stamp(100 << 20),
                true,
                8 << 20,
                ChecksumAlgorithm::Crc32
            ),
            abort,
            "algorithm changed"
        );
    }

    #[test]
    fn a_part_is_reused_only_if_s3_and_the_disk_both_agree() {
        use PartsInS3::{Listed, Unlisted};
        let c = checksum(b"part one");
        let rec = PartDone {
            etag: "\"e1\"".into(),
            size: 8,
            checksum: c.base64(),
        };
        let listed = ListedPart {
            number: 1,
            etag: "\"e1\"".into(),
            size: 8,
            checksum: None,
        };
        assert!(part_reusable(Some(&rec), Listed(Some(&listed)), &c, 8));
        assert!(part_reusable(
            Some(&rec),
            Listed(Some(&ListedPart {
                checksum: Some(c.base64()),
                ..listed.clone()
            })),
            &c,
            8
        ));
        assert!(
            !part_reusable(Some(&rec), Listed(None), &c, 8),
            "S3 lost it"
        );
        assert!(
            !part_reusable(None, Listed(Some(&listed)), &c, 8),
            "not recorded: unknown bytes"
        );
        assert!(
            !part_reusable(
                Some(&rec),
                Listed(Some(&ListedPart {
                    etag: "\"e2\"".into(),
                    ..listed.clone()
                })),
                &c,
                8
            ),
            "replaced"
        );
        assert!(
            !part_reusable(Some(&rec), Listed(Some(&listed)), &checksum(b"part One"), 8),
            "disk changed"
        );
        assert!(
            !part_reusable(
                Some(&rec),
                Listed(Some(&ListedPart {
                    checksum: Some("AAAAAAAAAAA=".into()),
                    ..listed.clone()
                })),
                &c,
                8
            ),
            "S3 holds other bytes"
        );
        // Without a listing the record decides, still against the disk.
        assert!(part_reusable(Some(&rec), Unlisted, &c, 8));
        assert!(!part_reusable(
            Some(&rec),
            Unlisted,
            &checksum(b"part One"),
            8
        ));
        assert!(!part_reusable(Some(&rec), Unlisted, &c, 9));
        assert!(!part_reusable(None, Unlisted, &c, 8));
    }

    #[test]
    fn verification_needs_same_size_and_full_object_checksum() {
        let c = checksum(b"hello");
        let good = ObjectHead {
            size: 5,
            checksum: Some(("CRC64NVME".into(), c.base64())),
            checksum_type: Some("FULL_OBJECT".into()),
            version_id: None,
        };
        assert_eq!(verify(&good, 5, &c), Ok(()));
        assert_eq!(
            verify(
                &ObjectHead {
                    checksum_type: None,
                    ..good.clone()
                },
                5,
                &c
            ),
            Ok(()),
            "single PUTs may not say the type"
        );
        assert!(matches!(verify(&good, 6, &c), Err(Mismatch::Size { .. })));
        assert!(matches!(
            verify(
                &ObjectHead {
                    checksum: None,
                    ..good.clone()
                },
                5,
                &c
            ),
            Err(Mismatch::NoChecksum(_))
        ));
        assert!(matches!(
            verify(
                &ObjectHead {
                    checksum: Some(("CRC32".into(), "AAAAAA==".into())),
                    ..good.clone()
                },
                5,
                &c
            ),
            Err(Mismatch::NoChecksum(_))
        ));
        assert!(matches!(
            verify(
                &ObjectHead {
                    checksum_type: Some("COMPOSITE".into()),
                    ..good.clone()
                },
                5,
                &c
            ),
            Err(Mismatch::NotFullObject { .. })
        ));
        assert!(matches!(
            verify(&good, 5, &checksum(b"hellO")),
            Err(Mismatch::Checksum { .. })
        ));
    }

    #[test]
    fn the_tag_follows_the_pending_count() {
        use TagAction::*;
        assert_eq!(tag_action(Pending::Known(1), 0, TagState::Absent), Set(1));
        assert_eq!(tag_action(Pending::Known(2), 0, TagState::Value(1)), Set(2));
        assert_eq!(tag_action(Pending::Known(1), 0, TagState::Value(2)), Set(1));
        assert_eq!(tag_action(Pending::Known(0), 0, TagState::Value(1)), Remove);
        assert_eq!(
            tag_action(Pending::Known(0), 0, TagState::Unknown),
            Remove,
            "reconciled once when unknown"
        );
    }

    #[test]
    fn steady_state_makes_no_tag_call() {
        assert_eq!(
            tag_action(Pending::Known(0), 0, TagState::Absent),
            TagAction::Nothing
        );
        assert_eq!(
            tag_action(Pending::Known(3), 0, TagState::Value(3)),
            TagAction::Nothing
        );
    }

    #[test]
    fn an_unknown_count_never_lowers_or_removes_the_tag() {
        for state in [TagState::Absent, TagState::Value(2), TagState::Unknown] {
            assert_eq!(tag_action(Pending::Unknown, 0, state), TagAction::Nothing);
        }
        // A session that could not be recorded still raises it.
        assert_eq!(
            tag_action(Pending::Unknown, 1, TagState::Absent),
            TagAction::Set(1)
        );
        assert_eq!(
            tag_action(Pending::Unknown, 1, TagState::Unknown),
            TagAction::Set(1)
        );
        assert_eq!(
            tag_action(Pending::Unknown, 1, TagState::Value(3)),
            TagAction::Nothing
        );
        assert_eq!(
            tag_action(Pending::Known(2), 1, TagState::Value(2)),
            TagAction::Set(3)
        );
    }

    #[test]
    fn the_manifest_exists_only_when_every_file_is_stored() {
        let mut rec = SessionRecord::new(
            "s1",
            "/rec/s1",
            "recordings/2026/01/02/s1/".into(),
            1_767_312_000,
        );
        rec.files.insert(
            "a.mp4".into(),
            FileRecord {
                multipart: None,
                stored: Some((stored(10), stamp(10))),
            },
        );
        rec.files.insert(
            "metadata.json".into(),
            FileRecord {
                multipart: Some(progress(stamp(3))),
                stored: None,
            },
        );
        assert!(manifest(&rec, None, "i-1", 1_767_312_060, "jibri-finalize test").is_none());
        rec.files.get_mut("metadata.json").unwrap().stored = Some((stored(3), stamp(3)));
        let info = RecordingInfo {
            meeting_url: Some("https://m/r".into()),
            meeting_name: Some("r".into()),
            participants: vec![Participant {
                name: Some("A".into()),
                id: None,
            }],
        };
        let m = manifest(
            &rec,
            Some(&info),
            "i-1",
            1_767_312_060,
            "jibri-finalize test",
        )
        .unwrap();
        assert_eq!(
            m.files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
            ["a.mp4", "metadata.json"]
        );
        assert_eq!(m.first_attempt_at, "2026-01-02T00:00:00Z");
        assert_eq!(m.completed_at, "2026-01-02T00:01:00Z");
        assert_eq!(m.meeting_name.as_deref(), Some("r"));
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["files"][0]["checksum_algorithm"], "CRC64NVME");
    }

    #[test]
    fn the_record_round_trips_through_json() {
        let mut rec = SessionRecord::new("s1", "/rec/s1", "p/".into(), 1);
        let mut mp = progress(stamp(20 << 20));
        mp.parts.insert(
            1,
            PartDone {
                etag: "\"e\"".into(),
                size: 8 << 20,
                checksum: checksum(b"p").base64(),
            },
        );
        rec.files.insert(
            "a.mp4".into(),
            FileRecord {
                multipart: Some(mp),
                stored: None,
            },
        );
        let text = serde_json::to_string(&rec).unwrap();
        assert_eq!(serde_json::from_str::<SessionRecord>(&text).unwrap(), rec);
    }
}
