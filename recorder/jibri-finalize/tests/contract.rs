//! The uploader's contract with the rest of the repository stays in step: the tag key the
//! controller and guard read, the IAM policy the stack gives the recorders, the defaults the
//! stack documents, the configuration table of recorder/README.md, and the systemd units.

use jibri_finalize::config::VARS;
use jibri_finalize::ports::TAG_UPLOAD_PENDING;
use std::path::PathBuf;

fn repo(path: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn the_controller_reads_any_tag_value_but_empty_or_zero_as_pending() {
    // The key itself is one constant of jibri-core, used by both sides. What the
    // controller makes of the value is checked here: any value but empty or "0" is
    // pending, which a session count never is. (Compared without whitespace: rustfmt may
    // wrap the expression.)
    let squeeze = |s: &str| s.split_whitespace().collect::<String>();
    assert!(squeeze(&repo("src/aws.rs")).contains(&squeeze(
        r#"tag(TAG_UPLOAD_PENDING).is_some_and(|v| !v.is_empty() && v != "0")"#
    )));
}

#[test]
fn every_call_the_uploader_makes_is_allowed_by_the_stacks_recorder_policy() {
    let template = repo("infra/template.yaml");
    let start = template
        .find("UploaderPolicy:")
        .expect("UploaderPolicy in infra/template.yaml");
    let policy = &template[start
        ..start
            + template[start..]
                .find("UploaderDataKeyPolicy")
                .unwrap_or(template.len() - start)];
    // PutObject also covers CreateMultipartUpload, UploadPart and CompleteMultipartUpload;
    // GetObject covers HeadObject; ListMultipartUploadParts is ListParts.
    for action in [
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
        "s3:GetObject",
        "ec2:CreateTags",
        "ec2:DeleteTags",
    ] {
        assert!(
            policy.contains(action),
            "{action} missing from the uploader policy"
        );
    }
    assert!(
        policy.contains(&format!("aws:TagKeys: [{TAG_UPLOAD_PENDING}]")),
        "the policy allows another tag key"
    );
    assert!(
        policy.contains("${Bucket}/${RecordingsPrefix}*"),
        "objects under RecordingsPrefix only"
    );
}

#[test]
fn the_default_prefix_is_the_stacks_recordings_prefix() {
    let template = repo("infra/template.yaml");
    let at = template
        .find("  RecordingsPrefix:\n")
        .expect("RecordingsPrefix parameter");
    let default = template[at..]
        .lines()
        .find_map(|l| l.trim().strip_prefix("Default: "))
        .unwrap()
        .trim_matches('"');
    let ours = VARS
        .iter()
        .find(|v| v.key == "PREFIX")
        .and_then(|v| v.default)
        .unwrap();
    assert_eq!(ours, default);
}

#[test]
fn the_readme_documents_every_key_with_its_default() {
    let readme = repo("recorder/README.md");
    for v in VARS {
        let default = v
            .default
            .map(|d| format!("`{d}`"))
            .unwrap_or_else(|| "(unset)".into());
        let row = format!("| `{}` | {} |", v.key, default);
        assert!(
            readme.contains(&row),
            "recorder/README.md lacks the row starting {row:?}"
        );
    }
}

#[test]
fn the_systemd_units_retry_pending_sessions_on_a_timer() {
    let service = repo("recorder/systemd/jibri-finalize-retry.service");
    let timer = repo("recorder/systemd/jibri-finalize-retry.timer");
    assert!(service.contains("ExecStart=/usr/local/bin/jibri-finalize --retry-pending"));
    assert!(service.contains("Type=oneshot"));
    assert!(
        service.contains("User=jibri"),
        "the same user as Jibri, which owns the recordings"
    );
    assert!(timer.contains("OnBootSec=") && timer.contains("OnUnitActiveSec="));
    assert!(timer.contains("Unit=jibri-finalize-retry.service"));
}
