#!/bin/sh
# jibri-instance-config - writes this recorder's /etc/jitsi/jibri/jibri.conf at every boot,
# before Jibri starts (jibri-instance-config.service; installed as
# /usr/local/sbin/jibri-instance-config by recorder/image/provision.sh).
#
# From the instance metadata service (IMDSv2 only: a session token first, then
# meta-data/instance-id and meta-data/local-ipv4) it writes a HOCON file that
#   - defines jibri-autoscaler.{instance-id, private-ipv4, nickname} for the operator's file,
#   - includes the operator's file /etc/jitsi/jibri/jibri.base.conf (XMPP environments,
#     logins, passwords: everything that is the same on every recorder of a pool),
#   - then sets what must be this instance's, so that it wins over the included file:
#     jibri.id, jibri.api.http.{external,internal}-api-{host,port} = the private IPv4 and
#     the stack's JibriHealthPort/JibriInternalPort, and
#     jibri.recording.finalize-script = /usr/local/bin/jibri-finalize.
# Every control-muc (and sip-control-muc) nickname in the operator's file must be
# ${jibri-autoscaler.nickname}: Jibri's nickname must be unique in its brewery room, and
# the instance id is. The script refuses a file with any other nickname.
#
# It exits non-zero, with the reason on stderr, when it cannot get the metadata, when an
# answer is not an instance id / an IPv4 address, when the operator's file is missing or
# names another nickname, or when the finalize script is not installed: the unit then
# fails, and jibri.service (which Requires= it) does not start misconfigured.
#
# Settings, from the environment (the unit reads /etc/default/jibri-instance-config):
#   JIBRI_EXTERNAL_API_PORT  Jibri's external (health) API port (default 2222 = JibriHealthPort)
#   JIBRI_INTERNAL_API_PORT  Jibri's internal API port (default 3333 = JibriInternalPort)
#   IMDS_URL                 the metadata service (default http://169.254.169.254)
#   IMDS_TRIES               attempts to read it (default 5)
#   IMDS_TIMEOUT_S           time limit of one request, seconds (default 2)
#   IMDS_SLEEP_S             pause between attempts, seconds (default 2)
#   ROOT                     root of the tree to write into (default /; for tests)
set -eu

me=jibri-instance-config
imds="${IMDS_URL:-http://169.254.169.254}"
tries="${IMDS_TRIES:-5}"
timeout_s="${IMDS_TIMEOUT_S:-2}"
sleep_s="${IMDS_SLEEP_S:-2}"
ext_port="${JIBRI_EXTERNAL_API_PORT:-2222}"
int_port="${JIBRI_INTERNAL_API_PORT:-3333}"
root="${ROOT:-/}"
root="${root%/}" # "" for /: paths below are "$root/etc/..."

# Paths on the instance (what Jibri sees); files are written under $root.
conf=/etc/jitsi/jibri/jibri.conf
base_conf=/etc/jitsi/jibri/jibri.base.conf
finalize=/usr/local/bin/jibri-finalize
marker="written by $me at every boot"

die() {
    echo "$me: $*" >&2
    echo "$me: $conf not written; Jibri will not start (it requires this unit)" >&2
    exit 1
}

is_uint() { case "$1" in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac; }
port_ok() { is_uint "$1" && [ "$1" -ge 1 ] && [ "$1" -le 65535 ]; }

port_ok "$ext_port" || die "JIBRI_EXTERNAL_API_PORT='$ext_port' is not a port (1..65535)"
port_ok "$int_port" || die "JIBRI_INTERNAL_API_PORT='$int_port' is not a port (1..65535)"
[ "$ext_port" != "$int_port" ] || die "JIBRI_EXTERNAL_API_PORT and JIBRI_INTERNAL_API_PORT are both $ext_port"
is_pos() { is_uint "$1" && [ "$1" -ge 1 ]; }
is_pos "$tries" || die "IMDS_TRIES='$tries' is not a positive number"
is_pos "$timeout_s" || die "IMDS_TIMEOUT_S='$timeout_s' is not a positive number"
is_uint "$sleep_s" || die "IMDS_SLEEP_S='$sleep_s' is not a number"
command -v curl >/dev/null 2>&1 || die "curl is not installed"

# --- the operator's file and the finalize script, checked before anything is fetched ---------

if [ ! -f "$root$base_conf" ] || [ ! -r "$root$base_conf" ]; then
    die "$base_conf is missing: it holds this pool's Jibri settings (XMPP environments, logins),
see recorder/image/jibri.base.conf.example and recorder/README.md, 'The recorder image kit'"
fi

# Every line that sets a nickname (comments aside) must use the instance's: a hard-coded one
# would be the same on every recorder, and Jibris with the same nickname in one brewery room
# push each other out. (A line check, not a HOCON parser: keep one nickname per line.)
nick_lines=$(sed -e 's,^[[:space:]]*#.*$,,' -e 's,^[[:space:]]*//.*$,,' "$root$base_conf" |
    grep -n -E '(^|[^A-Za-z0-9_-])"?nickname"?[[:space:]]*[:=]' || true)
[ -n "$nick_lines" ] ||
    die "$base_conf sets no control-muc nickname: set nickname = \${jibri-autoscaler.nickname} in each environment's control-muc"
# shellcheck disable=SC2016 # the literal HOCON substitution, not a shell expansion
bad=$(printf '%s\n' "$nick_lines" | grep -v -F '${jibri-autoscaler.nickname}' || true)
[ -z "$bad" ] ||
    die "$base_conf sets a nickname other than \${jibri-autoscaler.nickname} (it must be unique per recorder):
$bad"

if [ ! -f "$root$finalize" ] || [ ! -x "$root$finalize" ]; then
    die "$finalize is not installed (or not executable): recordings would never be uploaded"
fi

# --- IMDSv2 ------------------------------------------------------------------------------------

# --noproxy: the metadata service is link-local, never through a proxy of the environment.
imds_put_token() {
    curl -fsS --noproxy '*' --max-time "$timeout_s" -X PUT "$imds/latest/api/token" \
        -H "X-aws-ec2-metadata-token-ttl-seconds: 300"
}
imds_get() {
    curl -fsS --noproxy '*' --max-time "$timeout_s" -H "X-aws-ec2-metadata-token: $token" \
        "$imds/latest/meta-data/$1"
}

instance_id=""
private_ip=""
why=""
i=0
while :; do
    i=$((i + 1))
    token=""
    if ! token=$(imds_put_token 2>&1) || [ -z "$token" ]; then
        why="PUT /latest/api/token: ${token:-empty answer}"
    elif ! instance_id=$(imds_get instance-id 2>&1); then
        why="GET /latest/meta-data/instance-id: $instance_id"
    elif ! private_ip=$(imds_get local-ipv4 2>&1); then
        why="GET /latest/meta-data/local-ipv4: $private_ip"
    else
        break
    fi
    if [ "$i" -ge "$tries" ]; then
        die "no answer from the instance metadata service at $imds after $tries attempts (last: $why)"
    fi
    echo "$me: metadata attempt $i of $tries failed ($why), retrying" >&2
    sleep "$sleep_s"
done

# Only values of the expected shape go into the file (they are written unescaped).
printf '%s\n' "$instance_id" | grep -q -x -E 'i-[0-9a-f]{8,17}' ||
    die "meta-data/instance-id answered '$instance_id', not an instance id"
printf '%s\n' "$private_ip" | grep -q -x -E '([0-9]{1,3}\.){3}[0-9]{1,3}' ||
    die "meta-data/local-ipv4 answered '$private_ip', not an IPv4 address"
nickname="$instance_id"

# --- jibri.conf ----------------------------------------------------------------------------------

dir="$root${conf%/*}"
mkdir -p "$dir"
# A jibri.conf this script did not write (Jibri's package default, or an operator's own) is
# kept once beside it, never silently lost.
if [ -f "$root$conf" ] && ! grep -q -F "$marker" "$root$conf" && [ ! -e "$root$conf.orig" ]; then
    cp -p "$root$conf" "$root$conf.orig"
    echo "$me: kept the previous $conf as $conf.orig (move its settings to $base_conf)" >&2
fi

tmp="$root$conf.tmp.$$"
trap 'rm -f "$tmp"' EXIT
umask 022
cat >"$tmp" <<EOF
# $conf: $marker (jibri-autoscaler, recorder/image/):
# edits here are lost. This pool's settings belong in $base_conf, included below.
#
# The HTTP APIs listen on this instance's private IPv4 only, not on 0.0.0.0: the autoscaler's
# functions reach each recorder at exactly that address (the {private_ip} of JibriHealthUrl and
# JibriInternalUrl), so nothing else is needed. A wildcard would also listen on every other
# interface (a second ENI, a container bridge, VPN tunnels, and with Java's dual-stack sockets
# IPv6 too), where the security group below may not be the only guard. The internal API can
# stop a recording: the recorders' security group must admit ports $ext_port and $int_port from the
# autoscaler functions' security group only (the stack's output FunctionSecurityGroupId; with
# ManageIngressRules=true the stack adds exactly these two rules), and no other source.
# Consequence: Jibri's packaged graceful_shutdown.sh (ExecStop=) posts to 127.0.0.1:3333 and
# fails; systemd then stops Jibri by signal. The autoscaler drains recorders through the
# private address before any stop, so nothing depends on it.
jibri-autoscaler {
  instance-id = "$instance_id"
  private-ipv4 = "$private_ip"
  // Unique per brewery room: the operator's control-muc sets nickname = \${jibri-autoscaler.nickname}.
  nickname = "$nickname"
}

include required(file("$base_conf"))

// This instance's settings, after the include: they win over the operator's file.
jibri {
  id = "$instance_id"
  api.http {
    external-api-host = "$private_ip"
    external-api-port = $ext_port
    internal-api-host = "$private_ip"
    internal-api-port = $int_port
  }
  recording.finalize-script = "$finalize"
}
EOF
chmod 0644 "$tmp"
mv -f "$tmp" "$root$conf"
trap - EXIT
echo "$me: wrote $conf: APIs on $private_ip:$ext_port and :$int_port, nickname $nickname, finalize-script $finalize"
