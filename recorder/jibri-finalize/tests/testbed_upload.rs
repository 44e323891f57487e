//! `jibri-finalize` as Jibri runs it (the binary, one argument), against the local AWS test
//! bed's S3 and EC2 (moto), directly or through a loopback proxy that injects errors,
//! stalls and corruption. Every test has its own bucket and its own EC2 instance, whose
//! `jibri-autoscaler:upload-pending` tag is read back from EC2.

mod common;

use common::*;
use std::time::{Duration, Instant};

const JIBRI_METADATA: &str = r#"{"meeting_url":"https://meet.example.org/acme/Quarterly%20Review","participants":[{"user":{"avatar":"https://example.org/a.png","name":"Zoë Müller","id":"u-1","email":"zoe@example.org"},"group":"acme"},{"user":{"name":"Bob","id":"u-2"}}],"share":true}"#;
const MP4: &str = "quarterly review_2026-11-21-10-00-00.mp4";

/// Every S3 object of the session matches the given bytes, and S3's full-object CRC-32
/// (computed by moto from the stored bytes) is the one the manifest records.
async fn assert_manifest_matches(
    r: &Recorder,
    session: &str,
    expect_files: usize,
) -> serde_json::Value {
    let prefix = r.prefix(session);
    let manifest: serde_json::Value =
        serde_json::from_slice(&get(&r.s3, &r.bucket, &format!("{prefix}manifest.json")).await)
            .unwrap();
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(files.len(), expect_files);
    for f in files {
        let key = f["key"].as_str().unwrap();
        let head =
            r.s3.head_object()
                .bucket(&r.bucket)
                .key(key)
                .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
                .send()
                .await
                .unwrap();
        assert_eq!(head.content_length(), f["size"].as_i64());
        assert_eq!(head.checksum_crc32(), f["checksum"].as_str(), "{key}");
        assert_eq!(f["checksum_algorithm"], "CRC32");
    }
    manifest
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_is_uploaded_verified_and_deleted_and_the_tag_cleared() {
    let r = Recorder::new("basic").await;
    let proxy = FaultProxy::start().await;
    r.write_config(&proxy.url, &[]);
    let dir = r.session_dir("qwxzabcdefghijkl");
    let mp4 = pattern(12 * MIB as usize, 1);
    std::fs::write(dir.join(MP4), &mp4).unwrap();
    std::fs::write(dir.join("metadata.json"), JIBRI_METADATA).unwrap();

    let out = r.run(&[dir.to_str().unwrap()]).await;
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));

    let prefix = r.prefix("qwxzabcdefghijkl");
    assert_eq!(
        r.keys().await,
        vec![
            format!("{prefix}manifest.json"),
            format!("{prefix}metadata.json"),
            format!("{prefix}{MP4}")
        ]
    );
    assert_eq!(get(&r.s3, &r.bucket, &format!("{prefix}{MP4}")).await, mp4);
    assert_eq!(
        get(&r.s3, &r.bucket, &format!("{prefix}metadata.json")).await,
        JIBRI_METADATA.as_bytes()
    );
    let head =
        r.s3.head_object()
            .bucket(&r.bucket)
            .key(format!("{prefix}{MP4}"))
            .send()
            .await
            .unwrap();
    assert_eq!(head.content_type(), Some("video/mp4"));
    let md = head.metadata().unwrap();
    // Values are percent-encoded once (a '%' too), so decoding once gives the original.
    assert_eq!(
        md["jibri-meeting-url"],
        "https://meet.example.org/acme/Quarterly%2520Review"
    );
    assert_eq!(md["jibri-meeting-name"], "Quarterly Review");
    // Every recorder may read object metadata: no participant names in it (issue 14).
    assert!(!md.contains_key("jibri-participants"), "{md:?}");
    assert!(md.values().all(|v| !v.contains("Bob") && !v.contains("Zo")));
    assert_eq!(md["jibri-participant-count"], "2");
    assert_eq!(md["jibri-instance-id"], r.instance);
    assert_eq!(md["jibri-session"], "qwxzabcdefghijkl");

    let manifest = assert_manifest_matches(&r, "qwxzabcdefghijkl", 2).await;
    assert_eq!(manifest["instance_id"], r.instance.as_str());
    assert_eq!(manifest["meeting_name"], "Quarterly Review");
    assert_eq!(manifest["participants"][0]["name"], "Zoë Müller");

    // Order on the wire: tag, then the data, the manifest last, then the tag removed.
    let log: Vec<String> = proxy.log().into_iter().map(|l| l.line).collect();
    let first_tag = log
        .iter()
        .position(|l| l.contains("Action=CreateTags"))
        .expect("tagged");
    let first_s3 = log
        .iter()
        .position(|l| (l.starts_with("PUT") || l.starts_with("POST /")) && !l.contains("Action="))
        .expect("uploaded");
    assert!(first_tag < first_s3, "{log:#?}");
    let writes: Vec<&String> = log
        .iter()
        .filter(|l| (l.starts_with("PUT") || l.starts_with("POST /")) && !l.contains("Action="))
        .collect();
    assert!(
        writes.last().unwrap().contains("manifest.json"),
        "the manifest is the last write: {writes:#?}"
    );
    assert!(
        log.last().unwrap().contains("Action=DeleteTags"),
        "{log:#?}"
    );

    assert!(!dir.exists(), "verified: local copies deleted");
    assert!(r.marker("qwxzabcdefghijkl").is_none());
    assert_eq!(r.tag().await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_recording_streams_through_in_parts_with_bounded_memory() {
    // 320 MB (see recorder/README.md: the 2 GB run is `make bench-upload`). A sparse file
    // with a stamp per MiB: no disk to speak of, every part different.
    const LEN: u64 = 320 * MIB + 12_345;
    let r = Recorder::new("large").await;
    r.write_config(
        &endpoint(),
        &[
            ("PART_SIZE", "16MiB"),
            ("MULTIPART_THRESHOLD", "16MiB"),
            ("CONCURRENCY", "4"),
        ],
    );
    let dir = r.session_dir("largesession");
    write_sparse(&dir.join(MP4), LEN, 77);

    let mut child = r
        .command(&[dir.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let started = Instant::now();
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = peak_rss_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let secs = started.elapsed().as_secs_f64();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    eprintln!(
        "320 MB in {secs:.1} s ({:.0} MB/s), peak RSS {} MiB",
        LEN as f64 / 1e6 / secs,
        peak / 1024
    );
    assert!(
        peak < 64 * 1024,
        "peak RSS {peak} KiB: parts must stream from disk, not sit in memory"
    );

    let prefix = r.prefix("largesession");
    assert_sparse_object(&r.s3, &r.bucket, &format!("{prefix}{MP4}"), LEN, 77).await;
    let head =
        r.s3.head_object()
            .bucket(&r.bucket)
            .key(format!("{prefix}{MP4}"))
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
    assert_eq!(
        head.checksum_type().map(|t| t.as_str()),
        Some("FULL_OBJECT")
    );
    assert!(
        head.e_tag().unwrap().ends_with("-21\""),
        "21 parts of 16 MiB: {:?}",
        head.e_tag()
    );
    assert_manifest_matches(&r, "largesession", 1).await;
    assert!(!dir.exists());
    assert_eq!(r.tag().await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn many_small_files_all_arrive_under_one_manifest() {
    let r = Recorder::new("many").await;
    let dir = r.session_dir("manysmallfiles");
    let sub = dir.join("chat");
    std::fs::create_dir_all(&sub).unwrap();
    let mut expected = Vec::new();
    for i in 0..250u64 {
        let (name, len) = if i % 5 == 0 {
            (format!("chat/part-{i:03}.txt"), (i * 97) % 4096)
        } else {
            (format!("segment-{i:03}.bin"), (i * 7919) % 40_000)
        };
        let data = pattern(len as usize, i);
        std::fs::write(dir.join(&name), &data).unwrap();
        expected.push((name, data));
    }
    std::fs::write(dir.join("metadata.json"), JIBRI_METADATA).unwrap();
    let out = r.run(&[dir.to_str().unwrap()]).await;
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    let prefix = r.prefix("manysmallfiles");
    assert_eq!(r.keys().await.len(), 252);
    for (name, data) in expected.iter().step_by(25) {
        assert_eq!(
            &get(&r.s3, &r.bucket, &format!("{prefix}{name}")).await,
            data,
            "{name}"
        );
    }
    assert_manifest_matches(&r, "manysmallfiles", 251).await;
    assert!(!dir.exists(), "files and the emptied subdirectory removed");
    assert_eq!(r.tag().await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_killed_midway_leaves_the_tag_and_is_resumed_by_the_retry() {
    let r = Recorder::new("killed").await;
    let proxy = FaultProxy::start().await;
    r.write_config(&proxy.url, &[("CONCURRENCY", "2")]);
    let dir = r.session_dir("killedsession");
    let mp4 = pattern((60 * MIB) as usize, 9); // 12 parts of 5 MiB
    std::fs::write(dir.join(MP4), &mp4).unwrap();
    // Parts from the 7th on hang: the uploader is killed while they do.
    proxy.add(
        Rule::new(
            &["PUT ", "partNumber="],
            Fault::Stall(Duration::from_secs(120)),
        )
        .skip(6),
    );

    let mut child = r
        .command(&[dir.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let parts = r
            .marker("killedsession")
            .and_then(|m| {
                m["files"][MP4]["multipart"]["parts"]
                    .as_object()
                    .map(|p| p.len())
            })
            .unwrap_or(0);
        if parts >= 6 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no progress recorded; proxy log: {:#?}",
            proxy.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap(); // SIGKILL: no cleanup of any kind
    child.wait().unwrap();

    assert_eq!(
        r.tag().await.as_deref(),
        Some("1"),
        "a crash mid-upload leaves the instance busy"
    );
    assert_eq!(
        std::fs::read(dir.join(MP4)).unwrap(),
        mp4,
        "nothing deleted"
    );
    assert!(r.keys().await.is_empty(), "no object completed");

    proxy.clear_rules();
    proxy.clear_log();
    let out = r.run(&["--retry-pending"]).await;
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    let sent = proxy.count("partNumber=");
    assert_eq!(
        proxy.count("?uploads"),
        0,
        "the same multipart upload goes on (no CreateMultipartUpload)"
    );
    assert_eq!(proxy.count("GET /"), 1, "one ListParts");
    assert!(
        sent <= 6,
        "only the parts S3 did not have are sent again ({sent} of 12)"
    );
    let prefix = r.prefix("killedsession");
    assert_eq!(get(&r.s3, &r.bucket, &format!("{prefix}{MP4}")).await, mp4);
    assert_manifest_matches(&r, "killedsession", 1).await;
    assert!(!dir.exists());
    assert_eq!(r.tag().await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_500s_and_throttling_are_retried_until_the_session_is_safe() {
    let r = Recorder::new("flaky").await;
    let proxy = FaultProxy::start().await;
    r.write_config(&proxy.url, &[]);
    let dir = r.session_dir("flakysession");
    let mp4 = pattern((17 * MIB) as usize, 3);
    std::fs::write(dir.join(MP4), &mp4).unwrap();
    std::fs::write(dir.join("metadata.json"), JIBRI_METADATA).unwrap();
    proxy.add(
        Rule::new(
            &["PUT ", "partNumber=2"],
            Fault::Error(500, "InternalError"),
        )
        .times(2),
    );
    proxy.add(Rule::new(&["PUT ", "partNumber=3"], Fault::Error(503, "SlowDown")).times(2));
    proxy.add(Rule::new(&["PUT ", "metadata.json"], Fault::Error(503, "SlowDown")).times(1));
    proxy.add(Rule::new(&["POST ", "uploadId="], Fault::Error(500, "InternalError")).times(1));
    proxy.add(Rule::new(&["HEAD "], Fault::Error(503, "SlowDown")).times(1));
    proxy.add(
        Rule::new(
            &["Action=CreateTags"],
            Fault::Error(503, "RequestLimitExceeded"),
        )
        .times(1),
    );

    let out = r.run(&[dir.to_str().unwrap()]).await;
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    let injected = proxy.log().iter().filter(|l| l.injected).count();
    assert_eq!(
        injected,
        8,
        "every injected error was met with a retry: {:#?}",
        proxy.log()
    );
    assert!(stderr(&out).contains("retrying"));
    let prefix = r.prefix("flakysession");
    assert_eq!(get(&r.s3, &r.bucket, &format!("{prefix}{MP4}")).await, mp4);
    assert_manifest_matches(&r, "flakysession", 2).await;
    assert!(!dir.exists());
    assert_eq!(r.tag().await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outage_keeps_files_and_tag_counting_sessions_until_the_timer_succeeds() {
    let r = Recorder::new("outage").await;
    let proxy = FaultProxy::start().await;
    r.write_config(&proxy.url, &[("MAX_ATTEMPTS", "3")]);
    proxy.add(Rule::new(
        &["PUT /"],
        Fault::Error(503, "ServiceUnavailable"),
    ));
    let a = r.session_dir("sessiona");
    let b = r.session_dir("sessionb");
    for d in [&a, &b] {
        std::fs::write(d.join(MP4), pattern(3000, 5)).unwrap();
        std::fs::write(d.join("metadata.json"), JIBRI_METADATA).unwrap();
    }

    let out = r.run(&[a.to_str().unwrap()]).await;
    assert_eq!(exit_code(&out), 1, "{}", stderr(&out));
    assert_eq!(r.tag().await.as_deref(), Some("1"));
    let out = r.run(&[b.to_str().unwrap()]).await;
    assert_eq!(exit_code(&out), 1);
    assert_eq!(
        r.tag().await.as_deref(),
        Some("2"),
        "the value counts the pending sessions"
    );
    for d in [&a, &b] {
        assert_eq!(std::fs::read_dir(d).unwrap().count(), 2, "files kept");
    }
    let marker = r.marker("sessiona").unwrap();
    assert!(
        marker["attempts"].as_u64().unwrap() >= 2,
        "B's finalize retried A too: {marker}"
    );
    assert!(
        marker["last_error"]
            .as_str()
            .unwrap()
            .contains("ServiceUnavailable"),
        "{marker}"
    );

    let status = r.run(&["--status"]).await;
    assert_eq!(exit_code(&status), 1);
    let listing = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        listing.contains("sessiona") && listing.contains("sessionb"),
        "{listing}"
    );

    proxy.clear_rules();
    let out = r.run(&["--retry-pending"]).await;
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    assert!(!a.exists() && !b.exists());
    assert_eq!(r.tag().await, None);
    assert_manifest_matches(&r, "sessiona", 2).await;
    assert_manifest_matches(&r, "sessionb", 2).await;
    let status = r.run(&["--status"]).await;
    assert_eq!(exit_code(&status), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_part_corrupted_on_the_way_is_caught_and_nothing_is_deleted() {
    // AWS would refuse the part at once (BadDigest); moto stores it, and the full-object
    // checksum it computes from the stored bytes no longer matches the local one.
    let r = Recorder::new("corrupt").await;
    let proxy = FaultProxy::start().await;
    r.write_config(&proxy.url, &[]);
    let dir = r.session_dir("corruptsession");
    let mp4 = pattern((11 * MIB) as usize, 4);
    std::fs::write(dir.join(MP4), &mp4).unwrap();
    proxy.add(Rule::new(&["PUT ", "partNumber=2"], Fault::Corrupt).times(1));
    let out = r.run(&[dir.to_str().unwrap()]).await;
    assert_eq!(exit_code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not the local file"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(dir.join(MP4)).unwrap(), mp4, "kept");
    assert_eq!(r.tag().await.as_deref(), Some("1"));
    assert!(
        !r.keys().await.iter().any(|k| k.ends_with("manifest.json")),
        "no manifest for an unverified session"
    );

    let out = r.run(&["--retry-pending"]).await;
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    // Objects are created, never replaced (issue 14): the bad object moto kept (AWS would
    // have refused the part) stays, and the verified copy is where the manifest says.
    let manifest = assert_manifest_matches(&r, "corruptsession", 1).await;
    let key = manifest["files"][0]["key"].as_str().unwrap();
    assert_eq!(get(&r.s3, &r.bucket, key).await, mp4);
    let canonical = format!("{}{MP4}", r.prefix("corruptsession"));
    assert_ne!(key, canonical);
    assert_ne!(
        get(&r.s3, &r.bucket, &canonical).await,
        mp4,
        "the unverified object is left as it is, not overwritten"
    );
    assert!(!dir.exists());
    assert_eq!(r.tag().await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_file_keeps_the_whole_session() {
    let r = Recorder::new("unreadable").await;
    let dir = r.session_dir("unreadablesession");
    std::fs::write(dir.join(MP4), pattern(4000, 6)).unwrap();
    std::fs::write(dir.join("metadata.json"), JIBRI_METADATA).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join(MP4), std::fs::Permissions::from_mode(0o000)).unwrap();
    let mut cmd = r.command(&[dir.to_str().unwrap()]);
    // Root reads anything: run as an unprivileged user, as Jibri does.
    if std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(1)
        == 0
    {
        std::os::unix::process::CommandExt::uid(&mut cmd, 65534);
        std::os::unix::process::CommandExt::gid(&mut cmd, 65534);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_eq!(exit_code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Permission denied"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        2,
        "the readable file, verified in S3, is kept too: the session is not complete"
    );
    assert!(r.keys().await.iter().all(|k| !k.ends_with("manifest.json")));
    assert_eq!(r.tag().await.as_deref(), Some("1"));
    assert!(r.marker("unreadablesession").unwrap()["last_error"]
        .as_str()
        .unwrap()
        .contains(MP4));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pending_directory_that_cannot_be_written_still_protects_the_recording() {
    // "Disk full" where the markers live: /dev/full is no directory, nothing can be created under it.
    let r = Recorder::new("nodisk").await;
    r.write_config(&endpoint(), &[("PENDING_DIR", "/dev/full/jibri-finalize")]);
    let dir = r.session_dir("nodisksession");
    let mp4 = pattern((6 * MIB) as usize, 8);
    std::fs::write(dir.join(MP4), &mp4).unwrap();
    let out = r.run(&[dir.to_str().unwrap()]).await;
    assert_eq!(
        exit_code(&out),
        1,
        "the broken pending directory is an error: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("could not be recorded as pending"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        get(
            &r.s3,
            &r.bucket,
            &format!("{}{MP4}", r.prefix("nodisksession"))
        )
        .await,
        mp4
    );
    assert!(!dir.exists(), "verified in S3: deleted");
    assert_eq!(
        r.tag().await.as_deref(),
        Some("1"),
        "no run can tell that nothing else is pending: the tag stays"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_marker_write_failing_with_enospc_still_uploads_then_clears_the_tag() {
    let r = Recorder::new("enospc").await;
    let dir = r.session_dir("enospcsession");
    std::fs::write(dir.join(MP4), pattern(5000, 10)).unwrap();
    std::fs::create_dir_all(&r.pending).unwrap();
    // The marker's temporary file is /dev/full: its write fails with ENOSPC.
    std::os::unix::fs::symlink("/dev/full", r.pending.join("enospcsession.tmp")).unwrap();
    let out = r.run(&[dir.to_str().unwrap()]).await;
    assert_eq!(exit_code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("No space left on device"),
        "{}",
        stderr(&out)
    );
    assert!(r.keys().await.iter().any(|k| k.ends_with("manifest.json")));
    assert!(!dir.exists());
    assert_eq!(
        r.tag().await,
        None,
        "the directory is readable and empty: nothing is pending"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tagging_failure_still_uploads_the_session() {
    // Jibri stays BUSY while its finalize runs: that protects the session while it
    // uploads, tag or no tag. Refusing to upload left the only copy on a disk that the
    // next scale-in destroys.
    let r = Recorder::new("notag").await;
    let proxy = FaultProxy::start().await;
    r.write_config(&proxy.url, &[]);
    // What EC2 answers when the instance role may not tag (IAM condition not met).
    proxy.add(Rule::new(
        &["Action=CreateTags"],
        Fault::Error(403, "UnauthorizedOperation"),
    ));
    let dir = r.session_dir("notagsession");
    let mp4 = pattern(5000, 11);
    std::fs::write(dir.join(MP4), &mp4).unwrap();
    let out = r.run(&[dir.to_str().unwrap()]).await;
    assert_eq!(exit_code(&out), 0, "the upload's result: {}", stderr(&out));
    assert!(
        stderr(&out).contains("tagging the instance failed"),
        "{}",
        stderr(&out)
    );
    let log = proxy.log();
    assert!(
        log[0].line.contains("Action=CreateTags") && log[0].injected,
        "the tag is still tried first: {log:#?}"
    );
    assert_eq!(
        proxy.count("Action=CreateTags"),
        1,
        "a refusal is not retried: {log:#?}"
    );
    assert_eq!(
        get(
            &r.s3,
            &r.bucket,
            &format!("{}{MP4}", r.prefix("notagsession"))
        )
        .await,
        mp4
    );
    assert_manifest_matches(&r, "notagsession", 1).await;
    assert!(!dir.exists());
    assert!(r.marker("notagsession").is_none());
    assert_eq!(r.tag().await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_timer_uploads_a_pending_session_although_ec2_refuses_the_tag() {
    let r = Recorder::new("notagtimer").await;
    let proxy = FaultProxy::start().await;
    proxy.add(Rule::new(
        &["Action=CreateTags"],
        Fault::Error(403, "UnauthorizedOperation"),
    ));
    // A finalize under a broken configuration records the session as pending (and, here,
    // cannot tag either): the timer has it.
    r.write_config(&proxy.url, &[("PART_SIZE", "1MiB")]);
    let dir = r.session_dir("notagtimersession");
    let mp4 = pattern(4000, 12);
    std::fs::write(dir.join(MP4), &mp4).unwrap();
    let out = r.run(&[dir.to_str().unwrap()]).await;
    assert_eq!(exit_code(&out), 2, "{}", stderr(&out));
    assert!(r.marker("notagtimersession").is_some());
    assert!(r.keys().await.is_empty());

    r.write_config(&proxy.url, &[]);
    proxy.clear_log();
    let out = r.run(&["--retry-pending"]).await;
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    let log = proxy.log();
    assert!(
        log[0].line.contains("Action=CreateTags") && log[0].injected,
        "the timer tries the tag first: {log:#?}"
    );
    assert_eq!(
        get(
            &r.s3,
            &r.bucket,
            &format!("{}{MP4}", r.prefix("notagtimersession"))
        )
        .await,
        mp4
    );
    assert!(!dir.exists());
    assert!(r.marker("notagtimersession").is_none());
    assert_eq!(r.tag().await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn another_meetings_recording_at_the_same_key_is_never_overwritten() {
    let r = Recorder::new("clash").await;
    let dir = r.session_dir("clashsession");
    // 6 MiB: multipart, so the conflict shows at CompleteMultipartUpload; metadata.json
    // is one PUT.
    let mp4 = pattern((6 * MIB) as usize, 13);
    std::fs::write(dir.join(MP4), &mp4).unwrap();
    std::fs::write(dir.join("metadata.json"), JIBRI_METADATA).unwrap();
    let prefix = r.prefix("clashsession");
    let theirs: [(&str, &[u8]); 2] = [
        (MP4, b"another meeting's recording"),
        (
            "metadata.json",
            b"{\"meeting_url\":\"https://meet.example.org/other\"}",
        ),
    ];
    for (name, body) in theirs {
        r.s3.put_object()
            .bucket(&r.bucket)
            .key(format!("{prefix}{name}"))
            .body(body.to_vec().into())
            .send()
            .await
            .expect("PutObject");
    }
    let out = r.run(&[dir.to_str().unwrap()]).await;
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    for (name, body) in theirs {
        assert_eq!(
            get(&r.s3, &r.bucket, &format!("{prefix}{name}")).await,
            body,
            "{name} is never overwritten"
        );
    }
    assert!(
        stderr(&out).contains("another object already has the key"),
        "logged: {}",
        stderr(&out)
    );
    let manifest = assert_manifest_matches(&r, "clashsession", 2).await;
    for (path, local) in [
        (MP4, mp4.as_slice()),
        ("metadata.json", JIBRI_METADATA.as_bytes()),
    ] {
        let f = manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path)
            .unwrap();
        let key = f["key"].as_str().unwrap();
        assert_ne!(key, format!("{prefix}{path}"), "a new key");
        assert!(key.starts_with(&prefix), "{key}");
        assert_eq!(get(&r.s3, &r.bucket, key).await, local, "{key}");
    }
    assert!(!dir.exists());
    assert_eq!(r.tag().await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_put_whose_answer_was_lost_is_not_written_twice() {
    use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
    let r = Recorder::new("lostanswer").await;
    // Versioned, as the stack's bucket is: every write would leave a version.
    r.s3.put_bucket_versioning()
        .bucket(&r.bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("PutBucketVersioning");
    let proxy = FaultProxy::start().await;
    r.write_config(&proxy.url, &[]);
    let dir = r.session_dir("lostsession");
    let mp4 = pattern(3000, 14);
    std::fs::write(dir.join(MP4), &mp4).unwrap();
    // The PUT lands in S3; its answer does not reach the uploader.
    proxy.add(Rule::new(&["PUT ", ".mp4"], Fault::AfterForward(500, "InternalError")).times(1));
    let out = r.run(&[dir.to_str().unwrap()]).await;
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        proxy.log().iter().filter(|l| l.injected).count(),
        1,
        "{:#?}",
        proxy.log()
    );
    let key = format!("{}{MP4}", r.prefix("lostsession"));
    let versions =
        r.s3.list_object_versions()
            .bucket(&r.bucket)
            .prefix(&key)
            .send()
            .await
            .expect("ListObjectVersions");
    assert_eq!(
        versions.versions().len(),
        1,
        "written once: the retry found its own object: {versions:?}"
    );
    let manifest = assert_manifest_matches(&r, "lostsession", 1).await;
    assert_eq!(manifest["files"][0]["key"], key.as_str());
    assert_eq!(get(&r.s3, &r.bucket, &key).await, mp4);
    assert!(!dir.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unusable_file_name_does_not_block_the_rest_of_the_session() {
    use std::os::unix::ffi::OsStrExt;
    let r = Recorder::new("badname").await;
    let dir = r.session_dir("badnamesession");
    let mp4 = pattern(4000, 15);
    std::fs::write(dir.join(MP4), &mp4).unwrap();
    // A Latin-1 name: not UTF-8, so no S3 key.
    let bad = dir.join(std::ffi::OsStr::from_bytes(b"caf\xe9.mp4"));
    std::fs::write(&bad, b"x").unwrap();
    let out = r.run(&[dir.to_str().unwrap()]).await;
    assert_eq!(exit_code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("not valid UTF-8"), "{}", stderr(&out));
    let prefix = r.prefix("badnamesession");
    assert_eq!(
        get(&r.s3, &r.bucket, &format!("{prefix}{MP4}")).await,
        mp4,
        "the rest of the session is in S3"
    );
    assert!(r.keys().await.iter().all(|k| !k.ends_with("manifest.json")));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2, "kept");
    assert_eq!(r.tag().await.as_deref(), Some("1"), "still pending");

    std::fs::rename(&bad, dir.join("cafe.mp4")).unwrap();
    let out = r.run(&["--retry-pending"]).await;
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    assert_manifest_matches(&r, "badnamesession", 2).await;
    assert!(!dir.exists());
    assert_eq!(r.tag().await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_timer_with_nothing_pending_makes_no_aws_call() {
    let r = Recorder::new("steady").await;
    let proxy = FaultProxy::start().await;
    r.write_config(&proxy.url, &[]);
    let out = r.run(&["--retry-pending"]).await;
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    let first: Vec<String> = proxy.log().into_iter().map(|l| l.line).collect();
    assert_eq!(
        first.len(),
        1,
        "one reconciliation on a new host: {first:?}"
    );
    assert!(first[0].contains("Action=DeleteTags"));
    proxy.clear_log();
    for _ in 0..2 {
        let out = r.run(&["--retry-pending"]).await;
        assert_eq!(exit_code(&out), 0);
    }
    assert!(
        proxy.log().is_empty(),
        "steady state: not one call: {:?}",
        proxy.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configuration_error_names_the_key_and_still_protects_the_recording() {
    let r = Recorder::new("config").await;
    let dir = r.session_dir("configsession");
    std::fs::write(dir.join(MP4), b"recording").unwrap();
    for (extra, key) in [
        (("PART_SIZE", "1MiB"), "PART_SIZE"),
        (("CONCURRENCY", "0"), "CONCURRENCY"),
        (("BUCKTE", "x"), "BUCKTE"),
        (("CHECKSUM_ALGORITHM", "md5"), "CHECKSUM_ALGORITHM"),
    ] {
        r.write_config(&endpoint(), &[extra]);
        let out = r.run(&[dir.to_str().unwrap()]).await;
        assert_eq!(exit_code(&out), 2, "{key}");
        assert!(stderr(&out).contains(key), "{key}: {}", stderr(&out));
    }
    // Nothing uploaded, but the session is pending and the instance busy: a typo in the
    // configuration must not cost the recording at the next scale-in.
    assert!(r.keys().await.is_empty());
    assert_eq!(std::fs::read(dir.join(MP4)).unwrap(), b"recording");
    assert_eq!(
        r.marker("configsession").unwrap()["key_prefix"],
        "",
        "keys decided at the first real attempt"
    );
    assert_eq!(r.tag().await.as_deref(), Some("1"));

    // The environment wins over the file, and its errors name the key too.
    r.write_config(&endpoint(), &[]);
    let mut cmd = r.command(&["--check-config"]);
    cmd.env("JIBRI_FINALIZE_MAX_ATTEMPTS", "0");
    let out = cmd.output().unwrap();
    assert_eq!(exit_code(&out), 2);
    assert!(stderr(&out).contains("MAX_ATTEMPTS"), "{}", stderr(&out));
    let out = r.command(&["--check-config"]).output().unwrap();
    assert_eq!(exit_code(&out), 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("BUCKET={}", r.bucket)));
    let out = r.command(&[]).output().unwrap();
    assert_eq!(exit_code(&out), 2, "no argument");

    // Fixed: the timer uploads it.
    let out = r.run(&["--retry-pending"]).await;
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        get(
            &r.s3,
            &r.bucket,
            &format!("{}{MP4}", r.prefix("configsession"))
        )
        .await,
        b"recording"
    );
    assert!(!dir.exists());
    assert_eq!(r.tag().await, None);
}
