#!/usr/bin/env bash
# Bazel's --workspace_status_command (see .bazelrc): the git commit that //runtime/common:version
# stamps into every binary's --version. Outside a git checkout (a `make dist` tarball) the commit
# comes from the COMMIT file that `make dist` writes; otherwise it is "unknown".
cd "$(dirname "$0")/../.."
commit=$(git rev-parse --short=12 HEAD 2>/dev/null) || commit=""
if [ -n "$commit" ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit="$commit-dirty"
fi
if [ -z "$commit" ] && [ -f COMMIT ]; then commit=$(cat COMMIT); fi
echo "STABLE_CALLMESH_GIT_COMMIT ${commit:-unknown}"
