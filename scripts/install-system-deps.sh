#!/usr/bin/env bash
# System packages the tests need that pip cannot provide. Idempotent; needs root (or sudo).
set -euo pipefail
packages=()
command -v redis-server >/dev/null || packages+=(redis-server)
command -v java >/dev/null || packages+=(default-jre-headless)
command -v chromium >/dev/null || packages+=(chromium)
[ -f /usr/share/wordnet/data.noun ] || packages+=(wordnet-base)
if [ ${#packages[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing system packages: ${packages[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}"
fi
