#!/bin/sh
# wait-inservice.sh - exits 0 once this instance's Auto Scaling target lifecycle state
# is InService, 1 when it gave up. Install as /usr/local/bin/wait-inservice.sh and run
# it before Jibri (ExecStartPre of jibri-wait-inservice.conf, see infra/README.md,
# "Warm pools").
#
# A recorder that is being prepared in the warm pool (target state Warmed:Stopped) is
# stopped by Auto Scaling as soon as its launch lifecycle action completes: its Jibri
# must never join Jicofo's brewery, or it could take a recording that the stop cuts.
# After a start from the pool (or a launch straight into the group) the target state
# is InService, and Jibri starts. It is also not InService on a terminating instance, so
# a Jibri that restarts there does not take new recordings.
#
# IMDSv2 only (a session token first), any user. Settings, from the environment:
#   WAIT_INSERVICE_TRIES    reads of the state before giving up (default 180)
#   WAIT_INSERVICE_SLEEP_S  seconds between reads (default 5; 180 x 5 s = 15 min)
#   IMDS_URL                the metadata service (default http://169.254.169.254)
set -u

tries="${WAIT_INSERVICE_TRIES:-180}"
sleep_s="${WAIT_INSERVICE_SLEEP_S:-5}"
imds="${IMDS_URL:-http://169.254.169.254}"

last=""
i=0
while [ "$i" -lt "$tries" ]; do
    i=$((i + 1))
    # A fresh token each time: cheap, and never one that expired while we waited.
    state=""
    if token=$(curl -fsS --max-time 2 -X PUT "$imds/latest/api/token" \
        -H "X-aws-ec2-metadata-token-ttl-seconds: 60" 2>/dev/null); then
        # 404 until Auto Scaling has set the item (or on an instance outside a group).
        state=$(curl -fsS --max-time 2 -H "X-aws-ec2-metadata-token: $token" \
            "$imds/latest/meta-data/autoscaling/target-lifecycle-state" 2>/dev/null) || state=""
    fi
    if [ "$state" = "InService" ]; then
        echo "wait-inservice: target lifecycle state InService, starting"
        exit 0
    fi
    if [ "$state" != "$last" ] || [ "$i" -eq 1 ]; then
        echo "wait-inservice: target lifecycle state '${state:-unknown}', waiting for InService"
        last="$state"
    fi
    [ "$i" -lt "$tries" ] && sleep "$sleep_s"
done
echo "wait-inservice: not InService after $tries reads (last '${last:-unknown}'); not starting" >&2
exit 1
