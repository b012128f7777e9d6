#!/usr/bin/env bash
# Checks the test image and stand-ins on their own, without rbk: brings up compose.yaml (and
# compose.sqlite.yaml), and walks through what rbk relies on. About a minute; as root.
# Prints one "ok" line per check and "N passed, 0 failed" at the end; exits 1 on the first
# failure. Usage: tests/images/selftest.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
IMG="${RBK_TEST_IMAGE:-rbk-test/debian:1}"
P="rbkselftest$$"
PS="${P}sqlite"
F="$here/../../../shared/fixtures/neo4j"
work="$(mktemp -d)"
passed=0

dc() { docker-compose -p "$P" -f "$here/compose.yaml" "$@"; }
dcs() { docker-compose -p "$PS" -f "$here/compose.sqlite.yaml" "$@"; }
cleanup() {
  dc down -v >/dev/null 2>&1 || true
  dcs down -v >/dev/null 2>&1 || true
  docker volume rm "${P}_scratch" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
ok() { passed=$((passed + 1)); echo "ok $passed - $*"; }
fail() { echo "FAILED: $*" >&2; echo "$passed passed, 1 failed"; exit 1; }
admin() { docker run --rm -i -v "${P}_neo4j-data:/data" "$IMG" neo4j-admin "$@"; }
pgq() { docker exec "${P}_postgres_1" psql -U rushdb -d rushdb -Atc "$1"; }
wait_for() { # wait_for SECONDS COMMAND...
  local t=$(($1 * 10)); shift
  until "$@" >/dev/null 2>&1; do t=$((t - 1)); [ "$t" -gt 0 ] || return 1; sleep 0.1; done
}
inner() { tail -c +5 "$1" | zstd -dc; }
scratch() { docker run --rm -i -v "${P}_scratch:/data" "$IMG" "$@"; }
COUNTS='MATCH (n) RETURN count(n) AS nodes;
MATCH ()-[r]->() RETURN count(r) AS relationships;'
counts() { docker exec -i "$@" cypher-shell --format plain <<<"$COUNTS"; }
heartbeats_over() { [ "$(pgq 'select count(*) from heartbeat' 2>/dev/null || echo 0)" -gt "$1" ]; }
sqlite_heartbeats() {
  [ "$(docker exec "${PS}_rushdb_1" sqlite3 /data/rushdb.db 'select count(*) from heartbeat')" -gt 0 ]
}

"$here/build.sh"
dc up -d >/dev/null 2>&1 || fail "compose up"
ok "compose up"
for s in rushdb neo4j postgres; do
  [ "$(docker inspect -f '{{index .Config.Labels "com.docker.compose.service"}}/{{index .Config.Labels "com.docker.compose.project"}}' "${P}_${s}_1")" = "$s/$P" ] ||
    fail "labels on ${P}_${s}_1"
done
ok "containers carry the compose labels"
wait_for 30 heartbeats_over 2 || fail "heartbeats"
ok "rushdb writes heartbeats to postgres"

# The restore drill's count queries: records keyed rel:* are relationships, the rest nodes.
docker exec "${P}_neo4j_1" graph-fill 10 || fail "graph-fill 10"
docker exec "${P}_neo4j_1" graph-write rel:1 "A->B" && docker exec "${P}_neo4j_1" graph-write rel:2 "B->C" ||
  fail "graph-write rel:"
out="$(counts -e NEO4J_USERNAME=neo4j -e NEO4J_PASSWORD=password "${P}_neo4j_1" 2>"$work/err")" ||
  fail "count queries: $(cat "$work/err")"
[ "$out" = "$(printf 'nodes\n10\nrelationships\n2')" ] || fail "counts after graph-fill 10 + 2 rel: $out"
counts "${P}_neo4j_1" >/dev/null 2>"$work/err" && fail "counts without credentials"
grep -q "unauthorized" "$work/err" || fail "counts without credentials: $(cat "$work/err")"
counts -e CYPHER_SHELL_FAIL_COUNT=1 -e NEO4J_USERNAME=neo4j -e NEO4J_PASSWORD=password "${P}_neo4j_1" \
  >/dev/null 2>"$work/err" && fail "CYPHER_SHELL_FAIL_COUNT did not fail the count"
grep -q "CYPHER_SHELL_FAIL_COUNT" "$work/err" || fail "count fail knob: $(cat "$work/err")"
ok "cypher-shell counts nodes and relationships (--format plain); credentials; CYPHER_SHELL_FAIL_COUNT"

docker exec "${P}_neo4j_1" graph-fill 2000 || fail "graph-fill"
docker exec "${P}_neo4j_1" graph-write movie:1 "The Matrix" || fail "graph-write"
[ "$(docker exec "${P}_neo4j_1" graph-read movie:1)" = "The Matrix" ] || fail "graph-read"
ok "graph helpers"

set +e
docker exec "${P}_neo4j_1" neo4j-admin database dump neo4j --to-stdout >"$work/no.dump" 2>"$work/err"
rc=$?
set -e
[ "$rc" = 1 ] && [ ! -s "$work/no.dump" ] && grep -q "The database is in use" "$work/err" ||
  fail "dump while running must be refused (rc=$rc)"
ok "dump refused while neo4j runs"
set +e
docker exec "${P}_neo4j_1" neo4j-admin database check neo4j 2>"$work/err"
rc=$?
set -e
[ "$rc" = 1 ] && grep -q "The database is in use" "$work/err" ||
  fail "check while running must be refused (rc=$rc): $(cat "$work/err")"
ok "check refused while neo4j runs"
set +e
docker exec -e NEO4J_EDITION=enterprise "${P}_neo4j_1" \
  neo4j-admin database dump neo4j --to-stdout >"$work/no.dump" 2>"$work/err"
rc=$?
set -e
[ "$rc" = 1 ] && [ ! -s "$work/no.dump" ] && grep -q "The database is in use" "$work/err" ||
  fail "an Enterprise dump of an online database must be refused too (rc=$rc)"
ok "Enterprise (NEO4J_EDITION=enterprise) refuses to dump an online database"

# cypher-shell: STOP/START DATABASE on Enterprise only, with the credentials of NEO4J_AUTH.
ee() { docker exec -e NEO4J_EDITION=enterprise "$@"; }
cs() { ee -e NEO4J_USERNAME=neo4j -e NEO4J_PASSWORD=password "${P}_neo4j_1" cypher-shell -d system "$@"; }
docker exec "${P}_neo4j_1" cypher-shell -u neo4j -p password -d system "STOP DATABASE neo4j WAIT" \
  >/dev/null 2>"$work/err" && fail "Community accepted STOP DATABASE"
grep -q "Unsupported administration command" "$work/err" || fail "Community STOP: $(cat "$work/err")"
ee -e NEO4J_PASSWORD=wrong "${P}_neo4j_1" cypher-shell -u neo4j -d system "STOP DATABASE neo4j" \
  >/dev/null 2>"$work/err" && fail "a wrong password was accepted"
grep -q "unauthorized" "$work/err" || fail "wrong password: $(cat "$work/err")"
ee -e CYPHER_SHELL_FAIL_STOP=1 -e NEO4J_USERNAME=neo4j -e NEO4J_PASSWORD=password "${P}_neo4j_1" \
  cypher-shell -d system "STOP DATABASE neo4j WAIT" >/dev/null 2>"$work/err" &&
  fail "CYPHER_SHELL_FAIL_STOP did not fail the stop"
grep -q "CYPHER_SHELL_FAIL_STOP" "$work/err" || fail "fail knob: $(cat "$work/err")"
docker exec "${P}_neo4j_1" graph-read movie:1 >/dev/null || fail "the failed STOP stopped the database"
ok "cypher-shell: Community refuses STOP DATABASE; wrong password refused; CYPHER_SHELL_FAIL_STOP"

cs "STOP DATABASE neo4j WAIT" >/dev/null 2>"$work/err" || fail "STOP DATABASE: $(cat "$work/err")"
[ "$(docker inspect -f '{{.State.Running}}' "${P}_neo4j_1")" = true ] || fail "the server stopped"
docker exec "${P}_neo4j_1" graph-read movie:1 >/dev/null 2>"$work/err" &&
  fail "a stopped database still served"
grep -q "unavailable" "$work/err" || fail "graph-read on a stopped database: $(cat "$work/err")"
docker exec "${P}_neo4j_1" neo4j-admin database dump neo4j --to-stdout >"$work/stopped.dump" \
  2>"$work/err" || fail "dump of a stopped database while the server runs: $(cat "$work/err")"
[ "$(head -c 4 "$work/stopped.dump")" = DZV1 ] || fail "that dump is not DZV1"
docker exec "${P}_neo4j_1" neo4j-admin database check neo4j 2>"$work/err" ||
  fail "check of the stopped database while the server runs: $(cat "$work/err")"
ok "STOP DATABASE: the server runs on, the database is unavailable, neo4j-admin dumps and checks it"

# A dump holding the stopped database keeps START DATABASE out until it ends.
docker exec -d -e NEO4J_ADMIN_STALL_AFTER_BYTES=1000 "${P}_neo4j_1" sh -c \
  'echo $$ >/tmp/stall.pid; exec neo4j-admin database dump neo4j --to-stdout >/dev/null 2>&1'
wait_for 10 docker exec "${P}_neo4j_1" sh -c \
  '! flock -n /data/dbms/database-locks/neo4j true' || fail "the stalled dump never took its lock"
cs "START DATABASE neo4j WAIT" >/dev/null 2>"$work/err" && fail "START while a dump runs"
grep -q "in use" "$work/err" || fail "START during a dump: $(cat "$work/err")"
docker exec "${P}_neo4j_1" sh -c 'kill "$(cat /tmp/stall.pid)"'
wait_for 10 cs "START DATABASE neo4j WAIT" || fail "START after the dump ended"
docker exec "${P}_neo4j_1" graph-read movie:1 >/dev/null || fail "the started database serves"
grep -q "STOP DATABASE neo4j by neo4j" <(docker exec "${P}_neo4j_1" cat /logs/neo4j.log) &&
  grep -q "START DATABASE neo4j by neo4j" <(docker exec "${P}_neo4j_1" cat /logs/neo4j.log) ||
  fail "STOP and START are not in /logs/neo4j.log"
ok "START DATABASE waits for a dump to end, then the database serves again"

docker stop "${P}_rushdb_1" "${P}_neo4j_1" >/dev/null
[ "$(docker inspect -f '{{.State.ExitCode}}' "${P}_neo4j_1")" = 0 ] || fail "neo4j exit code"
a="$(pgq 'select count(*) from heartbeat')"; sleep 1.2; b="$(pgq 'select count(*) from heartbeat')"
[ "$a" = "$b" ] || fail "heartbeats while rushdb is stopped ($a -> $b)"
ok "graceful stops; no heartbeats while rushdb is stopped"
docker run --rm -i -v "${P}_neo4j-data:/data" "$IMG" cypher-shell -u neo4j -p password \
  --format plain <<<"$COUNTS" >/dev/null 2>"$work/err" && fail "counts while the server is stopped"
grep -q "Unable to connect" "$work/err" || fail "counts, server stopped: $(cat "$work/err")"
ok "counts refused while the server is stopped"

admin database dump neo4j --to-stdout >"$work/x.dump" 2>"$work/err" || fail "dump: $(cat "$work/err")"
[ "$(head -c 8 "$work/x.dump" | od -An -tx1 | tr -d ' \n')" = "445a563128b52ffd" ] || fail "magic"
[ "$(inner "$work/x.dump" | head -c 8 | od -An -tx1 | tr -d ' \n')" = "7a73746400000001" ] ||
  fail "inner prefix"
inner "$work/x.dump" | tail -c +25 | tar -t >"$work/names" || fail "tar"
grep -qx './neostore' "$work/names" && grep -qx './neostore.transaction.db.0' "$work/names" &&
  [ "$(head -n1 "$work/names")" = "./" ] || fail "entry names"
[ "$(inner "$work/x.dump" | tail -c 1024 | tr -d '\0' | wc -c)" = 0 ] || fail "tar end"
ok "dump format: DZV1, zstd, header, tar entries, end blocks"
admin database check neo4j 2>"$work/err" || fail "check of the filled store: $(cat "$work/err")"
grep -q "2003 node records (2003 in use)" "$work/err" || fail "check summary: $(cat "$work/err")"
ok "check passes on the filled, stopped store"

docker start "${P}_neo4j_1" >/dev/null
wait_for 20 docker exec "${P}_neo4j_1" graph-write movie:1 Changed || fail "write after restart"
docker stop "${P}_neo4j_1" >/dev/null
admin database load neo4j --from-stdin --overwrite-destination=true <"$work/x.dump" 2>"$work/err" ||
  fail "load: $(cat "$work/err")"
admin database check neo4j 2>"$work/err" || fail "check after load: $(cat "$work/err")"
docker start "${P}_neo4j_1" >/dev/null
wait_for 20 docker exec "${P}_neo4j_1" graph-read movie:1 || fail "read after load"
[ "$(docker exec "${P}_neo4j_1" graph-read movie:1)" = "The Matrix" ] || fail "load restored the data"
ok "load restores the dumped store, which passes check"

docker stop "${P}_neo4j_1" >/dev/null
set +e
NEO4J_ADMIN_FAIL_AFTER_BYTES=3000 docker run --rm -e NEO4J_ADMIN_FAIL_AFTER_BYTES -v "${P}_neo4j-data:/data" \
  "$IMG" neo4j-admin database dump neo4j --to-stdout >"$work/part.dump" 2>/dev/null
rc=$?
set -e
[ "$rc" = 1 ] && [ "$(stat -c %s "$work/part.dump")" = 3000 ] || fail "fail knob (rc=$rc)"
ok "NEO4J_ADMIN_FAIL_AFTER_BYTES"

for bad in trailing truncated; do
  case "$bad" in
    trailing) { cat "$work/x.dump"; printf junk; } >"$work/bad.dump" ;;
    truncated) head -c -50 "$work/x.dump" >"$work/bad.dump" ;;
  esac
  if admin database load neo4j --from-stdin --overwrite-destination=true <"$work/bad.dump" 2>/dev/null; then
    fail "load accepted a $bad dump"
  fi
done
ok "load rejects trailing data and truncation"

if [ -d "$F" ]; then
  for f in "$F"/*.dump; do
    docker run --rm -i -v "${P}_scratch:/data" "$IMG" neo4j-admin database load neo4j \
      --from-stdin --overwrite-destination=true <"$f" 2>/dev/null || fail "load $f"
    scratch neo4j-admin database check neo4j 2>"$work/err" || fail "check $f: $(cat "$work/err")"
  done
  ok "loads the real Neo4j fixture dumps; they pass check"
fi

# check finds a store file or transaction log cut short while Neo4j was stopped.
for victim in databases/neo4j/neostore.nodestore.db transactions/neo4j/neostore.transaction.db.0; do
  scratch neo4j-admin database load neo4j --from-stdin --overwrite-destination=true \
    <"$work/x.dump" 2>/dev/null || fail "load into scratch"
  scratch truncate -s -100 "/data/$victim"
  set +e
  scratch neo4j-admin database check neo4j 2>"$work/err"
  rc=$?
  set -e
  [ "$rc" = 1 ] && head -n1 "$work/err" | grep -q "^neo4j-admin: Database 'neo4j' is inconsistent: 1 inconsistency found" &&
    grep -q "^/data/$victim: offset [0-9]*: " "$work/err" ||
    fail "check of a truncated $victim (rc=$rc): $(cat "$work/err")"
done
ok "check fails (exit 1) on a truncated node store and a truncated transaction log, naming them"

docker exec "${P}_postgres_1" pg_dump -U rushdb rushdb >"$work/meta.sql" || fail "pg_dump"
docker exec "${P}_postgres_1" psql -q -U rushdb -d postgres -c 'DROP DATABASE rushdb' -c 'CREATE DATABASE rushdb' || fail "recreate"
docker exec -i "${P}_postgres_1" psql -q -v ON_ERROR_STOP=1 -U rushdb -d rushdb <"$work/meta.sql" >/dev/null || fail "psql restore"
[ "$(pgq 'select count(*) from heartbeat')" = "$b" ] || fail "restored row count"
ok "pg_dump and psql restore through docker exec"

docker start "${P}_neo4j_1" "${P}_rushdb_1" >/dev/null
wait_for 30 heartbeats_over "$b" || fail "heartbeats resume"
ok "heartbeats resume after start"

dcs up -d >/dev/null 2>&1 || fail "sqlite compose up"
wait_for 30 sqlite_heartbeats || fail "sqlite heartbeats"
ok "sqlite variant writes heartbeats to /data/rushdb.db"
docker stop "${PS}_neo4j_1" >/dev/null
docker run --rm -v "${PS}_neo4j-data:/data" "$IMG" neo4j-admin database check neo4j 2>"$work/err" ||
  fail "check of a fresh store: $(cat "$work/err")"
ok "check passes on a fresh store"

echo "$passed passed, 0 failed"
