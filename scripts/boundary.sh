# The privilege boundary's one description: which binaries are made setgid,
# their owner and mode, and the group-only state root. Sourced by
# scripts/install, and copied by scripts/deb into the Debian package's
# postinst, so both set exactly the same modes. Bash; defines functions only.
#
# Every binary: root-owned, mode 2755, group GROUP (the loader then runs it in
# secure mode with the group's credentials, which the broker requires of every
# peer). The state root: root:GROUP 0070 (the broker, running with the group,
# keeps the remembered-device material there; the user cannot even enter it).

GATEHOUSE_BINARIES=(gatehouse gatehouse-broker gatehouse-sessiond gatehouse-copilotd gatehouse-syncd gatehouse-ui gatehouse-labdevice)
GATEHOUSE_BINARY_MODE=2755
GATEHOUSE_STATE_MODE=0070

# gatehouse_group GROUP: creates the system group if missing; warns about members.
gatehouse_group() {
  local group=$1 members
  getent group "$group" >/dev/null || groupadd --system "$group"
  members=$(getent group "$group" | cut -d: -f4)
  if [[ -n "$members" ]]; then
    echo "gatehouse: WARNING: users $members are members of $group: their processes cross the boundary" >&2
  fi
}

# gatehouse_state_root BIN_DIR: the group-only state root the broker looks for
# (ipc::paths::group_state_root): /var/lib/gatehouse for /usr and /usr/local,
# else <parent of BIN_DIR>/var/lib/gatehouse.
gatehouse_state_root() {
  local parent
  parent=$(dirname "$(realpath -m "$1")")
  case "$parent" in
    /usr|/usr/local|/) echo /var/lib/gatehouse ;;
    *) echo "$parent/var/lib/gatehouse" ;;
  esac
}

# gatehouse_apply BIN_DIR GROUP: the modes above on the binaries present in
# BIN_DIR and on the state root.
gatehouse_apply() {
  local bin_dir=$1 group=$2 b state_root
  for b in "${GATEHOUSE_BINARIES[@]}"; do
    if [[ -f "$bin_dir/$b" ]]; then
      # chown first: it clears the setgid bit.
      chown "root:$group" "$bin_dir/$b"
      chmod "$GATEHOUSE_BINARY_MODE" "$bin_dir/$b"
    fi
  done
  state_root=$(gatehouse_state_root "$bin_dir")
  install -d -m 0755 -o root -g root "$(dirname "$state_root")"
  install -d -m "$GATEHOUSE_STATE_MODE" -o root -g "$group" "$state_root"
  chmod "$GATEHOUSE_STATE_MODE" "$state_root"
}
