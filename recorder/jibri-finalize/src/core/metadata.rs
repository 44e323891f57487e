//! Jibri's `metadata.json` and the S3 object metadata made from it.
//!
//! Jibri (`FileRecordingJibriService.stop()`) writes `metadata.json` into the session
//! directory right before it runs the finalize script: `{"meeting_url": ..., "participants":
//! [...], ...}` where each participant is the XMPP identity of a member that had one
//! (`{"user": {"id", "name", "email", "avatar"}, "group": ...}`, the name replaced by the
//! nick), and the `file_recording_metadata` of the request's app data is merged in at the
//! top level. It is written only when a participant list could be read, and may be
//! absent: the upload never depends on it.

use serde::{Deserialize, Serialize};

/// Jibri's metadata file name in the session directory.
pub const JIBRI_METADATA_FILE: &str = "metadata.json";

/// S3's limit on user-defined metadata: the UTF-8 bytes of every key and value together.
pub const S3_USER_METADATA_LIMIT: usize = 2048;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meeting_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meeting_name: Option<String>,
    pub participants: Vec<Participant>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("metadata.json is not JSON: {0}")]
    NotJson(String),
    #[error("metadata.json is not a JSON object")]
    NotAnObject,
}

/// Reads what the uploader uses from Jibri's metadata, leniently: unknown fields and
/// participants without a name are fine, a wrong type is ignored field by field.
pub fn parse_jibri_metadata(bytes: &[u8]) -> Result<RecordingInfo, MetadataError> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| MetadataError::NotJson(e.to_string()))?;
    let obj = v.as_object().ok_or(MetadataError::NotAnObject)?;
    let meeting_url = obj
        .get("meeting_url")
        .and_then(|u| u.as_str())
        .map(str::to_owned)
        .filter(|u| !u.is_empty());
    let meeting_name = meeting_url.as_deref().and_then(meeting_name_from_url);
    let participants = obj
        .get("participants")
        .and_then(|p| p.as_array())
        .map(|list| list.iter().filter_map(participant).collect())
        .unwrap_or_default();
    Ok(RecordingInfo {
        meeting_url,
        meeting_name,
        participants,
    })
}

fn participant(v: &serde_json::Value) -> Option<Participant> {
    let obj = v.as_object()?;
    let user = obj.get("user").and_then(|u| u.as_object());
    let text = |o: Option<&serde_json::Map<String, serde_json::Value>>, k: &str| {
        o.and_then(|o| o.get(k))
            .and_then(|x| x.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let name = text(user, "name")
        .or_else(|| text(Some(obj), "name"))
        .or_else(|| text(Some(obj), "displayName"));
    let id = text(user, "id").or_else(|| text(Some(obj), "id"));
    (name.is_some() || id.is_some()).then_some(Participant { name, id })
}

/// The room of a Jitsi meeting URL: its last path segment, percent-decoded
/// (`https://meet.example.org/tenant/MyRoom` → `MyRoom`).
pub fn meeting_name_from_url(url: &str) -> Option<String> {
    let no_fragment = url.split(['#', '?']).next().unwrap_or(url);
    let path = match no_fragment.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map(|(_, p)| p).unwrap_or(""),
        None => no_fragment,
    };
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let decoded = percent_decode(last);
    (!decoded.is_empty()).then_some(decoded)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes everything but printable ASCII (and '%' and ',' themselves), so a value
/// travels as an HTTP header, decoding it once gives the original, and a value never
/// looks like a list.
pub fn header_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' && b != b',' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The object metadata (without the `x-amz-meta-` prefix) every object of a session gets:
/// session and instance always, the meeting's URL and name and the number of participants
/// when Jibri's metadata has them. Never who took part: object metadata comes with every
/// `HeadObject`, which each recorder of the pool may make on the whole recordings prefix
/// (it verifies its uploads that way), so names and identities would be readable by every
/// recorder; they are in the manifest only. Values are [`header_safe`]; the whole stays
/// under S3's 2 KB limit, an overlong name or URL being dropped (the manifest has
/// everything, untruncated).
pub fn object_metadata(
    info: Option<&RecordingInfo>,
    instance_id: &str,
    session: &str,
) -> Vec<(String, String)> {
    let budget = S3_USER_METADATA_LIMIT - 48; // headroom for a key or two added by hand
    let mut out: Vec<(String, String)> = vec![
        ("jibri-session".into(), header_safe(session)),
        ("jibri-instance-id".into(), header_safe(instance_id)),
    ];
    let used = |v: &Vec<(String, String)>| v.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    let Some(info) = info else { return out };
    out.push((
        "jibri-participant-count".into(),
        info.participants.len().to_string(),
    ));
    if let Some(name) = &info.meeting_name {
        let v = header_safe(name);
        if used(&out) + "jibri-meeting-name".len() + v.len() <= budget / 2 {
            out.push(("jibri-meeting-name".into(), v));
        }
    }
    if let Some(url) = &info.meeting_url {
        let v = header_safe(url);
        if used(&out) + "jibri-meeting-url".len() + v.len() <= budget * 3 / 4 {
            out.push(("jibri-meeting-url".into(), v));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Jibri's Jackson mapper writes: compact, `meeting_url` first, identities as the
    /// browser reported them, app-data fields merged at the top level.
    const JIBRI_SAMPLE: &str = r#"{"meeting_url":"https://meet.example.org/acme/WeeklyPlanning","participants":[{"user":{"avatar":"https://example.org/a.png","name":"Zoë Müller","id":"u-1","email":"zoe@example.org"},"group":"acme"},{"user":{"name":"Bob, Jr.","id":"u-2"}},{"group":"acme"}],"share":true}"#;

    #[test]
    fn jibri_metadata_gives_url_room_and_named_participants() {
        let info = parse_jibri_metadata(JIBRI_SAMPLE.as_bytes()).unwrap();
        assert_eq!(
            info.meeting_url.as_deref(),
            Some("https://meet.example.org/acme/WeeklyPlanning")
        );
        assert_eq!(info.meeting_name.as_deref(), Some("WeeklyPlanning"));
        assert_eq!(
            info.participants,
            vec![
                Participant {
                    name: Some("Zoë Müller".into()),
                    id: Some("u-1".into())
                },
                Participant {
                    name: Some("Bob, Jr.".into()),
                    id: Some("u-2".into())
                },
            ],
            "an identity without name or id says nothing"
        );
    }

    #[test]
    fn empty_participant_list_and_missing_fields_are_fine() {
        let info = parse_jibri_metadata(
            br#"{"meeting_url":"https://meet.example.org/room","participants":[]}"#,
        )
        .unwrap();
        assert_eq!(info.meeting_name.as_deref(), Some("room"));
        assert!(info.participants.is_empty());
        let info = parse_jibri_metadata(br#"{"participants":"oops","meeting_url":7}"#).unwrap();
        assert_eq!(info, RecordingInfo::default());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(
            parse_jibri_metadata(b"{not json"),
            Err(MetadataError::NotJson(_))
        ));
        assert_eq!(
            parse_jibri_metadata(b"[1,2]"),
            Err(MetadataError::NotAnObject)
        );
    }

    #[test]
    fn meeting_names_come_from_the_last_path_segment() {
        assert_eq!(
            meeting_name_from_url("https://meet.example.org/MyRoom").as_deref(),
            Some("MyRoom")
        );
        assert_eq!(
            meeting_name_from_url("https://meet.example.org/t/My%20Room#config.x=1").as_deref(),
            Some("My Room")
        );
        assert_eq!(
            meeting_name_from_url("https://meet.example.org/room/?a=b").as_deref(),
            Some("room")
        );
        assert_eq!(meeting_name_from_url("https://meet.example.org/"), None);
        assert_eq!(
            meeting_name_from_url("https://meet.example.org/bad%zzname").as_deref(),
            Some("bad%zzname")
        );
        assert_eq!(
            meeting_name_from_url("https://meet.example.org/trailing%2").as_deref(),
            Some("trailing%2")
        );
    }

    #[test]
    fn object_metadata_is_header_safe() {
        let info = parse_jibri_metadata(JIBRI_SAMPLE.as_bytes()).unwrap();
        let md = object_metadata(Some(&info), "i-0123456789abcdef0", "sqzxjtkhqdbyaxlb");
        let get = |k: &str| md.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.as_str());
        assert_eq!(get("jibri-session"), Some("sqzxjtkhqdbyaxlb"));
        assert_eq!(get("jibri-instance-id"), Some("i-0123456789abcdef0"));
        assert_eq!(get("jibri-meeting-name"), Some("WeeklyPlanning"));
        assert_eq!(
            get("jibri-meeting-url"),
            Some("https://meet.example.org/acme/WeeklyPlanning")
        );
        assert_eq!(get("jibri-participant-count"), Some("2"));
        assert_eq!(
            get("jibri-participants"),
            None,
            "no names in object metadata (issue 14)"
        );
        for (k, v) in &md {
            assert!(v.bytes().all(|b| (0x20..0x7f).contains(&b)), "{k}={v}");
        }
    }

    #[test]
    fn participant_names_never_reach_object_metadata() {
        // Object metadata is what every recorder may read (HeadObject verifies uploads):
        // no names, no identities; the count says how many took part.
        let info = parse_jibri_metadata(JIBRI_SAMPLE.as_bytes()).unwrap();
        let md = object_metadata(Some(&info), "i-0123456789abcdef0", "sqzxjtkhqdbyaxlb");
        assert!(md.iter().all(|(k, _)| k != "jibri-participants"), "{md:?}");
        for (k, v) in &md {
            for who in ["Zo", "M%C3%BCller", "Bob", "u-1", "u-2", "zoe@"] {
                assert!(!v.contains(who), "{k}={v} names {who}");
            }
        }
        let get = |k: &str| md.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.as_str());
        assert_eq!(get("jibri-participant-count"), Some("2"));
    }

    #[test]
    fn without_jibri_metadata_only_session_and_instance() {
        let md = object_metadata(None, "i-1", "s");
        assert_eq!(
            md,
            vec![
                ("jibri-session".into(), "s".into()),
                ("jibri-instance-id".into(), "i-1".into())
            ]
        );
    }

    #[test]
    fn a_huge_meeting_stays_under_s3s_2kb_with_a_count_of_the_rest() {
        let info = RecordingInfo {
            meeting_url: Some(format!("https://meet.example.org/{}", "r".repeat(300))),
            meeting_name: Some("r".repeat(300)),
            participants: (0..500)
                .map(|i| Participant {
                    name: Some(format!("Participant Number {i}")),
                    id: None,
                })
                .collect(),
        };
        let md = object_metadata(Some(&info), "i-0123456789abcdef0", "session");
        let total: usize = md.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(total <= S3_USER_METADATA_LIMIT, "{total}");
        assert!(
            md.iter()
                .all(|(k, v)| k != "jibri-participants" && !v.contains("Participant Number")),
            "the count, never the names (issue 14): {md:?}"
        );
        assert_eq!(
            md.iter()
                .find(|(k, _)| k == "jibri-participant-count")
                .unwrap()
                .1,
            "500"
        );
    }

    #[test]
    fn an_absurd_url_is_dropped_rather_than_truncated() {
        let info = RecordingInfo {
            meeting_url: Some(format!("https://x/{}", "u".repeat(4000))),
            meeting_name: None,
            participants: vec![],
        };
        let md = object_metadata(Some(&info), "i-1", "s");
        assert!(md.iter().all(|(k, _)| k != "jibri-meeting-url"));
    }
}
