//! Hand-written fakes of the ports: an in-memory bucket that checks checksums the way S3
//! does (a part or object whose bytes do not match the checksum sent is refused; the
//! full-object checksum is computed from the stored bytes) and, like S3 with
//! `If-None-Match: *`, refuses to replace an object (412), and an instance tag. Both write
//! every call into one shared [`Journal`], so tests can assert on order; both can be told
//! to fail.

use crate::core::checksum::{combine_parts, Checksum, ChecksumAlgorithm, Crc};
use crate::core::retry::FailureKind;
use crate::core::session::{ListedPart, ObjectHead};
use crate::ports::{
    AwsError, AwsResult, CompletedPart, FileRange, InstanceTags, ObjectAttributes, ObjectStore,
    Stored,
};
use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex, MutexGuard};

/// The calls made, in order: `"PutObject <key>"`, `"UploadPart <key> #<n>"`,
/// `"CreateTags <n>"`, `"DeleteTags"`...
#[derive(Debug, Clone, Default)]
pub struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    pub fn push(&self, call: String) {
        lock(&self.0).push(call);
    }

    pub fn calls(&self) -> Vec<String> {
        lock(&self.0).clone()
    }

    pub fn clear(&self) {
        lock(&self.0).clear();
    }

    /// How many calls start with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        lock(&self.0)
            .iter()
            .filter(|c| c.starts_with(prefix))
            .count()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug, Clone)]
struct Fault {
    op: &'static str,
    kind: FailureKind,
    /// `None`: every time.
    remaining: Option<u32>,
    /// Only calls whose journal line contains this.
    matching: Option<String>,
}

#[derive(Debug, Default)]
struct Faults(Vec<Fault>);

impl Faults {
    fn check(&mut self, op: &'static str, call: &str) -> AwsResult<()> {
        for f in &mut self.0 {
            if f.op == op
                && f.matching.as_deref().is_none_or(|m| call.contains(m))
                && f.remaining != Some(0)
            {
                if let Some(n) = &mut f.remaining {
                    *n -= 1;
                }
                return Err(AwsError {
                    op,
                    kind: f.kind,
                    message: format!("injected {:?}", f.kind),
                });
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeObject {
    pub data: Vec<u8>,
    pub content_type: String,
    pub metadata: Vec<(String, String)>,
    pub checksum: Checksum,
    pub full_object: bool,
    pub version: u64,
}

#[derive(Debug)]
struct Upload {
    key: String,
    algorithm: ChecksumAlgorithm,
    attrs: ObjectAttributes,
    parts: BTreeMap<u32, (Vec<u8>, String)>,
}

#[derive(Debug, Default)]
struct StoreState {
    objects: BTreeMap<String, FakeObject>,
    uploads: BTreeMap<String, Upload>,
    faults: Faults,
    /// Calls that go through whose answer is then lost (op, how many more times).
    lost_answers: Vec<(&'static str, u32)>,
    /// How many times each key was written.
    writes: BTreeMap<String, usize>,
    next: u64,
    corrupt_next_store: bool,
}

/// An in-memory bucket.
#[derive(Debug, Default)]
pub struct FakeStore {
    state: Mutex<StoreState>,
    journal: Journal,
}

fn crc(algorithm: ChecksumAlgorithm, data: &[u8]) -> Checksum {
    let mut c = Crc::new(algorithm);
    c.update(data);
    c.finish()
}

fn read_range(op: &'static str, r: &FileRange) -> AwsResult<Vec<u8>> {
    let f = std::fs::File::open(&r.path).map_err(|e| AwsError {
        op,
        kind: FailureKind::Rejected,
        message: e.to_string(),
    })?;
    let mut buf = vec![0u8; r.len as usize];
    f.read_exact_at(&mut buf, r.offset).map_err(|e| AwsError {
        op,
        kind: FailureKind::Rejected,
        message: e.to_string(),
    })?;
    Ok(buf)
}

/// S3's answer to a create-only write (`If-None-Match: *`) of a key that is taken.
fn precondition_failed(op: &'static str) -> AwsError {
    AwsError {
        op,
        kind: FailureKind::AlreadyExists,
        message:
            "PreconditionFailed: At least one of the pre-conditions you specified did not hold"
                .into(),
    }
}

fn bad_digest(op: &'static str) -> AwsError {
    AwsError {
        op,
        kind: FailureKind::Rejected,
        message: "BadDigest: the checksum sent does not match the bytes received".into(),
    }
}

impl FakeStore {
    pub fn new(journal: Journal) -> Self {
        Self {
            state: Mutex::default(),
            journal,
        }
    }

    /// `op` (`"UploadPart"`, `"PutObject"`...) fails `times` times with `kind`.
    pub fn fail(&self, op: &'static str, kind: FailureKind, times: u32) {
        lock(&self.state).faults.0.push(Fault {
            op,
            kind,
            remaining: Some(times),
            matching: None,
        });
    }

    /// Every call of `op` whose journal line contains `matching` fails with `kind`.
    pub fn fail_always(&self, op: &'static str, kind: FailureKind, matching: Option<&str>) {
        lock(&self.state).faults.0.push(Fault {
            op,
            kind,
            remaining: None,
            matching: matching.map(str::to_owned),
        });
    }

    pub fn clear_faults(&self) {
        lock(&self.state).faults.0.clear();
    }

    /// The next object stored (PUT or completed upload) gets one byte flipped, as a disk or
    /// a bug on the way might: verification must catch it.
    pub fn corrupt_next_store(&self) {
        lock(&self.state).corrupt_next_store = true;
    }

    /// The next `times` calls of `op` take effect but their answer is lost on the way
    /// back (a timeout, a cut connection): the caller sees a transport error.
    pub fn lose_answers(&self, op: &'static str, times: u32) {
        lock(&self.state).lost_answers.push((op, times));
    }

    /// An object someone else (another meeting's recorder) created, with a full-object
    /// checksum of `algorithm`, as S3 would have it.
    pub fn seed(&self, key: &str, data: &[u8], algorithm: ChecksumAlgorithm) {
        let mut st = lock(&self.state);
        st.next += 1;
        let version = st.next;
        st.objects.insert(
            key.into(),
            FakeObject {
                data: data.to_vec(),
                content_type: "application/octet-stream".into(),
                metadata: vec![],
                checksum: crc(algorithm, data),
                full_object: false,
                version,
            },
        );
    }

    /// How many times the uploader wrote `key` (a PUT or a completed upload).
    pub fn writes(&self, key: &str) -> usize {
        lock(&self.state).writes.get(key).copied().unwrap_or(0)
    }

    pub fn object(&self, key: &str) -> Option<FakeObject> {
        lock(&self.state).objects.get(key).cloned()
    }

    pub fn keys(&self) -> Vec<String> {
        lock(&self.state).objects.keys().cloned().collect()
    }

    pub fn open_uploads(&self) -> usize {
        lock(&self.state).uploads.len()
    }

    fn store(
        &self,
        key: &str,
        mut data: Vec<u8>,
        algorithm: ChecksumAlgorithm,
        attrs: &ObjectAttributes,
        full_object: bool,
    ) -> Stored {
        let mut st = lock(&self.state);
        if std::mem::take(&mut st.corrupt_next_store) {
            if let Some(b) = data.first_mut() {
                *b ^= 0x01;
            } else {
                data.push(0);
            }
        }
        st.next += 1;
        let version = st.next;
        *st.writes.entry(key.to_owned()).or_default() += 1;
        let checksum = crc(algorithm, &data);
        st.objects.insert(
            key.into(),
            FakeObject {
                data,
                content_type: attrs.content_type.into(),
                metadata: attrs.metadata.clone(),
                checksum,
                full_object,
                version,
            },
        );
        Stored {
            version_id: Some(format!("v{version}")),
        }
    }

    fn enter(&self, op: &'static str, call: String) -> AwsResult<()> {
        self.journal.push(call.clone());
        lock(&self.state).faults.check(op, &call)
    }

    /// The answer of a call that went through, unless it is to be lost.
    fn answer<T>(&self, op: &'static str, result: AwsResult<T>) -> AwsResult<T> {
        let result = result?;
        let mut st = lock(&self.state);
        if let Some((_, n)) = st.lost_answers.iter_mut().find(|(o, n)| *o == op && *n > 0) {
            *n -= 1;
            return Err(AwsError {
                op,
                kind: FailureKind::Transport,
                message: "injected: the answer was lost (connection reset)".into(),
            });
        }
        Ok(result)
    }
}

impl ObjectStore for FakeStore {
    async fn put_file(
        &self,
        key: &str,
        body: &FileRange,
        checksum: &Checksum,
        attrs: &ObjectAttributes,
    ) -> AwsResult<Stored> {
        self.enter("PutObject", format!("PutObject {key}"))?;
        let data = read_range("PutObject", body)?;
        if crc(checksum.algorithm, &data) != *checksum {
            return Err(bad_digest("PutObject"));
        }
        if self.object(key).is_some() {
            return Err(precondition_failed("PutObject"));
        }
        let stored = self.store(key, data, checksum.algorithm, attrs, false);
        self.answer("PutObject", Ok(stored))
    }

    async fn put_bytes(
        &self,
        key: &str,
        body: Vec<u8>,
        checksum: &Checksum,
        attrs: &ObjectAttributes,
    ) -> AwsResult<Stored> {
        self.enter("PutObject", format!("PutObject {key}"))?;
        if crc(checksum.algorithm, &body) != *checksum {
            return Err(bad_digest("PutObject"));
        }
        if self.object(key).is_some() {
            return Err(precondition_failed("PutObject"));
        }
        let stored = self.store(key, body, checksum.algorithm, attrs, false);
        self.answer("PutObject", Ok(stored))
    }

    async fn create_upload(
        &self,
        key: &str,
        algorithm: ChecksumAlgorithm,
        attrs: &ObjectAttributes,
    ) -> AwsResult<String> {
        self.enter(
            "CreateMultipartUpload",
            format!("CreateMultipartUpload {key}"),
        )?;
        let mut st = lock(&self.state);
        st.next += 1;
        let id = format!("upload-{}", st.next);
        st.uploads.insert(
            id.clone(),
            Upload {
                key: key.into(),
                algorithm,
                attrs: attrs.clone(),
                parts: BTreeMap::new(),
            },
        );
        Ok(id)
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        body: &FileRange,
        checksum: &Checksum,
    ) -> AwsResult<String> {
        const OP: &str = "UploadPart";
        self.enter(OP, format!("UploadPart {key} #{number}"))?;
        let data = read_range(OP, body)?;
        if crc(checksum.algorithm, &data) != *checksum {
            return Err(bad_digest(OP));
        }
        let mut st = lock(&self.state);
        st.next += 1;
        let etag = format!("\"etag-{}\"", st.next);
        let up = st
            .uploads
            .get_mut(upload_id)
            .filter(|u| u.key == key)
            .ok_or(AwsError {
                op: OP,
                kind: FailureKind::NoSuchUpload,
                message: "NoSuchUpload".into(),
            })?;
        up.parts.insert(number, (data, etag.clone()));
        Ok(etag)
    }

    async fn list_parts(&self, key: &str, upload_id: &str) -> AwsResult<Vec<ListedPart>> {
        const OP: &str = "ListParts";
        self.enter(OP, format!("ListParts {key}"))?;
        let st = lock(&self.state);
        let up = st
            .uploads
            .get(upload_id)
            .filter(|u| u.key == key)
            .ok_or(AwsError {
                op: OP,
                kind: FailureKind::NoSuchUpload,
                message: "NoSuchUpload".into(),
            })?;
        Ok(up
            .parts
            .iter()
            .map(|(n, (data, etag))| ListedPart {
                number: *n,
                etag: etag.clone(),
                size: data.len() as u64,
                checksum: Some(crc(up.algorithm, data).base64()),
            })
            .collect())
    }

    async fn complete_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
        full: &Checksum,
    ) -> AwsResult<Stored> {
        const OP: &str = "CompleteMultipartUpload";
        self.enter(OP, format!("CompleteMultipartUpload {key}"))?;
        let no_upload = || AwsError {
            op: OP,
            kind: FailureKind::NoSuchUpload,
            message: "NoSuchUpload".into(),
        };
        let invalid = |n: u32| AwsError {
            op: OP,
            kind: FailureKind::Rejected,
            message: format!("InvalidPart {n}"),
        };
        let (data, upload) = {
            let mut st = lock(&self.state);
            let u = st
                .uploads
                .get(upload_id)
                .filter(|u| u.key == key)
                .ok_or_else(no_upload)?;
            if st.objects.contains_key(key) {
                // The upload stays open, as on S3.
                return Err(precondition_failed(OP));
            }
            let mut data = Vec::new();
            let mut sums = Vec::new();
            for p in parts {
                let (bytes, etag) = u.parts.get(&p.number).ok_or_else(|| invalid(p.number))?;
                if *etag != p.etag || crc(u.algorithm, bytes) != p.checksum {
                    return Err(invalid(p.number));
                }
                sums.push((p.checksum, bytes.len() as u64));
                data.extend_from_slice(bytes);
            }
            if combine_parts(u.algorithm, sums) != *full {
                return Err(AwsError {
                    op: OP,
                    kind: FailureKind::Rejected,
                    message: "BadDigest: full-object checksum".into(),
                });
            }
            (data, st.uploads.remove(upload_id).ok_or_else(no_upload)?)
        };
        let stored = self.store(key, data, upload.algorithm, &upload.attrs, true);
        self.answer(OP, Ok(stored))
    }

    async fn abort_upload(&self, key: &str, upload_id: &str) -> AwsResult<()> {
        self.enter(
            "AbortMultipartUpload",
            format!("AbortMultipartUpload {key}"),
        )?;
        lock(&self.state).uploads.remove(upload_id);
        Ok(())
    }

    async fn head(&self, key: &str, _version_id: Option<&str>) -> AwsResult<ObjectHead> {
        const OP: &str = "HeadObject";
        self.enter(OP, format!("HeadObject {key}"))?;
        let st = lock(&self.state);
        let o = st.objects.get(key).ok_or(AwsError {
            op: OP,
            kind: FailureKind::NotFound,
            message: "404".into(),
        })?;
        Ok(ObjectHead {
            size: o.data.len() as u64,
            checksum: Some((o.checksum.algorithm.s3_name().into(), o.checksum.base64())),
            // S3 reports single PUTs as FULL_OBJECT too.
            checksum_type: Some("FULL_OBJECT".into()),
            version_id: Some(format!("v{}", o.version)),
        })
    }
}

#[derive(Debug, Default)]
struct TagsState {
    value: Option<String>,
    faults: Faults,
}

/// The instance's tag.
#[derive(Debug, Default)]
pub struct FakeTags {
    state: Mutex<TagsState>,
    journal: Journal,
}

impl FakeTags {
    pub fn new(journal: Journal) -> Self {
        Self {
            state: Mutex::default(),
            journal,
        }
    }

    pub fn value(&self) -> Option<String> {
        lock(&self.state).value.clone()
    }

    pub fn fail(&self, op: &'static str, kind: FailureKind, times: u32) {
        lock(&self.state).faults.0.push(Fault {
            op,
            kind,
            remaining: Some(times),
            matching: None,
        });
    }

    pub fn fail_always(&self, op: &'static str, kind: FailureKind) {
        lock(&self.state).faults.0.push(Fault {
            op,
            kind,
            remaining: None,
            matching: None,
        });
    }

    pub fn clear_faults(&self) {
        lock(&self.state).faults.0.clear();
    }
}

impl InstanceTags for FakeTags {
    async fn set_upload_pending(&self, sessions: u32) -> AwsResult<()> {
        self.journal.push(format!("CreateTags {sessions}"));
        let mut st = lock(&self.state);
        st.faults.check("CreateTags", "")?;
        st.value = Some(sessions.to_string());
        Ok(())
    }

    async fn remove_upload_pending(&self) -> AwsResult<()> {
        self.journal.push("DeleteTags".into());
        let mut st = lock(&self.state);
        st.faults.check("DeleteTags", "")?;
        st.value = None;
        Ok(())
    }
}
