# shellcheck shell=bash
# Shared by the stage scripts in ci/ (sourced, never run). Each script runs the
# same way under Jenkins and by hand:
#
#   - from the repository root (the Jenkins workspace), whatever the caller's cwd;
#   - with `set -euo pipefail`, and every optional input read as ${NAME:-}: Jenkins
#     removes a variable whose value is empty (withEnv, credential bindings of an
#     unset secret), so "empty" and "unset" must mean the same thing here;
#   - state handed from one stage to the next lives in files under build/ci/
#     (ci_put/ci_get), not in Jenkins environment variables;
#   - a missing required input is one line naming it and how to provide it, exit 1.
set -euo pipefail

CI_NAME="ci/$(basename "$0")"
CI_ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CI_STATE="$CI_ROOT/build/ci"
cd "$CI_ROOT"

ci_die() {
    echo "$CI_NAME: $*" >&2
    exit 1
}

ci_note() {
    echo "$CI_NAME: $*" >&2
}

# ci_need NAME "how to provide it": NAME must be set and non-empty.
ci_need() {
    [ -n "${!1:-}" ] || ci_die "$1 is not set: $2"
}

# The Python with the project's requirements: $PYTHON, else the project venv
# (make setup), else python3 (the agent image puts its venv first on PATH).
ci_python() {
    if [ -n "${PYTHON:-}" ]; then
        echo "$PYTHON"
    elif [ -x "$CI_ROOT/.venv/bin/python" ]; then
        echo "$CI_ROOT/.venv/bin/python"
    else
        echo python3
    fi
}

ci_pipeline() {
    "$(ci_python)" -m pipeline "$@"
}

ci_now() {
    date -u +%Y-%m-%dT%H:%M:%S.%6NZ
}

# Seconds since the epoch with fractions, and the difference of two such values.
ci_clock() {
    date +%s.%N
}

ci_elapsed() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'
}

# ci_sha256 FILE: the file's SHA-256, hex only (ci/verify keeps it, ci/commit-stack compares).
ci_sha256() {
    sha256sum < "$1" | cut -c1-64
}

# State between stages: one small file per key under build/ci/, replaced atomically.
ci_put() {
    mkdir -p "$CI_STATE"
    printf '%s\n' "$2" > "$CI_STATE/.$1.tmp"
    mv -f "$CI_STATE/.$1.tmp" "$CI_STATE/$1"
}

# ci_forget KEY: KEY has no value any more (ci_has is false), e.g. a marker of this run.
ci_forget() {
    rm -f "$CI_STATE/$1"
}

ci_has() {
    [ -s "$CI_STATE/$1" ]
}

# ci_get KEY "which step writes it": the value, or one line saying what to run first.
ci_get() {
    ci_has "$1" || ci_die "build/ci/$1 is missing: run $2 first"
    head -n 1 "$CI_STATE/$1"
}

# ci_get_or KEY DEFAULT: the value, or DEFAULT when no earlier step wrote it.
ci_get_or() {
    if ci_has "$1"; then head -n 1 "$CI_STATE/$1"; else echo "$2"; fi
}

# A private scratch directory for this script, removed when it exits (also on
# failure and Ctrl-C). Under WORKSPACE_TMP when Jenkins gives one.
ci_scratch() {
    local base="${WORKSPACE_TMP:-$CI_ROOT/build/tmp}"
    mkdir -p "$base"
    CI_SCRATCH="$(mktemp -d "$base/${CI_NAME#ci/}.XXXXXX")"
    chmod 700 "$CI_SCRATCH"
    trap 'rm -rf "$CI_SCRATCH"' EXIT
}

# The registry login for IMAGE_REPOSITORY's registry, from REGISTRY_USER and
# REGISTRY_PASSWORD (the registry-push credential), as DOCKER_CONFIG/config.json:
# skopeo (--authfile) and pipeline's registry client both read it. Written by
# Python from the environment (never a command line), mode 0600, removed on exit.
# Without the credential no file is written and the registry is used anonymously.
ci_registry_login() {
    ci_need IMAGE_REPOSITORY "the repository images go to (the agent's environment sets it)"
    if [ -z "${REGISTRY_USER:-}" ] || [ -z "${REGISTRY_PASSWORD:-}" ]; then
        ci_note "no registry login bound (REGISTRY_USER/REGISTRY_PASSWORD): the registry is used anonymously"
        CI_AUTHFILE=""
        return 0
    fi
    ci_scratch
    export DOCKER_CONFIG="$CI_SCRATCH/docker"
    mkdir -m 700 "$DOCKER_CONFIG"
    CI_AUTHFILE="$DOCKER_CONFIG/config.json"
    (umask 077 && "$(ci_python)" -c '
import base64, json, os, sys
e = os.environ
auth = base64.b64encode((e["REGISTRY_USER"] + ":" + e["REGISTRY_PASSWORD"]).encode()).decode()
json.dump({"auths": {e["IMAGE_REPOSITORY"].split("/")[0]: {"auth": auth}}}, sys.stdout)
' > "$CI_AUTHFILE")
}

# git asks a credential helper for the GitHub token (GITHUB_USER / GITHUB_TOKEN,
# the github-token credential) when it needs one: the token is never on a
# command line, in a URL or in .git/config. The first (empty) helper entry
# clears helpers configured elsewhere. Exported here, in the shell, because
# Jenkins would drop an empty GIT_CONFIG_VALUE_0 from withEnv.
ci_git_auth() {
    export GIT_TERMINAL_PROMPT=0
    if [ -z "${GITHUB_TOKEN:-}" ]; then
        return 0
    fi
    export GIT_CONFIG_COUNT=2
    export GIT_CONFIG_KEY_0=credential.helper GIT_CONFIG_VALUE_0=
    export GIT_CONFIG_KEY_1=credential.helper
    # shellcheck disable=SC2016  # expanded by git's shell when it asks, not now
    export GIT_CONFIG_VALUE_1='!f() { if [ "$1" = get ]; then printf "username=%s\npassword=%s\n" "${GITHUB_USER:-x-access-token}" "$GITHUB_TOKEN"; fi; }; f'
}

# What `pulumi` needs on the agent, checked before it runs, one line each:
#   - a shared state backend (PULUMI_BACKEND_URL; the agent's environment gives it
#     from tooling.jenkins.pulumiBackendUrl), so CI and the operator see one state;
#   - the passphrase when the stack's secrets are encrypted with one (an
#     encryptionsalt in Pulumi.STACK.yaml);
#   - no empty credential files: an unset kubeconfig or backend credential arrives
#     as an empty file, which would override the defaults with nothing.
ci_pulumi_env() {
    local stack="$1" file="Pulumi.$1.yaml"
    command -v pulumi >/dev/null 2>&1 || ci_die "the pulumi CLI is not on PATH (the agent image installs it)"
    [ -f "$file" ] || ci_die "no $file: the stacks are $(ls Pulumi.*.yaml | sed -E 's/^Pulumi\.(.*)\.yaml$/\1/' | grep -vx '' | tr '\n' ' ')"
    ci_need PULUMI_BACKEND_URL "where the stacks' state lives; set tooling.jenkins.pulumiBackendUrl (docs/ci-tooling.md#state-and-secrets) or export it by hand"
    export PULUMI_SKIP_UPDATE_CHECK=true
    if grep -q '^encryptionsalt:' "$file" && [ -z "${PULUMI_CONFIG_PASSPHRASE:-}" ] \
        && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
        ci_die "$file holds secrets encrypted with a passphrase but PULUMI_CONFIG_PASSPHRASE is not set: set jenkinsPulumiPassphrase (credential pulumi-config-passphrase) to the stack's passphrase"
    fi
    local var
    for var in KUBECONFIG AWS_SHARED_CREDENTIALS_FILE; do
        if [ -n "${!var:-}" ] && [ ! -s "${!var}" ]; then
            ci_note "$var names an empty file (its credential is not configured): ignored"
            unset "$var"
        fi
    done
    : "$stack"
}
