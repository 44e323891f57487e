#!/bin/sh
# provision.sh - installs jibri-autoscaler's recorder image kit into a Jibri image. Run as root
# by the image build (Packer, EC2 Image Builder) after Jibri is installed, or once from a launch
# template's user data; see recorder/README.md, "The recorder image kit".
#
#   JIBRI_FINALIZE_BIN=/tmp/jibri-finalize sh recorder/image/provision.sh
#
# It reads its files from this repository's layout (recorder/image, recorder/systemd,
# infra/examples; `make image-kit` packs them into one tarball) and installs, under $ROOT:
#
#   /usr/local/bin/jibri-finalize                     the uploader, Jibri's finalize script
#   /usr/local/sbin/jibri-instance-config             per boot: jibri.conf from IMDSv2
#   /usr/local/bin/wait-inservice.sh                  per start of Jibri: wait for InService
#   /etc/systemd/system/jibri-instance-config.service runs jibri-instance-config, before Jibri
#   /etc/systemd/system/jibri.service.d/instance-config.conf  Jibri Requires= and After= it
#   /etc/systemd/system/jibri.service.d/wait-inservice.conf   ExecStartPre=wait-inservice.sh
#   /etc/systemd/system/jibri-finalize-retry.service, .timer   pending uploads every 5 min,
#   /etc/systemd/system/timers.target.wants/jibri-finalize-retry.timer   the timer enabled
#   /etc/tmpfiles.d/jibri-finalize.conf               /var/lib/jibri-finalize, owned by jibri
#   /etc/jibri-finalize.conf.example, /etc/jitsi/jibri/jibri.base.conf.example
#   /etc/jitsi/jibri/jibri.base.conf  only with JIBRI_BASE_CONF_SRC (0640, group jibri)
#   /etc/jibri-finalize.conf          only with JIBRI_FINALIZE_CONF_SRC (0644)
#
# Settings, from the environment:
#   JIBRI_FINALIZE_BIN       the jibri-finalize binary for the image's architecture (required)
#   JIBRI_BASE_CONF_SRC      the pool's Jibri settings (XMPP environments, logins), optional:
#                            else provide /etc/jitsi/jibri/jibri.base.conf before first boot
#   JIBRI_FINALIZE_CONF_SRC  jibri-finalize's KEY=VALUE settings (BUCKET, PREFIX), optional:
#                            else write /etc/jibri-finalize.conf at boot (the example launch
#                            template's user data does)
#   ROOT                     root of the tree to install into (default /; tests use a
#                            temporary directory, and nothing outside it is touched then)
#
# Idempotent: a second run gives the same tree. It never writes jibri.conf itself (that is the
# per-boot unit's), nor enables jibri.service (the Jibri package does). With ROOT=/ and systemd
# running it reloads systemd's configuration.
set -eu

me=provision.sh
root="${ROOT:-/}"
root="${root%/}"

die() {
    echo "$me: $*" >&2
    exit 1
}

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

# Every source first: nothing is installed from an incomplete kit.
kit_instance_config="$here/jibri-instance-config.sh"
kit_instance_unit="$here/jibri-instance-config.service"
kit_jibri_dropin="$here/jibri-requires-instance-config.conf"
kit_base_example="$here/jibri.base.conf.example"
kit_retry_service="$repo/recorder/systemd/jibri-finalize-retry.service"
kit_retry_timer="$repo/recorder/systemd/jibri-finalize-retry.timer"
kit_finalize_example="$repo/recorder/systemd/jibri-finalize.conf.example"
kit_tmpfiles="$repo/recorder/systemd/jibri-finalize.tmpfiles.conf"
kit_wait="$repo/infra/examples/wait-inservice.sh"
kit_wait_dropin="$repo/infra/examples/jibri-wait-inservice.conf"
for f in "$kit_instance_config" "$kit_instance_unit" "$kit_jibri_dropin" "$kit_base_example" \
    "$kit_retry_service" "$kit_retry_timer" "$kit_finalize_example" "$kit_tmpfiles" \
    "$kit_wait" "$kit_wait_dropin"; do
    [ -f "$f" ] || die "missing $f: run from a checkout of jibri-autoscaler (or the tarball of 'make image-kit')"
done

bin="${JIBRI_FINALIZE_BIN:-}"
[ -n "$bin" ] || die "JIBRI_FINALIZE_BIN is not set: the jibri-finalize binary to install (built by 'make package', or 'cargo build --release -p jibri-finalize')"
[ -s "$bin" ] || die "JIBRI_FINALIZE_BIN=$bin is not a non-empty file"
base_src="${JIBRI_BASE_CONF_SRC:-}"
[ -z "$base_src" ] || [ -f "$base_src" ] || die "JIBRI_BASE_CONF_SRC=$base_src is not a file"
finalize_conf_src="${JIBRI_FINALIZE_CONF_SRC:-}"
[ -z "$finalize_conf_src" ] || [ -f "$finalize_conf_src" ] ||
    die "JIBRI_FINALIZE_CONF_SRC=$finalize_conf_src is not a file"

umask 022
sd="$root/etc/systemd/system"

# Binaries and scripts.
install -D -m 0755 "$bin" "$root/usr/local/bin/jibri-finalize"
install -D -m 0755 "$kit_instance_config" "$root/usr/local/sbin/jibri-instance-config"
install -D -m 0755 "$kit_wait" "$root/usr/local/bin/wait-inservice.sh"

# Units and drop-ins.
install -D -m 0644 "$kit_instance_unit" "$sd/jibri-instance-config.service"
install -D -m 0644 "$kit_jibri_dropin" "$sd/jibri.service.d/instance-config.conf"
install -D -m 0644 "$kit_wait_dropin" "$sd/jibri.service.d/wait-inservice.conf"
install -D -m 0644 "$kit_retry_service" "$sd/jibri-finalize-retry.service"
install -D -m 0644 "$kit_retry_timer" "$sd/jibri-finalize-retry.timer"
# What `systemctl enable jibri-finalize-retry.timer` does (WantedBy=timers.target), without a
# running systemd: the same link, so that it works in a chroot or a test root as well.
install -d -m 0755 "$sd/timers.target.wants"
ln -sfn /etc/systemd/system/jibri-finalize-retry.timer "$sd/timers.target.wants/jibri-finalize-retry.timer"
install -D -m 0644 "$kit_tmpfiles" "$root/etc/tmpfiles.d/jibri-finalize.conf"

# Configuration: examples always, the real files only when given (never a placeholder bucket).
install -D -m 0644 "$kit_finalize_example" "$root/etc/jibri-finalize.conf.example"
install -D -m 0644 "$kit_base_example" "$root/etc/jitsi/jibri/jibri.base.conf.example"
if [ -n "$finalize_conf_src" ]; then
    install -D -m 0644 "$finalize_conf_src" "$root/etc/jibri-finalize.conf"
fi
if [ -n "$base_src" ]; then
    # Passwords: readable by Jibri's group only. Group names resolve on this host, so only
    # when installing into it.
    install -D -m 0640 "$base_src" "$root/etc/jitsi/jibri/jibri.base.conf"
    if [ -z "$root" ]; then
        if getent group jibri >/dev/null 2>&1; then
            chgrp jibri /etc/jitsi/jibri/jibri.base.conf
        else
            echo "$me: warning: no group 'jibri' (is Jibri installed?): Jibri cannot read /etc/jitsi/jibri/jibri.base.conf until it is chgrp jibri" >&2
        fi
    fi
fi

if [ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload
fi
echo "$me: recorder image kit installed into ${root:-/}"
