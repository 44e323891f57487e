//! Following an EC2 Auto Scaling group on the local AWS test bed (moto): every ~500 ms a plain
//! Query-API `DescribeAutoScalingGroups`, parsed just enough to get each instance's id and
//! `LifecycleState`, and an EC2 `DescribeInstances` of the instances not seen before for their
//! private IPs (the test bed hands out 127.0.0.0/8 ones; the emulator listens there as each
//! instance's Jibri). Only loopback endpoints are dialled.

use std::net::Ipv4Addr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::GroupInstance;

/// Default poll period.
pub const DEFAULT_INTERVAL_MS: u64 = 500;

/// Region put in the dummy SigV4 credential scope when none is given (moto reads it from there).
pub const DEFAULT_REGION: &str = "us-east-1";

/// `POST /control/follow`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowConfig {
    /// The moto server, e.g. `http://127.0.0.1:5000` (must be an IPv4 address in 127.0.0.0/8).
    pub aws_endpoint: String,
    /// The Auto Scaling group name.
    pub group: String,
    /// Sent as `x-moto-account-id` (moto keeps one world per account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The Jicofo shard new recorders join (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
    /// What runs on the group's instances: `jibri` (default, a recorder each) or `jvb` (a
    /// videobridge each).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

impl FollowConfig {
    pub fn new(aws_endpoint: impl Into<String>, group: impl Into<String>) -> Self {
        FollowConfig {
            aws_endpoint: aws_endpoint.into(),
            group: group.into(),
            account: None,
            region: None,
            shard: None,
            interval_ms: None,
            kind: None,
        }
    }

    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms.unwrap_or(DEFAULT_INTERVAL_MS).max(10))
    }

    /// The instances run videobridges (`kind` `jvb`).
    pub fn bridges(&self) -> bool {
        self.kind.as_deref() == Some("jvb")
    }

    pub fn region(&self) -> &str {
        self.region.as_deref().unwrap_or(DEFAULT_REGION)
    }

    /// Refuses anything that would dial outside 127.0.0.0/8 or put junk in a header.
    pub fn validate(&self) -> Result<reqwest::Url, String> {
        let url =
            reqwest::Url::parse(&self.aws_endpoint).map_err(|e| format!("aws_endpoint: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("aws_endpoint must be http(s)".into());
        }
        let host = url.host_str().unwrap_or_default();
        match host.parse::<Ipv4Addr>() {
            Ok(ip) if ip.octets()[0] == 127 => {}
            _ => {
                return Err(format!(
                    "aws_endpoint host {host:?} is not an IPv4 address in 127.0.0.0/8"
                ))
            }
        }
        if self.group.is_empty() {
            return Err("group must not be empty".into());
        }
        if !matches!(self.kind.as_deref(), None | Some("jibri" | "jvb")) {
            return Err("kind must be jibri or jvb".into());
        }
        let header_safe = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if let Some(account) = &self.account {
            if account.is_empty() || !header_safe(account) {
                return Err("account must be [A-Za-z0-9_-]+".into());
            }
        }
        if !header_safe(self.region()) || self.region().is_empty() {
            return Err("region must be [A-Za-z0-9_-]+".into());
        }
        Ok(url)
    }
}

/// What the follower has done so far, for `GET /control/state`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowView {
    pub config: FollowConfig,
    pub polls: u64,
    pub failures: u64,
    pub last_error: Option<String>,
    /// The group's instances at the last successful poll.
    pub instances: Vec<GroupInstance>,
}

/// `application/x-www-form-urlencoded` escaping.
fn form_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A client that dials only what it is told (no proxies, no redirects).
pub fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))
}

/// One `DescribeAutoScalingGroups` of the followed group.
pub async fn describe_group(
    client: &reqwest::Client,
    url: &reqwest::Url,
    config: &FollowConfig,
) -> Result<Vec<GroupInstance>, String> {
    let body = format!(
        "Action=DescribeAutoScalingGroups&Version=2011-01-01&AutoScalingGroupNames.member.1={}",
        form_escape(&config.group)
    );
    let text = query(
        client,
        url,
        config,
        "autoscaling",
        "DescribeAutoScalingGroups",
        body,
    )
    .await?;
    parse_describe_groups(&text, &config.group)
}

/// One Query-API call to the loopback AWS endpoint (moto reads the region from the dummy
/// SigV4 scope and the account from `x-moto-account-id`); the body of a 2xx answer.
async fn query(
    client: &reqwest::Client,
    url: &reqwest::Url,
    config: &FollowConfig,
    service: &str,
    action: &str,
    body: String,
) -> Result<String, String> {
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=test/20260101/{}/{service}/aws4_request, SignedHeaders=host, Signature=0",
        config.region()
    );
    let mut req = client
        .post(url.clone())
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .header("authorization", auth)
        .body(body);
    if let Some(account) = &config.account {
        req = req.header("x-moto-account-id", account.as_str());
    }
    let resp = req.send().await.map_err(|e| format!("{action}: {e}"))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| format!("{action} body: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "{action}: HTTP {status}: {}",
            text.chars().take(200).collect::<String>()
        ));
    }
    Ok(text)
}

/// The private IPs of `ids`, by one EC2 `DescribeInstances` (Query API, `InstanceId.N`). An
/// instance without one is left out.
pub async fn describe_private_ips(
    client: &reqwest::Client,
    url: &reqwest::Url,
    config: &FollowConfig,
    ids: &[&str],
) -> Result<Vec<(String, String)>, String> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut body = String::from("Action=DescribeInstances&Version=2016-11-15");
    for (n, id) in ids.iter().enumerate() {
        body.push_str(&format!("&InstanceId.{}={}", n + 1, form_escape(id)));
    }
    let text = query(client, url, config, "ec2", "DescribeInstances", body).await?;
    parse_private_ips(&text)
}

/// `(instanceId, privateIpAddress)` of each instance in a `DescribeInstancesResponse`: the
/// instance's own `privateIpAddress` is the first one after its `instanceId` (EC2's shape
/// order; the network interfaces, which repeat it, come later).
pub fn parse_private_ips(xml: &str) -> Result<Vec<(String, String)>, String> {
    if !xml.contains("<DescribeInstancesResponse") {
        return Err(format!(
            "not a DescribeInstancesResponse: {}",
            xml.chars().take(200).collect::<String>()
        ));
    }
    let mut out = Vec::new();
    for chunk in xml.split("<instanceId>").skip(1) {
        let Some(end) = chunk.find("</instanceId>") else {
            continue;
        };
        let id = chunk[..end].trim().to_owned();
        if let Some(ip) = element(chunk, "privateIpAddress") {
            out.push((id, ip.trim().to_owned()));
        }
    }
    Ok(out)
}

/// The text of the first `<tag>...</tag>` in `s`.
fn element<'a>(s: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = s.find(&open)? + open.len();
    let end = s[start..].find(&close)? + start;
    Some(&s[start..end])
}

/// The instances of `group` in a `DescribeAutoScalingGroupsResponse`. An empty
/// `<AutoScalingGroups/>` (the group does not exist) is an empty group.
pub fn parse_describe_groups(xml: &str, group: &str) -> Result<Vec<GroupInstance>, String> {
    if !xml.contains("<DescribeAutoScalingGroupsResponse") {
        return Err(format!(
            "not a DescribeAutoScalingGroupsResponse: {}",
            xml.chars().take(200).collect::<String>()
        ));
    }
    let Some(groups) = element(xml, "AutoScalingGroups") else {
        return Ok(Vec::new());
    };
    // Each group is a top-level <member> holding <AutoScalingGroupName>; find ours, then its
    // <Instances> list, whose <member>s contain no nested <member>.
    let name_tag = format!("<AutoScalingGroupName>{group}</AutoScalingGroupName>");
    let Some(at) = groups.find(&name_tag) else {
        return Ok(Vec::new());
    };
    let ours = &groups[at..];
    let instances = match ours.find("<Instances>") {
        Some(i) => element(&ours[i..], "Instances").unwrap_or(""),
        None => "",
    };
    let mut out = Vec::new();
    for chunk in instances.split("</member>") {
        let (Some(id), Some(state)) = (
            element(chunk, "InstanceId"),
            element(chunk, "LifecycleState"),
        ) else {
            continue;
        };
        out.push(GroupInstance {
            id: id.trim().to_owned(),
            lifecycle_state: state.trim().to_owned(),
            private_ip: None,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moto_sample() -> String {
        let path = format!(
            "{}/tests/data/moto-describe-asg.xml",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn parses_instances_from_a_moto_response() {
        let got = parse_describe_groups(&moto_sample(), "jibri").unwrap();
        assert_eq!(
            got,
            vec![
                GroupInstance {
                    id: "i-5ca72a3db3d710311".into(),
                    lifecycle_state: "InService".into(),
                    private_ip: None,
                },
                GroupInstance {
                    id: "i-88692f713c910ef9d".into(),
                    lifecycle_state: "InService".into(),
                    private_ip: None,
                },
            ]
        );
    }

    #[test]
    fn an_unknown_group_has_no_instances() {
        let xml = r#"<DescribeAutoScalingGroupsResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><DescribeAutoScalingGroupsResult><AutoScalingGroups/></DescribeAutoScalingGroupsResult></DescribeAutoScalingGroupsResponse>"#;
        assert_eq!(parse_describe_groups(xml, "jibri").unwrap(), vec![]);
        assert_eq!(
            parse_describe_groups(&moto_sample(), "other").unwrap(),
            vec![]
        );
    }

    #[test]
    fn an_error_response_is_an_error_not_an_empty_group() {
        let xml = "<ErrorResponse><Error><Code>Throttling</Code></Error></ErrorResponse>";
        assert!(parse_describe_groups(xml, "jibri").is_err());
    }

    #[test]
    fn only_loopback_ipv4_endpoints_are_accepted() {
        for ok in [
            "http://127.0.0.1:5000",
            "http://127.1.2.3:1/",
            "https://127.0.0.1",
        ] {
            assert!(FollowConfig::new(ok, "g").validate().is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1:5000",
            "http://localhost:5000",
            "http://[::1]:5000",
            "ftp://127.0.0.1",
            "nonsense",
        ] {
            assert!(FollowConfig::new(bad, "g").validate().is_err(), "{bad}");
        }
        let mut c = FollowConfig::new("http://127.0.0.1:1", "g");
        c.account = Some("12\r\nX: y".into());
        assert!(c.validate().is_err());
    }

    #[test]
    fn private_ips_are_read_per_instance_not_from_its_interfaces() {
        let xml = "<DescribeInstancesResponse><reservationSet><item><instancesSet>\
            <item><instanceId>i-1</instanceId><privateIpAddress>127.9.0.5</privateIpAddress>\
            <networkInterfaceSet><item><privateIpAddress>127.9.0.5</privateIpAddress></item></networkInterfaceSet></item>\
            <item><instanceId>i-2</instanceId><privateIpAddress>127.9.3.7</privateIpAddress></item>\
            </instancesSet></item></reservationSet></DescribeInstancesResponse>";
        assert_eq!(
            parse_private_ips(xml).unwrap(),
            vec![
                ("i-1".to_owned(), "127.9.0.5".to_owned()),
                ("i-2".to_owned(), "127.9.3.7".to_owned())
            ]
        );
        assert!(parse_private_ips("<ErrorResponse/>").is_err());
    }

    #[test]
    fn group_names_are_form_escaped() {
        assert_eq!(form_escape("jibri pool/1"), "jibri%20pool%2F1");
    }
}
