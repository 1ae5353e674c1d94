#!/bin/sh
# The image's entrypoint: prepare the embedded SQLite registry on a first start, then run the command
# (by default gunicorn with config/gunicorn.py).
#
# On SQLite (no DATABASE_URL: the file in the model-store volume; or a sqlite: URL) this container
# is the registry's only user: bring its schema up to date (the server refuses to start on an old
# schema) and train the default model unless it already has a production version, then serve.
# On PostgreSQL (several replicas) nothing is done here: a one-shot job runs
# `coe-template db upgrade` (and `coe-template train --if-missing`) before the servers start
# (compose.yaml's `migrate`, deploy/kubernetes/base/migrate-job.yaml). Replace the entrypoint
# (`--entrypoint`, Kubernetes `command`) to skip it altogether.
set -eu

case "${DATABASE_URL:-sqlite:}" in
    sqlite:*)
        coe-template db upgrade
        coe-template train --if-missing
        ;;
esac
exec "$@"
