#!/bin/sh
# Schedule one npi crawl on Scrapyd, wait for it to finish, then deliver the alerts with
# `npi-crawler notify` (the differ and the notifier run over the archive, outside Scrapy, so they
# work the same after a Scrapyd job as after `npi-crawler watch`).
#
#   crawl-and-notify.sh [full]
#
# Environment: SCRAPYD (default http://127.0.0.1:6800), NPI_DB (default /var/lib/npi-crawler/npi.db),
# NPI (default /opt/npi-crawler/.venv/bin/npi-crawler), NPI_BASE_URL (default https://npi.or.jp/),
# NPI_NOTIFY_URLS for notify, NOTIFY_ARGS: more notify options, POLL_SECONDS (default 30) between two looks at the job,
# SCRAPYD_ARGS: more schedule.json parameters, e.g. "-d setting=DOWNLOAD_DELAY=2".
# Exit: notify's exit code; 1 if the job could not be scheduled.
set -eu
SCRAPYD=${SCRAPYD:-http://127.0.0.1:6800}
NPI_DB=${NPI_DB:-/var/lib/npi-crawler/npi.db}
NPI=${NPI:-/opt/npi-crawler/.venv/bin/npi-crawler}
NPI_BASE_URL=${NPI_BASE_URL:-https://npi.or.jp/}
FULL=""
[ "${1:-}" = "full" ] && FULL="-d full=1"

answer=$(curl -fsS "$SCRAPYD/schedule.json" -d project=npi_crawler -d spider=npi \
    -d "setting=NPI_DB_PATH=$NPI_DB" -d "base_url=$NPI_BASE_URL" $FULL ${SCRAPYD_ARGS:-}) || {
    echo "could not schedule the npi spider on $SCRAPYD" >&2; exit 1; }
job=$(printf '%s' "$answer" | sed -n 's/.*"jobid": *"\([^"]*\)".*/\1/p')
[ -n "$job" ] || { echo "Scrapyd refused the job: $answer" >&2; exit 1; }

# Wait until the job is finished (a full pass of the live site can take hours).
while ! curl -fsS "$SCRAPYD/status.json?job=$job" | grep -q '"currstate": *"finished"'; do
    sleep "${POLL_SECONDS:-30}"
done
# --quiet: for cron, which mails what it prints: only what needs a person (the job's crawl not ok,
# its errors and warnings, alerts not delivered); NOTIFY_ARGS adds options (e.g. --config FILE).
exec "$NPI" notify --db "$NPI_DB" --quiet ${NOTIFY_ARGS:-}
