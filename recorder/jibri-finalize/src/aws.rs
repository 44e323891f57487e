//! The AWS adapters of the ports: S3 (the recordings bucket) and EC2 (this instance's tag),
//! the SDK clients they are built on, and the one place where SDK errors are classified.

use crate::config::Config;
use crate::core::checksum::{Checksum, ChecksumAlgorithm};
use crate::core::retry::FailureKind;
use crate::core::session::{ListedPart, ObjectHead};
use crate::ports::{
    AwsError, AwsResult, CompletedPart, FileRange, InstanceTags, ObjectAttributes, ObjectStore,
    Stored, TAG_UPLOAD_PENDING,
};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{
    ChecksumAlgorithm as S3Algo, ChecksumMode, ChecksumType, CompletedMultipartUpload,
    CompletedPart as S3Part,
};
use std::fmt::Debug;
use std::time::Duration;

/// Read buffer of a streamed upload body: big enough for few reads, small enough that
/// `CONCURRENCY` streams cost little memory.
const STREAM_BUFFER: usize = 256 * 1024;

/// The SDK configuration: the region and endpoint from the config if given (else the SDK's
/// chains), no SDK retries (the uploader retries, see [`crate::core::retry`]), and the
/// attempt timeout.
pub async fn sdk_config(cfg: &Config) -> SdkConfig {
    sdk_config_for(
        cfg.region.as_deref(),
        cfg.endpoint_url.as_deref(),
        cfg.attempt_timeout,
    )
    .await
}

pub async fn sdk_config_for(
    region: Option<&str>,
    endpoint_url: Option<&str>,
    attempt_timeout: Duration,
) -> SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(10))
        .operation_attempt_timeout(attempt_timeout)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .timeout_config(timeouts);
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_owned()));
    }
    if let Some(e) = endpoint_url {
        loader = loader.endpoint_url(e);
    }
    loader.load().await
}

/// This instance's id from the instance metadata service (IMDSv2: the client gets a
/// session token first). Never called when `INSTANCE_ID` is set, so tests never reach
/// 169.254.169.254.
pub async fn instance_id_from_imds() -> Result<String, String> {
    let client = aws_config::imds::Client::builder().build();
    client
        .get("/latest/meta-data/instance-id")
        .await
        .map(String::from)
        .map_err(|e| format!("instance metadata service: {e}"))
}

pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Store {
    pub fn new(sdk: &SdkConfig, cfg: &Config) -> Self {
        let conf = aws_sdk_s3::config::Builder::from(sdk)
            // Checksums are computed here, from the bytes read from disk, and always sent:
            // the SDK must neither add its own nor wrap the body in aws-chunked encoding.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .force_path_style(cfg.endpoint_url.is_some())
            .build();
        Self {
            client: aws_sdk_s3::Client::from_conf(conf),
            bucket: cfg.bucket.clone(),
        }
    }

    pub fn from_client(client: aws_sdk_s3::Client, bucket: &str) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

fn s3_algo(a: ChecksumAlgorithm) -> S3Algo {
    match a {
        ChecksumAlgorithm::Crc64Nvme => S3Algo::Crc64Nvme,
        ChecksumAlgorithm::Crc32 => S3Algo::Crc32,
    }
}

/// S3 names the only version of an object in an unversioned bucket `null`; asking for that
/// version explicitly is refused by some implementations, and the latest version is the
/// same object: treat it as no version.
fn real_version(v: Option<String>) -> Option<String> {
    v.filter(|v| !v.is_empty() && v != "null")
}

async fn stream(op: &'static str, r: &FileRange) -> AwsResult<ByteStream> {
    ByteStream::read_from()
        .path(&r.path)
        .offset(r.offset)
        .length(Length::Exact(r.len))
        .buffer_size(STREAM_BUFFER)
        .build()
        .await
        .map_err(|e| AwsError {
            op,
            kind: FailureKind::Rejected,
            message: format!("reading {}: {e}", r.path.display()),
        })
}

/// Sets the checksum value of `$c` on a request builder with the setter of its algorithm.
macro_rules! with_checksum {
    ($req:expr, $c:expr) => {{
        let c: &Checksum = $c;
        let req = $req.checksum_algorithm(s3_algo(c.algorithm));
        match c.algorithm {
            ChecksumAlgorithm::Crc64Nvme => req.checksum_crc64_nvme(c.base64()),
            ChecksumAlgorithm::Crc32 => req.checksum_crc32(c.base64()),
        }
    }};
}

impl S3Store {
    /// One `PutObject` with its checksum and attributes: what `put_file` and `put_bytes` share.
    async fn put(
        &self,
        key: &str,
        data: ByteStream,
        len: i64,
        checksum: &Checksum,
        attrs: &ObjectAttributes,
    ) -> AwsResult<Stored> {
        const OP: &str = "PutObject";
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(data)
            .content_length(len)
            .content_type(attrs.content_type);
        for (k, v) in &attrs.metadata {
            req = req.metadata(k, v);
        }
        // Create only: never replace an object (another meeting's recording, or an
        // earlier attempt's); S3 answers 412 if the key is taken, see the uploader.
        let out = with_checksum!(req.if_none_match("*"), checksum)
            .send()
            .await
            .map_err(|e| classify(OP, e))?;
        Ok(Stored {
            version_id: real_version(out.version_id),
        })
    }
}

impl ObjectStore for S3Store {
    async fn put_file(
        &self,
        key: &str,
        body: &FileRange,
        checksum: &Checksum,
        attrs: &ObjectAttributes,
    ) -> AwsResult<Stored> {
        let data = stream("PutObject", body).await?;
        self.put(key, data, body.len as i64, checksum, attrs).await
    }

    async fn put_bytes(
        &self,
        key: &str,
        body: Vec<u8>,
        checksum: &Checksum,
        attrs: &ObjectAttributes,
    ) -> AwsResult<Stored> {
        let len = body.len() as i64;
        self.put(key, ByteStream::from(body), len, checksum, attrs)
            .await
    }

    async fn create_upload(
        &self,
        key: &str,
        algorithm: ChecksumAlgorithm,
        attrs: &ObjectAttributes,
    ) -> AwsResult<String> {
        const OP: &str = "CreateMultipartUpload";
        let mut req = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(attrs.content_type)
            .checksum_algorithm(s3_algo(algorithm))
            .checksum_type(ChecksumType::FullObject);
        for (k, v) in &attrs.metadata {
            req = req.metadata(k, v);
        }
        let out = req.send().await.map_err(|e| classify(OP, e))?;
        out.upload_id.ok_or_else(|| AwsError {
            op: OP,
            kind: FailureKind::Server,
            message: "no UploadId in the answer".into(),
        })
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
        let req = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number as i32)
            .body(stream(OP, body).await?)
            .content_length(body.len as i64);
        let out = with_checksum!(req, checksum)
            .send()
            .await
            .map_err(|e| classify(OP, e))?;
        out.e_tag.ok_or_else(|| AwsError {
            op: OP,
            kind: FailureKind::Server,
            message: format!("no ETag for part {number}"),
        })
    }

    async fn list_parts(&self, key: &str, upload_id: &str) -> AwsResult<Vec<ListedPart>> {
        const OP: &str = "ListParts";
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .client
                .list_parts()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .set_part_number_marker(marker.clone())
                .send()
                .await
                .map_err(|e| classify(OP, e))?;
            for p in out.parts() {
                let (Some(n), Some(etag)) = (p.part_number, p.e_tag.clone()) else {
                    continue;
                };
                let checksum = p
                    .checksum_crc64_nvme
                    .clone()
                    .or_else(|| p.checksum_crc32.clone());
                parts.push(ListedPart {
                    number: n as u32,
                    etag,
                    size: p.size.unwrap_or(-1).max(0) as u64,
                    checksum,
                });
            }
            match (out.is_truncated, out.next_part_number_marker) {
                (Some(true), Some(next)) if Some(&next) != marker.as_ref() => marker = Some(next),
                _ => break,
            }
        }
        Ok(parts)
    }

    async fn complete_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
        full: &Checksum,
    ) -> AwsResult<Stored> {
        const OP: &str = "CompleteMultipartUpload";
        let s3_parts = parts
            .iter()
            .map(|p| {
                let b = S3Part::builder()
                    .part_number(p.number as i32)
                    .e_tag(&p.etag);
                match p.checksum.algorithm {
                    ChecksumAlgorithm::Crc64Nvme => b.checksum_crc64_nvme(p.checksum.base64()),
                    ChecksumAlgorithm::Crc32 => b.checksum_crc32(p.checksum.base64()),
                }
                .build()
            })
            .collect::<Vec<_>>();
        let req = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            // Create only, as for PutObject (CreateMultipartUpload takes no condition: S3
            // checks it when the object would come into being).
            .if_none_match("*")
            .checksum_type(ChecksumType::FullObject)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(s3_parts))
                    .build(),
            );
        let req = match full.algorithm {
            ChecksumAlgorithm::Crc64Nvme => req.checksum_crc64_nvme(full.base64()),
            ChecksumAlgorithm::Crc32 => req.checksum_crc32(full.base64()),
        };
        let out = req.send().await.map_err(|e| classify(OP, e))?;
        Ok(Stored {
            version_id: real_version(out.version_id),
        })
    }

    async fn abort_upload(&self, key: &str, upload_id: &str) -> AwsResult<()> {
        const OP: &str = "AbortMultipartUpload";
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .map_err(|e| classify(OP, e))?;
        Ok(())
    }

    async fn head(&self, key: &str, version_id: Option<&str>) -> AwsResult<ObjectHead> {
        const OP: &str = "HeadObject";
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(real_version(version_id.map(str::to_owned)))
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .map_err(|e| classify(OP, e))?;
        let checksum = match (&out.checksum_crc64_nvme, &out.checksum_crc32) {
            (Some(v), _) => Some(("CRC64NVME".to_owned(), v.clone())),
            (None, Some(v)) => Some(("CRC32".to_owned(), v.clone())),
            (None, None) => None,
        };
        Ok(ObjectHead {
            size: out.content_length.unwrap_or(-1).max(0) as u64,
            checksum,
            checksum_type: out.checksum_type.map(|t| t.as_str().to_owned()),
            version_id: real_version(out.version_id),
        })
    }
}

pub struct Ec2Tags {
    client: aws_sdk_ec2::Client,
    instance_id: String,
}

impl Ec2Tags {
    pub fn new(sdk: &SdkConfig, instance_id: &str) -> Self {
        Self {
            client: aws_sdk_ec2::Client::new(sdk),
            instance_id: instance_id.into(),
        }
    }

    pub fn from_client(client: aws_sdk_ec2::Client, instance_id: &str) -> Self {
        Self {
            client,
            instance_id: instance_id.into(),
        }
    }
}

impl InstanceTags for Ec2Tags {
    async fn set_upload_pending(&self, sessions: u32) -> AwsResult<()> {
        let tag = aws_sdk_ec2::types::Tag::builder()
            .key(TAG_UPLOAD_PENDING)
            .value(sessions.to_string())
            .build();
        self.client
            .create_tags()
            .resources(&self.instance_id)
            .tags(tag)
            .send()
            .await
            .map_err(|e| classify("CreateTags", e))?;
        Ok(())
    }

    async fn remove_upload_pending(&self) -> AwsResult<()> {
        // Key only: removes the tag whatever its value (the IAM policy allows this key only).
        let tag = aws_sdk_ec2::types::Tag::builder()
            .key(TAG_UPLOAD_PENDING)
            .build();
        self.client
            .delete_tags()
            .resources(&self.instance_id)
            .tags(tag)
            .send()
            .await
            .map_err(|e| classify("DeleteTags", e))?;
        Ok(())
    }
}

/// The tag of an instance whose id could not be learnt: every call fails, so the uploader
/// keeps the files and the session pending (it never uploads without the tag).
pub struct UnknownInstance(pub String);

impl InstanceTags for UnknownInstance {
    async fn set_upload_pending(&self, _sessions: u32) -> AwsResult<()> {
        Err(AwsError {
            op: "CreateTags",
            kind: FailureKind::Rejected,
            message: format!("instance id unknown: {}", self.0),
        })
    }

    async fn remove_upload_pending(&self) -> AwsResult<()> {
        Err(AwsError {
            op: "DeleteTags",
            kind: FailureKind::Rejected,
            message: format!("instance id unknown: {}", self.0),
        })
    }
}

/// Classifies any SDK error of either client (both share the smithy response type).
pub fn classify<E>(op: &'static str, err: SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + Debug + std::error::Error + 'static,
{
    let message = aws_sdk_s3::error::DisplayErrorContext(&err).to_string();
    let kind = match &err {
        SdkError::TimeoutError(_) => FailureKind::Timeout,
        SdkError::DispatchFailure(d) if d.is_timeout() => FailureKind::Timeout,
        SdkError::DispatchFailure(d) if d.is_user() => FailureKind::Rejected,
        SdkError::DispatchFailure(_) => FailureKind::Transport,
        // A response that could not be read or parsed (cut connection, garbage): try again.
        SdkError::ResponseError(_) => FailureKind::Transport,
        SdkError::ServiceError(se) => {
            classify_code(se.err().code().unwrap_or(""), se.raw().status().as_u16())
        }
        _ => FailureKind::Rejected,
    };
    AwsError { op, kind, message }
}

/// S3 and EC2 error codes (and HTTP status when there is no code) to failure kinds.
pub fn classify_code(code: &str, status: u16) -> FailureKind {
    match code {
        "SlowDown"
        | "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "TooManyRequests"
        | "RequestThrottled"
        | "RequestThrottledException"
        | "Throttled" => FailureKind::Throttled,
        "NoSuchUpload" => FailureKind::NoSuchUpload,
        // `If-None-Match: *` and the key is taken.
        "PreconditionFailed" => FailureKind::AlreadyExists,
        // Two conditional writes of one key at once (409): the retry sees who won.
        "ConditionalRequestConflict" => FailureKind::Server,
        "NoSuchKey" | "NotFound" | "NoSuchBucket" | "NoSuchVersion" => FailureKind::NotFound,
        "InternalError" | "InternalFailure" | "ServiceUnavailable" | "Unavailable" => {
            FailureKind::Server
        }
        // "Your socket connection to the server was not read from or written to within the
        // timeout period": the request, not the data, is at fault.
        "RequestTimeout" | "RequestTimeTooSkewed" => FailureKind::Transport,
        _ => match status {
            412 => FailureKind::AlreadyExists,
            429 | 503 => FailureKind::Throttled,
            404 => FailureKind::NotFound,
            500..=599 => FailureKind::Server,
            _ => FailureKind::Rejected,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_and_ec2_codes_are_classified_once() {
        assert_eq!(classify_code("SlowDown", 503), FailureKind::Throttled);
        assert_eq!(
            classify_code("RequestLimitExceeded", 503),
            FailureKind::Throttled
        );
        assert_eq!(classify_code("", 503), FailureKind::Throttled);
        assert_eq!(classify_code("InternalError", 500), FailureKind::Server);
        assert_eq!(classify_code("", 502), FailureKind::Server);
        assert_eq!(
            classify_code("NoSuchUpload", 404),
            FailureKind::NoSuchUpload
        );
        assert_eq!(classify_code("NoSuchBucket", 404), FailureKind::NotFound);
        assert_eq!(classify_code("", 404), FailureKind::NotFound);
        assert_eq!(classify_code("RequestTimeout", 400), FailureKind::Transport);
        assert_eq!(classify_code("AccessDenied", 403), FailureKind::Rejected);
        assert_eq!(classify_code("BadDigest", 400), FailureKind::Rejected);
        assert_eq!(
            classify_code("InvalidInstanceID.NotFound", 400),
            FailureKind::Rejected
        );
        assert_eq!(
            classify_code("UnauthorizedOperation", 403),
            FailureKind::Rejected
        );
    }

    #[test]
    fn a_taken_key_and_a_conditional_write_race_are_told_apart() {
        assert_eq!(
            classify_code("PreconditionFailed", 412),
            FailureKind::AlreadyExists
        );
        assert_eq!(classify_code("", 412), FailureKind::AlreadyExists);
        assert_eq!(
            classify_code("ConditionalRequestConflict", 409),
            FailureKind::Server,
            "retried: the next attempt sees the winner's object"
        );
    }
}
