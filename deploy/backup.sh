#!/usr/bin/env bash
# Backup and restore of the compose stack's state (deploy/README.md, "Backup and restore").
#
#   deploy/backup.sh backup  [DIR]   default: deploy/backups/<UTC timestamp>  (mode 0700)
#   deploy/backup.sh restore DIR     into a stack whose stores are empty (a new host)
#
# What it keeps:
#   clickhouse-<stamp>.zip   partner, venue and audit databases: ClickHouse's own BACKUP,
#                            taken on the running server; checksums.tsv holds each table's row
#                            count and sum(cityHash64(*)), compared again after a restore.
#   kafka-data.tgz           the broker's volume: the consent ledger (the worker's changelog
#                            topic), every bus topic, SCRAM credentials and ACLs. Kafka is
#                            stopped for the copy (a minute): the gateway spools what venues send
#                            meanwhile (acknowledged, replayed after), nothing is lost.
# Not kept: deploy/.env (your vault keeps it: without its keys restored data cannot be matched),
# Prometheus/Grafana history (rebuilt), the worker's local tables (rebuilt from Kafka).
# Embedded stores (no ClickHouse server): `techne backup create DIR` / `techne backup restore DIR`;
# the consent ledger alone: `techne backup ledger FILE` / `techne backup restore-ledger FILE`.
set -euo pipefail
cd "$(dirname "$0")/.."
ENV_FILE=${TECHNE_ENV_FILE:-deploy/.env}
PROJECT=techne   # `name:` of docker-compose.yml: volumes are techne_<volume>
compose() { docker compose --env-file "$ENV_FILE" "$@"; }
ch() { compose exec -T clickhouse clickhouse-client --query "$1"; }
databases() {
  # partner databases (deploy/agreements), venue_<venue> databases, audit
  ch "SELECT arrayStringConcat(groupArray(concat('DATABASE ', name)), ', ') FROM system.databases
      WHERE name NOT IN ('system', 'default', 'INFORMATION_SCHEMA', 'information_schema')"
}
checksums() {
  for table in $(ch "SELECT concat(database, '.', name) FROM system.tables WHERE engine LIKE '%MergeTree'
                     AND database NOT IN ('system', 'default') ORDER BY 1"); do
    printf '%s\t%s\n' "$table" "$(ch "SELECT count(), sum(cityHash64(*)) FROM $table" | tr '\t' ' ')"
  done
}
volume_tar() {  # volume_tar create|extract VOLUME DIR FILE
  local mode=$1 volume=${PROJECT}_$2 dir=$3 file=$4
  if [ "$mode" = create ]; then
    docker run --rm -v "$volume:/data:ro" -v "$dir:/backup" busybox tar czf "/backup/$file" -C /data .
  else
    docker run --rm -v "$volume:/data" -v "$dir:/backup:ro" busybox tar xzf "/backup/$file" -C /data
  fi
}

case "${1:-}" in
  backup)
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    out=$(realpath -m "${2:-deploy/backups/$stamp}")
    mkdir -p "$out" && chmod 700 "$out"
    checksums > "$out/checksums.tsv"
    ch "BACKUP $(databases) TO Disk('backups', 'clickhouse-$stamp.zip')" >/dev/null
    compose cp "clickhouse:/backups/clickhouse-$stamp.zip" "$out/"
    compose stop kafka
    volume_tar create kafka-data "$out" kafka-data.tgz || { compose start kafka; exit 1; }
    compose start kafka
    echo "backup in $out: $(ls "$out" | tr '\n' ' ')"
    ;;
  restore)
    src=$(realpath "${2:?usage: deploy/backup.sh restore DIR}")
    zip=$(cd "$src" && ls clickhouse-*.zip)
    compose stop kafka
    volume_tar extract kafka-data "$src" kafka-data.tgz
    compose start kafka
    compose cp "$src/$zip" "clickhouse:/backups/$zip"
    ch "RESTORE ALL EXCEPT DATABASE system FROM Disk('backups', '$zip')" >/dev/null
    if diff <(checksums) "$src/checksums.tsv"; then
      echo "restored: every table's row count and checksum match the backup"
    else
      echo "restored tables differ from the backup (diff above)" >&2
      exit 1
    fi
    ;;
  *)
    echo "usage: deploy/backup.sh backup [DIR] | restore DIR" >&2
    exit 2
    ;;
esac
