//! Ports: what the uploader needs from S3 and EC2, in its own words. One AWS adapter each
//! ([`crate::aws`]) and one hand-written fake ([`crate::fake`]) that records calls and
//! injects errors.

use crate::core::checksum::{Checksum, ChecksumAlgorithm};
use crate::core::retry::FailureKind;
use crate::core::session::{ListedPart, ObjectHead};
use std::future::Future;
use std::path::PathBuf;

/// Tag the controller and the guard read: an instance with it (value non-empty and not `0`)
/// is busy. Defined once, in the decision core both sides depend on.
pub use jibri_core::domain::TAG_UPLOAD_PENDING;

/// An AWS call that failed, classified once (see [`crate::aws::classify_code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op}: {message}")]
pub struct AwsError {
    pub op: &'static str,
    pub kind: FailureKind,
    pub message: String,
}

pub type AwsResult<T> = Result<T, AwsError>;

/// A byte range of a local file; the adapter streams it from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRange {
    pub path: PathBuf,
    pub offset: u64,
    pub len: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stored {
    pub version_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    pub number: u32,
    pub etag: String,
    pub checksum: Checksum,
}

/// What an object is created with besides its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectAttributes {
    pub content_type: &'static str,
    /// User metadata, without the `x-amz-meta-` prefix.
    pub metadata: Vec<(String, String)>,
}

/// The recordings bucket. Every upload carries the checksum of its bytes, which S3 verifies
/// on receipt; multipart uploads are created with a full-object checksum of `algorithm`.
///
/// Writes only create: `put_file`, `put_bytes` and `complete_upload` never replace an
/// object (`If-None-Match: *`) and fail with [`FailureKind::AlreadyExists`] when the key
/// holds one already (a multipart upload then stays open: abort it). Nothing here reads an
/// object's bytes; `head` gives its size and checksum only.
pub trait ObjectStore: Send + Sync + 'static {
    /// One PUT of a whole (small) file.
    fn put_file(
        &self,
        key: &str,
        body: &FileRange,
        checksum: &Checksum,
        attrs: &ObjectAttributes,
    ) -> impl Future<Output = AwsResult<Stored>> + Send;
    /// One PUT of bytes made here (the manifest).
    fn put_bytes(
        &self,
        key: &str,
        body: Vec<u8>,
        checksum: &Checksum,
        attrs: &ObjectAttributes,
    ) -> impl Future<Output = AwsResult<Stored>> + Send;
    /// Starts a multipart upload; returns its id.
    fn create_upload(
        &self,
        key: &str,
        algorithm: ChecksumAlgorithm,
        attrs: &ObjectAttributes,
    ) -> impl Future<Output = AwsResult<String>> + Send;
    /// Uploads one part; returns its ETag.
    fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        body: &FileRange,
        checksum: &Checksum,
    ) -> impl Future<Output = AwsResult<String>> + Send;
    /// Every part S3 holds for the upload, in order.
    fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = AwsResult<Vec<ListedPart>>> + Send;
    /// Completes the upload; S3 checks `full` against the parts.
    fn complete_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
        full: &Checksum,
    ) -> impl Future<Output = AwsResult<Stored>> + Send;
    fn abort_upload(
        &self,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = AwsResult<()>> + Send;
    /// The object's size and full-object checksum as S3 reports them (HeadObject with
    /// checksum mode enabled).
    fn head(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> impl Future<Output = AwsResult<ObjectHead>> + Send;
}

/// This instance's `upload-pending` tag.
pub trait InstanceTags: Send + Sync + 'static {
    fn set_upload_pending(&self, sessions: u32) -> impl Future<Output = AwsResult<()>> + Send;
    fn remove_upload_pending(&self) -> impl Future<Output = AwsResult<()>> + Send;
}
