#!/usr/bin/env bash
# System packages the tests need that pip cannot provide; `make test` runs this first.
# Idempotent. As root (or with password-less sudo) it installs what is missing with
# apt-get; otherwise it prints the exact command to run and exits 0, and the tests that
# need a missing tool are skipped with the reason (with CI=true they fail instead).
set -euo pipefail
packages=()
command -v redis-server >/dev/null || packages+=(redis-server)
command -v java >/dev/null || packages+=(default-jre-headless)
command -v chromium >/dev/null || packages+=(chromium)
[ -f /usr/share/wordnet/data.noun ] || packages+=(wordnet-base)

# Not in Debian's archive: said, not installed.
command -v gcloud >/dev/null || command -v cloud-pubsub-emulator >/dev/null ||
  echo "note: no Pub/Sub emulator (Google Cloud SDK: google-cloud-cli-pubsub-emulator); the Pub/Sub tests will skip" >&2
command -v kubectl >/dev/null ||
  echo "note: no kubectl 1.27+ (https://kubernetes.io/docs/tasks/tools/); the kustomize render tests will skip" >&2

if [ ${#packages[@]} -eq 0 ]; then
  echo "system packages: all present (redis-server, java, chromium, wordnet-base)"
  exit 0
fi
install=(apt-get install -y -qq --no-install-recommends "${packages[@]}")
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  sudo=(sudo)
else
  echo "missing system packages: ${packages[*]}" >&2
  echo "to install them, run:  sudo bash scripts/install-system-deps.sh" >&2
  echo "  (that is: sudo apt-get update && sudo ${install[*]})" >&2
  echo "until then the tests that need them are skipped (with CI=true they fail)" >&2
  exit 0
fi
echo "installing system packages: ${packages[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" "${install[@]}"
