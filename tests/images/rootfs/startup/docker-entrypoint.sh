#!/bin/sh
# Stand-in for the official neo4j image's entrypoint (same path: /startup/docker-entrypoint.sh).
# `neo4j` (the image's default command) runs the server stand-in in the foreground as PID 1;
# anything else (`neo4j-admin database dump ...`) is run as given, so a one-off container made
# from the neo4j service's entrypoint + a new command works as with the real image. Nothing is
# printed to stdout here: a dump to stdout must stay clean.
set -e
if [ "$#" -eq 0 ] || [ "$1" = "neo4j" ]; then
  [ "$#" -gt 0 ] && shift
  exec /usr/local/bin/neo4j console "$@"
fi
exec "$@"
